"""JSON payloads of learned artifacts (snapshots, profiles) and checked field access.

Artifacts are stored as canonical JSON (sorted keys, no NaN), zlib-compressed,
and exported as plain JSON files. Every reading helper raises
:class:`~swarmlearn.errors.ArtifactError` whose message starts with ``where``
(the artifact or file) and says which field is wrong and how.
"""

from __future__ import annotations

import json
import math
import os
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from swarmlearn.errors import ArtifactError

__all__ = [
    "decode",
    "encode",
    "expect_version",
    "get_float",
    "get_int",
    "get_list",
    "get_map",
    "get_str",
    "read_json_file",
    "to_json",
    "write_json_file",
]


def to_json(data: Mapping[str, Any], *, indent: int | None = None) -> str:
    """Canonical JSON text; NaN or infinity is an ArtifactError, not invalid JSON."""
    try:
        return json.dumps(data, sort_keys=True, allow_nan=False, indent=indent)
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f"cannot serialize artifact: {exc}") from exc


def encode(data: Mapping[str, Any]) -> bytes:
    return zlib.compress(to_json(data).encode("utf-8"), 6)


def decode(payload: bytes | None, *, where: str) -> dict[str, Any]:
    """The JSON object in a stored payload."""
    if payload is None:
        raise ArtifactError(f"{where}: has no payload")
    try:
        text = zlib.decompress(payload).decode("utf-8")
    except (zlib.error, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{where}: payload is not zlib-compressed UTF-8 JSON ({exc})") from exc
    return _parse(text, where)


def _parse(text: str, where: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArtifactError(
            f"{where}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from exc
    if not isinstance(data, dict):
        raise ArtifactError(f"{where}: expected a JSON object, got {type(data).__name__}")
    return data


def read_json_file(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ArtifactError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{p}: cannot read ({exc})") from exc
    return _parse(text, str(p))


def write_json_file(path: str | Path, data: Mapping[str, Any]) -> None:
    """Write atomically: a crash leaves the old file or the new one, never half of it."""
    p = Path(path)
    text = to_json(data, indent=1)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text + "\n", encoding="utf-8")
        os.replace(tmp, p)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ArtifactError(f"{p}: cannot write ({exc})") from exc


def expect_version(data: Mapping[str, Any], expected: int, *, where: str) -> None:
    if "format_version" not in data:
        raise ArtifactError(f"{where}: missing field 'format_version'")
    version = data["format_version"]
    if version != expected or isinstance(version, bool):
        raise ArtifactError(
            f"{where}: format_version {version!r} is not supported (expected {expected})"
        )


def _get(data: Mapping[str, Any], name: str, where: str, default: Any) -> Any:
    if name in data:
        return data[name]
    if default is _REQUIRED:
        raise ArtifactError(f"{where}: missing field {name!r}")
    return default


_REQUIRED: Any = object()


def get_int(
    data: Mapping[str, Any], name: str, *, where: str, default: Any = _REQUIRED, lo: int = 0
) -> int:
    """An integer field >= ``lo`` (counts are never negative)."""
    value = _get(data, name, where, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ArtifactError(f"{where}: field {name!r} should be an integer, got {value!r}")
    if value < lo:
        what = "negative count" if lo == 0 else f"value below {lo}"
        raise ArtifactError(f"{where}: {what} in field {name!r}: {value}")
    return value


def get_float(
    data: Mapping[str, Any],
    name: str,
    *,
    where: str,
    default: Any = _REQUIRED,
    lo: float | None = 0.0,
) -> float:
    """A finite number field (>= ``lo`` unless ``lo`` is None)."""
    value = _get(data, name, where, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ArtifactError(f"{where}: field {name!r} should be a finite number, got {value!r}")
    if lo is not None and value < lo:
        raise ArtifactError(f"{where}: field {name!r} should be >= {lo}, got {value!r}")
    return float(value)


def get_str(data: Mapping[str, Any], name: str, *, where: str, default: Any = _REQUIRED) -> str:
    value = _get(data, name, where, default)
    if not isinstance(value, str):
        raise ArtifactError(f"{where}: field {name!r} should be a string, got {value!r}")
    return value


def get_list(
    data: Mapping[str, Any], name: str, *, where: str, default: Any = _REQUIRED
) -> list[Any]:
    value = _get(data, name, where, default)
    if not isinstance(value, list):
        raise ArtifactError(f"{where}: field {name!r} should be a list, got {value!r}")
    return value


def get_map(
    data: Mapping[str, Any], name: str, *, where: str, default: Any = _REQUIRED
) -> dict[str, Any]:
    value = _get(data, name, where, default)
    if not isinstance(value, dict):
        raise ArtifactError(f"{where}: field {name!r} should be an object, got {value!r}")
    return value
