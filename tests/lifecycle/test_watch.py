"""The sequential watch on live success after a promotion."""

from __future__ import annotations

import random

import pytest

from swarmlearn.errors import ConfigError
from swarmlearn.lifecycle import LiveWatch, WatchConfig, watch


def test_a_clear_drop_is_caught_quickly() -> None:
    v = watch([False] * 30, 0.9)
    assert v.drop and v.episodes <= 12 and "fell below" in v.reason


def test_a_champion_as_good_as_its_gate_holds() -> None:
    rng = random.Random(1)
    v = watch([rng.random() < 0.9 for _ in range(500)], 0.9)
    assert not v.drop and v.restarts > 0 and "holding" in v.reason


def test_min_episodes_and_clamping() -> None:
    assert not watch([False] * 5, 1.0, WatchConfig(min_episodes=10)).drop
    v = watch([True] * 3 + [False], 1.0)  # a gate at 100%: one failure is not fatal
    assert not v.drop and v.p0 == 0.98


def test_false_rollback_rate_is_small_and_drops_are_found() -> None:
    rng = random.Random(2)
    cfg = WatchConfig(alpha=0.01, beta=0.1, drop=0.2)
    false = sum(watch([rng.random() < 0.8 for _ in range(200)], 0.8, cfg).drop
                for _ in range(400))
    found = sum(watch([rng.random() < 0.55 for _ in range(200)], 0.8, cfg).drop
                for _ in range(400))
    assert false / 400 < 0.06  # restarts make the bound per test run, not per stream
    assert found / 400 > 0.9


def test_bad_config() -> None:
    with pytest.raises(ConfigError, match="drop"):
        WatchConfig(drop=0.0)


def test_fed_in_pieces_the_test_decides_as_over_the_whole_sequence() -> None:
    rng = random.Random(11)
    for trial in range(200):
        rate = rng.choice([0.5, 0.7, 0.9])
        seq = [rng.random() < rate - rng.choice([0.0, 0.3]) for _ in range(rng.randint(0, 120))]
        live, i = LiveWatch(rate), 0
        while i < len(seq):
            step = rng.randint(1, 15)
            got = live.add(seq[i:i + step])
            i += step
        got = live.add([])
        assert got == watch(seq, rate), trial
        if got.drop:  # a drop stays a drop
            assert live.add([True] * 50) == got
