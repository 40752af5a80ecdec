"""Emotion → reward: which outcome a feedback label gives the episode it is about.

A mapping is a TOML file (the default is ``feedback/data/rewards.toml``)::

    min_confidence = 0.6          # below it a prediction is recorded, not applied

    [labels.joy]
    outcome = "success"           # success | failure | keep
    score = 1.0                   # the success's score
    [labels.impatience]
    outcome = "success"
    time_penalty = 0.4            # taken off the score: solved, but too slowly
    [labels.anger]
    outcome = "failure"
    [labels.neutral]
    outcome = "keep"              # no verdict: the recorded outcome stands

:meth:`RewardMapping.decide` is pure: label, confidence and the recorded
outcome in, the corrected outcome and whether to apply it out.
"""

from __future__ import annotations

import enum
import importlib.resources
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swarmlearn._config import check_range, from_mapping
from swarmlearn.errors import ConfigError
from swarmlearn.types import Failure, Outcome, Success

__all__ = ["RewardDecision", "RewardKind", "RewardMapping", "RewardRule", "load_reward_mapping"]


class RewardKind(enum.StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    KEEP = "keep"


@dataclass(frozen=True, kw_only=True, slots=True)
class RewardRule:
    """What one label does to an episode's outcome."""

    outcome: RewardKind
    score: float = 1.0
    time_penalty: float = 0.0

    def __post_init__(self) -> None:
        check_range("score", self.score, lo=0.0, hi=1.0)
        check_range("time_penalty", self.time_penalty, lo=0.0, hi=1.0)


@dataclass(frozen=True, slots=True)
class RewardDecision:
    applied: bool
    outcome: Outcome
    reward: float
    why: str


@dataclass(frozen=True, kw_only=True, slots=True)
class RewardMapping:
    """Label → rule, and the confidence a prediction needs to be applied."""

    labels: Mapping[str, RewardRule] = field(default_factory=dict)
    min_confidence: float = 0.6

    def __post_init__(self) -> None:
        check_range("min_confidence", self.min_confidence, lo=0.0, hi=1.0)
        if not self.labels:
            raise ConfigError("labels: the reward mapping names no label", field="labels")

    def check_covers(self, labels: tuple[str, ...] | list[str]) -> None:
        """ConfigError unless every label of a classifier has a rule."""
        missing = [x for x in labels if x not in self.labels]
        if missing:
            raise ConfigError(f"labels: the reward mapping has no rule for {', '.join(missing)} "
                              f"(it has {', '.join(self.labels)})", field="labels")

    def decide(self, label: str, confidence: float, recorded: Outcome) -> RewardDecision:
        rule = self.labels.get(label)
        if rule is None:
            raise ConfigError(f"labels.{label}: no reward rule for this label",
                              field=f"labels.{label}")
        if rule.outcome is RewardKind.KEEP:
            return RewardDecision(False, recorded, recorded.value,
                                  f"{label} keeps the recorded outcome")
        outcome: Outcome
        if rule.outcome is RewardKind.SUCCESS:
            outcome = Success(max(0.0, rule.score - rule.time_penalty))
        else:
            outcome = Failure(f"feedback: {label}")
        if confidence < self.min_confidence:
            return RewardDecision(False, outcome, outcome.value,
                                  f"confidence {confidence:.2f} < {self.min_confidence:.2f}: "
                                  "recorded, not applied")
        return RewardDecision(True, outcome, outcome.value, f"{label} → {outcome.kind.value}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "") -> RewardMapping:
        unknown = sorted(set(data) - {"labels", "min_confidence"})
        if unknown:
            raise ConfigError(f"{where}{unknown[0]}: unknown field (known: labels, "
                              "min_confidence)", field=unknown[0])
        table = data.get("labels", {})
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where}labels: expected a table of label rules", field="labels")
        rules = {str(k): from_mapping(RewardRule, v, where=f"labels.{k}")
                 for k, v in table.items()}
        conf = data.get("min_confidence", 0.6)
        if isinstance(conf, bool) or not isinstance(conf, int | float):
            raise ConfigError(f"{where}min_confidence: expected a number, got {conf!r}",
                              field="min_confidence", value=conf)
        return cls(labels=rules, min_confidence=float(conf))


def default_rewards_path() -> Path:
    return Path(str(importlib.resources.files("swarmlearn.feedback") / "data" / "rewards.toml"))


def load_reward_mapping(path: str | Path | None = None) -> RewardMapping:
    """Read a reward mapping from TOML (default: the bundled ``rewards.toml``)."""
    p = Path(path) if path is not None else default_rewards_path()
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the reward mapping: {exc.strerror or exc}",
                          field="rewards", value=str(p)) from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}", field="rewards", value=str(p)) from exc
    try:
        return RewardMapping.from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}", field=exc.field, value=exc.value) from exc
