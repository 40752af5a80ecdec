"""Checks of a LoRA adapter GGUF against the base model, before llama.cpp is asked to load it.

llama.cpp refuses a bad adapter only while it loads its adapters, which it
does at start: a server asked to load one would be down until it is restarted
without it. So every adapter is read here first (the ``gguf`` package, memory
mapped), and one that llama.cpp would refuse is a one-line :class:`ConfigError`
that names the file and the first problem:

* not a GGUF file, or a file the GGUF reader cannot parse (corrupt, truncated);
* not a LoRA adapter (``general.type`` / ``adapter.type``), e.g. a model file;
* made for another architecture (``general.architecture``);
* a tensor that is not ``<base tensor>.lora_a`` / ``.lora_b``, an unpaired one,
  a base tensor the model does not have, or shapes that do not fit it
  (``lora_a`` is [in, rank], ``lora_b`` is [rank, out], base [in, out]);
* tensor data that runs past the end of the file.
"""

from __future__ import annotations

import functools
import mmap
import struct
from pathlib import Path
from typing import Any

from swarmlearn.errors import ConfigError
from swarmlearn.serving._model import check_gguf

__all__ = ["check_lora"]


def _read(path: Path, what: str, field: str) -> Any:
    """The gguf package's reader on ``path`` (fine for an adapter: little metadata)."""
    try:
        import gguf
    except ImportError as exc:  # pragma: no cover - gguf comes with xllamacpp's extra
        raise ConfigError(f"{field}: cannot check {what}: the 'gguf' package is not installed",
                          field=field) from exc
    try:
        return gguf.GGUFReader(str(path))
    except (ValueError, OSError, KeyError, IndexError, TypeError) as exc:
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise ConfigError(f"{field}: {str(path)!r} is not a readable GGUF {what} "
                          f"(corrupt or truncated?): {reason}", field=field,
                          value=str(path)) from exc


_SCALAR = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # GGUF types
_STRING, _ARRAY = 8, 9


@functools.lru_cache(maxsize=8)
def _model_tensors(path: Path, size: int, mtime: float) -> tuple[str, dict[str, list[int]]]:
    """The architecture and tensor shapes of a model GGUF, read from its header only.

    The gguf package's reader builds every metadata field (a 49k-token vocabulary
    in the bundled model: seconds); this walks past them. Cached per file version.
    """
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
        pos = 8  # magic and version

        def take(fmt: str) -> Any:
            nonlocal pos
            value = struct.unpack_from(fmt, m, pos)[0]
            pos += struct.calcsize(fmt)
            return value

        def text() -> str:
            nonlocal pos
            n = take("<Q")
            pos += n
            return bytes(m[pos - n : pos]).decode("utf-8", "replace")

        def skip(kind: int) -> None:
            nonlocal pos
            if kind == _STRING:
                n = take("<Q")  # (not pos += take(): that reads pos before take moves it)
                pos += n
            elif kind == _ARRAY:
                item, n = take("<I"), take("<Q")
                if item in _SCALAR:
                    pos += _SCALAR[item] * n
                else:
                    for _ in range(n):
                        skip(item)
            else:
                pos += _SCALAR[kind]

        n_tensors, n_kv = take("<Q"), take("<Q")
        arch = ""
        for _ in range(n_kv):
            key, kind = text(), take("<I")
            if key == "general.architecture" and kind == _STRING:
                arch = text()
            else:
                skip(kind)
        shapes = {}
        for _ in range(n_tensors):
            name = text()
            dims = [take("<Q") for _ in range(take("<I"))]
            pos += 4 + 8  # type, offset
            shapes[name] = dims
    return arch, shapes


def _model_header(base: Path) -> tuple[str, dict[str, list[int]]]:
    try:
        stat = base.stat()
        return _model_tensors(base.resolve(), stat.st_size, stat.st_mtime)
    except (OSError, ValueError, KeyError, struct.error) as exc:
        raise ConfigError(f"model: cannot read the tensors of {str(base)!r}: {exc}",
                          field="model", value=str(base)) from exc


def _string(reader: Any, key: str) -> str:
    f = reader.fields.get(key)
    return str(f.contents()) if f is not None else ""


def check_lora(path: Path | str, *, base: Path, field: str = "lora") -> Path:
    """``path`` (absolute) if llama.cpp can load it as an adapter of ``base``, else ConfigError."""
    p = check_gguf(path, field=field)
    adapter = _read(p, "LoRA adapter", field)

    def bad(problem: str) -> ConfigError:
        return ConfigError(f"{field}: {str(p)!r} {problem}", field=field, value=str(p))

    kind = (_string(adapter, "general.type"), _string(adapter, "adapter.type"))
    if kind != ("adapter", "lora"):
        raise bad(f"is not a LoRA adapter (general.type={kind[0] or 'unset'!r}, "
                  f"adapter.type={kind[1] or 'unset'!r})")
    base_arch, shapes = _model_header(base)
    arch = _string(adapter, "general.architecture")
    if arch != base_arch:
        raise bad(f"is an adapter for {arch or 'an unnamed architecture'!r}, the model "
                  f"{base.name} is {base_arch!r}")
    pairs: dict[str, dict[str, list[int]]] = {}
    size = p.stat().st_size
    for t in adapter.tensors:
        if int(t.data_offset) + int(t.n_bytes) > size:
            raise bad(f"is truncated: tensor {t.name} runs past the end of the file")
        stem, _, part = t.name.rpartition(".")
        if part not in ("lora_a", "lora_b"):
            raise bad(f"has tensor {t.name!r}, which is neither a lora_a nor a lora_b")
        pairs.setdefault(stem, {})[part] = [int(n) for n in t.shape]
    if not pairs:
        raise bad("has no LoRA tensors")
    for stem, ab in sorted(pairs.items()):
        _check_pair(stem, ab, shapes, bad, base)
    return p


def _check_pair(stem: str, ab: dict[str, list[int]], shapes: dict[str, list[int]],
                bad: Any, base: Path) -> None:
    if set(ab) != {"lora_a", "lora_b"}:
        missing = ({"lora_a", "lora_b"} - set(ab)).pop()
        raise bad(f"has no {stem}.{missing} for its {stem} adapter")
    if stem not in shapes:
        raise bad(f"adapts {stem}, which the model {base.name} does not have (another base?)")
    w, a, b = shapes[stem], ab["lora_a"], ab["lora_b"]
    if len(a) != 2 or len(b) != 2 or len(w) != 2 or a[0] != w[0] or b[1] != w[1] or a[1] != b[0]:
        raise bad(f"has {stem}.lora_a {a} and .lora_b {b}, which do not fit the model's "
                  f"{stem} {w} (another base?)")
