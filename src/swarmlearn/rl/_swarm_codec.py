"""How a swarm environment looks to a DQN: fixed action indices and observation vectors.

A swarm :class:`~swarmlearn.core.environment.Environment` shows candidates
(action name + target) and the visible context of every target.  To give a
DQN fixed spaces:

* **Actions** (:class:`ActionLayout`): ``Discrete(len(names) * slots)``-ish —
  one index per (action name, target slot) for targeted actions and one per
  untargeted action.  Targets are put in slots by the sorted order of their
  names, which carries no hint of the hidden state.  An index that is not a
  candidate right now is still passed to the environment, which counts it
  as an invalid action; ``info["action_mask"]`` says which indices are
  candidates.
* **Observations** (:class:`ObservationEncoder`): per target slot a one-hot
  of its context and the number of facts known about it, the number of
  general facts, the share of the step budget used, and which action indices
  were already tried this episode (so repeating a useless action is visible,
  and a greedy policy does not loop on it).
Used by :class:`~swarmlearn.rl.SwarmGymEnv` (the gymnasium form,
``swarmlearn/<Kind>-v0``) and by :class:`~swarmlearn.rl.DQNWorker` (the
trained policy inside a swarm), so both see the same thing.  No gymnasium
here.

* **Reward** (in the gymnasium form): the change of the outcome value (``Timeout(progress).value``
  while running, ``Success(score)``/``Failure`` at the end), so the return of
  an episode is the swarm's own score for it, minus ``step_penalty`` per step.
  The task ending is *termination*; running out of ``max_steps`` is
  *truncation* (bootstrapped).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from swarmlearn._config import check_range
from swarmlearn.core.actions import Action, Candidate
from swarmlearn.core.environment import Environment, Observation
from swarmlearn.errors import ConfigError

__all__ = [
    "ActionLayout",
    "ObservationEncoder",
    "SwarmCodec",
    "SwarmEnvConfig",
    "kind_of_env_id",
    "swarm_env_id",
    "target_slots",
]

F32 = npt.NDArray[np.float32]
FACT_SCALE = 4.0


@dataclass(kw_only=True, frozen=True, slots=True)
class SwarmEnvConfig:
    """Which swarm environment to wrap and how."""

    kind: str = "troubleshooting"
    params: Mapping[str, Any] = field(default_factory=dict)
    """The environment's own parameters (a scenario's ``[environment]`` table)."""
    max_steps: int = 50
    max_targets: int = 0
    """Target slots; 0: the most targets seen over ``probe_seeds`` resets."""
    probe_seeds: int = 32
    step_penalty: float = 0.0
    """Subtracted from every step's reward."""
    useless_penalty: float = 0.0
    """Subtracted when the action was not useful (``ActionResult.success`` false)."""

    def __post_init__(self) -> None:
        check_range("max_steps", self.max_steps, lo=1)
        check_range("max_targets", self.max_targets, lo=0)
        check_range("probe_seeds", self.probe_seeds, lo=1)
        check_range("step_penalty", self.step_penalty, lo=0.0)
        check_range("useless_penalty", self.useless_penalty, lo=0.0)

    def make(self) -> Environment:
        from swarmlearn.envs import make_env

        return make_env(self.kind, dict(self.params))


def target_slots(targets: Mapping[str, str], width: int) -> dict[str, int]:
    """Target name -> slot (sorted by name); targets beyond ``width`` get no slot."""
    return {name: i for i, name in enumerate(sorted(targets)[:width])}


@dataclass(frozen=True, slots=True)
class ActionLayout:
    """The fixed mapping between Discrete indices and (action name, target slot)."""

    names: tuple[str, ...]
    targeted: tuple[bool, ...]
    width: int
    _offsets: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        offsets, at = [], 0
        for is_targeted in self.targeted:
            offsets.append(at)
            at += self.width if is_targeted else 1
        object.__setattr__(self, "_offsets", (*offsets, at))

    @property
    def size(self) -> int:
        return self._offsets[-1]

    @classmethod
    def probe(cls, env: Environment, seeds: int, max_targets: int = 0) -> ActionLayout:
        """Learn the action names and the number of target slots from ``seeds`` resets."""
        targeted: dict[str, bool] = {}
        most = 0
        for seed in range(seeds):
            env.reset(seed)
            for spec in env.action_specs():
                targeted[spec.name] = targeted.get(spec.name, False) or bool(spec.targets)
                most = max(most, len(spec.targets))
        if not targeted:
            raise ConfigError(f"environment {env.kind!r} offers no actions", field="kind")
        names = tuple(sorted(targeted))
        return cls(names, tuple(targeted[n] for n in names), max_targets or max(most, 1))

    def index(self, action: Action, slots: Mapping[str, int]) -> int | None:
        """The index of ``action`` (None when it has no place in the layout)."""
        try:
            k = self.names.index(action.name)
        except ValueError:
            return None
        if not self.targeted[k]:
            return self._offsets[k] if not action.target else None
        slot = slots.get(action.target)
        return None if slot is None else self._offsets[k] + slot

    def action(self, index: int, slots: Mapping[str, int]) -> Action:
        """The action an index stands for now (its target may not exist: then it is invalid)."""
        if not 0 <= index < self.size:
            raise ValueError(f"action index {index} outside [0, {self.size})")
        k = int(np.searchsorted(self._offsets, index, side="right")) - 1
        name = self.names[k]
        if not self.targeted[k]:
            return Action(name)
        by_slot = {s: t for t, s in slots.items()}
        return Action(
            name, by_slot.get(index - self._offsets[k], f"<slot {index - self._offsets[k]}>")
        )

    def mask(
        self, candidates: Sequence[Candidate], slots: Mapping[str, int]
    ) -> npt.NDArray[np.bool_]:
        """True at the indices of ``candidates``."""
        out = np.zeros(self.size, np.bool_)
        for cand in candidates:
            i = self.index(cand.action, slots)
            if i is not None:
                out[i] = True
        return out


@dataclass(frozen=True, slots=True)
class ObservationEncoder:
    """Observation (+ tried actions) -> float32 vector.

    Layout: per target slot a context one-hot (+ "other") and a fact count;
    the general fact count; the step share; one "tried" flag per action index.
    """

    contexts: tuple[str, ...]
    width: int
    max_steps: int
    n_actions: int

    @property
    def size(self) -> int:
        return self.width * (len(self.contexts) + 2) + 2 + self.n_actions

    @classmethod
    def for_env(
        cls, env: Environment, layout: ActionLayout, max_steps: int, seeds: int
    ) -> ObservationEncoder:
        """Contexts from the environment class, plus any seen in ``seeds`` resets."""
        contexts = list(getattr(env, "contexts", ()))
        for seed in range(seeds):
            for ctx in env.reset(seed).targets.values():
                if ctx not in contexts:
                    contexts.append(ctx)
        return cls(tuple(contexts), layout.width, max_steps, layout.size)

    def encode(self, obs: Observation, tried: npt.NDArray[np.bool_]) -> F32:
        n_ctx = len(self.contexts)
        per_slot = n_ctx + 2  # contexts, "other", fact count
        out = np.zeros(self.size, np.float32)
        out[-self.n_actions :] = tried
        slots = target_slots(obs.targets, self.width)
        for target, slot in slots.items():
            ctx = obs.targets[target]
            k = self.contexts.index(ctx) if ctx in self.contexts else n_ctx
            out[slot * per_slot + k] = 1.0
        general = 0
        for fact in obs.facts:
            target, sep, _ = fact.partition(".")
            if sep and target in slots:
                out[slots[target] * per_slot + n_ctx + 1] += 1.0 / FACT_SCALE
            else:
                general += 1
        base = self.width * per_slot
        out[base] = general / FACT_SCALE
        np.minimum(out, 1.0, out=out)  # counts saturate at FACT_SCALE: every feature is in [0, 1]
        out[base + 1] = min(1.0, obs.step / self.max_steps)
        return out


@dataclass(frozen=True, slots=True)
class SwarmCodec:
    """The layout and encoder for one :class:`SwarmEnvConfig` (probed from its environment)."""

    layout: ActionLayout
    encoder: ObservationEncoder

    @classmethod
    def probe(cls, env: Environment, config: SwarmEnvConfig) -> SwarmCodec:
        layout = ActionLayout.probe(env, config.probe_seeds, config.max_targets)
        encoder = ObservationEncoder.for_env(env, layout, config.max_steps, config.probe_seeds)
        return cls(layout, encoder)

    @classmethod
    def for_config(cls, config: SwarmEnvConfig) -> SwarmCodec:
        return cls.probe(config.make(), config)


def swarm_env_id(kind: str) -> str:
    """``troubleshooting`` -> ``swarmlearn/Troubleshooting-v0``."""
    return "swarmlearn/" + "".join(p.capitalize() for p in kind.split("_")) + "-v0"


def kind_of_env_id(env_id: str) -> str:
    """Inverse of :func:`swarm_env_id`; ConfigError for an id that is not a swarm one."""
    from swarmlearn.envs import ENV_KINDS

    for kind in ENV_KINDS:
        if swarm_env_id(kind) == env_id:
            return kind
    known = ", ".join(swarm_env_id(k) for k in ENV_KINDS)
    raise ConfigError(
        f"env_id: {env_id!r} is not a swarm environment (known: {known})",
        field="env_id",
        value=env_id,
    )
