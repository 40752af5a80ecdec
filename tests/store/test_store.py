"""The store on SQLite and PostgreSQL: the same suite runs on both."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from swarmlearn.core.actions import ActionResult
from swarmlearn.core.events import ActionEvent, EpisodeEnded, EventIds, LLMCallEvent
from swarmlearn.errors import SchemaError, StoreError
from swarmlearn.store import SCHEMA_VERSION, EventQuery, SqlStore, open_store
from swarmlearn.types import Failure, Success, Timeout, Unknown


def _event(
    ids: EventIds, i: int, *, success: bool = True, action: str = "CheckStatus"
) -> ActionEvent:
    return ActionEvent(
        ids.next(),
        ids.session,
        "task:1",
        "g",
        0,
        i,
        i % 3,
        action,
        f"svc{i % 4}",
        (("fix", "E42"),) if i % 2 else (),
        ActionResult(
            success,
            f"out {i} ünïcødé",
            "" if success else "boom",
            (f"svc{i}.status=degraded",) if success else (),
            i % 7 == 0,
        ),
        0.001 * i,
        "unchecked",
        time.time(),
    )


def _episode(ids: EventIds, outcome: object, first: int, last: int) -> EpisodeEnded:
    return EpisodeEnded(
        ids.next(),
        ids.session,
        "task:1",
        "g",
        0,
        42,
        outcome,
        5,
        7,
        0.5,  # type: ignore[arg-type]
        first,
        last,
        {"invalid_actions": 1.0},
        time.time(),
    )


def test_events_round_trip(store: SqlStore) -> None:
    sid = store.open_session(scenario="s", variant="v", group="g", config={"a": 1})
    ids = EventIds(sid)
    events = [_event(ids, i, success=i % 3 != 0) for i in range(50)]
    store.write(events)
    back = list(store.events(EventQuery(session=sid)))
    assert back == events
    assert store.count_events(sid) == 50


def test_all_outcomes_round_trip(store: SqlStore) -> None:
    sid = store.open_session(scenario="s")
    ids = EventIds(sid)
    outcomes = [Success(0.75), Failure("outage"), Timeout(0.5), Unknown()]
    eps = [_episode(ids, o, 1, 2) for o in outcomes]
    store.write(eps)
    assert store.episodes(session=sid) == eps
    assert [e.outcome for e in store.episodes(scenario="s")] == outcomes


def test_llm_calls_round_trip(store: SqlStore) -> None:
    sid = store.open_session(scenario="s")
    ids = EventIds(sid)
    calls = [
        LLMCallEvent(
            ids.next(), sid, "t", 0, 3, "decide", "smollm2", "", 120, 9, 0.4, True, "", time.time()
        ),
        LLMCallEvent(
            ids.next(),
            sid,
            "t",
            1,
            3,
            "decide",
            "smollm2",
            "a1",
            0,
            0,
            5.0,
            False,
            "timeout",
            time.time(),
        ),
    ]
    store.write(calls)
    assert store.llm_calls(sid) == calls


def test_queries_filter_and_paginate(store: SqlStore) -> None:
    sid = store.open_session(scenario="s")
    other = store.open_session(scenario="t")
    ids, ids2 = EventIds(sid), EventIds(other)
    store.write(
        [_event(ids, i, success=i % 2 == 0, action="A" if i < 30 else "B") for i in range(100)]
    )
    store.write([_event(ids2, i) for i in range(10)])
    assert len(list(store.events(EventQuery(session=sid), page=7))) == 100
    assert len(list(store.events(EventQuery(scenario="t")))) == 10
    assert len(list(store.events(EventQuery(session=sid, action="A")))) == 30
    assert all(e.success for e in store.events(EventQuery(session=sid, success=True)))
    newest = list(store.events(EventQuery(session=sid, newest_first=True, limit=15), page=4))
    assert len(newest) == 15
    assert [e.id for e in newest] == sorted((e.id for e in newest), reverse=True)
    after = list(store.events(EventQuery(session=sid, after_id=newest[0].id - 3)))
    assert len(after) == 3


def test_failed_batch_is_all_or_nothing(store: SqlStore) -> None:
    sid = store.open_session(scenario="s")
    ids = EventIds(sid)
    first = [_event(ids, i) for i in range(10)]
    store.write(first)
    dup = [_event(ids, 10), first[3]]  # a new event and a duplicate id
    with pytest.raises(StoreError, match="writing 2 events"):
        store.write(dup)
    assert list(store.events(EventQuery(session=sid))) == first


def test_sessions_and_next_seq(store: SqlStore) -> None:
    a = store.open_session(scenario="s", kind="eval", config={"x": 1})
    b = store.open_session(scenario="s")
    assert b > a
    ids = EventIds(a)
    store.write([_event(ids, i) for i in range(5)])
    assert store.next_seq(a) == 5
    assert store.next_seq(b) == 0
    store.close_session(a, summary={"episodes": 3})
    rec = store.session(a)
    assert rec.status == "completed" and rec.summary == {"episodes": 3} and rec.config == {"x": 1}
    assert store.session(b).status == "running"  # this process is alive
    assert [s.id for s in store.sessions(kind="eval")] == [a]
    with pytest.raises(StoreError, match="no session 999"):
        store.session(999)


def test_artifacts_are_versioned(store: SqlStore) -> None:
    r1 = store.put_artifact("snapshot", "troubleshooting", b"one", meta={"n": 1})
    r2 = store.put_artifact("snapshot", "troubleshooting", b"two", meta={"n": 2})
    store.put_artifact("profile", "troubleshooting", None)
    assert (r1.version, r2.version) == (1, 2)
    assert store.get_artifact("snapshot", "troubleshooting").payload == b"two"
    assert store.get_artifact("snapshot", "troubleshooting", 1).meta == {"n": 1}
    assert len(store.artifacts("snapshot", latest=1)) == 1
    assert len(store.artifacts(since=r1.created)) == 3
    assert store.artifacts("snapshot", until=r1.created - 1) == []
    listed = store.artifacts("snapshot", payload=False)  # metadata only
    assert [(r.version, r.meta, r.payload, r.sha256) for r in listed] == [
        (2, {"n": 2}, None, r2.sha256), (1, {"n": 1}, None, r1.sha256)]
    store.set_artifact_status(r2.id, "champion")
    assert store.get_artifact("snapshot", "troubleshooting").status == "champion"
    with pytest.raises(StoreError, match="no artifact snapshot/nope"):
        store.get_artifact("snapshot", "nope")
    with pytest.raises(StoreError):
        store.set_artifact_status(12345, "x")


def test_schema_version_and_newer_database_refused(store_url: str) -> None:
    st = SqlStore(store_url)
    assert st.schema_version() == SCHEMA_VERSION
    with st.engine.begin() as conn:
        conn.execute(sa.text("UPDATE meta SET value = '99' WHERE key = 'schema_version'"))
    st.close()
    with pytest.raises(SchemaError, match="schema version 99, newer"):
        SqlStore(store_url)


def test_reopen_keeps_data(store_url: str) -> None:
    with SqlStore(store_url) as st:
        sid = st.open_session(scenario="s")
        st.write([_event(EventIds(sid), 0)])
    with SqlStore(store_url) as st:
        assert st.count_events(sid) == 1


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("foo://bar", "unsupported scheme 'foo'"),
        ("mysql://u@h/db", "unsupported scheme 'mysql'"),
        ("postgresql://nobody@127.0.0.1:1/none", "failed: connection"),
        ("sqlite:////proc/no/such/dir/x.db", "cannot create the store's folder"),
    ],
)
def test_bad_urls_get_one_line(url: str, message: str) -> None:
    with pytest.raises(StoreError) as info:
        open_store(url)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_directory_is_not_a_store(tmp_path: object) -> None:
    with pytest.raises(StoreError, match="is a directory"):
        open_store(str(tmp_path))


def test_in_memory_store() -> None:
    st = open_store("sqlite://")
    sid = st.open_session(scenario="m")
    st.write([_event(EventIds(sid), 0)])
    assert st.count_events() == 1
