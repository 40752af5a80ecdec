"""A hidden-signal run: the swarm learns an episode's outcome only from what a person says.

In a real deployment the swarm often does not know whether the task is
done: a person says so, in words. This module simulates that, to check the
reward path end to end:

* :class:`SimulatedPerson` reads an episode's true outcome (the
  environment's) and writes what a person would say about it, drawn from a
  pool of labeled texts of the matching emotion (the held-out test split of
  the classifier's data: texts it was never trained or tuned on);
* :class:`FeedbackJudge` (a ``core.swarm.OutcomeJudge`` and a
  ``learn.loop.HiddenSignal``) classifies those words, maps the emotion to an
  outcome with the reward mapping, and tells the swarm that outcome in place
  of the environment's; it publishes the :class:`FeedbackEvent` beside the
  episode's end, so the store records the text, label, confidence and
  classifier version. The environment's outcome is kept by the judge only,
  for the evaluation.

Which emotion a person feels (``PersonConfig``): a success scored at least
``slow_below`` (within about twice the fewest actions) is joy or relief; a
slower success is impatience; a failure is frustration, or anger with
probability ``anger``; a timeout is frustration; with probability ``silence``
the person says nothing. ``lie`` is a control, not a person: a success is met
with a failure's words (frustration or anger) and a failure or timeout with
joy or relief. The draws are seeded by the task and its outcome, so
both sides of a learning run meet the same person on the same task.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from swarmlearn._config import check_range
from swarmlearn.core.events import EpisodeEnded, Event, FeedbackEvent
from swarmlearn.errors import ConfigError
from swarmlearn.feedback._data import Example
from swarmlearn.feedback._reward import RewardMapping
from swarmlearn.feedback._types import TextClassifier
from swarmlearn.types import EventId, Outcome, OutcomeKind, Unknown

if TYPE_CHECKING:
    from swarmlearn.core.scenario import Scenario
    from swarmlearn.learn.loop import LearningRunConfig

__all__ = ["CONDITIONS", "FeedbackJudge", "HiddenStudy", "JudgeTally", "PersonConfig",
           "SimulatedPerson", "hidden_signal_study"]


@dataclass(frozen=True, kw_only=True, slots=True)
class PersonConfig:
    slow_below: float = 0.75  # a success scored below this is met with impatience
    anger: float = 0.3  # share of failures met with anger (the rest: frustration)
    silence: float = 0.0  # share of episodes the person says nothing about
    lie: bool = False  # a control: success met with failure's words, failure with success's
    seed: int = 0

    def __post_init__(self) -> None:
        check_range("slow_below", self.slow_below, lo=0.0, hi=1.0)
        check_range("anger", self.anger, lo=0.0, hi=1.0)
        check_range("silence", self.silence, lo=0.0, hi=1.0)


class SimulatedPerson:
    """Writes what a person says about an episode, from its true outcome (module docstring)."""

    def __init__(self, texts: Sequence[Example], config: PersonConfig | None = None) -> None:
        self.config = config or PersonConfig()
        self.pools: dict[str, list[str]] = {}
        for e in texts:
            self.pools.setdefault(e.label, []).append(e.text)
        needed = ("joy", "relief", "impatience", "frustration", "anger")
        missing = [x for x in needed if not self.pools.get(x)]
        if missing:
            raise ConfigError(f"texts: the simulated person needs texts labeled "
                              f"{', '.join(missing)} (got labels "
                              f"{', '.join(sorted(self.pools)) or 'none'})", field="texts")

    def emotion(self, outcome: Outcome, rng: random.Random) -> str | None:
        cfg = self.config
        if rng.random() < cfg.silence or outcome.kind is OutcomeKind.UNKNOWN:
            return None
        solved = outcome.kind is OutcomeKind.SUCCESS
        if solved != cfg.lie:
            if solved and outcome.value < cfg.slow_below:
                return "impatience"
            return rng.choice(("joy", "relief"))
        if outcome.kind is not OutcomeKind.TIMEOUT and rng.random() < cfg.anger:
            return "anger"
        return "frustration"

    def say(self, ended: EpisodeEnded) -> tuple[str, str] | None:
        """(emotion, text) about ``ended`` (its outcome is the true one), or None: silence."""
        rng = random.Random(f"{self.config.seed}:{ended.task}:{ended.seed}:"
                            f"{ended.outcome.kind.value}:{ended.outcome.value:.4f}")
        emotion = self.emotion(ended.outcome, rng)
        if emotion is None:
            return None
        return emotion, rng.choice(self.pools[emotion])


@dataclass(slots=True)
class JudgeTally:
    """What the judge did: episodes, words said, applied, and how applied ones matched."""

    episodes: int = 0
    said: int = 0
    applied: int = 0
    agreed: int = 0  # applied, and success/not-success as the environment's
    emotion_right: int = 0  # the classifier's label was the emotion the person meant
    by_emotion: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, float | int | dict[str, int]]:
        return {"episodes": self.episodes, "said": self.said, "applied": self.applied,
                "agreed": self.agreed, "emotion_right": self.emotion_right,
                "applied_share": self.applied / self.said if self.said else 0.0,
                "agreement": self.agreed / self.applied if self.applied else 0.0,
                "classifier_accuracy": self.emotion_right / self.said if self.said else 0.0,
                "by_emotion": dict(self.by_emotion)}


class FeedbackJudge:
    """Tells the swarm the outcome a person's classified words imply (module docstring).

    Not applied (silence, a low-confidence prediction, a label that keeps the
    outcome) means the swarm is told :class:`~swarmlearn.types.Unknown`: it
    has no other source.
    """

    def __init__(self, person: SimulatedPerson, classifier: TextClassifier,
                 mapping: RewardMapping) -> None:
        mapping.check_covers(classifier.labels)
        self.person = person
        self.classifier = classifier
        self.mapping = mapping
        self.tally = JudgeTally()
        self._truth: dict[EventId, Outcome] = {}

    def judge(self, ended: EpisodeEnded) -> tuple[EpisodeEnded, Sequence[Event]]:
        truth = ended.outcome
        self._truth[ended.id] = truth
        t = self.tally
        t.episodes += 1
        said = self.person.say(ended)
        if said is None:
            return ended._replace(outcome=Unknown()), ()
        emotion, text = said
        pred = self.classifier.predict([text])[0]
        decision = self.mapping.decide(pred.label, pred.confidence, Unknown())
        told: Outcome = decision.outcome if decision.applied else Unknown()
        t.said += 1
        t.by_emotion[emotion] = t.by_emotion.get(emotion, 0) + 1
        t.emotion_right += pred.label == emotion
        if decision.applied:
            t.applied += 1
            t.agreed += ((told.kind is OutcomeKind.SUCCESS)
                         == (truth.kind is OutcomeKind.SUCCESS))
        event = FeedbackEvent(ended.session, ended.task, ended.id, text, pred.label,
                              pred.confidence, self.classifier.version, decision.applied,
                              decision.outcome, decision.reward, ended.ts)
        return ended._replace(outcome=told), (event,)

    def truth(self, ended: EpisodeEnded) -> Outcome:
        """The environment's outcome of an episode this judge judged."""
        try:
            return self._truth[ended.id]
        except KeyError:
            raise ConfigError(f"episode {ended.id} ({ended.task}) was not judged by this "
                              "judge", field="episode", value=ended.id) from None



@dataclass(slots=True)
class HiddenStudy:
    """One scenario under three conditions, each a learning proof (on vs off, same tasks)."""

    scenario: str
    conditions: dict[str, Any] = field(default_factory=dict)  # name → LearningProof
    tallies: dict[str, JudgeTally] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"format_version": 1, "kind": "hidden-signal-study", "scenario": self.scenario,
                "conditions": {k: v.to_dict() for k, v in self.conditions.items()},
                "tallies": {k: v.to_dict() for k, v in self.tallies.items()}}


#: the conditions of a study: what the swarm is told of each episode's outcome
CONDITIONS = {
    "environment": "the environment's own outcome (the usual proof)",
    "feedback": "hidden: only the outcome the classified feedback implies",
    "silence": "hidden, and nobody says anything (every outcome unknown): a control",
    "lies": "hidden, and the words say the opposite of what happened: a control",
}


def hidden_signal_study(
    scenario: Scenario, classifier: TextClassifier, texts: Sequence[Example],
    mapping: RewardMapping, config: LearningRunConfig, *, person: PersonConfig | None = None,
    progress: Callable[[str, int, str, int, Any], None] | None = None,
) -> HiddenStudy:
    """The learning proof of ``scenario`` under each of :data:`CONDITIONS`.

    ``config.trials`` must be 0 (the offline search scores its rollouts by
    the environment's outcome); every condition uses the same ``config``, so
    they differ only in what the swarm is told.
    """
    from swarmlearn.learn.loop import run_proof

    pc = person or PersonConfig()
    study = HiddenStudy(scenario.label)
    for name in CONDITIONS:
        judge = None
        if name != "environment":
            said = {"feedback": pc, "silence": replace(pc, silence=1.0),
                    "lies": replace(pc, lie=True)}[name]
            judge = FeedbackJudge(SimulatedPerson(texts, said), classifier, mapping)
            study.tallies[name] = judge.tally
        tick = None if progress is None else partial(progress, name)
        study.conditions[name] = run_proof(scenario, None, config, progress=tick, signal=judge)
    return study
