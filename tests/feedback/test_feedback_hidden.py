"""The hidden-signal path: the swarm learns an episode's outcome only from classified words."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from swarmlearn.core.events import EpisodeEnded
from swarmlearn.core.scenario import load_scenario
from swarmlearn.errors import ConfigError
from swarmlearn.feedback import (
    BUNDLED_LABELS,
    Prediction,
    bundled_dataset,
    load_examples,
    load_reward_mapping,
    split_examples,
)
from swarmlearn.feedback._simulate import FeedbackJudge, PersonConfig, SimulatedPerson
from swarmlearn.learn.loop import LearningRunConfig, run_learning, run_proof
from swarmlearn.learn.policies import LearningPolicies, LearningState
from swarmlearn.session import run_session
from swarmlearn.store import SqlStore
from swarmlearn.types import Failure, OutcomeKind, Success, Timeout, Unknown

EXAMPLES = load_examples(bundled_dataset())
HELD_OUT = split_examples(EXAMPLES, seed=0).test
TRUE_LABEL = {e.text: e.label for e in EXAMPLES}
FLIP = {"joy": "anger", "relief": "anger", "impatience": "frustration", "frustration": "joy",
        "anger": "joy", "neutral": "neutral"}


class KnowingClassifier:
    """A fake classifier that knows every bundled text's label (or says its opposite, or
    always ``says`` one label)."""

    labels = BUNDLED_LABELS

    def __init__(self, *, flip: bool = False, says: str = "", confidence: float = 0.95) -> None:
        self.flip, self.says, self.confidence = flip, says, confidence
        self.version = f"says-{says}" if says else "flipped0000" if flip else "knowing0000"

    def predict(self, texts: Sequence[str], *, batch_size: int = 64) -> list[Prediction]:
        out = []
        for t in texts:
            label = self.says or (FLIP[TRUE_LABEL[t]] if self.flip else TRUE_LABEL[t])
            probs = tuple(self.confidence if x == label else (1 - self.confidence) / 5
                          for x in self.labels)
            out.append(Prediction(label, self.confidence, probs))
        return out


def _judge(*, flip: bool = False, silence: float = 0.0, confidence: float = 0.95) -> FeedbackJudge:
    person = SimulatedPerson(HELD_OUT, PersonConfig(silence=silence))
    return FeedbackJudge(person, KnowingClassifier(flip=flip, confidence=confidence),
                         load_reward_mapping())


def _ended(outcome: Success | Failure | Timeout, seed: int = 1) -> EpisodeEnded:
    return EpisodeEnded(seed, 1, f"t:{seed}", "", 0, seed, outcome, 3, 3, 0.1, 0, 2, {}, 0.0)


def test_the_person_reacts_to_the_true_outcome() -> None:
    person = SimulatedPerson(HELD_OUT)
    rng = random.Random(0)
    assert {person.emotion(Success(0.9), rng) for _ in range(50)} == {"joy", "relief"}
    assert person.emotion(Success(0.6), rng) == "impatience"  # solved, but the long way round
    assert {person.emotion(Failure("x"), rng) for _ in range(50)} == {"anger", "frustration"}
    assert {person.emotion(Timeout(0.4), rng) for _ in range(20)} == {"frustration"}
    said = person.say(_ended(Success(1.0)))
    assert said is not None and said[0] in ("joy", "relief")
    assert said[1] in {e.text for e in HELD_OUT if e.label == said[0]}  # held-out words only
    assert person.say(_ended(Success(1.0))) == said  # the same task, the same words
    assert SimulatedPerson(HELD_OUT, PersonConfig(silence=1.0)).say(_ended(Success(1.0))) is None


def test_the_person_needs_every_emotion() -> None:
    with pytest.raises(ConfigError, match=r"needs texts labeled .*anger"):
        SimulatedPerson([e for e in HELD_OUT if e.label != "anger"])


def test_the_swarm_is_told_only_the_feedback_outcome(tmp_path: Path) -> None:
    """Words that always read as anger: workers, statistics and store see failures only,
    whatever the environment said; the judge alone keeps the environment's outcome."""
    store = SqlStore(f"sqlite:///{tmp_path}/h.db")
    sc = load_scenario("troubleshooting", variant="heldout").override(
        workers={"policy": "ucb1"})
    policies = LearningPolicies("ucb1", LearningState())
    judge = FeedbackJudge(SimulatedPerson(HELD_OUT), KnowingClassifier(says="anger"),
                          load_reward_mapping())
    result = run_session(sc, seeds=range(100, 106), store=store, policies=policies, judge=judge)
    truths = [judge.truth(e) for e in result.episodes]
    assert any(t.kind is OutcomeKind.SUCCESS for t in truths)  # the environment saw successes
    assert all(e.outcome.kind is OutcomeKind.FAILURE for e in result.episodes)
    recorded = store.episodes(session=result.session, corrected=False)
    assert [e.outcome.kind for e in recorded] == [OutcomeKind.FAILURE] * 6
    wins = sum(c[0] for c in policies.state.stats.strategies.values())
    assert wins == 0 and sum(c[1] for c in policies.state.stats.strategies.values()) > 0
    feedback = store.feedback(session=result.session)
    assert [f.episode for f in feedback] == [e.id for e in recorded]
    success_words = [f for f, t in zip(feedback, truths, strict=True)
                     if t.kind is OutcomeKind.SUCCESS]
    assert success_words and all(f.label == "anger" and f.applied for f in success_words)
    assert {f.classifier for f in feedback} == {"says-anger"}
    assert judge.tally.said == 6 and judge.tally.applied == 6
    assert judge.tally.agreed == sum(t.kind is not OutcomeKind.SUCCESS for t in truths)
    store.close()


def test_unsure_or_silent_feedback_tells_the_swarm_nothing() -> None:
    low = _judge(confidence=0.3)  # below the mapping's floor (0.6): recorded, not applied
    ended, events = low.judge(_ended(Success(1.0)))
    assert ended.outcome == Unknown() and len(events) == 1 and not events[0].applied
    assert low.truth(ended) == Success(1.0)
    silent = _judge(silence=1.0)
    ended, events = silent.judge(_ended(Failure("down"), seed=2))
    assert ended.outcome == Unknown() and events == ()
    with pytest.raises(ConfigError, match="not judged"):
        silent.truth(_ended(Success(1.0), seed=3))


def test_a_hidden_signal_run_is_measured_on_the_environment_outcome() -> None:
    """A learning run whose swarm is told failures only still counts the tasks it solved."""
    sc = load_scenario("troubleshooting", variant="heldout")
    cfg = LearningRunConfig(sessions=2, episodes=4, analyze_every=0, trials=0, last=2, runs=1)
    judge = FeedbackJudge(SimulatedPerson(HELD_OUT), KnowingClassifier(says="anger"),
                          load_reward_mapping())
    with SqlStore("sqlite://") as store:
        report = run_learning(sc, store, cfg, signal=judge)
        told = store.episodes()
    assert told and all(e.outcome.kind is OutcomeKind.FAILURE for e in told)
    assert sum(p.successes for p in report.on + report.off) > 0
    with pytest.raises(ConfigError, match="trials = 0"):
        run_learning(sc, SqlStore("sqlite://"),
                     LearningRunConfig(sessions=2, episodes=2, trials=2), signal=judge)


@pytest.mark.parametrize(("says", "won"), [("joy", True), ("anger", False)])
def test_the_statistics_credit_what_the_words_say(says: str, won: bool) -> None:
    """The same tasks, the same play: the sequences' credit follows the words alone."""
    sc = load_scenario("troubleshooting", variant="heldout").override(
        workers={"policy": "ucb1"})
    policies = LearningPolicies("ucb1", LearningState())
    judge = FeedbackJudge(SimulatedPerson(HELD_OUT), KnowingClassifier(says=says),
                          load_reward_mapping())
    run_session(sc, seeds=range(200, 204), policies=policies, judge=judge)
    stats = policies.state.stats
    credit = [c for table in (stats.transitions, stats.ngrams3) for c in table.values()]
    assert credit
    assert all((c[0] > 0 and c[1] == 0) if won else (c[0] == 0 and c[1] > 0) for c in credit)


def test_a_lying_person_is_told_backwards() -> None:
    person = SimulatedPerson(HELD_OUT, PersonConfig(lie=True))
    rng = random.Random(0)
    assert {person.emotion(Success(0.9), rng) for _ in range(50)} == {"anger", "frustration"}
    assert {person.emotion(Failure("x"), rng) for _ in range(50)} == {"joy", "relief"}


@pytest.mark.slow
def test_confidently_inverted_feedback_derails_learning() -> None:
    """The full proof on internal diagnosis (5 runs × 20 sessions × 10 tasks a side): told
    the truth by the words, learning on solves every task of its last sessions; with every
    label confidently inverted (success words read as anger, failure words as joy) it
    solves far fewer. Measured: 100% against 46% (on the same tasks; off: 15% and 18%)."""
    sc = load_scenario("internal_diagnosis", variant="heldout")
    cfg = LearningRunConfig(trials=0)
    honest = run_proof(sc, None, cfg, signal=_judge()).summary()
    inverted = run_proof(sc, None, cfg, signal=_judge(flip=True)).summary()
    assert honest.success_on.mean >= 0.95
    assert inverted.success_on.high < honest.success_on.mean - 0.2
