"""Triggers: the expressions, their parse errors, and what each looks at."""

from __future__ import annotations

import pytest

from swarmlearn.errors import ConfigError
from swarmlearn.lifecycle._triggers import (
    All,
    AnyOf,
    Count,
    Every,
    Manual,
    Quality,
    TriggerState,
    parse_trigger,
)


def state(**kw: object) -> TriggerState:
    base: dict[str, object] = {"now": 1000.0, "since": 0.0, "new_episodes": 0}
    return TriggerState(**{**base, **kw})  # type: ignore[arg-type]


def test_parse_builds_the_tree() -> None:
    assert parse_trigger("count >= 50") == Count(50)
    assert parse_trigger("every 1d") == Every(86400.0)
    assert parse_trigger("every 90") == Every(90.0)
    assert parse_trigger("count >= 200 or every 1d") == AnyOf((Count(200), Every(86400.0)))
    t = parse_trigger("count >= 20 and (quality < 0.9 or every 10m)")
    assert t == All((Count(20), AnyOf((Quality(0.9), Every(600.0)))))
    assert str(parse_trigger(str(t))) == str(t)  # printing round-trips
    assert parse_trigger("MANUAL") == Manual()


@pytest.mark.parametrize("text, why", [
    ("count 5", "expected '>='"), ("every", "ends too early"), ("sometimes", "unknown word"),
    ("count >= 5 or", "ends too early"), ("quality < 2", "a success rate"),
    ("count >= 2.5", "whole number"), ("count >= 5 5", "unexpected"), ("", "expected"),
    ("every 0s", "positive"), ("count >= 5 $", "unexpected"),
])
def test_bad_expressions_say_what_and_where(text: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why) as err:
        parse_trigger(text, field="levels.snapshot.trigger")
    assert err.value.field == "levels.snapshot.trigger"


def test_what_fires() -> None:
    assert parse_trigger("count >= 50").due(state(new_episodes=49)) is None
    assert "50 new episodes" in str(parse_trigger("count >= 50").due(state(new_episodes=50)))
    assert parse_trigger("every 1h").due(state(now=3599.0)) is None
    assert parse_trigger("every 1h").due(state(now=3600.0)) is not None
    q = parse_trigger("quality < 0.6")
    assert q.due(state(live_rate=0.5, live_episodes=10)) is None  # too few episodes
    assert q.due(state(live_rate=0.5, live_episodes=30)) is not None
    assert q.due(state(live_rate=0.7, live_episodes=30)) is None
    both = parse_trigger("count >= 10 and quality < 0.6")
    assert both.due(state(new_episodes=10, live_rate=0.7, live_episodes=30)) is None
    assert both.due(state(new_episodes=10, live_rate=0.5, live_episodes=30)) is not None
    assert parse_trigger("always").due(state()) == "always"
    assert parse_trigger("never").due(state(new_episodes=10**6, requested=True)) is None
    assert parse_trigger("manual").due(state(new_episodes=10**6)) is None
    assert parse_trigger("manual").due(state(requested=True)) == "requested"
