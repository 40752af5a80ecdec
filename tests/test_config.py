"""The config builder: names, types and ranges checked field by field."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from swarmlearn._config import check_range, from_mapping, to_mapping
from swarmlearn.errors import ConfigError


class Color(enum.StrEnum):
    RED = "red"
    BLUE = "blue"


@dataclass(frozen=True, kw_only=True, slots=True)
class Inner:
    rate: float = 0.5

    def __post_init__(self) -> None:
        check_range("rate", self.rate, lo=0.0, hi=1.0)


@dataclass(frozen=True, kw_only=True, slots=True)
class Outer:
    name: str
    count: int = 1
    color: Color = Color.RED
    tags: tuple[str, ...] = ()
    inner: Inner = Inner()
    extra: Mapping[str, float] = field(default_factory=dict)
    maybe: int | None = None


def test_builds_and_round_trips() -> None:
    cfg = from_mapping(
        Outer,
        {
            "name": "x",
            "count": 3,
            "color": "blue",
            "tags": ["a"],
            "inner": {"rate": 1},
            "extra": {"k": 2},
            "maybe": None,
        },
    )
    assert cfg == Outer(
        name="x", count=3, color=Color.BLUE, tags=("a",), inner=Inner(rate=1.0), extra={"k": 2.0}
    )
    assert from_mapping(Outer, to_mapping(cfg)) == cfg


@pytest.mark.parametrize(
    ("data", "field_", "fragment"),
    [
        ({}, "name", "missing required field"),
        ({"name": "x", "count": "3"}, "count", "expected int"),
        ({"name": "x", "count": True}, "count", "expected int"),
        ({"name": "x", "color": "green"}, "color", "one of 'red', 'blue'"),
        ({"name": "x", "inner": {"rate": 2}}, "inner.rate", "<= 1.0"),
        ({"name": "x", "inner": {"speed": 2}}, "inner.speed", "unknown field"),
        ({"name": "x", "tags": "a"}, "tags", "expected a list"),
        ({"name": "x", "bogus": 1}, "bogus", "unknown field (known:"),
    ],
)
def test_errors_name_the_field(data: dict[str, object], field_: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        from_mapping(Outer, data, where="top")
    assert info.value.field == f"top.{field_}"
    assert fragment in str(info.value)
    assert str(info.value).startswith(f"top.{field_}:")
