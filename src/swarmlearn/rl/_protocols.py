"""What the training machinery needs from an agent, and the records passed to it.

A :class:`LearningAgent` acts on a batch of observations (one row per
environment) and learns from the :class:`Experience` it is shown.  It never
sees the loop: whoever drives the environments (a gymnasium loop, the swarm
orchestrator, a test) feeds it through a :class:`~swarmlearn.rl.TrainingSession`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol, TypeAlias, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = ["ActMode", "EpisodeStatus", "Experience", "LearningAgent", "StateTree", "Stateful"]

StateTree: TypeAlias = dict[str, Any]
"""Nested dicts whose leaves are NumPy arrays or JSON values (str, int, float, bool, None, lists).

Arrays are written to safetensors, everything else to JSON; nothing is pickled.
"""


class ActMode(enum.StrEnum):
    """``explore`` while training (e.g. epsilon-greedy), ``exploit`` to evaluate (greedy)."""

    EXPLORE = "explore"
    EXPLOIT = "exploit"


class EpisodeStatus(enum.StrEnum):
    """How an episode ended: the task ended it, or a time limit cut it short."""

    TERMINATED = "terminated"
    TRUNCATED = "truncated"


class Experience(NamedTuple):
    """One step of ``n`` environments (leading axis ``n``).

    ``next_obs`` is the observation the step led to, also when the episode
    ended there (the *final* observation, not the first one of the next
    episode), so a truncated episode can bootstrap from it.  ``next_mask``
    (``(n, n_actions)``, optional) marks the actions allowed in ``next_obs``.
    """

    obs: npt.NDArray[np.float32]
    action: npt.NDArray[np.int64]
    reward: npt.NDArray[np.float32]
    next_obs: npt.NDArray[np.float32]
    terminated: npt.NDArray[np.bool_]
    truncated: npt.NDArray[np.bool_]
    next_mask: npt.NDArray[np.bool_] | None = None

    @property
    def n(self) -> int:
        """Number of environment steps in this experience."""
        return len(self.action)


@runtime_checkable
class Stateful(Protocol):
    """Anything whose state can be checkpointed and restored exactly."""

    def state_dict(self) -> StateTree: ...

    def load_state_dict(self, state: StateTree) -> None: ...


@runtime_checkable
class LearningAgent(Stateful, Protocol):
    """An agent that acts and learns; plugged into a TrainingSession."""

    def act(
        self,
        obs: npt.NDArray[np.float32],
        mode: ActMode,
        mask: npt.NDArray[np.bool_] | None = None,
    ) -> npt.NDArray[np.int64]:
        """One action per row of ``obs``, among those ``mask`` allows (None: any)."""
        ...

    def observe(self, experience: Experience) -> None:
        """Learn from one step (store it, and train when the schedule says so)."""
        ...

    def on_episode_start(self, env_index: int) -> None:
        """Environment ``env_index`` began a new episode."""
        ...

    def metrics(self) -> Mapping[str, float]:
        """Current figures worth logging (epsilon, loss statistics …)."""
        ...
