"""The environment a swarm works in: protocol, observation, and shared machinery.

An environment holds hidden state (which service is faulty, where the goal
is …) that workers only learn about through actions. What workers *can* see
is the :class:`Observation`: the candidate actions, each with the visible
state of its target (its *context*), and the facts discovered so far.
"""

from __future__ import annotations

import abc
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import ClassVar, Protocol, runtime_checkable

from swarmlearn.core.actions import Action, ActionResult, ActionSpec, Candidate
from swarmlearn.errors import ConfigError, EnvironmentError_
from swarmlearn.types import Failure, Outcome, Success, Timeout

__all__ = ["BaseEnvironment", "Environment", "Observation"]

_new_tuple = tuple.__new__  # Candidate without the NamedTuple's Python-level __new__


@dataclass(frozen=True, slots=True)
class Observation:
    """What every worker can see at the start of a tick.

    ``candidates`` are the actions that may be taken now, each with the
    visible context of its target; ``targets`` maps each target to that
    context; ``facts`` holds everything discovered so far.
    """

    step: int
    candidates: tuple[Candidate, ...]
    targets: Mapping[str, str]
    facts: Mapping[str, str]
    done: bool
    #: target → a function picking that target's and the untargeted candidates, in listed
    #: order, from ``candidates`` (positions are fixed for a task; see workers.narrow)
    pickers: Mapping[str, Callable[[Sequence[Candidate]], tuple[Candidate, ...]]] = field(
        default_factory=dict, compare=False, repr=False)

    def context_of(self, action: Action) -> str:
        """The visible context of an action's target ("" for untargeted actions)."""
        return self.targets.get(action.target, "") if action.target else ""


@runtime_checkable
class Environment(Protocol):
    """A task a swarm works on. Deterministic for a seed."""

    kind: ClassVar[str]

    def reset(self, seed: int) -> Observation: ...

    def observe(self) -> Observation: ...

    def step(self, action: Action) -> ActionResult: ...

    def action_specs(self) -> tuple[ActionSpec, ...]: ...

    def render_text(self) -> str: ...

    def task_text(self) -> str: ...

    @property
    def done(self) -> bool: ...

    def outcome(self) -> Outcome: ...

    def context_priority(self) -> Mapping[str, int]: ...


class BaseEnvironment(abc.ABC):
    """Shared machinery: facts, target contexts, cached candidates, costs, outcome.

    Subclasses implement :meth:`_setup` (build the hidden state from
    ``self.rng``), :meth:`_apply` (one action), :meth:`_specs` (the action
    set), :meth:`task_text` and :meth:`_progress` (partial score in [0, 1]).
    They call :meth:`_set_context`, :meth:`_discover`, :meth:`_solve` and
    :meth:`_fail` to change what is visible and how the task ends.
    """

    kind: ClassVar[str] = ""
    #: visible contexts, most promising first; managers focus by this order
    contexts: ClassVar[tuple[str, ...]] = ()
    #: contexts in which nothing more is to be done on a target (priority 0)
    settled: ClassVar[tuple[str, ...]] = ()
    #: action names that only some tasks have (e.g. sampled distractors)
    optional_actions: ClassVar[tuple[str, ...]] = ()
    #: one agent acts in the world (a maze walker): workers take turns within a tick
    sequential: ClassVar[bool] = False

    def __init__(self) -> None:
        self.rng = random.Random(0)
        self._shuffler = random.Random(0)  # the listed order's generator, reseeded per task
        self._facts: dict[str, str] = {}
        self._targets: dict[str, str] = {}
        self._specs_by_name: dict[str, ActionSpec] = {}
        self._candidates: tuple[Candidate, ...] = ()
        self._cand_list: list[Candidate] = []
        self._by_target: dict[str, list[int]] = {}  # target → indices in _cand_list
        self._dirty: set[str] = set()  # targets whose context changed since the last observe
        self._pickers: dict[str, Callable[[Sequence[Candidate]], tuple[Candidate, ...]]] = {}
        self._priority: dict[str, int] | None = None
        self._observation: Observation | None = None
        self._steps = 0
        self._cost = 0.0
        self._solved_score: float | None = None
        self._failure: str | None = None
        self._seed = 0
        self._include: tuple[str, ...] = ()
        self._exclude: frozenset[str] = frozenset()
        self._all_names: frozenset[str] = frozenset()

    # -- subclass hooks -------------------------------------------------------
    @abc.abstractmethod
    def _setup(self) -> None:
        """Build hidden state from ``self.rng`` and the initial target contexts."""

    @abc.abstractmethod
    def _specs(self) -> tuple[ActionSpec, ...]:
        """The action set for the current task (targets filled in)."""

    @abc.abstractmethod
    def _apply(self, action: Action) -> ActionResult:
        """Carry out a known action; the base class has checked name and target."""

    @abc.abstractmethod
    def task_text(self) -> str:
        """What the task is, in words a worker (or an LLM) can act on."""

    @abc.abstractmethod
    def _progress(self) -> float:
        """How far towards the goal the swarm got, in [0, 1] (for Timeout scores)."""

    def _optimal_steps(self) -> int:
        """The fewest actions that solve this task (for grading efficiency)."""
        return 1

    # -- configuration ----------------------------------------------------------
    def restrict(self, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> None:
        """Limit the action set to ``include`` (if given) minus ``exclude``.

        Names are checked against the environment's action names; an unknown
        name raises ConfigError.
        """
        if not self._all_names:
            self.reset(self._seed)
        for field_name, names in (("actions.include", include), ("actions.exclude", exclude)):
            unknown = [n for n in names if n not in self._all_names]
            if unknown:
                known = ", ".join(sorted(self._all_names))
                raise ConfigError(
                    f"{field_name}: unknown action {unknown[0]!r} (known: {known})",
                    field=field_name,
                    value=unknown[0],
                )
        self._include, self._exclude = tuple(include), frozenset(exclude)

    # -- protocol -------------------------------------------------------------
    def reset(self, seed: int) -> Observation:
        self._seed = seed
        self.rng.seed(seed)  # the state of a new random.Random(seed), without the new object
        self._facts = {}
        self._targets = {}
        self._steps = 0
        self._cost = 0.0
        self._solved_score = None
        self._failure = None
        self._setup()
        specs = list(self._specs())
        self._all_names = frozenset(s.name for s in specs) | frozenset(self.optional_actions)
        if self._include:
            order = {name: i for i, name in enumerate(self._include)}
            specs = sorted((s for s in specs if s.name in order), key=lambda s: order[s.name])
        if self._exclude:
            specs = [s for s in specs if s.name not in self._exclude]
        # The listed order of the action set carries no hint of the right order:
        # it is shuffled per task (by its own generator, so hidden state is unchanged).
        shuffler = self._shuffler
        shuffler.seed(seed ^ 0x5EED)
        shuffler.shuffle(specs)
        self._specs_by_name = {s.name: s for s in specs}
        targets = self._targets
        cands: list[Candidate] = []
        by_target: dict[str, list[int]] = {}
        for s in specs:
            name = s.name
            for t in s.targets or ("",):
                at = by_target.get(t)
                if at is None:
                    by_target[t] = [len(cands)]
                else:
                    at.append(len(cands))
                cands.append(_new_tuple(Candidate, (_new_tuple(Action, (name, t, ())),
                                                    targets.get(t, ""))))
        self._cand_list = cands
        self._by_target = by_target
        self._pickers = _pickers(by_target)
        self._dirty.clear()
        self._candidates = tuple(cands)
        self._invalidate()
        return self.observe()

    def observe(self) -> Observation:
        if self._observation is None:
            if self._dirty:  # only the candidates of targets whose context changed are new
                lst, targets = self._cand_list, self._targets
                for target in self._dirty:
                    ctx = targets.get(target, "")
                    for i in self._by_target.get(target, ()):
                        lst[i] = _new_tuple(Candidate, (lst[i].action, ctx))
                self._dirty.clear()
                self._candidates = tuple(lst)
            self._observation = Observation(
                step=self._steps,
                candidates=self._candidates,
                targets=dict(self._targets),
                facts=dict(self._facts),
                done=self.done,
                pickers=self._pickers,
            )
        elif self._observation.step != self._steps:
            obs = self._observation
            self._observation = Observation(
                step=self._steps,
                candidates=obs.candidates,
                targets=obs.targets,
                facts=obs.facts,
                done=self.done,
                pickers=obs.pickers,
            )
        return self._observation

    def step(self, action: Action) -> ActionResult:
        if self.done:
            raise EnvironmentError_(f"{self.kind}: step({action}) after the task ended")
        self._steps += 1
        spec = self._specs_by_name.get(action.name)
        if spec is None:
            self._cost += 1.0
            known = ", ".join(self._specs_by_name)
            return ActionResult(
                False, error=f"unknown action {action.name!r} (known: {known})", invalid=True
            )
        if spec.targets and action.target not in spec.targets:
            self._cost += 1.0
            return ActionResult(
                False, error=f"{action.name}: unknown target {action.target!r}", invalid=True
            )
        if not spec.targets and action.target:
            self._cost += 1.0
            return ActionResult(False, error=f"{action.name} takes no target", invalid=True)
        return self._apply(action)

    def action_specs(self) -> tuple[ActionSpec, ...]:
        return tuple(self._specs_by_name.values())

    @property
    def done(self) -> bool:
        return self._solved_score is not None or self._failure is not None

    @property
    def steps(self) -> int:
        return self._steps

    def outcome(self) -> Outcome:
        if self._solved_score is not None:
            return Success(self._solved_score)
        if self._failure is not None:
            return Failure(self._failure)
        return Timeout(round(self._progress(), 4))

    def context_priority(self) -> Mapping[str, int]:
        """Visible contexts ranked for focus: higher is more promising, 0 is settled."""
        if self._priority is None:  # class constants: computed once
            n = len(self.contexts)
            self._priority = {c: 0 if c in self.settled else n - i
                              for i, c in enumerate(self.contexts)}
        return self._priority

    def render_text(self) -> str:
        lines = [f"Task: {self.task_text()}", "Targets:"]
        for target, ctx in self._targets.items():
            known = [
                f"{k.split('.', 1)[1]}={v}"
                for k, v in self._facts.items()
                if k.split(".", 1)[0] == target
            ]
            detail = f" ({'; '.join(known)})" if known else ""
            lines.append(f"- {target}: {ctx}{detail}")
        general = [f"{k}={v}" for k, v in self._facts.items() if "." not in k]
        if general:
            lines.append("Known: " + "; ".join(general))
        lines.append(f"Actions taken: {self._steps}")
        return "\n".join(lines)

    # -- helpers for subclasses ----------------------------------------------
    def _invalidate(self) -> None:
        self._observation = None

    def _set_context(self, target: str, context: str) -> None:
        if self._targets.get(target) != context:
            self._targets[target] = context
            self._dirty.add(target)
            self._invalidate()

    def context(self, target: str) -> str:
        return self._targets.get(target, "")

    def _discover(self, fact: str, value: str) -> bool:
        """Record a fact; True if it was new."""
        if self._facts.get(fact) == value:
            return False
        self._facts[fact] = value
        self._invalidate()
        return True

    def fact(self, name: str) -> str | None:
        return self._facts.get(name)

    def _solve(self, *, penalty: float = 0.0) -> None:
        """Mark solved; the score falls with ``penalty`` and with wasted steps."""
        efficiency = min(1.0, self._optimal_steps() / max(1, self._steps))
        score = 1.0 - penalty - 0.5 * (1.0 - efficiency)
        self._solved_score = round(min(1.0, max(0.05, score)), 4)
        self._invalidate()

    def _fail(self, reason: str) -> None:
        self._failure = reason
        self._invalidate()

    def _charge(self, cost: float) -> None:
        self._cost += cost

    @property
    def cost(self) -> float:
        return self._cost


def _pickers(by_target: Mapping[str, list[int]],
             ) -> dict[str, Callable[[Sequence[Candidate]], tuple[Candidate, ...]]]:
    """Per target: a picker of its candidates and the untargeted ones, in listed order."""
    untargeted = by_target.get("", [])
    out: dict[str, Callable[[Sequence[Candidate]], tuple[Candidate, ...]]] = {}
    for target, idx in by_target.items():
        if not target:
            continue
        both = sorted([*untargeted, *idx])
        out[target] = itemgetter(*both) if len(both) > 1 else _pick_one(both[0])
    return out


def _pick_one(i: int) -> Callable[[Sequence[Candidate]], tuple[Candidate, ...]]:
    def pick(cands: Sequence[Candidate]) -> tuple[Candidate, ...]:
        return (cands[i],)  # itemgetter(i) would return the candidate itself, not a tuple

    return pick


def pick(rng: random.Random, pool: Sequence[str], n: int) -> list[str]:
    """``n`` distinct names from ``pool`` (suffixed when the pool runs out)."""
    names = list(pool)
    rng.shuffle(names)
    out = names[:n]
    i = 2
    while len(out) < n:
        out.extend(f"{name}{i}" for name in names[: n - len(out)])
        i += 1
    return out
