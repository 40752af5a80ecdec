"""Build frozen config dataclasses from plain mappings (TOML, JSON) with checks.

``from_mapping(XConfig, data, where="workers")`` checks every key against the
dataclass fields (unknown keys are an error that lists the known ones), checks
and converts each value against the field's type, and lets the dataclass'
own ``__post_init__`` check ranges.  Errors are :class:`ConfigError` whose
``field`` is the dotted path of the offending key, so callers can point at a
line of the source file.  :func:`check_range` and :func:`check_output_path`
check single values (a number, a file to be written).
"""

from __future__ import annotations

import dataclasses
import enum
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from swarmlearn.errors import ConfigError

__all__ = ["check_output_path", "check_range", "from_mapping", "to_mapping"]

T = TypeVar("T")


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _describe(tp: Any) -> str:
    if isinstance(tp, type):
        if issubclass(tp, enum.Enum):
            return "one of " + ", ".join(repr(m.value) for m in tp)
        return tp.__name__
    return str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, field: str) -> Any:  # noqa: C901 - one branch per type kind
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors: list[str] = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, field)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(
            f"{field}: expected {_describe(tp)}, got {value!r}", field=field, value=value
        )
    if origin is typing.Literal:
        if value in typing.get_args(tp):
            return value
        allowed = ", ".join(repr(a) for a in typing.get_args(tp))
        raise ConfigError(
            f"{field}: expected one of {allowed}, got {value!r}", field=field, value=value
        )
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{field}: expected a list, got {value!r}", field=field, value=value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{field}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(
                f"{field}: expected {len(args)} items, got {len(value)}", field=field, value=value
            )
        return tuple(
            _convert(v, a, f"{field}[{i}]")
            for i, (v, a) in enumerate(zip(args, value, strict=True))
        )
    if origin in (dict, Mapping, typing.Mapping) or tp in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{field}: expected a table, got {value!r}", field=field, value=value)
        args = typing.get_args(tp) or (str, Any)
        return {
            _convert(k, args[0], field): _convert(v, args[1], _join(field, str(k)))
            for k, v in value.items()
        }
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if dataclasses.is_dataclass(value) and isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{field}: expected a table, got {value!r}", field=field, value=value)
        return from_mapping(tp, value, where=field)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            raise ConfigError(
                f"{field}: expected {_describe(tp)}, got {value!r}", field=field, value=value
            ) from None
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigError(f"{field}: expected {_describe(tp)}, got {value!r}", field=field, value=value)


def from_mapping(cls: type[T], data: Mapping[str, Any], *, where: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; ConfigError names the field on any problem."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or 'config'}: expected a table, got {data!r}", field=where)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        field = _join(where, str(unknown[0]))
        known = ", ".join(sorted(fields))
        raise ConfigError(f"{field}: unknown field (known: {known})", field=field)
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], _join(where, name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            field = _join(where, name)
            raise ConfigError(f"{field}: missing required field", field=field)
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        if not (where and exc.field) or exc.field.startswith(f"{where}."):
            raise
        full = _join(where, exc.field)
        message = str(exc).replace(f"{exc.field}:", f"{full}:", 1)
        raise ConfigError(message, field=full, value=exc.value) from exc


def to_mapping(obj: Any) -> Any:
    """A plain, JSON/TOML-ready form of a config dataclass (enums as values)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_mapping(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, tuple | list):
        return [to_mapping(v) for v in obj]
    if isinstance(obj, Mapping):
        return {str(k): to_mapping(v) for k, v in obj.items()}
    return obj


def check_range(
    field: str,
    value: float,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
) -> None:
    """Raise ConfigError unless lo <= value <= hi (lo < value if lo_open)."""
    bad = (lo is not None and (value <= lo if lo_open else value < lo)) or (
        hi is not None and value > hi
    )
    if bad:
        lo_s = "" if lo is None else (f"> {lo}" if lo_open else f">= {lo}")
        hi_s = "" if hi is None else f"<= {hi}"
        expected = " and ".join(s for s in (lo_s, hi_s) if s)
        raise ConfigError(f"{field}: expected {expected}, got {value!r}", field=field, value=value)


def check_output_path(path: str | Path, field: str) -> Path:
    """``path`` if a file can be written there, else ConfigError naming ``field``.

    Checked before any work starts, so a typo costs nothing: the folder must
    exist (it is not created) and be writable, and the path must not be a folder.
    """
    p = Path(path).expanduser()
    try:
        _check_writable(p, field)
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte …
        reason = getattr(exc, "strerror", None) or exc
        raise ConfigError(f"{field}: cannot write {str(p)!r}: {reason}", field=field,
                          value=str(p)) from exc
    return p


def _check_writable(p: Path, field: str) -> None:
    folder = p.parent
    if p.is_dir():
        raise ConfigError(f"{field}: {str(p)!r} is a directory, expected a file path",
                          field=field, value=str(p))
    if not folder.exists():
        raise ConfigError(f"{field}: no such directory {str(folder)!r} (create it first)",
                          field=field, value=str(p))
    if not folder.is_dir():
        raise ConfigError(f"{field}: {str(folder)!r} is not a directory", field=field,
                          value=str(p))
    if not os.access(folder, os.W_OK | os.X_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise ConfigError(f"{field}: cannot write {str(p)!r} (permission denied)", field=field,
                          value=str(p))
