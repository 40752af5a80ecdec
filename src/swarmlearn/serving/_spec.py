"""The JSON spec that a LlamaServer hands to its child process."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["ChildSpec"]


@dataclass(frozen=True, kw_only=True, slots=True)
class ChildSpec:
    """Everything the child needs, as plain JSON-able values."""

    model: str
    host: str
    port: int
    parallel: int
    ctx_size: int
    threads: int
    loras: tuple[str, ...]
    metrics: bool
    slot_save_path: str
    host_cache_mib: int
    verbosity: int

    def dump(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> ChildSpec:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["loras"] = tuple(data.get("loras", ()))
        return cls(**data)

    def params(self, xllamacpp: Any) -> Any:
        """The xllamacpp ``CommonParams`` for this spec."""
        p = xllamacpp.CommonParams()
        p.model.path = self.model
        p.hostnames = [self.host]
        p.port = self.port
        p.n_parallel = self.parallel
        p.n_ctx = self.ctx_size
        if self.threads > 0:
            p.cpuparams.n_threads = self.threads
            p.cpuparams_batch.n_threads = self.threads
        # The equivalent of --no-repack: AMX repacking crashes on some CPUs.
        p.no_extra_bufts = True
        p.endpoint_metrics = self.metrics
        p.endpoint_slots = True
        p.slot_save_path = self.slot_save_path
        p.cache_ram_mib = self.host_cache_mib
        p.verbosity = self.verbosity
        p.lora_adapters = [xllamacpp.CommonAdapterLoraInfo(path, 0.0) for path in self.loras]
        p.lora_init_without_apply = True  # adapters start at scale 0
        return p
