"""How to run one llama.cpp server: :class:`LlamaServerConfig`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from swarmlearn.errors import ConfigError
from swarmlearn.serving._model import check_gguf

__all__ = ["DEFAULT_CTX_PER_SLOT", "LlamaServerConfig", "usable_cpus"]

DEFAULT_CTX_PER_SLOT = 2048


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True, kw_only=True, slots=True)
class LlamaServerConfig:
    """How to run one llama.cpp server.

    ``model`` None means the bundled SmolLM2-135M-Instruct. ``port`` 0 picks a
    free port at start (kept across restarts). ``ctx_size`` is the total KV
    context shared by the ``parallel`` slots (None: 2048 per slot). ``loras``
    are loaded at scale 0. ``threads`` None means half the CPUs (see
    :attr:`effective_threads`). ``host_cache_mib`` is llama.cpp's host-memory
    prompt cache, which ignores adapters and so must stay 0 when ``loras`` are
    given. ``log_dir`` None means a fresh temporary directory.
    """

    model: Path | None = None
    host: str = "127.0.0.1"
    port: int = 0
    parallel: int = 1
    ctx_size: int | None = None
    threads: int | None = None
    loras: tuple[Path, ...] = ()
    metrics: bool = True
    host_cache_mib: int = 0
    verbosity: int = 3
    log_dir: Path | None = None
    start_timeout_s: float = 120.0
    stop_timeout_s: float = 10.0
    restart: bool = True
    max_restarts: int = 5
    restart_window_s: float = 600.0
    health_interval_s: float = 2.0
    unhealthy_after: int = 3

    def __post_init__(self) -> None:
        if self.model is not None:
            object.__setattr__(self, "model", check_gguf(self.model, field="model"))
        loras = tuple(check_gguf(p, field=f"loras[{i}]") for i, p in enumerate(self.loras))
        object.__setattr__(self, "loras", loras)
        self._check_ranges()
        if self.loras and self.host_cache_mib:
            raise ConfigError(
                "host_cache_mib must be 0 when LoRA adapters are loaded: llama.cpp's host "
                "prompt cache would answer from prompts computed under other adapter scales",
                field="host_cache_mib",
                value=self.host_cache_mib,
            )

    def _check_ranges(self) -> None:
        checks: list[tuple[str, bool]] = [
            ("port", 0 <= self.port <= 65535),
            ("parallel", 1 <= self.parallel <= 256),
            ("ctx_size", self.ctx_size is None or self.ctx_size >= 128 * self.parallel),
            ("threads", self.threads is None or self.threads >= 1),
            ("host_cache_mib", self.host_cache_mib >= 0),
            ("start_timeout_s", self.start_timeout_s > 0),
            ("stop_timeout_s", self.stop_timeout_s > 0),
            ("max_restarts", self.max_restarts >= 0),
            ("restart_window_s", self.restart_window_s > 0),
            ("health_interval_s", self.health_interval_s > 0),
            ("unhealthy_after", self.unhealthy_after >= 1),
            ("host", bool(self.host.strip())),
        ]
        for name, ok in checks:
            if not ok:
                value = getattr(self, name)
                raise ConfigError(f"{name}: invalid value {value!r}", field=name, value=value)

    @property
    def effective_threads(self) -> int:
        """``threads``, or half the CPUs this process may run on (at least 1) when None.

        llama.cpp's threads wait for each other at every step: when another
        process holds one of the cores, a server using all of them slows down
        several times over. Measured on this 2-core machine under load
        (``benchmarks/llm_worker.py``): 1 thread 41 prompt / 17 generated
        tokens/s, 2 threads 38 / 2. The swarm (and a LoRA trainer) need CPU too.
        """
        if self.threads is not None:
            return self.threads
        return max(1, usable_cpus() // 2)

    @property
    def total_ctx(self) -> int:
        return self.ctx_size if self.ctx_size is not None else DEFAULT_CTX_PER_SLOT * self.parallel
