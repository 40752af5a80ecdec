"""Attaching feedback: a new event beside the episode; applied ones correct what readers see."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from swarmlearn.core.events import EpisodeEnded
from swarmlearn.errors import ConfigError, StoreError
from swarmlearn.feedback import (
    BUNDLED_LABELS,
    Prediction,
    TextClassifier,
    attach_feedback,
    load_reward_mapping,
)
from swarmlearn.store import SqlStore
from swarmlearn.types import Failure, Success, Timeout


class ScriptedClassifier:
    """A fake classifier: the label and confidence a text gets are written in the test."""

    labels = BUNDLED_LABELS
    version = "fake0000beef"

    def __init__(self, answers: dict[str, tuple[str, float]]) -> None:
        self.answers = answers

    def predict(self, texts: Sequence[str], *, batch_size: int = 64) -> list[Prediction]:
        out = []
        for t in texts:
            label, conf = self.answers[t]
            probs = tuple(conf if x == label else (1 - conf) / 5 for x in self.labels)
            out.append(Prediction(label, conf, probs))
        return out


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[SqlStore, int]:
    st = SqlStore(f"sqlite:///{tmp_path}/s.db")
    sid = st.open_session(scenario="troubleshooting")
    eps = [EpisodeEnded(sid << 32 | i, sid, f"troubleshooting:{100 + i}", "", i, 100 + i,
                        outcome, 4, 9, 0.2, sid << 32, sid << 32 | i, {}, 1.0)
           for i, outcome in enumerate([Timeout(0.4), Success(1.0), Failure("gave up")])]
    st.write(eps)
    return st, sid


def test_attach_records_and_applies(recorded: tuple[SqlStore, int]) -> None:
    st, sid = recorded
    clf = ScriptedClassifier({"great, that fixed it": ("joy", 0.93),
                              "you broke production": ("anger", 0.88),
                              "hm, maybe fixed?": ("relief", 0.41),
                              "ok noted": ("neutral", 0.97)})
    assert isinstance(clf, TextClassifier)
    mapping = load_reward_mapping()
    ev = attach_feedback(st, sid, "troubleshooting:100", "great, that fixed it",
                         classifier=clf, mapping=mapping)
    assert ev.applied and ev.outcome == Success(1.0) and ev.classifier == "fake0000beef"
    assert ev.label == "joy" and ev.confidence == 0.93 and ev.text == "great, that fixed it"
    ev2 = attach_feedback(st, sid, "1", "you broke production", classifier=clf, mapping=mapping)
    assert ev2.task == "troubleshooting:101" and ev2.outcome == Failure("feedback: anger")
    low = attach_feedback(st, sid, "troubleshooting:102", "hm, maybe fixed?", classifier=clf,
                          mapping=mapping)
    assert not low.applied  # recorded, not applied
    keep = attach_feedback(st, sid, "troubleshooting:102", "ok noted", classifier=clf,
                           mapping=mapping)
    assert not keep.applied and keep.outcome == Failure("gave up")
    seen = [e.outcome for e in st.episodes(session=sid)]
    assert seen == [Success(1.0), Failure("feedback: anger"), Failure("gave up")]
    raw = [e.outcome for e in st.episodes(session=sid, corrected=False)]
    assert raw == [Timeout(0.4), Success(1.0), Failure("gave up")]
    assert [f.applied for f in st.feedback(session=sid)] == [True, True, False, False]


def test_attach_errors_change_nothing(recorded: tuple[SqlStore, int]) -> None:
    st, sid = recorded
    clf = ScriptedClassifier({"fine": ("joy", 0.9)})
    mapping = load_reward_mapping()
    with pytest.raises(StoreError, match=r"no task 'nope'.*troubleshooting:100"):
        attach_feedback(st, sid, "nope", "fine", classifier=clf, mapping=mapping)
    with pytest.raises(StoreError, match="no recorded episodes"):
        attach_feedback(st, sid + 1, "troubleshooting:100", "fine", classifier=clf,
                        mapping=mapping)
    with pytest.raises(ConfigError, match="empty"):
        attach_feedback(st, sid, "troubleshooting:100", "  ", classifier=clf, mapping=mapping)
    narrow = type(mapping)(labels={"joy": mapping.labels["joy"]})
    with pytest.raises(ConfigError, match="no rule for"):
        attach_feedback(st, sid, "troubleshooting:100", "fine", classifier=clf, mapping=narrow)
    assert st.feedback() == []
