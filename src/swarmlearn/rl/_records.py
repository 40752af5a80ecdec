"""Records of finished episodes and the evaluation report built from them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from swarmlearn.errors import ArtifactError
from swarmlearn.rl._protocols import EpisodeStatus

__all__ = ["EpisodeRecord", "EvalReport"]


@dataclass(frozen=True, slots=True, kw_only=True)
class EpisodeRecord:
    """One finished episode: its index, the training step it ended at, return, length, status.

    ``extras`` carries free-form figures of the moment (epsilon, loss …).
    """

    index: int
    step: int
    total_reward: float
    length: int
    status: EpisodeStatus
    extras: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "step": self.step,
            "total_reward": self.total_reward,
            "length": self.length,
            "status": self.status.value,
            "extras": {k: _json_float(v) for k, v in self.extras.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EpisodeRecord:
        try:
            return cls(
                index=int(data["index"]),
                step=int(data["step"]),
                total_reward=float(data["total_reward"]),
                length=int(data["length"]),
                status=EpisodeStatus(data["status"]),
                extras={
                    str(k): math.nan if v is None else float(v)
                    for k, v in dict(data.get("extras", {})).items()
                },
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"malformed episode record {dict(data)!r}: {exc}") from exc


def _json_float(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalReport:
    """Summary of evaluation episodes (never of training episodes)."""

    n_episodes: int
    step: int
    mean_reward: float
    std_reward: float
    min_reward: float
    max_reward: float
    mean_length: float
    terminated: int
    truncated: int

    @classmethod
    def from_episodes(cls, episodes: Sequence[EpisodeRecord], *, step: int) -> EvalReport:
        if not episodes:
            raise ValueError("an evaluation report needs at least one episode")
        rewards = [e.total_reward for e in episodes]
        n = len(rewards)
        mean = sum(rewards) / n
        return cls(
            n_episodes=n,
            step=step,
            mean_reward=mean,
            std_reward=math.sqrt(sum((r - mean) ** 2 for r in rewards) / n),
            min_reward=min(rewards),
            max_reward=max(rewards),
            mean_length=sum(e.length for e in episodes) / n,
            terminated=sum(e.status is EpisodeStatus.TERMINATED for e in episodes),
            truncated=sum(e.status is EpisodeStatus.TRUNCATED for e in episodes),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_episodes": self.n_episodes,
            "step": self.step,
            "mean_reward": self.mean_reward,
            "std_reward": self.std_reward,
            "min_reward": self.min_reward,
            "max_reward": self.max_reward,
            "mean_length": self.mean_length,
            "terminated": self.terminated,
            "truncated": self.truncated,
        }
