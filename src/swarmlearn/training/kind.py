"""LoRA adapters as a lifecycle kind (``lora_adapter``): the weights level of the swarm.

:class:`LoraAdapterKind` implements :class:`~swarmlearn.lifecycle.ArtifactKind`
for one scenario (scope = its label, e.g. ``troubleshooting[heldout]``):

* ``produce``: a data set from the recorded episodes for the training
  objective (SFT examples by :class:`~swarmlearn.training.data.SFTBuilder`, or
  DPO pairs by :class:`~swarmlearn.training.data.DPOBuilder`; the gates'
  held-out seeds never read), recorded as a ``lora_dataset`` artifact; a LoRA
  trained on it in a child process (:class:`~swarmlearn.training.lora.LoraTrainer`,
  within the context's deadline) — from the adapter ``train.init_adapter``
  names when set (a version, ``champion`` or a PEFT directory:
  :meth:`LoraAdapterKind.start_from`; DPO on top of the SFT adapter), which is
  then the new version's parent; exported to GGUF and checked against the base;
  its directory settled in the adapter directory
  (:class:`~swarmlearn.training.adapters.AdapterDir`). The payload is a JSON
  pointer with the GGUF's sha256.
* ``evaluate``: LLM workers on each held-out seed (its own worker seed,
  the same on both sides) against a private llama.cpp server that has the
  version loaded at scale 1 — or no adapter, for the baseline (the base
  model). The live server is never touched by a gate.
* ``apply``: the live server (``server``: a :class:`~swarmlearn.serving.LlamaServer`
  we run, or ``server_url``: any llama.cpp server) gets the version at scale 1
  and every other adapter at 0 — loaded first if it is not (``load_lora``,
  which checks the file against the model: a bad one changes nothing). With
  no live server the consumers read the champion alias (``eval --adapter
  champion``). ``revert`` does the same for the previous champion, or puts
  every adapter at 0 (the base model).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from swarmlearn._config import from_mapping
from swarmlearn.core.scenario import Scenario, WorkerKind
from swarmlearn.errors import ArtifactError, ConfigError, StoreError
from swarmlearn.lifecycle import (
    ArtifactVersion,
    HeldOutTasks,
    Lifecycle,
    Lineage,
    ProduceContext,
    Produced,
    TaskResult,
)
from swarmlearn.llm.prompt import PROMPT_VERSION
from swarmlearn.store import Store
from swarmlearn.training._base import check_base
from swarmlearn.training._init_adapter import InitAdapter, check_init
from swarmlearn.training.adapters import (
    ADAPTER_KIND,
    POINTER_FORMAT,
    AdapterDir,
    AdapterPointer,
    sha256_file,
)
from swarmlearn.training.data import (
    DatasetBuilder,
    DatasetConfig,
    DPOBuilder,
    SFTBuilder,
    register_dataset,
)
from swarmlearn.training.lora import LoraTrainConfig, LoraTrainer, Objective, TrainProgress
from swarmlearn.types import OutcomeKind

__all__ = ["LoraAdapterKind", "build_lora_kind", "task_seed_of"]

logger = logging.getLogger(__name__)

#: seconds kept free of training before a deadline: export, settle, register
EXPORT_MARGIN_S = 30.0


def task_seed_of(tasks: HeldOutTasks, seed: int) -> int:
    """The worker seed of one held-out task: as the swarm kinds derive it."""
    from swarmlearn.learn.kinds import task_worker_seed

    return task_worker_seed(tasks, seed)


class LoraAdapterKind:
    """See the module docstring."""

    name = ADAPTER_KIND

    def __init__(self, scenario: Scenario, store: Store, *, base: Path | str | None = None,
                 root: Path | str | None = None, data: DatasetConfig | None = None,
                 train: LoraTrainConfig | None = None, server: Any = None,
                 server_url: str = "", eval_threads: int | None = None,
                 on_progress: Callable[[TrainProgress], None] | None = None,
                 on_task: Callable[[str, TaskResult], None] | None = None) -> None:
        from swarmlearn.serving import default_model_path

        self.scenario = scenario
        self.store = store
        self.scope = scenario.label
        self.base = check_base(base if base is not None else default_model_path())
        if not self.base.gguf:
            raise ConfigError("base: llama.cpp serves a GGUF file; pass the GGUF the adapter "
                              "is trained on", field="base", value=str(self.base.path))
        self.dirs = AdapterDir(root)
        self.data = data or DatasetConfig()
        self.train = train or LoraTrainConfig()
        self.server = server
        self.server_url = server_url
        self.eval_threads = eval_threads
        self.on_progress = on_progress
        self.on_task = on_task

    def __repr__(self) -> str:
        return f"LoraAdapterKind({self.scope})"

    # -- produce ----------------------------------------------------------------------------
    def builder(self) -> DatasetBuilder:
        """The data the objective trains on: SFT examples, or DPO pairs."""
        if self.train.objective is Objective.DPO:
            return DPOBuilder(self.data)
        return SFTBuilder(self.data)

    def start_from(self, champion: ArtifactVersion | None,
                   ) -> tuple[InitAdapter, ArtifactVersion | None] | None:
        """The adapter ``train.init_adapter`` names, checked against this base, and its
        version: a PEFT directory (no version), or a version of this scope — ``3``, ``v3``,
        ``champion`` (its file checked as for a gate). None: a new adapter."""
        ref = self.train.init_adapter.strip()
        if not ref:
            return None
        folder = Path(ref).expanduser()
        if folder.is_dir():
            return check_init(folder, self.base), None
        m = re.fullmatch(r"v?(\d+)|champion", ref.lower())
        if m is None:
            raise ConfigError(f"init_adapter: {ref!r} is neither an adapter directory nor a "
                              f"version (3, v3, champion)", field="init_adapter", value=ref)
        version = champion
        if m.group(1) is not None:
            try:
                version = Lifecycle(self.store, self.name, self.scope).get(int(m.group(1)))
            except StoreError as exc:
                raise ConfigError(f"init_adapter: {self.name}/{self.scope} has no version "
                                  f"{m.group(1)}", field="init_adapter", value=ref) from exc
        if version is None:
            raise ConfigError(f"init_adapter: {self.scope} has no champion to start from (the "
                              f"base model is live)", field="init_adapter", value=ref)
        self.gguf_of(version)  # this base, the registered file
        return check_init(AdapterPointer.from_version(version).directory, self.base), version

    def produce(self, ctx: ProduceContext) -> Produced:
        from swarmlearn.training.gguf_export import export_gguf

        t0 = time.perf_counter()
        start = self.start_from(ctx.champion)  # a bad one: one line, before any work
        self.dirs.sweep(self.store, self.scope,  # what killed trainings left behind
                        keep=[start[0].directory] if start is not None else [])
        builder = self.builder()
        data = builder.build(self.store, self.scenario)
        n = len(list(self.dirs.datasets_dir(self.scope).glob("*"))) + 1
        files = data.write(self.dirs.datasets_dir(self.scope) / f"{n:04d}")
        dataset = register_dataset(self.store, data, files)
        cfg = self.train if start is None else replace(self.train,
                                                         init_adapter=str(start[0].directory))
        if ctx.deadline is not None:
            left = ctx.deadline - time.time() - EXPORT_MARGIN_S
            if left <= 10:
                raise ArtifactError(f"{self.scope}: no time left to train before the deadline")
            cfg = replace(cfg, max_seconds=min(cfg.max_seconds or left, left))
        run = self.dirs.staging(self.scope)
        result = LoraTrainer(cfg, base_cache=self.dirs.base_cache).train(
            base=self.base.path, train=files.train, val=files.val if data.val else None,
            output=run, on_progress=self.on_progress, timeout_s=None if ctx.deadline is None
            else max(10.0, ctx.deadline - time.time()))
        export_gguf(run, self.base.path, run / "adapter.gguf")
        folder = self.dirs.settle(run, self.scope, {"dataset.json": files.manifest})
        pointer = AdapterPointer(directory=folder.resolve(),
                                 gguf_sha256=sha256_file(folder / "adapter.gguf"),
                                 base=str(self.base.path),
                                 base_fingerprint=self.base.fingerprint(),
                                 prompt_version=PROMPT_VERSION)
        (folder / "adapter.json").write_bytes(pointer.to_bytes())
        m = result.metrics
        summary = {"directory": str(folder), "examples": m["examples"],
                   "val_loss": m["val_loss"], "tokens_per_s": round(m["tokens_per_s"], 1),
                   "dataset": dataset.id}
        parent = start[1] if start is not None and start[1] is not None else ctx.champion
        return Produced(
            payload=pointer.to_bytes(), format_version=POINTER_FORMAT, summary=summary,
            lineage=Lineage(
                parent=parent.id if parent is not None else None,
                inputs={"scenario": self.scope, "objective": str(cfg.objective),
                        "builder": type(builder).__name__, "dataset": dataset.id,
                        "dataset_version": dataset.version,
                        "sessions": data.lineage["sessions"],
                        "episodes": len(data.lineage["episodes"]),
                        "prompt_version": PROMPT_VERSION,
                        "init_adapter": None if start is None else {
                            "ref": self.train.init_adapter, "directory": str(start[0].directory),
                            "version": start[1].label if start[1] is not None else None}},
                config={"train": result.config.to_dict(), "data": self.data.to_dict(),
                        "base": str(self.base.path)},
                metrics={**m, "produce_seconds": round(time.perf_counter() - t0, 2)}))

    # -- evaluate ---------------------------------------------------------------------------
    def gguf_of(self, version: ArtifactVersion) -> Path:
        """The version's GGUF file, checked against its registered digest."""
        pointer = AdapterPointer.from_version(version)
        if pointer.base_fingerprint != self.base.fingerprint():
            raise ArtifactError(f"{version.label} was trained on {pointer.base}, not on "
                                f"{self.base.path}")
        if pointer.prompt_version != PROMPT_VERSION:
            logger.warning("%s was trained on prompt version %d; the workers now send "
                           "version %d", version.label, pointer.prompt_version, PROMPT_VERSION)
        gguf = pointer.checked(version.label)
        from swarmlearn.serving import check_lora

        check_lora(gguf, base=self.base.path, field="adapter")  # before any server sees it
        return gguf

    def evaluate(self, version: ArtifactVersion | None, tasks: HeldOutTasks, *,
                 stop: threading.Event | None = None) -> list[TaskResult]:
        """LLM workers on their own llama.cpp server (one slot), ``version``'s adapter at
        scale 1 (``None``: the base model), one session per held-out task; ``stop`` set
        ends it before the next task (``evaluate_pair``: the other side failed)."""
        from swarmlearn.serving import LlamaServer, LlamaServerConfig
        from swarmlearn.session import run_session

        loras = (self.gguf_of(version),) if version is not None else ()
        side = version.label if version is not None else "base model"
        config = LlamaServerConfig(model=self.base.path, loras=loras, parallel=1,
                                   threads=self.eval_threads)
        results = []
        with LlamaServer(config) as server:
            if loras:
                server.set_lora_scales({0: 1.0})
            sc = self.scenario.override(workers={"kind": WorkerKind.LLM.value,
                                                 "url": server.base_url})
            try:
                for seed in tasks.seeds:
                    if stop is not None and stop.is_set():
                        raise RuntimeError(f"{side}: stopped, the other side of the gate "
                                           "failed")
                    run = run_session(sc, seeds=[seed], worker_seed=task_seed_of(tasks, seed),
                                      store=None)
                    ended = run.episodes[0]
                    _check_calls(side, seed, ended.stats, server.log_path)
                    r = TaskResult(seed, ended.outcome.kind is OutcomeKind.SUCCESS,
                                   float(ended.actions))
                    results.append(r)
                    if self.on_task is not None:
                        self.on_task(side, r)
            except BaseException:
                if stop is not None:  # now, not after this server has shut down
                    stop.set()
                raise
        return results

    def evaluate_pair(self, champion: ArtifactVersion | None, challenger: ArtifactVersion,
                      tasks: HeldOutTasks) -> tuple[list[TaskResult], list[TaskResult]]:
        """Both sides of a gate at once, each on its own server and cores.

        A decision is CPU-bound prompt processing in llama.cpp, whose threads wait for each
        other at every step: two servers of one thread each (the default on 2 cores) finish
        two evaluations in about the time of one, where one server of two threads would
        not. The two sessions share nothing but the GIL, which their Python side barely
        holds. Both adapter files are checked before either server starts, and an error on
        one side stops the other side's remaining tasks."""
        from concurrent.futures import ThreadPoolExecutor

        for v in (champion, challenger):
            if v is not None:
                self.gguf_of(v)  # a bad file: one line before any server is spawned
        failed = threading.Event()  # evaluate sets it when its side fails
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="gate") as pool:
            base = pool.submit(self.evaluate, champion, tasks, stop=failed)
            chal = pool.submit(self.evaluate, challenger, tasks, stop=failed)
            return base.result(), chal.result()

    # -- apply ------------------------------------------------------------------------------
    def _live(self) -> Any:
        if self.server is not None:
            return self.server
        if self.server_url:
            from swarmlearn.serving import ExternalServer

            return ExternalServer.attach(self.server_url)
        return None

    def apply(self, version: ArtifactVersion | None) -> None:
        gguf = self.gguf_of(version) if version is not None else None
        live = self._live()
        if live is None:
            return  # consumers read the champion alias
        adapters = live.lora_adapters()
        want = str(gguf.resolve()) if gguf is not None else None
        ids = [a.id for a in adapters if str(Path(a.path).resolve()) == want]
        if want is not None and not ids:
            load = getattr(live, "load_lora", None)
            if load is None:
                raise ArtifactError(f"{version.label if version else ''}: {want} is not loaded "
                                    f"on the live server and it cannot load adapters; start "
                                    f"it with --lora {want}")
            ids = [load(gguf).id]
            adapters = live.lora_adapters()
        live.set_lora_scales({a.id: 1.0 if a.id in ids[:1] else 0.0 for a in adapters})
        logger.info("%s: live server now runs %s", self.scope,
                    version.label if version else "the base model")

    def revert(self, to: ArtifactVersion | None) -> None:
        self.apply(to)


def _check_calls(side: str, seed: int, stats: Mapping[str, float], log: Any) -> None:
    """A gate judges the model's decisions: a task on which most of the LLM workers' calls
    failed (the server refused them: a prompt longer than its context …) judged the
    server, so it ends the gate; a few failed calls are logged."""
    calls, failed = stats.get("llm_calls", 0.0), stats.get("llm_failed", 0.0)
    if calls and failed > calls / 2:
        raise ArtifactError(f"{side}: {failed:.0f} of {calls:.0f} LLM calls on task {seed} "
                            f"failed: a gate on failures would judge the server, not the "
                            f"model (server log: {log})")
    if failed:
        logger.warning("%s: %.0f of %.0f LLM calls on task %d failed", side, failed, calls,
                       seed)


def build_lora_kind(scenario: Scenario, store: Store, **options: Any) -> LoraAdapterKind:
    """The daemon's builder (``kind = "swarmlearn.training.kind:build_lora_kind"``):
    ``base``, ``root``, ``server_url``, ``eval_threads`` and the tables ``data``
    (DatasetConfig) and ``train`` (LoraTrainConfig: ``objective = "dpo"``,
    ``init_adapter = "champion"`` …)."""
    data = options.pop("data", {})
    train = options.pop("train", {})
    for name, value in (("data", data), ("train", train)):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{name}: expected a table, got {value!r}", field=name)
    known = {"base", "root", "server_url", "eval_threads"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown option of the LoRA level (known: data, "
                          f"train, {', '.join(sorted(known))})", field=unknown[0])
    return LoraAdapterKind(scenario, store,
                           data=from_mapping(DatasetConfig, _tuples(data), where="data"),
                           train=from_mapping(LoraTrainConfig, train, where="train"),
                           **options)


def _tuples(data: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(data)
    if "exclude_seeds" in out:
        out["exclude_seeds"] = [tuple(r) for r in out["exclude_seeds"]]
    return out
