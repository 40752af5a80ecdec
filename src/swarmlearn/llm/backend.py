"""The LLM backend of a session: a client on a local llama.cpp server or an external URL.

``open_backend(scenario)`` starts the bundled (or configured) model in a
supervised llama.cpp child process on 127.0.0.1 — or, with ``workers.url``,
attaches to any OpenAI-compatible server — and returns the client the LLM
workers and manager share. ``build_llm_workers`` / ``build_llm_manager`` are
the hooks :mod:`swarmlearn.session` resolves the ``llm`` kinds through.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from swarmlearn.core.environment import Environment
from swarmlearn.core.manager import Manager
from swarmlearn.core.scenario import Scenario
from swarmlearn.core.workers import Worker
from swarmlearn.errors import ConfigError
from swarmlearn.llm._batch import LLMClient
from swarmlearn.llm._client import HttpLLMClient, LLMClientConfig
from swarmlearn.llm._types import LoraScale
from swarmlearn.llm.worker import LLMManager, LLMWorker, LLMWorkerConfig, Planner

if TYPE_CHECKING:
    from swarmlearn.serving import LlamaServerConfig

__all__ = ["Backend", "build_llm_manager", "build_llm_workers", "learned_dependencies",
           "open_backend", "server_config"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Backend:
    client: LLMClient
    model: str
    base_url: str
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        while self.closers:
            try:
                self.closers.pop()()
            except Exception:  # closing must go on for the rest
                logger.exception("closing the LLM backend failed")


def open_backend(scenario: Scenario) -> Backend:
    """A client on ``workers.url``, or on a llama.cpp server started for this session."""
    from swarmlearn.serving import LlamaServer

    wcfg = scenario.workers
    if wcfg.url:
        scales = _adapter_scales(wcfg.url, wcfg.adapter) if wcfg.adapter else None
        client = HttpLLMClient(LLMClientConfig(base_url=wcfg.url),
                               default_lora=(lambda: scales) if scales is not None else None)
        client.check()  # one clear line if the URL is unreachable
        return Backend(client, wcfg.url, wcfg.url, [client.close])
    server = LlamaServer(server_config(scenario))
    server.start()
    if server.config.loras:  # workers.adapter: the session's own server runs it at scale 1
        server.set_lora_scales({0: 1.0})
    # sends the current adapter scales with every request; the workers' calls of a tick
    # queue for the one slot, so a call may wait for all the others
    timeout = max(120.0, 60.0 * wcfg.count)
    client = server.client(LLMClientConfig(base_url=server.base_url, timeout_s=timeout))
    model = (wcfg.model and Path(wcfg.model).name) or "SmolLM2-135M-Instruct"
    return Backend(client, model, server.base_url, [server.stop, client.close])


def server_config(scenario: Scenario) -> LlamaServerConfig:
    """How a session runs its local llama.cpp server: one slot that the LLM workers share.

    On a CPU, prompt processing is compute-bound: more slots only spread the
    same work over the same threads, and each slot computes for itself the
    prefix that the workers' prompts of one tick share (role, plan, state,
    guidance). With one slot the workers' requests of a tick queue and each
    one after the first reuses that prefix. Measured with three workers on 2
    shared cores (``benchmarks/llm_worker.py``, docs/llm.md): 1 slot beat one
    slot per worker. The threads are the server's default (half the CPUs).
    """
    from swarmlearn.serving import LlamaServerConfig

    wcfg = scenario.workers
    loras = (Path(wcfg.adapter),) if wcfg.adapter and wcfg.adapter != "none" else ()
    return LlamaServerConfig(model=Path(wcfg.model) if wcfg.model else None, parallel=1,
                             loras=loras)


def _adapter_scales(url: str, adapter: str) -> tuple[LoraScale, ...]:
    """Per-request scales on a running server: ``adapter`` (a file it loaded) at 1, every
    other at 0; ``"none"``: all at 0 (the base model, whatever the server's own scales)."""
    from swarmlearn.serving import LlamaAdmin

    admin = LlamaAdmin(url)
    try:
        loaded = admin.lora_adapters()
    finally:
        admin.close()
    want = None if adapter == "none" else str(Path(adapter).resolve())
    if want is not None and want not in {str(Path(a.path).resolve()) for a in loaded}:
        raise ConfigError(f"workers.adapter: {want!r} is not loaded on the server at {url} "
                          f"(loaded: {[a.path for a in loaded] or 'none'})",
                          field="workers.adapter", value=adapter)
    return tuple(LoraScale(a.id, 1.0 if str(Path(a.path).resolve()) == want else 0.0)
                 for a in loaded)


def learned_dependencies(store: Any, scenario: Scenario) -> dict[str, list[str]]:
    """The learned prerequisites of the latest offline model of ``scenario`` (empty if none)."""
    if store is None:
        return {}
    from swarmlearn.learn.offline import OfflineAnalyzer

    model = OfflineAnalyzer(store).load(scenario.label)
    if model is None:
        return {}
    deps = {b: list(a) for b, a in model.dependencies.items()}
    for b, groups in model.any_of.items():
        deps.setdefault(b, []).extend(groups[0][:1])  # one of the group is enough to order
    return deps


def build_llm_workers(
    scenario: Scenario, env: Environment, *, seed: int, backend: Backend, store: Any = None,
    **_: Any,
) -> Sequence[Worker]:
    """The scenario's LLM workers, sharing one planner per task source; with a store, they
    read the lifecycle's champion skill of the scenario at each episode start."""
    cfg = LLMWorkerConfig()
    planner = Planner(backend.client, model=backend.model,
                      learned=learned_dependencies(store, scenario))
    skill = None
    if store is not None:
        from swarmlearn.skills import LiveSkill

        skill = LiveSkill(store, scenario.label, default=cfg.skill)
    return [
        LLMWorker(i, backend.client, env, config=cfg, model=backend.model, seed=seed,
                  planner=planner, skill_source=skill)
        for i in range(scenario.workers.count)
    ]


def build_llm_manager(scenario: Scenario, env: Environment, *, backend: Backend,
                      **_: Any) -> Manager:
    return LLMManager(backend.client, env, model=backend.model)
