"""Emotion → reward: the rules, the confidence floor, the TOML file's errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmlearn.errors import ConfigError
from swarmlearn.feedback import BUNDLED_LABELS, RewardKind, load_reward_mapping
from swarmlearn.types import Failure, Success, Timeout


def test_bundled_mapping_covers_the_bundled_labels() -> None:
    m = load_reward_mapping()
    m.check_covers(BUNDLED_LABELS)
    assert m.labels["joy"].outcome is RewardKind.SUCCESS
    assert m.labels["neutral"].outcome is RewardKind.KEEP


def test_decisions() -> None:
    m = load_reward_mapping()
    recorded = Timeout(0.2)
    joy = m.decide("joy", 0.9, recorded)
    assert joy.applied and joy.outcome == Success(1.0) and joy.reward == 1.0
    slow = m.decide("impatience", 0.9, recorded)
    assert slow.applied and slow.outcome == Success(pytest.approx(0.6))  # type: ignore[arg-type]
    angry = m.decide("anger", 0.9, Success(1.0))
    assert angry.applied and angry.outcome == Failure("feedback: anger") and angry.reward == 0.0
    keep = m.decide("neutral", 0.99, recorded)
    assert not keep.applied and keep.outcome == recorded
    unsure = m.decide("joy", 0.4, recorded)
    assert not unsure.applied and unsure.outcome == Success(1.0) and "0.40 < 0.60" in unsure.why
    with pytest.raises(ConfigError, match="no reward rule"):
        m.decide("glee", 0.9, recorded)


@pytest.mark.parametrize(("text", "what"), [
    ('[labels.joy]\noutcome = "happy"\n', "labels.joy.outcome"),
    ('[labels.joy]\noutcome = "success"\nscore = 2.0\n', "score"),
    ('[labels.joy]\noutcome = "success"\nbonus = 1\n', "labels.joy.bonus"),
    ('min_confidence = "high"\n[labels.joy]\noutcome = "keep"\n', "min_confidence"),
    ('threshold = 0.5\n', "threshold: unknown field"),
    ('min_confidence = 0.5\n', "names no label"),
    ('[labels\n', "not valid TOML"),
])
def test_bad_mapping_files_name_the_field(tmp_path: Path, text: str, what: str) -> None:
    p = tmp_path / "r.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_reward_mapping(p)
    assert str(info.value).startswith(str(p)) and what in str(info.value)


def test_a_mapping_missing_a_label_is_refused() -> None:
    with pytest.raises(ConfigError, match="no rule for glee"):
        load_reward_mapping().check_covers(("joy", "glee"))
