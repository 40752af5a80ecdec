"""The lifecycle in the store (SQLite and PostgreSQL): states, aliases, history, rollback."""

from __future__ import annotations

import pytest

from swarmlearn.errors import ArtifactError, StoreError
from swarmlearn.lifecycle import (
    Alias,
    ArtifactState,
    GateConfig,
    Lifecycle,
    LifecycleConfig,
    Lineage,
    Produced,
    TaskResult,
    gate,
)
from swarmlearn.store import SCHEMA_VERSION, LogEntry, SqlStore, StatusUpdate

S = ArtifactState


def produced(n: int) -> Produced:
    return Produced(payload=f'{{"n": {n}}}'.encode(), summary={"n": n},
                    lineage=Lineage(inputs={"sessions": [n]}, config={"k": 1}))


def won(n: int = 30) -> tuple[list[TaskResult], list[TaskResult]]:
    return ([TaskResult(i, False, 0.0) for i in range(n)],
            [TaskResult(i, True, 5.0) for i in range(n)])


def promote_new(life: Lifecycle, n: int):  # type: ignore[no-untyped-def]
    v = life.start_evaluation(life.register(produced(n)))
    return life.decide(v, gate(*won()))


def test_schema_has_the_lifecycle_tables(store: SqlStore) -> None:
    assert SCHEMA_VERSION >= 3 and store.schema_version() == SCHEMA_VERSION
    assert store.aliases() == [] and store.learning_log() == []


def test_produce_evaluate_promote_sets_the_champion(store: SqlStore) -> None:
    life = Lifecycle(store, "snapshot", "t[heldout]")
    assert life.champion() is None
    v = life.register(produced(1))
    assert v.state is S.CANDIDATE and v.version == 1
    assert v.lineage.inputs == {"sessions": [1]} and v.lineage.code_version
    v = life.start_evaluation(v)
    assert v.state is S.EVALUATING and life.challenger() is not None
    v = life.decide(v, gate(*won()))
    assert v.state is S.PROMOTED and v.gated_rate == 1.0
    champ = life.champion()
    assert champ is not None and champ.id == v.id and champ.payload == b'{"n": 1}'
    assert life.challenger() is None
    steps = [r.step for r in life.log()][::-1]
    assert steps == ["produce", "evaluate", "promote"]


def test_worse_challenger_is_rejected_and_kept_with_its_numbers(store: SqlStore) -> None:
    life = Lifecycle(store, "snapshot", "t")
    first = promote_new(life, 1)
    v = life.start_evaluation(life.register(produced(2)))
    base, chal = won()
    v = life.decide(v, gate(chal, base))  # the challenger is the bad side
    assert v.state is S.REJECTED and v.gate is not None and v.gate["promote"] is False
    assert v.gate["challenger"]["successes"] == 0
    assert life.champion().id == first.id  # type: ignore[union-attr]
    assert life.get(2).payload == b'{"n": 2}'  # kept


def test_history_keeps_five_and_retires_the_rest(store: SqlStore) -> None:
    life = Lifecycle(store, "offline_model", "t", LifecycleConfig(history=5))
    versions = [promote_new(life, i) for i in range(8)]
    hist = life.history()
    assert [v.version for v in hist] == [7, 6, 5, 4, 3]
    states = {v.version: v.state for v in life.versions()}
    assert states[8] is S.PROMOTED and states[1] is S.RETIRED and states[2] is S.RETIRED
    assert life.champion().version == versions[-1].version  # type: ignore[union-attr]


def test_rollback_goes_back_one_champion_and_records_why(store: SqlStore) -> None:
    life = Lifecycle(store, "snapshot", "t")
    promote_new(life, 1)
    promote_new(life, 2)
    back = life.rollback("live success fell", automatic=True)
    assert back is not None and back.version == 1
    assert life.champion().version == 1  # type: ignore[union-attr]
    assert life.get(2).state is S.RETIRED and "live success fell" in life.get(2).meta["retired"]
    entry = life.log(limit=1)[0]
    assert entry.step == "rollback" and entry.data["automatic"] is True and entry.data["to"] == 1
    assert life.rollback("again") is None  # the baseline: no champion
    assert life.champion() is None
    with pytest.raises(ArtifactError, match="no champion"):
        life.rollback("nothing left")


def test_manual_promote_and_rollback_to_a_chosen_version(store: SqlStore) -> None:
    life = Lifecycle(store, "snapshot", "t")
    for i in range(3):
        promote_new(life, i)
    v1 = life.get(1)
    back = life.rollback("by hand", to=v1)
    assert back is not None and back.version == 1 and life.get(3).state is S.RETIRED
    cand = life.register(produced(9))
    promoted = life.promote(cand, reason="a person said so")
    assert promoted.state is S.PROMOTED and life.champion().version == 4  # type: ignore[union-attr]
    with pytest.raises(ArtifactError):
        life.promote(life.get(3))  # retired: not a previous champion


def test_bad_moves_are_refused_and_change_nothing(store: SqlStore) -> None:
    life = Lifecycle(store, "snapshot", "t")
    v = life.register(produced(1))
    with pytest.raises(ArtifactError, match="cannot move"):
        life.decide(v, gate(*won()))  # not evaluating
    assert life.get(1).state is S.CANDIDATE
    # compare-and-set: a concurrent change makes the stale move fail as a whole
    stale = life.start_evaluation(v)
    life.fail(stale, "trainer crashed")
    with pytest.raises(StoreError, match="expected evaluating"):
        life.decide(stale, gate(*won()))
    assert life.champion() is None and life.get(1).state is S.REJECTED


def test_record_lifecycle_is_all_or_nothing(store: SqlStore) -> None:
    life = Lifecycle(store, "snapshot", "t")
    v = life.register(produced(1))
    before = len(store.learning_log())
    with pytest.raises(StoreError):
        store.record_lifecycle(
            LogEntry(kind="snapshot", scope="t", step="promote"),
            updates=[StatusUpdate(artifact_id=v.id, status="promoted"),
                     StatusUpdate(artifact_id=99999, status="promoted")],
            aliases={Alias.CHAMPION: v.id})
    assert len(store.learning_log()) == before
    assert life.get(1).state is S.CANDIDATE and store.aliases() == []


def test_recover_rejects_interrupted_evaluations(store: SqlStore) -> None:
    life = Lifecycle(store, "snapshot", "t")
    life.start_evaluation(life.register(produced(1)))
    assert life.recover() == [1]
    assert life.get(1).state is S.REJECTED and life.challenger() is None
    assert life.recover() == []


def test_held_out_seeds_are_fresh_for_each_gate(store: SqlStore) -> None:
    life = Lifecycle(store, "snapshot", "t", LifecycleConfig(gate=GateConfig(min_tasks=5)))
    first = life.held_out_tasks(10)
    promote_new(life, 1)
    second = life.held_out_tasks(10)
    assert set(first.seeds).isdisjoint(second.seeds)
    assert min(first.seeds) >= life.config.held_out_base


def test_lineages_are_separate(store: SqlStore) -> None:
    a, b = Lifecycle(store, "snapshot", "a"), Lifecycle(store, "snapshot", "b")
    promote_new(a, 1)
    assert b.champion() is None and a.champion() is not None
    assert [x.scope for x in store.aliases("snapshot")] == ["a"]


def test_episode_filters(store: SqlStore) -> None:
    from swarmlearn.core.events import EpisodeEnded
    from swarmlearn.types import Success

    s1 = store.open_session(scenario="t", variant="heldout", kind="run")
    s2 = store.open_session(scenario="t", variant="", kind="run")
    s3 = store.open_session(scenario="t", variant="heldout", kind="gate")
    rows = []
    for s in (s1, s2, s3):
        for i in range(3):
            rows.append(EpisodeEnded((s << 32) | i, s, "t:1", "", i, i, Success(1.0), 3, 4,
                                     0.1, 0, 0, {}, 100.0 + i))
    store.write(rows)
    assert store.count_episodes(scenario="t") == 9
    assert store.count_episodes(scenario="t", variant="heldout") == 6
    assert store.count_episodes(scenario="t", variant="heldout", exclude_kinds=["gate"]) == 3
    assert store.count_episodes(scenario="t", since=101.5) == 3
    eps = store.episodes(scenario="t", variant="heldout", exclude_kinds=["gate"], since=101.0)
    assert [e.session for e in eps] == [s1, s1]


def test_followers_wake_on_new_episodes(store: SqlStore) -> None:
    import threading
    import time

    from swarmlearn.core.events import EpisodeEnded
    from swarmlearn.types import Success

    sid = store.open_session(scenario="t")
    if store.dialect != "postgresql":
        t0 = time.monotonic()
        assert store.wait_for_episodes(0.2) is False  # SQLite: the follower polls
        assert time.monotonic() - t0 >= 0.19
        return
    assert store.wait_for_episodes(0.1) is False  # listening, nothing yet
    writer = SqlStore(store.engine.url.render_as_string(hide_password=False))

    def write() -> None:
        time.sleep(0.3)
        writer.write([EpisodeEnded((sid << 32) | 1, sid, "t:1", "", 0, 1, Success(1.0), 1, 1,
                                   0.1, 0, 0, {}, time.time())])

    thread = threading.Thread(target=write)
    t0 = time.monotonic()
    thread.start()
    assert store.wait_for_episodes(10.0) is True
    assert time.monotonic() - t0 < 5.0
    thread.join()
    writer.close()
