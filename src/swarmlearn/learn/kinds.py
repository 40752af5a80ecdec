"""The swarm's learned artifacts as lifecycle kinds: snapshots and offline models.

Both implement :class:`swarmlearn.lifecycle.ArtifactKind` for one scenario
(its label, e.g. ``troubleshooting[heldout]``, is the lineage):

* :class:`SnapshotKind` (kind ``snapshot``, scope ``scenario:<label>``):
  ``produce`` starts from the champion's statistics, replays the events
  recorded since (in order, exactly as the bus fed them live: what the online
  level learned, rebuilt from the store — one source of truth; the lineage
  says which episodes each version covers), then **practises**: chained
  sessions on the recorded task seeds, each starting where the previous one
  ended (as ``eval --learning`` chains sessions). Practice never sees a
  held-out seed; the gate then judges the result on held-out seeds;
* :class:`OfflineModelKind` (kind ``offline_model``, scope ``<label>``):
  ``produce`` runs the :class:`~swarmlearn.learn.offline.OfflineAnalyzer` on
  those sessions, starting from the champion model and the champion
  snapshot's statistics.

``evaluate`` runs the learning swarm on the held-out seeds, each task in a
session of its own that starts from the artifact (so a task measures the
artifact, not what was learned on the gate's earlier tasks), the other
kind's champion held fixed on both sides. ``apply`` and ``revert`` have
nothing to do: the consumers read the ``champion`` aliases —
:func:`champion_policies` when a session starts, and :class:`LiveChampions`
in a running session at every episode end.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from swarmlearn._config import check_range
from swarmlearn.core.bus import EventBus
from swarmlearn.core.events import EpisodeEnded, Event
from swarmlearn.core.scenario import Scenario
from swarmlearn.errors import ArtifactError
from swarmlearn.learn import _payload as P
from swarmlearn.learn.offline import (
    ARTIFACT_KIND as OFFLINE_KIND,
)
from swarmlearn.learn.offline import (
    FORMAT_VERSION as OFFLINE_FORMAT,
)
from swarmlearn.learn.offline import (
    AnalyzerConfig,
    OfflineAnalyzer,
    OfflineModel,
    policies_from,
)
from swarmlearn.learn.policies import LearningPolicies, LearningState
from swarmlearn.learn.snapshot import (
    SNAPSHOT_KIND,
    LearningSnapshot,
    SnapshotScope,
    SnapshotStore,
    snapshot_name,
)
from swarmlearn.learn.stats import LearnedStats
from swarmlearn.lifecycle import (
    Alias,
    ArtifactVersion,
    HeldOutTasks,
    Lifecycle,
    Lineage,
    ProduceContext,
    Produced,
    TaskResult,
)
from swarmlearn.store import EventQuery, Store
from swarmlearn.types import OutcomeKind

__all__ = [
    "NOT_LEARNED_FROM",
    "LiveChampions",
    "OfflineModelKind",
    "SnapshotKind",
    "champion_policies",
    "champions",
    "evaluate_swarm",
    "learning_sessions",
    "practice",
    "replay_stats",
    "task_worker_seed",
]

logger = logging.getLogger(__name__)

#: session kinds whose episodes are never training data (the daemon's own record)
NOT_LEARNED_FROM = ("daemon",)


def learning_sessions(store: Store, scenario: Scenario, *, limit: int = 200) -> list[int]:
    """The recorded sessions of ``scenario`` (same variant) to learn from, oldest first."""
    found = store.sessions(scenario=scenario.name, limit=limit * 4)
    ids = [s.id for s in found if s.variant == scenario.variant
           and s.kind not in NOT_LEARNED_FROM]
    return sorted(ids)[-limit:]


def replay_stats(store: Store, sessions: Sequence[int], stats: LearnedStats | None = None, *,
                 after: Mapping[int, int] | None = None,
                 ) -> tuple[LearnedStats, list[EpisodeEnded], dict[int, int]]:
    """Feed the recorded events and episode ends of ``sessions`` (in id order) into
    ``stats`` (default: new), exactly as the bus fed them live.

    ``after`` maps a session to the last episode-end id already fed (what a
    previous snapshot covered): only what follows is fed. Events of an episode not
    yet ended are left for later. Returns the statistics, the episodes fed and the
    new coverage (session → last episode-end id fed).
    """
    out = stats if stats is not None else LearnedStats()
    done = dict(after or {})
    episodes: list[EpisodeEnded] = []
    for sid in sessions:
        start = done.get(sid, -1)
        ends = [e for e in store.episodes(session=sid) if e.id > start]
        if not ends:
            continue
        episodes.extend(ends)
        last = ends[-1].id
        i = 0
        batch: list[Event] = []
        for e in store.events(EventQuery(session=sid, after_id=start if start >= 0 else None,
                                         before_id=last)):
            while i < len(ends) and ends[i].id < e.id:
                batch.append(ends[i])
                i += 1
            batch.append(e)
            if len(batch) >= 4096:
                out.observe(batch)
                batch = []
        batch.extend(ends[i:])
        out.observe(batch)
        done[sid] = last
    return out, episodes, done


def practice(scenario: Scenario, stats: LearnedStats, seeds: Sequence[int], *, sessions: int,
             episodes: int, strategy: str, worker_seed: int = 0) -> LearnedStats:
    """Chained practice sessions on recorded task seeds (nothing recorded): each session
    starts from the statistics the previous one ended with. Returns the last ones."""
    from swarmlearn.session import run_session

    if not seeds or sessions < 1:
        return stats
    sc = scenario.override(workers={"policy": strategy})
    for k in range(sessions):
        chosen = [seeds[(k * episodes + j) % len(seeds)] for j in range(episodes)]
        policies = policies_from(stats, None, strategy)
        run_session(sc, seeds=chosen, worker_seed=worker_seed + k, store=None,
                    policies=policies)
        stats = policies.state.stats
    return stats


@dataclass(frozen=True, slots=True)
class Champions:
    """The live snapshot statistics and offline model of a scenario (either may be None)."""

    stats: LearnedStats | None
    model: OfflineModel | None
    snapshot_id: int | None
    model_id: int | None


def _decode_stats(version: ArtifactVersion | None) -> LearnedStats | None:
    return SnapshotStore.decode(version.record).snapshot.stats if version is not None else None


def _decode_model(version: ArtifactVersion | None) -> OfflineModel | None:
    if version is None:
        return None
    if version.record.format_version != OFFLINE_FORMAT:
        raise ArtifactError(f"{version.label}: format_version {version.record.format_version} "
                            f"is not supported (expected {OFFLINE_FORMAT})")
    try:
        text = version.payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ArtifactError(f"{version.label}: payload is not UTF-8 JSON ({exc})") from exc
    return OfflineModel.from_dict(P._parse(text, version.label), where=version.label)


def champions(store: Store, scenario: Scenario) -> Champions:
    """The champions of ``scenario``'s snapshot and offline-model lineages."""
    snap = Lifecycle(store, SNAPSHOT_KIND, _snapshot_scope(scenario)).champion()
    model = Lifecycle(store, OFFLINE_KIND, scenario.label).champion()
    return Champions(_decode_stats(snap), _decode_model(model),
                     snap.id if snap else None, model.id if model else None)


def champion_policies(store: Store, scenario: Scenario,
                      strategy: str | None = None) -> LearningPolicies:
    """Policies for a session of ``scenario`` that start from its champions."""
    live = champions(store, scenario)
    return policies_from(live.stats, live.model, strategy or scenario.workers.policy)


def _snapshot_scope(scenario: Scenario) -> str:
    return snapshot_name(SnapshotScope.SCENARIO, scenario.label)


def task_worker_seed(tasks: HeldOutTasks, seed: int) -> int:
    """The worker seed of one held-out task (see :func:`evaluate_swarm`)."""
    return (tasks.worker_seed * 1_000_003 + seed * 7_919) % (2**31 - 1)


def evaluate_swarm(scenario: Scenario, tasks: HeldOutTasks, stats: LearnedStats | None,
                   model: OfflineModel | None, strategy: str) -> list[TaskResult]:
    """Run the learning swarm on each held-out seed in a session of its own, starting
    from ``stats`` and ``model``; nothing is recorded.

    Each task gets its own worker seed, derived from ``tasks.worker_seed`` and the
    task seed: the same on both sides of a gate (common random numbers), different
    from task to task (one worker seed for every task would give a side a shared
    luck that the paired test does not expect: measured, 6.0% false promotions at
    alpha 5% on the real swarm with it).
    """
    from swarmlearn.session import run_session

    sc = scenario.override(workers={"policy": strategy})
    results = []
    for seed in tasks.seeds:
        policies = policies_from(stats, model, strategy)
        run = run_session(sc, seeds=[seed], worker_seed=task_worker_seed(tasks, seed),
                          store=None, policies=policies)
        ended = run.episodes[0]
        results.append(TaskResult(seed, ended.outcome.kind is OutcomeKind.SUCCESS,
                                  float(ended.actions)))
    return results


class _SwarmKind:
    """What the two swarm kinds share: the scenario, the store, the strategy."""

    name: str
    scope: str

    def __init__(self, scenario: Scenario, store: Store, *, strategy: str = "adaptive",
                 max_sessions: int = 200) -> None:
        check_range("max_sessions", max_sessions, lo=1)
        self.scenario = scenario
        self.store = store
        self.strategy = strategy
        self.max_sessions = max_sessions

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.scope})"

    def apply(self, version: ArtifactVersion | None) -> None:
        """Nothing to do: sessions read the champion alias (module docstring)."""

    def revert(self, to: ArtifactVersion | None) -> None:
        """Nothing to do: sessions read the champion alias (module docstring)."""

    def _inputs(self, sessions: Sequence[int], episodes: Sequence[EpisodeEnded]
                ) -> dict[str, Any]:
        return {"scenario": self.scenario.label, "sessions": list(sessions),
                "episodes": len(episodes),
                "last_episode": max((e.id for e in episodes), default=0)}


class SnapshotKind(_SwarmKind):
    """The online statistics of a scenario, rebuilt from its recorded events."""

    name = SNAPSHOT_KIND

    def __init__(self, scenario: Scenario, store: Store, *, strategy: str = "adaptive",
                 max_sessions: int = 200, practice_sessions: int = 10,
                 practice_episodes: int = 10) -> None:
        super().__init__(scenario, store, strategy=strategy, max_sessions=max_sessions)
        check_range("practice_sessions", practice_sessions, lo=0)
        check_range("practice_episodes", practice_episodes, lo=1)
        self.scope = _snapshot_scope(scenario)
        self.practice_sessions = practice_sessions
        self.practice_episodes = practice_episodes

    def produce(self, ctx: ProduceContext) -> Produced:
        sessions = learning_sessions(self.store, self.scenario, limit=self.max_sessions)
        if not sessions:
            raise ArtifactError(f"{self.scope}: no recorded sessions to learn from")
        champion = ctx.champion
        base = _decode_stats(champion) if champion is not None else None
        covered: dict[int, int] = {}
        if champion is not None:
            covered = {int(k): int(v) for k, v in
                       champion.lineage.inputs.get("covered", {}).items()}
        stats, new, covered = replay_stats(self.store, sessions, base.copy() if base else None,
                                           after=covered)
        if not new:
            raise ArtifactError(f"{self.scope}: no episodes recorded since the champion")
        seeds = sorted({e.seed for e in new})
        parent = champion.version if champion is not None else 0
        stats = practice(self.scenario, stats, seeds, sessions=self.practice_sessions,
                         episodes=self.practice_episodes, strategy=self.strategy,
                         worker_seed=1000 * parent)
        every = [e for sid in sessions for e in self.store.episodes(session=sid)]
        snap = LearningSnapshot.from_episodes(
            every, scope=SnapshotScope.SCENARIO, key=self.scenario.label, stats=stats,
            scenario=self.scenario.label, session_ids=sessions)
        inputs = {**self._inputs(sessions, new), "covered": {str(k): v for k, v in
                                                              covered.items()}}
        return Produced(
            payload=P.encode(snap.to_dict()), format_version=LearningSnapshot.FORMAT_VERSION,
            summary=snap.summary(),
            lineage=Lineage(parent=champion.id if champion else None, inputs=inputs,
                            config={"max_sessions": self.max_sessions,
                                    "practice_sessions": self.practice_sessions,
                                    "practice_episodes": self.practice_episodes,
                                    "from": "champion + new events + practice"},
                            metrics={"events": stats.events_seen, "new_episodes": len(new),
                                     "practice_seeds": len(seeds),
                                     "success_rate": round(snap.success_rate, 4)}))

    def evaluate(self, version: ArtifactVersion | None, tasks: HeldOutTasks
                 ) -> list[TaskResult]:
        model = champions(self.store, self.scenario).model  # held fixed on both sides
        return evaluate_swarm(self.scenario, tasks, _decode_stats(version), model,
                              self.strategy)


class OfflineModelKind(_SwarmKind):
    """The offline model of a scenario (parameters, action order, paths, dependencies)."""

    name = OFFLINE_KIND

    def __init__(self, scenario: Scenario, store: Store, *, strategy: str = "adaptive",
                 max_sessions: int = 50, trials: int = 16) -> None:
        super().__init__(scenario, store, strategy=strategy, max_sessions=max_sessions)
        check_range("trials", trials, lo=0)
        self.scope = scenario.label
        self.trials = trials

    def produce(self, ctx: ProduceContext) -> Produced:
        sessions = learning_sessions(self.store, self.scenario, limit=self.max_sessions)
        if not sessions:
            raise ArtifactError(f"{self.scope}: no recorded sessions to analyse")
        live = champions(self.store, self.scenario)
        analyzer = OfflineAnalyzer(self.store, AnalyzerConfig(trials=self.trials,
                                                              max_sessions=self.max_sessions))
        model = analyzer.analyze(self.scenario, stats=live.stats, sessions=sessions,
                                 previous=live.model)
        model.scenario = self.scenario.label
        return analyzer.produced(model, sessions=sessions, parent=live.model_id,
                                 stats_from=live.snapshot_id)

    def evaluate(self, version: ArtifactVersion | None, tasks: HeldOutTasks
                 ) -> list[TaskResult]:
        stats = champions(self.store, self.scenario).stats  # held fixed on both sides
        return evaluate_swarm(self.scenario, tasks, stats, _decode_model(version),
                              self.strategy)


class LiveChampions:
    """A session subscriber: at an episode end, apply champions promoted since the
    session started (or since the last check) to the running policies.

    ``run_session(sc, policies=p, subscribers=[LiveChampions(store, sc, p)])``.
    The store is asked at most every ``poll_s`` seconds (one small query). A new
    snapshot champion replaces the statistics (the running session then learns on
    from it); a new offline model sets the parameters and action order (the
    strategy, fixed when workers are built, stays). Each pickup is a
    ``champion_applied`` note in the session.
    """

    def __init__(self, store: Store, scenario: Scenario, policies: LearningPolicies, *,
                 poll_s: float = 1.0) -> None:
        self.store = store
        self.scenario = scenario
        self.state: LearningState = policies.state
        self.poll_s = poll_s
        self.applied = 0
        self._checked = 0.0
        self._seen = self._ids()

    def _ids(self) -> dict[str, int]:
        out = {}
        for kind, scope in ((SNAPSHOT_KIND, _snapshot_scope(self.scenario)),
                            (OFFLINE_KIND, self.scenario.label)):
            for a in self.store.aliases(kind, scope):
                if a.alias == Alias.CHAMPION:
                    out[kind] = a.artifact_id
        return out

    def __call__(self, bus: EventBus[Event]) -> None:
        bus.subscribe(self.observe, name="live-champions", inline=True)

    def observe(self, batch: Sequence[Event]) -> None:
        ended = next((e for e in batch if isinstance(e, EpisodeEnded)), None)
        now = time.monotonic()
        if ended is None or now - self._checked < self.poll_s:
            return
        self._checked = now
        ids = self._ids()
        if ids == self._seen:
            return
        for kind, aid in ids.items():
            if self._seen.get(kind) != aid:
                self._apply(kind, ArtifactVersion(self.store.get_artifact_by_id(aid)), ended)
        self._seen = ids

    def _apply(self, kind: str, version: ArtifactVersion, ended: EpisodeEnded) -> None:
        state = self.state
        if kind == SNAPSHOT_KIND:
            fresh = _decode_stats(version)
            assert fresh is not None
            # the bus feeds ``state.stats`` by reference: load the new counts into it
            vars(state.stats).update(vars(fresh))
            state.configure(state.config)
        else:
            model = _decode_model(version)
            assert model is not None
            state.configure(model.policy_config(state.config))
            state.rank = {name: i for i, name in enumerate(model.action_order)}
        self.applied += 1
        logger.info("session %d: applied %s", ended.session, version.label)
        state.note(None, 0, "champion_applied", f"{version.label} applied at episode end",
                   {"artifact_id": version.id, "kind": kind, "version": version.version,
                    "after_episode": ended.episode})
