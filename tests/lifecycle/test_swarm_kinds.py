"""Snapshots, offline models and profiles on the lifecycle, with real swarm sessions."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmlearn.core.events import EpisodeEnded
from swarmlearn.core.scenario import Scenario, load_scenario
from swarmlearn.errors import ArtifactError
from swarmlearn.learn.kinds import (
    LiveChampions,
    OfflineModelKind,
    SnapshotKind,
    champion_policies,
    champions,
    replay_stats,
)
from swarmlearn.learn.policies import LearningPolicies
from swarmlearn.learn.snapshot import LearningSnapshot, SnapshotScope, SnapshotStore
from swarmlearn.learn.stats import LearnedStats
from swarmlearn.lifecycle import (
    ArtifactKind,
    ArtifactState,
    Lifecycle,
    Lineage,
    ProduceContext,
    Produced,
    run_gate,
)
from swarmlearn.session import run_session
from swarmlearn.store import SqlStore


@pytest.fixture
def scenario() -> Scenario:
    return load_scenario("examples/troubleshooting.toml", variant="heldout").override(
        workers={"policy": "adaptive"})


@pytest.fixture
def st(tmp_path: Path) -> SqlStore:
    return SqlStore(f"sqlite:///{tmp_path}/s.db")


def record(st: SqlStore, sc: Scenario, sessions: int, first: int = 10_000) -> None:
    for i in range(sessions):
        seeds = list(range(first + 10 * i, first + 10 * i + 10))
        run_session(sc, store=st, seeds=seeds, policies=champion_policies(st, sc))


def test_kinds_implement_the_protocol(st: SqlStore, scenario: Scenario) -> None:
    for kind in (SnapshotKind(scenario, st), OfflineModelKind(scenario, st)):
        assert isinstance(kind, ArtifactKind)
    assert SnapshotKind(scenario, st).scope == "scenario:troubleshooting[heldout]"


def test_replay_rebuilds_what_the_bus_fed(st: SqlStore, scenario: Scenario) -> None:
    live = LearnedStats()
    policies = LearningPolicies("adaptive")

    def attach(bus):  # type: ignore[no-untyped-def]
        bus.subscribe(live.observe, name="copy", inline=True)

    run = run_session(scenario, store=st, seeds=list(range(10_000, 10_005)), policies=policies,
                      subscribers=[attach])
    again, episodes, covered = replay_stats(st, [run.session])
    assert len(episodes) == 5 and covered == {run.session: episodes[-1].id}
    assert again.to_dict() == live.to_dict()
    # incremental: after the first 2 episodes, only the other 3 are fed
    rest, fed, part = replay_stats(st, [run.session], after={run.session: episodes[1].id})
    assert len(fed) == 3 and part == covered and 0 < rest.events_seen < live.events_seen
    head, _, _ = replay_stats(st, [])
    assert head.events_seen == 0


def test_snapshot_gate_promotes_learned_over_baseline(st: SqlStore, scenario: Scenario) -> None:
    record(st, scenario, 3)
    kind = SnapshotKind(scenario, st)
    life = Lifecycle(st, kind.name, kind.scope)
    v = life.register(kind.produce(ProduceContext(store=st, scope=kind.scope, champion=None)))
    assert v.lineage.inputs["episodes"] == 30 and len(v.lineage.inputs["sessions"]) == 3
    assert v.lineage.config["practice_sessions"] == 10
    run = run_gate(life, kind, v, tasks=30)
    assert run.decision.promote, run.decision.reason
    assert run.version.state is ArtifactState.PROMOTED
    assert run.decision.challenger.success_rate > run.decision.champion.success_rate
    live = champions(st, scenario)
    assert live.stats is not None and live.snapshot_id == v.id
    # the next version starts from the champion and covers only what was recorded since
    with pytest.raises(ArtifactError, match="no episodes recorded since"):
        kind.produce(ProduceContext(store=st, scope=kind.scope, champion=life.champion()))
    record(st, scenario, 1, first=20_000)
    v2 = kind.produce(ProduceContext(store=st, scope=kind.scope, champion=life.champion()))
    assert v2.lineage.metrics["new_episodes"] == 10 and v2.lineage.parent == v.id
    # an equal challenger (the champion itself, registered again) is rejected, kept with numbers
    same = life.register(Produced(payload=v.payload, summary={}, lineage=Lineage()))
    again = run_gate(life, kind, same, tasks=30)
    assert not again.decision.promote and again.version.state is ArtifactState.REJECTED
    assert again.decision.ties == 30
    assert again.version.gate is not None and life.champion().id == v.id  # type: ignore[union-attr]


def test_offline_model_kind_produces_and_gates(st: SqlStore, scenario: Scenario) -> None:
    record(st, scenario, 2)
    kind = OfflineModelKind(scenario, st, trials=2)
    life = Lifecycle(st, kind.name, kind.scope)
    v = life.register(kind.produce(ProduceContext(store=st, scope=kind.scope, champion=None)))
    assert v.meta["episodes"] == 20 and v.lineage.config["trials"] == 2
    run = run_gate(life, kind, v, tasks=20)
    assert run.version.state in (ArtifactState.PROMOTED, ArtifactState.REJECTED)
    assert run.decision.paired == 20


def test_live_session_picks_up_a_new_champion_at_the_next_episode(
        st: SqlStore, scenario: Scenario) -> None:
    record(st, scenario, 3)
    kind = SnapshotKind(scenario, st)
    life = Lifecycle(st, kind.name, kind.scope)
    produced = kind.produce(ProduceContext(store=st, scope=kind.scope, champion=None))
    policies = champion_policies(st, scenario)  # no champion yet: empty statistics
    assert policies.state.stats.events_seen == 0
    live = LiveChampions(st, scenario, policies, poll_s=0.0)

    def promote_after_first(bus):  # type: ignore[no-untyped-def]
        def observe(batch):  # type: ignore[no-untyped-def]
            if any(isinstance(e, EpisodeEnded) and e.episode == 0 for e in batch):
                life.promote(life.register(produced), reason="test")  # another process's work
        bus.subscribe(observe, name="promoter", inline=True)

    run_session(scenario, store=st, seeds=[20_000, 20_001, 20_002], policies=policies,
                subscribers=[live, promote_after_first])
    assert live.applied == 1
    notes = st.notes(kind="champion_applied")
    assert len(notes) == 1 and notes[0].data["version"] == 1
    assert policies.state.stats.events_seen > 100  # the champion's counts, and learning on


def test_snapshot_store_saves_through_the_lifecycle(st: SqlStore) -> None:
    snaps = SnapshotStore(st)
    snap = LearningSnapshot(scope=SnapshotScope.SCENARIO, key="t", stats=LearnedStats(),
                            session_ids=(3,), sessions=1)
    stored = snaps.save(snap)
    assert stored.status == "candidate"
    log = st.learning_log(kind="snapshot", scope="scenario:t")
    assert [r.step for r in log] == ["produce"]
    rec = st.get_artifact("snapshot", "scenario:t")
    assert rec.meta["lineage"]["inputs"]["session_ids"] == [3]
    assert snaps.champion(SnapshotScope.SCENARIO, "t") is None
    Lifecycle(st, "snapshot", "scenario:t").promote(Lifecycle(st, "snapshot", "scenario:t").get(1))
    champ = snaps.champion(SnapshotScope.SCENARIO, "t")
    assert champ is not None and champ.version == 1


def test_bootstrap_promotes_the_profile_version_that_became_active(
        st: SqlStore, scenario: Scenario) -> None:
    from swarmlearn.learn.bootstrap import bootstrap_profile
    from swarmlearn.learn.profile_store import PROFILE_KIND, ProfileStore
    from swarmlearn.learn.profiles import ProfileConfig, ProfileState, ScenarioProfile

    sc = load_scenario("examples/troubleshooting.toml").override(workers={"policy": "ucb1"})
    profile = ScenarioProfile("ts", scenario="troubleshooting",
                              config=ProfileConfig(bootstrap_sessions=1, validation_threshold=0.1))
    bootstrap_profile(profile, sc, st, sessions=4, episodes=5)
    assert profile.state is ProfileState.ACTIVE
    champ = ProfileStore(st).champion("ts")
    assert champ is not None and champ.state is ProfileState.ACTIVE
    steps = [r.step for r in st.learning_log(kind=PROFILE_KIND, scope="ts")]
    assert steps.count("produce") >= 2 and steps[-1] == "promote"
