"""Scenario profiles: what the swarm knows about a kind of task, and how far it got.

A :class:`ScenarioProfile` has a lifecycle driven by its recorded evidence::

    Draft ─first session─► Bootstrap ─N sessions, ≥3 wins─► Validating ─pass─► Active
                              ▲                                  │               │ enough
                              └──────────── fail ────────────────┘               ▼ data
                                                               Active ◄─done── Optimizing

:func:`next_state` is the pure rule (state + evidence → state and reason);
:func:`check_transition` rejects any move not drawn above. Sessions are
recorded in *session groups* by phase — ``bootstrap`` (Draft, Bootstrap),
``validate`` (Validating) and ``release`` (Active, Optimizing) — and each
phase draws its task seeds from its own range, so validation always runs on
seeds bootstrap never saw (recording one that did is refused). A failed
validation starts a new *round*: the next N bootstrap sessions count again.

Component learners (:mod:`swarmlearn.learn.profile_learners`) are fed per
episode (dependency graph, strategies; see
:class:`swarmlearn.learn.bootstrap.EpisodeFeed`) and per session (exploration
parameters). :class:`swarmlearn.learn.profile_store.ProfileStore` keeps
profiles in the store and builds the registry that routes task text to them.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from swarmlearn._config import check_range, from_mapping, to_mapping
from swarmlearn.core.events import ActionEvent, EpisodeEnded
from swarmlearn.errors import ArtifactError, ConfigError
from swarmlearn.learn import _payload as P
from swarmlearn.learn.profile_learners import (
    DependencyGraphLearner,
    ExplorationLearner,
    StrategyLearner,
)
from swarmlearn.learn.registry import KeywordMatcher
from swarmlearn.types import OutcomeKind

__all__ = [
    "PHASE_OF",
    "TRANSITIONS",
    "InvalidTransition",
    "Phase",
    "ProfileConfig",
    "ProfileState",
    "ScenarioProfile",
    "SessionEvidence",
    "SessionGroup",
    "SessionPlan",
    "Transition",
    "check_transition",
    "next_state",
]

logger = logging.getLogger(__name__)


class ProfileState(enum.StrEnum):
    DRAFT = "draft"
    BOOTSTRAP = "bootstrap"
    VALIDATING = "validating"
    ACTIVE = "active"
    OPTIMIZING = "optimizing"


class Phase(enum.StrEnum):
    BOOTSTRAP = "bootstrap"
    VALIDATE = "validate"
    RELEASE = "release"


S = ProfileState
TRANSITIONS: Mapping[ProfileState, frozenset[ProfileState]] = {
    S.DRAFT: frozenset({S.BOOTSTRAP}),
    S.BOOTSTRAP: frozenset({S.VALIDATING}),
    S.VALIDATING: frozenset({S.ACTIVE, S.BOOTSTRAP}),
    S.ACTIVE: frozenset({S.OPTIMIZING}),
    S.OPTIMIZING: frozenset({S.ACTIVE}),
}
#: the phase a session recorded in each state belongs to
PHASE_OF: Mapping[ProfileState, Phase] = {
    S.DRAFT: Phase.BOOTSTRAP,
    S.BOOTSTRAP: Phase.BOOTSTRAP,
    S.VALIDATING: Phase.VALIDATE,
    S.ACTIVE: Phase.RELEASE,
    S.OPTIMIZING: Phase.RELEASE,
}
_PHASE_INDEX = {Phase.BOOTSTRAP: 0, Phase.VALIDATE: 1, Phase.RELEASE: 2}
_BACKWARDS = {(S.VALIDATING, S.BOOTSTRAP), (S.OPTIMIZING, S.ACTIVE)}  # these start a new round


class InvalidTransition(ConfigError):
    """A lifecycle move that is not allowed (e.g. Draft → Active)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ProfileConfig:
    bootstrap_sessions: int = 3  # bootstrap sessions per round before validating
    min_successful_episodes: int = 3  # successful bootstrap episodes before validating
    validation_sessions: int = 1  # validation sessions per round
    validation_threshold: float = 0.5  # success rate on held-out seeds to become active
    optimize_after_sessions: int = 10  # release sessions before a parameter search
    base_seed: int = 0
    phase_seed_stride: int = 1_000_000  # each phase draws seeds from its own range

    def __post_init__(self) -> None:
        check_range("bootstrap_sessions", self.bootstrap_sessions, lo=1)
        check_range("min_successful_episodes", self.min_successful_episodes, lo=1)
        check_range("validation_sessions", self.validation_sessions, lo=1)
        check_range("validation_threshold", self.validation_threshold, lo=0.0, hi=1.0)
        check_range("optimize_after_sessions", self.optimize_after_sessions, lo=1)
        check_range("phase_seed_stride", self.phase_seed_stride, lo=1)


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionEvidence:
    """What one session of a profile showed."""

    session: int  # the store's session id (0 without a store)
    phase: Phase
    first_seed: int
    episodes: int
    successes: int
    actions: int
    round: int = 0
    strategy: str = ""
    params: Mapping[str, float] = field(default_factory=dict)
    created: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        object.__setattr__(self, "phase", Phase(self.phase))
        for name in ("session", "episodes", "successes", "actions", "round"):
            check_range(name, getattr(self, name), lo=0)
        if self.successes > self.episodes:
            raise ConfigError(
                f"successes: {self.successes} exceeds episodes ({self.episodes})", field="successes"
            )

    @property
    def seeds(self) -> range:
        return range(self.first_seed, self.first_seed + self.episodes)

    @property
    def success_rate(self) -> float:
        return self.successes / self.episodes if self.episodes else 0.0

    @classmethod
    def from_episodes(
        cls,
        session: int,
        episodes: Sequence[EpisodeEnded],
        *,
        phase: Phase,
        first_seed: int,
        strategy: str = "",
        params: Mapping[str, float] | None = None,
    ) -> SessionEvidence:
        return cls(
            session=session,
            phase=phase,
            first_seed=first_seed,
            episodes=len(episodes),
            successes=sum(1 for e in episodes if e.outcome.kind is OutcomeKind.SUCCESS),
            actions=sum(e.actions for e in episodes),
            strategy=strategy,
            params=dict(params or {}),
        )


@dataclass(frozen=True, slots=True)
class SessionGroup:
    """The sessions of one phase."""

    phase: Phase
    sessions: tuple[SessionEvidence, ...]

    @property
    def episodes(self) -> int:
        return sum(s.episodes for s in self.sessions)

    @property
    def successes(self) -> int:
        return sum(s.successes for s in self.sessions)

    @property
    def success_rate(self) -> float:
        n = self.episodes
        return self.successes / n if n else 0.0

    @property
    def session_ids(self) -> list[int]:
        return [s.session for s in self.sessions]


@dataclass(frozen=True, slots=True)
class Transition:
    before: ProfileState
    after: ProfileState
    reason: str
    sessions: int  # sessions recorded when it happened
    created: float


@dataclass(frozen=True, slots=True)
class SessionPlan:
    """How to run the profile's next session: its phase, first seed and session group."""

    phase: Phase
    first_seed: int
    episodes: int
    group: str


def check_transition(before: ProfileState, after: ProfileState) -> None:
    """InvalidTransition unless ``before → after`` is an edge of the lifecycle."""
    if after not in TRANSITIONS[before]:
        allowed = ", ".join(sorted(TRANSITIONS[before])) or "none"
        raise InvalidTransition(
            f"state: cannot move a profile from {before} to {after} (from {before}: {allowed})",
            field="state",
            value=after.value,
        )


def next_state(
    state: ProfileState,
    sessions: Sequence[SessionEvidence],
    config: ProfileConfig,
    round_: int = 0,
) -> tuple[ProfileState, str]:
    """The state the evidence calls for (one step) and why; the same state if none."""
    current = [s for s in sessions if s.round == round_]
    if state is S.DRAFT:
        return (S.BOOTSTRAP, "first session recorded") if sessions else (state, "")
    if state is S.BOOTSTRAP:
        boot = [s for s in current if s.phase is Phase.BOOTSTRAP]
        wins = sum(s.successes for s in sessions if s.phase is Phase.BOOTSTRAP)
        if len(boot) >= config.bootstrap_sessions and wins >= config.min_successful_episodes:
            return S.VALIDATING, f"{len(boot)} bootstrap sessions, {wins} successful episodes"
        return state, ""
    if state is S.VALIDATING:
        group = SessionGroup(Phase.VALIDATE, tuple(s for s in current if s.phase is Phase.VALIDATE))
        if len(group.sessions) < config.validation_sessions:
            return state, ""
        rate, bar = group.success_rate, config.validation_threshold
        if rate >= bar:
            return S.ACTIVE, f"validation success {rate:.2f} >= {bar:.2f} on held-out seeds"
        return S.BOOTSTRAP, f"validation success {rate:.2f} < {bar:.2f}: bootstrap again"
    if state is S.ACTIVE:
        release = [s for s in current if s.phase is Phase.RELEASE]
        if len(release) >= config.optimize_after_sessions:
            return S.OPTIMIZING, f"{len(release)} release sessions: enough for a parameter search"
        return state, ""
    return state, ""  # Optimizing ends explicitly (ScenarioProfile.finish_optimizing)


class ScenarioProfile:
    """A scenario profile: matchers, lifecycle, session groups and component learners."""

    FORMAT_VERSION: ClassVar[int] = 1

    def __init__(
        self,
        name: str,
        *,
        scenario: str,
        description: str = "",
        matchers: Sequence[KeywordMatcher] = (),
        config: ProfileConfig | None = None,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"name: expected a non-empty name, got {name!r}", field="name")
        self._name = name
        self.scenario = scenario
        self.description = description
        self._matchers = tuple(matchers)
        self.config = config or ProfileConfig()
        self.state = S.DRAFT
        self.round = 0
        self.sessions: list[SessionEvidence] = []
        self.history: list[Transition] = []
        self.dependencies = DependencyGraphLearner()
        self.exploration = ExplorationLearner()
        self.strategies = StrategyLearner()
        self.created = self.updated = time.time()

    def __repr__(self) -> str:
        return f"ScenarioProfile({self.name!r}, scenario={self.scenario!r}, state={self.state})"

    @property
    def name(self) -> str:
        return self._name

    @property
    def matchers(self) -> tuple[KeywordMatcher, ...]:
        return self._matchers

    @matchers.setter
    def matchers(self, value: Sequence[KeywordMatcher]) -> None:
        self._matchers = tuple(value)

    # -- evidence ---------------------------------------------------------------------
    @property
    def phase(self) -> Phase:
        """The phase the next session belongs to."""
        return PHASE_OF[self.state]

    def group(self, phase: Phase) -> SessionGroup:
        return SessionGroup(phase, tuple(s for s in self.sessions if s.phase is phase))

    def groups(self) -> dict[Phase, SessionGroup]:
        return {p: self.group(p) for p in Phase}

    def plan(self, episodes: int) -> SessionPlan:
        """The next session: its phase and first seed (each phase has its own seed range)."""
        check_range("episodes", episodes, lo=1)
        phase = self.phase
        used = sum(s.episodes for s in self.sessions if s.phase is phase)
        first = self.config.base_seed + _PHASE_INDEX[phase] * self.config.phase_seed_stride + used
        return SessionPlan(phase, first, episodes, f"profile:{self.name}:{phase}")

    def observe_episode(
        self, events: Sequence[ActionEvent], ended: EpisodeEnded, strategy: str = ""
    ) -> None:
        """Feed the per-episode learners (dependency graph, strategies)."""
        won = ended.outcome.kind is OutcomeKind.SUCCESS
        self.dependencies.observe_episode(events, won)
        if strategy:
            self.strategies.observe_episode(strategy, won, ended.actions)

    def record_session(self, evidence: SessionEvidence) -> list[Transition]:
        """Record a finished session in the current phase; returns the moves it caused."""
        if evidence.phase is not self.phase:
            raise InvalidTransition(
                f"phase: profile {self.name} is {self.state}, so its sessions are "
                f"{self.phase} sessions, not {evidence.phase}",
                field="phase",
                value=evidence.phase.value,
            )
        if evidence.session and any(s.session == evidence.session for s in self.sessions):
            raise ConfigError(
                f"session: session {evidence.session} is already recorded in profile {self.name}",
                field="session",
                value=evidence.session,
            )
        if evidence.phase is Phase.VALIDATE:
            self._check_held_out(evidence)
        self.sessions.append(replace(evidence, round=self.round))
        if evidence.params and evidence.episodes:
            self.exploration.observe_session(
                evidence.params,
                episodes=evidence.episodes,
                success_rate=evidence.success_rate,
                actions_per_episode=evidence.actions / evidence.episodes,
            )
        self.updated = time.time()
        return self.advance()

    def _check_held_out(self, evidence: SessionEvidence) -> None:
        seen = evidence.seeds
        for s in self.group(Phase.BOOTSTRAP).sessions:
            overlap = range(max(seen.start, s.seeds.start), min(seen.stop, s.seeds.stop))
            if overlap:
                raise ConfigError(
                    f"first_seed: validation must use held-out seeds, but seeds "
                    f"{overlap.start}..{overlap.stop - 1} were used by bootstrap session "
                    f"{s.session}",
                    field="first_seed",
                    value=evidence.first_seed,
                )

    def advance(self) -> list[Transition]:
        """Apply :func:`next_state` until the state is stable; returns the moves made."""
        moves: list[Transition] = []
        for _ in range(len(ProfileState)):
            after, reason = next_state(self.state, self.sessions, self.config, self.round)
            if after is self.state:
                break
            moves.append(self._move(after, reason))
        return moves

    def finish_optimizing(self, reason: str = "parameter search applied") -> Transition:
        """Optimizing → Active (InvalidTransition from any other state)."""
        return self._move(S.ACTIVE, reason)

    def _move(self, after: ProfileState, reason: str) -> Transition:
        check_transition(self.state, after)
        t = Transition(self.state, after, reason, len(self.sessions), time.time())
        if (self.state, after) in _BACKWARDS:
            self.round += 1
        self.state = after
        self.history.append(t)
        logger.info("profile %s: %s → %s (%s)", self.name, t.before, t.after, reason)
        return t

    # -- persistence ----------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        groups = self.groups()
        return {
            "state": self.state.value,
            "scenario": self.scenario,
            "round": self.round,
            "sessions": {p.value: len(g.sessions) for p, g in groups.items()},
            "success": {p.value: round(g.success_rate, 4) for p, g in groups.items()},
            "keywords": sorted({k for m in self.matchers for k in m.keywords}),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.FORMAT_VERSION,
            "name": self.name,
            "scenario": self.scenario,
            "description": self.description,
            "state": self.state.value,
            "round": self.round,
            "created": self.created,
            "updated": self.updated,
            "config": to_mapping(self.config),
            "matchers": [m.to_dict() for m in self.matchers],
            "sessions": [_evidence_to_dict(s) for s in self.sessions],
            "history": [_transition_to_dict(t) for t in self.history],
            "learners": {
                "dependencies": self.dependencies.to_dict(),
                "exploration": self.exploration.to_dict(),
                "strategies": self.strategies.to_dict(),
            },
        }

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "profile") -> ScenarioProfile:
        """Rebuild a profile; anything malformed is an ArtifactError naming ``where``."""
        if not isinstance(data, Mapping):
            raise ArtifactError(f"{where}: expected a JSON object, got {type(data).__name__}")
        P.expect_version(data, cls.FORMAT_VERSION, where=where)
        try:
            profile = cls(
                P.get_str(data, "name", where=where),
                scenario=P.get_str(data, "scenario", where=where),
                description=P.get_str(data, "description", where=where, default=""),
                matchers=[
                    KeywordMatcher.from_dict(m, where=f"{where}: matchers[{i}]")
                    for i, m in enumerate(P.get_list(data, "matchers", where=where, default=[]))
                ],
                config=from_mapping(
                    ProfileConfig,
                    P.get_map(data, "config", where=where, default={}),
                    where="config",
                ),
            )
            state = P.get_str(data, "state", where=where)
            if state not in set(ProfileState):
                raise ArtifactError(
                    f"{where}: field 'state' should be one of {', '.join(ProfileState)}, "
                    f"got {state!r}"
                )
            profile.state = ProfileState(state)
            profile.round = P.get_int(data, "round", where=where, default=0)
            profile.sessions = [
                _evidence_from_dict(s, f"sessions[{i}]")
                for i, s in enumerate(P.get_list(data, "sessions", where=where))
            ]
            profile.history = [
                _transition_from_dict(t) for t in P.get_list(data, "history", where=where)
            ]
        except (ConfigError, ValueError, TypeError, KeyError) as exc:
            raise ArtifactError(f"{where}: {exc}") from exc
        profile.created = P.get_float(data, "created", where=where)
        profile.updated = P.get_float(data, "updated", where=where)
        learners = P.get_map(data, "learners", where=where)
        profile.dependencies = DependencyGraphLearner.from_dict(
            P.get_map(learners, "dependencies", where=where), where=f"{where}: dependencies"
        )
        profile.exploration = ExplorationLearner.from_dict(
            P.get_map(learners, "exploration", where=where), where=f"{where}: exploration"
        )
        profile.strategies = StrategyLearner.from_dict(
            P.get_map(learners, "strategies", where=where), where=f"{where}: strategies"
        )
        return profile


def _evidence_to_dict(s: SessionEvidence) -> dict[str, Any]:
    d = to_mapping(s)
    assert isinstance(d, dict)
    return d


def _evidence_from_dict(data: Any, where: str) -> SessionEvidence:
    if not isinstance(data, Mapping):
        raise TypeError(f"{where}: a session record should be an object, got {data!r}")
    return from_mapping(SessionEvidence, data, where=where)


def _transition_to_dict(t: Transition) -> dict[str, Any]:
    return {
        "before": t.before.value,
        "after": t.after.value,
        "reason": t.reason,
        "sessions": t.sessions,
        "created": t.created,
    }


def _transition_from_dict(data: Any) -> Transition:
    if not isinstance(data, Mapping):
        raise TypeError(f"a transition should be an object, got {data!r}")
    before, after = ProfileState(data["before"]), ProfileState(data["after"])
    check_transition(before, after)
    return Transition(
        before, after, str(data["reason"]), int(data["sessions"]), float(data["created"])
    )
