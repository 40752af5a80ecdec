"""The adapter directory: every trained adapter's files, and the store record that names them.

Layout (``root`` defaults to ``.swarmlearn/lora``)::

    root/adapters/<scope>/<sha12>/adapter.gguf                 what llama.cpp serves
                                 /adapter_model.safetensors     PEFT's weights
                                 /adapter_config.json
                                 /metrics.json, dataset.json, adapter.json
    root/datasets/<scope>/<n>/train.jsonl, val.jsonl, dataset.json
    root/base-cache/                                           the dequantized base

A directory is named by the GGUF file's digest and becomes a version only
when the lifecycle registers it (kind ``lora_adapter``, scope = the scenario
label): the store record's payload is a small JSON pointer (directory, the
sha256 of the GGUF, the base model's fingerprint, the prompt version), so a
version whose file changed or vanished is refused instead of served, and a
directory without a record (a run killed before registering) is ignored by
every listing and removed by :func:`AdapterDir.sweep` (at the start of every
``LoraAdapterKind.produce``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarmlearn.errors import ArtifactError, ConfigError, StoreError
from swarmlearn.lifecycle import ArtifactVersion, Lifecycle
from swarmlearn.store import Store

__all__ = ["ADAPTER_KIND", "POINTER_FORMAT", "AdapterDir", "AdapterPointer", "resolve_adapter"]

logger = logging.getLogger(__name__)

ADAPTER_KIND = "lora_adapter"
POINTER_FORMAT = 1
DEFAULT_ROOT = Path(".swarmlearn/lora")
#: an unregistered settled directory this old is a leftover (produce → register takes seconds)
SWEEP_GRACE_S = 3600.0


def _slug(scope: str) -> str:
    return re.sub(r"[^A-Za-z0-9._\-]", "_", scope)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True, kw_only=True, slots=True)
class AdapterPointer:
    """The payload of a ``lora_adapter`` version: where its files are, and their digest."""

    directory: Path
    gguf_sha256: str
    base: str  # the base model file it was trained on
    base_fingerprint: str
    prompt_version: int

    @property
    def gguf(self) -> Path:
        return self.directory / "adapter.gguf"

    def to_bytes(self) -> bytes:
        return json.dumps({"format_version": POINTER_FORMAT, "directory": str(self.directory),
                           "gguf_sha256": self.gguf_sha256, "base": self.base,
                           "base_fingerprint": self.base_fingerprint,
                           "prompt_version": self.prompt_version}, sort_keys=True).encode()

    @classmethod
    def from_version(cls, version: ArtifactVersion) -> AdapterPointer:
        try:
            data = json.loads(version.payload.decode("utf-8"))
            return cls(directory=Path(data["directory"]), gguf_sha256=str(data["gguf_sha256"]),
                       base=str(data["base"]), base_fingerprint=str(data["base_fingerprint"]),
                       prompt_version=int(data["prompt_version"]))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise ArtifactError(f"{version.label}: not a LoRA adapter record ({exc})") from exc

    def checked(self, label: str) -> Path:
        """The GGUF file, after checking it is the one that was registered."""
        if not self.gguf.is_file():
            raise ArtifactError(f"{label}: its adapter file {self.gguf} is missing")
        if sha256_file(self.gguf) != self.gguf_sha256:
            raise ArtifactError(f"{label}: {self.gguf} changed since it was registered "
                                f"(sha256 differs): refusing to serve it")
        return self.gguf


class AdapterDir:
    """The directory of adapter versions of every scope under ``root``."""

    def __init__(self, root: Path | str | None = None) -> None:
        env = os.environ.get("SWARMLEARN_LORA_DIR")
        self.root = Path(root) if root is not None else Path(env) if env else DEFAULT_ROOT

    def scope_dir(self, scope: str) -> Path:
        return self.root / "adapters" / _slug(scope)

    def datasets_dir(self, scope: str) -> Path:
        return self.root / "datasets" / _slug(scope)

    @property
    def base_cache(self) -> Path:
        return self.root / "base-cache"

    def staging(self, scope: str) -> Path:
        """Where a new adapter is trained (the trainer's output; must not exist yet)."""
        parent = self.scope_dir(scope)
        parent.mkdir(parents=True, exist_ok=True)
        n = 0
        while (parent / f"run-{os.getpid()}-{n}").exists():
            n += 1
        return parent / f"run-{os.getpid()}-{n}"

    def settle(self, run: Path, scope: str, files: Mapping[str, Path] | None = None) -> Path:
        """Move a finished run (with its ``adapter.gguf``) to its digest-named directory;
        ``files`` are copied in beside it (a data set's manifest …)."""
        gguf = run / "adapter.gguf"
        if not gguf.is_file():
            raise ArtifactError(f"{run}: no adapter.gguf to settle")
        for name, src in (files or {}).items():
            shutil.copyfile(src, run / name)
        dest = self.scope_dir(scope) / sha256_file(gguf)[:12]
        if dest.exists():  # the same adapter again: keep the first copy
            shutil.rmtree(run, ignore_errors=True)
            return dest
        run.rename(dest)
        return dest

    def sweep(self, store: Store, scope: str, *, keep: Iterable[Path] = (),
              grace_s: float = SWEEP_GRACE_S) -> list[Path]:
        """Remove the directories of ``scope`` that no version points at (nor ``keep``):
        a run or staging directory once its process is gone (a training killed mid-way),
        any other (a settled run never registered: its produce was killed) once nothing
        in it changed for ``grace_s`` — a younger one may be on its way to the store (the
        daemon's trainer process settles, the daemon registers)."""
        parent = self.scope_dir(scope)
        if not parent.is_dir():
            return []
        life = Lifecycle(store, ADAPTER_KIND, scope)
        known = {Path(k).resolve() for k in keep}
        for v in life.versions(payload=True):
            try:
                known.add(AdapterPointer.from_version(v).directory.resolve())
            except ArtifactError:
                continue
        removed = []
        for p in parent.iterdir():
            if p.is_dir() and p.resolve() not in known and _left_over(p, grace_s):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
        if removed:
            logger.info("%s: removed %d unregistered adapter directories: %s", scope,
                        len(removed), ", ".join(p.name for p in removed))
        return removed


def _left_over(p: Path, grace_s: float) -> bool:
    """A run or staging directory (named by its process) whose process is gone, or any
    other directory in which nothing changed for ``grace_s``."""
    m = re.match(r"^(?:run|\.staging)-(\d+)-", p.name)
    if m is not None:
        return not _alive(int(m.group(1)))
    try:
        changed = max([p.stat().st_mtime, *(c.stat().st_mtime for c in p.iterdir())])
    except OSError:  # changing right now
        return False
    return time.time() - changed > grace_s


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def resolve_adapter(ref: str, *, store: Store | None = None, scope: str = "",
                    field: str = "adapter") -> tuple[Path, ArtifactVersion | None]:
    """An adapter GGUF named by ``ref``: a file (or a directory holding ``adapter.gguf``),
    or a version of ``scope`` in the store — ``3``, ``v3``, ``champion``. The file of a
    version is checked against its registered digest."""
    p = Path(ref).expanduser()
    if p.is_dir() and (p / "adapter.gguf").is_file():
        return (p / "adapter.gguf").resolve(), None
    if p.is_file():
        return p.resolve(), None
    m = re.fullmatch(r"v?(\d+)|champion", ref.strip())
    if m is None:
        raise ConfigError(f"{field}: {ref!r} is neither an adapter file nor a version "
                          f"(3, v3, champion)", field=field, value=ref)
    if store is None or not scope:
        raise ConfigError(f"{field}: a version ({ref}) needs a store and a scenario",
                          field=field, value=ref)
    life = Lifecycle(store, ADAPTER_KIND, scope)
    version = life.champion() if m.group(1) is None else _get(life, int(m.group(1)))
    if version is None:
        raise ConfigError(f"{field}: {scope} has no champion adapter (the base model is live)",
                          field=field, value=ref)
    return AdapterPointer.from_version(version).checked(version.label), version


def _get(life: Lifecycle, n: int) -> ArtifactVersion:
    try:
        return life.get(n)
    except StoreError as exc:  # no such artifact
        raise ConfigError(f"adapter: {life.kind}/{life.scope} has no version {n}",
                          field="adapter", value=n) from exc


def describe(version: ArtifactVersion) -> dict[str, Any]:
    """A version as a row of ``swarmlearn lora list``."""
    gate = version.gate or {}
    meta = version.meta
    metrics = version.lineage.metrics
    return {"version": version.version, "state": version.state.value,
            "examples": metrics.get("examples"), "val_loss": metrics.get("val_loss"),
            "tokens_per_s": metrics.get("tokens_per_s"),
            "gate": gate.get("reason", ""), "directory": meta.get("directory", "")}
