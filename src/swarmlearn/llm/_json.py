"""Parse a model's JSON reply: strict first, then repaired (json-repair), else rejected.

A grammar-constrained reply from llama.cpp is normally valid JSON; it can still
be cut short by ``max_tokens`` or come from a server that ignores
``response_format``. :class:`JsonReplyParser` counts what happened to every
reply (valid, repaired, rejected) so the swarm can report a valid-action rate.

Schema checking covers the subset of JSON Schema that action schemas use:
``type``, ``enum``, ``const``, ``properties``, ``required``,
``additionalProperties: false``, ``items``, ``minimum``/``maximum``,
``minLength``/``maxLength``. Anything else in the schema is not checked.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from swarmlearn.errors import BadResponse

__all__ = ["JsonReply", "JsonReplyParser", "ReplyStats", "schema_problems"]

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def _type_ok(value: Any, expected: str) -> bool:
    if expected in ("integer", "number") and isinstance(value, bool):
        return False
    if expected == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES.get(expected, (object,)))


def _type_problems(value: Any, schema: Mapping[str, Any], path: str) -> Iterator[str]:
    expected = schema.get("type")
    if expected is None:
        return
    names = [expected] if isinstance(expected, str) else list(expected)
    if not any(_type_ok(value, t) for t in names):
        yield f"{path}: expected {'|'.join(names)}, got {type(value).__name__}"


def _value_problems(value: Any, schema: Mapping[str, Any], path: str) -> Iterator[str]:
    if "enum" in schema and value not in schema["enum"]:
        yield f"{path}: {value!r} is not one of {schema['enum']!r}"
    if "const" in schema and value != schema["const"]:
        yield f"{path}: {value!r} is not {schema['const']!r}"
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            yield f"{path}: {value} < minimum {schema['minimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            yield f"{path}: {value} > maximum {schema['maximum']}"
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            yield f"{path}: shorter than {schema['minLength']}"
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            yield f"{path}: longer than {schema['maxLength']}"


def _object_problems(value: dict[str, Any], schema: Mapping[str, Any], path: str) -> Iterator[str]:
    props: Mapping[str, Any] = schema.get("properties", {})
    for key in schema.get("required", ()):
        if key not in value:
            yield f"{path}: missing required {key!r}"
    for key, item in value.items():
        if key in props:
            yield from _problems(item, props[key], f"{path}.{key}")
        elif schema.get("additionalProperties") is False:
            yield f"{path}: unexpected property {key!r}"


def _problems(value: Any, schema: Mapping[str, Any], path: str) -> Iterator[str]:
    type_problems = list(_type_problems(value, schema, path))
    if type_problems:
        yield from type_problems
        return
    yield from _value_problems(value, schema, path)
    if isinstance(value, dict):
        yield from _object_problems(value, schema, path)
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for i, item in enumerate(value):
            yield from _problems(item, schema["items"], f"{path}[{i}]")


def schema_problems(value: Any, schema: Mapping[str, Any]) -> list[str]:
    """What is wrong with ``value`` under ``schema`` (the subset above); empty if nothing."""
    return list(_problems(value, schema, "$"))


@dataclass(frozen=True, slots=True)
class JsonReply:
    """A parsed reply; ``repaired`` is True when it was not valid JSON as sent."""

    value: Any
    repaired: bool


@dataclass(frozen=True, slots=True)
class ReplyStats:
    valid: int = 0
    repaired: int = 0
    rejected: int = 0

    @property
    def total(self) -> int:
        return self.valid + self.repaired + self.rejected

    @property
    def accepted_rate(self) -> float:
        """Share of replies that were usable (valid or repaired); 1.0 when none were seen."""
        return (self.valid + self.repaired) / self.total if self.total else 1.0


def _strip_fences(text: str) -> str:
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.split("\n", 1)[1] if "\n" in stripped else ""
        stripped = stripped.rsplit("```", 1)[0]
    return stripped.strip()


class JsonReplyParser:
    """Parses replies against an optional schema and counts the outcomes (thread-safe)."""

    def __init__(self, schema: Mapping[str, Any] | None = None) -> None:
        self.schema = schema
        self._lock = threading.Lock()
        self._valid = 0
        self._repaired = 0
        self._rejected = 0

    @property
    def stats(self) -> ReplyStats:
        with self._lock:
            return ReplyStats(self._valid, self._repaired, self._rejected)

    def parse(self, text: str) -> JsonReply:
        """The reply's JSON value, or BadResponse (counted as rejected) saying why not."""
        try:
            reply = self._parse(text)
        except BadResponse:
            with self._lock:
                self._rejected += 1
            raise
        with self._lock:
            if reply.repaired:
                self._repaired += 1
            else:
                self._valid += 1
        return reply

    def _parse(self, text: str) -> JsonReply:
        try:
            reply = JsonReply(json.loads(text), repaired=False)
        except ValueError:
            reply = JsonReply(_repair(text), repaired=True)
        if self.schema is not None:
            problems = schema_problems(reply.value, self.schema)
            if problems:
                more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
                raise BadResponse(f"reply does not match the schema: {problems[0]}{more}")
        return reply


def _repair(text: str) -> Any:
    import json_repair

    candidate = _strip_fences(text)
    if not candidate:
        raise BadResponse("reply is empty, expected JSON")
    value = json_repair.repair_json(candidate, return_objects=True)
    if value in ("", None) or (isinstance(value, dict | list) and not value):
        preview = " ".join(text.split())[:80]
        raise BadResponse(f"reply is not JSON and could not be repaired: {preview!r}")
    return value
