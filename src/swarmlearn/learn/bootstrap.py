"""Running a profile's sessions: feeding its learners and moving it through its lifecycle.

:func:`bootstrap_profile` runs sessions of a scenario for a profile through
:func:`swarmlearn.session.run_session` — bootstrap sessions, then validation
sessions on held-out seeds, until the profile is Active or the session
budget is spent. After each session it records the evidence, stores the
session's learning snapshot (scope ``session``) and saves the profile, so an
interruption loses at most the session in flight. Each save is a lifecycle
candidate; the version saved when validation made the profile Active is
promoted (its champion).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from swarmlearn._config import check_range
from swarmlearn.core.bus import EventBus
from swarmlearn.core.events import ActionEvent, EpisodeEnded, Event
from swarmlearn.core.scenario import Scenario
from swarmlearn.learn.profile_store import ProfileStore
from swarmlearn.learn.profiles import (
    ProfileState,
    ScenarioProfile,
    SessionEvidence,
    SessionPlan,
    Transition,
)
from swarmlearn.learn.snapshot import LearningSnapshot, SnapshotScope, SnapshotStore
from swarmlearn.learn.stats import LearnedStats
from swarmlearn.store import Store

__all__ = ["BootstrapStep", "EpisodeFeed", "bootstrap_profile", "numeric_params"]

logger = logging.getLogger(__name__)


class EpisodeFeed:
    """Feeds a profile's episode learners from a swarm's bus.

    Pass it to ``run_session(..., subscribers=[EpisodeFeed(profile, strategy="ucb1")])``:
    it buffers each episode's action events and hands them over when the
    episode ends.
    """

    def __init__(self, profile: ScenarioProfile, *, strategy: str = "") -> None:
        self.profile = profile
        self.strategy = strategy
        self._events: dict[tuple[int, int], list[ActionEvent]] = {}

    def __call__(self, bus: EventBus[Event]) -> None:
        bus.subscribe(self.observe, name=f"profile:{self.profile.name}", inline=True)

    def observe(self, batch: Sequence[Event]) -> None:
        for e in batch:
            if isinstance(e, ActionEvent):
                self._events.setdefault((e.session, e.episode), []).append(e)
            elif isinstance(e, EpisodeEnded):
                events = self._events.pop((e.session, e.episode), [])
                self.profile.observe_episode(events, e, self.strategy)


@dataclass(frozen=True, slots=True)
class BootstrapStep:
    """One session run for a profile."""

    plan: SessionPlan
    evidence: SessionEvidence
    transitions: tuple[Transition, ...]
    snapshot_version: int
    profile_version: int


def numeric_params(params: Mapping[str, object]) -> dict[str, float]:
    """The numeric policy parameters (what the exploration learner tracks)."""
    return {
        k: float(v)
        for k, v in params.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def bootstrap_profile(
    profile: ScenarioProfile,
    scenario: Scenario,
    store: Store,
    *,
    sessions: int,
    episodes: int,
    on_step: Callable[[BootstrapStep], None] | None = None,
) -> list[BootstrapStep]:
    """Run up to ``sessions`` sessions of ``episodes`` tasks until the profile is Active."""
    from swarmlearn.session import run_session

    check_range("sessions", sessions, lo=1)
    check_range("episodes", episodes, lo=1)
    profiles, snapshots = ProfileStore(store), SnapshotStore(store)
    strategy = scenario.workers.policy
    params = numeric_params(scenario.workers.policy_params)
    steps: list[BootstrapStep] = []
    for _ in range(sessions):
        if profile.state in (ProfileState.ACTIVE, ProfileState.OPTIMIZING):
            break
        plan = profile.plan(episodes)
        stats = LearnedStats()

        def attach_stats(bus: EventBus[Event], stats: LearnedStats = stats) -> None:
            bus.subscribe(stats.observe, name="stats", inline=True)

        result = run_session(
            scenario,
            episodes=episodes,
            store=store,
            seed=plan.first_seed,
            group=plan.group,
            kind=f"profile-{plan.phase}",
            subscribers=[EpisodeFeed(profile, strategy=strategy), attach_stats],
        )
        evidence = SessionEvidence.from_episodes(
            result.session,
            result.episodes,
            phase=plan.phase,
            first_seed=plan.first_seed,
            strategy=strategy,
            params=params,
        )
        moves = profile.record_session(evidence)
        snap = LearningSnapshot.from_episodes(
            result.episodes,
            scope=SnapshotScope.SESSION,
            key=str(result.session),
            stats=stats,
            scenario=scenario.name,
            session_ids=[result.session],
        )
        stored = snapshots.save(snap, meta={"profile": profile.name, "phase": plan.phase.value})
        record = profiles.save(profile)
        activated = [t for t in moves if t.after is ProfileState.ACTIVE]
        if activated:
            profiles.promote_if_active(record, activated[-1].reason)
        step = BootstrapStep(plan, evidence, tuple(moves), stored.version, record.version)
        steps.append(step)
        if on_step is not None:
            on_step(step)
    return steps
