"""The C batch writer (store/_batch.py) stores exactly what the sqlite3 path stored.

Each test writes the same batches twice, once through the C writer and once
through Python's sqlite3 (the path the store takes without the extension),
and compares every row of every table, SQLite storage classes included. The
same batches written to PostgreSQL read back as the same records.
"""

from __future__ import annotations

import math
import multiprocessing
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmlearn.core.actions import ActionResult
from swarmlearn.core.events import (
    ActionEvent,
    EpisodeEnded,
    Event,
    EventIds,
    FeedbackEvent,
    LLMCallEvent,
    NoteEvent,
)
from swarmlearn.errors import StoreError
from swarmlearn.store import EventQuery, SqlStore
from swarmlearn.store._batch import AVAILABLE
from swarmlearn.types import Failure, Outcome, Success, Timeout, Unknown

pytestmark = pytest.mark.skipif(not AVAILABLE, reason="the C batch writer was not built")

TABLES = ("events", "llm_calls", "episodes", "notes", "feedback", "sessions")
_text = st.text(st.characters(codec="utf-8"), max_size=12)  # no lone surrogates
_real = st.floats(allow_nan=False, width=64)
_int = st.integers(-(2**63), 2**63 - 1)


def _stores(tmp_path: Path) -> tuple[SqlStore, SqlStore]:
    c_store = SqlStore(f"sqlite:///{tmp_path}/c.db")
    py_store = SqlStore(f"sqlite:///{tmp_path}/py.db")
    assert c_store._batch is not None
    py_store._batch = None  # through sqlite3's executemany, as without the extension
    return c_store, py_store


def _dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (its rowid first), each value's storage class beside it."""
    con = sqlite3.connect(path)
    try:
        out = {}
        for table in TABLES:
            cols = [r[1] for r in con.execute(f"PRAGMA table_info({table})")]
            typed = ", ".join(f"{c}, typeof({c})" for c in cols)
            out[table] = con.execute(f"SELECT rowid, {typed} FROM {table} ORDER BY rowid"
                                     ).fetchall()
        return out
    finally:
        con.close()


def _same_rows(a: dict[str, list[tuple[Any, ...]]], b: dict[str, list[tuple[Any, ...]]]) -> None:
    for table in TABLES:
        if table == "sessions":  # opened at different times
            assert len(a[table]) == len(b[table])
            continue
        # NaN never gets here (NOT NULL); -0.0 == 0.0 would hide a sign, so compare reprs
        assert [tuple(map(repr, r)) for r in a[table]] == [tuple(map(repr, r)) for r in b[table]]


def _action(ids: EventIds, i: int, **over: Any) -> ActionEvent:
    result = ActionResult(i % 3 != 0, f"out {i} ünïcødé ✓", "" if i % 3 else "boom",
                          (f"svc{i}.status=degraded", "日本") if i % 2 else (), i % 7 == 0)
    e = ActionEvent(ids.next(), ids.session, f"task:{i // 5}", "grp", i // 5, i, i % 3,
                    "CheckStatus", f"svc{i % 4}", (("fix", "E42"), ("n", str(i))) if i % 2 else (),
                    result, 0.001 * i + 1e-17, "unchecked\x00nul", time.time() + i / 7)
    return e._replace(**over)


def _batch(sid: int, ids: EventIds, n: int, *, nul: bool = True) -> list[Event]:
    """Every kind of event the store keeps, interleaved as a swarm publishes them
    (``nul``: with a NUL character in a text, which PostgreSQL refuses)."""
    out: list[Event] = []
    acts: list[ActionEvent] = []
    outcomes: list[Outcome] = [Success(0.75), Failure("outage ✗"), Timeout(0.5), Unknown()]
    for i in range(n):
        acts.append(_action(ids, i) if nul else _action(ids, i, context="unchecked"))
        out.append(acts[-1])
        if i % 5 == 4:
            out.append(EpisodeEnded(ids.next(), sid, f"task:{i // 5}", "grp", i // 5, 2**40 + i,
                                    outcomes[(i // 5) % 4], 5, 5, 0.25, acts[-5].id, acts[-1].id,
                                    {"invalid_actions": 1.0, "n": i}, time.time()))
        if i % 11 == 0:
            out.append(LLMCallEvent(ids.next(), sid, "task:0", i % 3, i, "decide", "m", "",
                                    12, 3, 0.5, i % 2 == 0, "" if i % 2 == 0 else "err", 1.5))
            out.append(NoteEvent(sid, "task:0", 1, i, "switch", "to ucb1 ✓", {"a": 1.5, "b": "x"},
                                 2.5))
        if i % 13 == 0:
            out.append(FeedbackEvent(sid, "task:0", acts[0].id, "great ✓", "praise", 0.9,
                                     "clf@1", i % 2 == 0, Success(1.0), 1.0, 3.5))
    return out


def test_the_c_writer_stores_what_sqlite3_stored(tmp_path: Path) -> None:
    ids = EventIds(1)
    batches = [_batch(1, ids, size) for size in (60, 1, 300)]  # ids, own-keyed rows continue
    c_store, py_store = _stores(tmp_path)
    try:
        for store in (c_store, py_store):
            assert store.open_session(scenario="s") == 1
            for batch in batches:
                store.write(batch)
    finally:
        c_store.close()
        py_store.close()
    a, b = _dump(tmp_path / "c.db"), _dump(tmp_path / "py.db")
    assert len(a["events"]) == 361 and a["notes"] and a["feedback"] and a["llm_calls"]
    _same_rows(a, b)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.tuples(_text, _int, _real, _real, st.booleans(), _text), min_size=1,
                       max_size=20))
def test_any_values_are_stored_alike(tmp_path_factory: pytest.TempPathFactory,
                                     values: list[tuple[str, int, float, float, bool, str]]
                                     ) -> None:
    tmp = tmp_path_factory.mktemp("any")
    ids = EventIds(1)
    batch = [_action(ids, i, task=t, tick=k, duration=d, ts=ts, target=tg,
                     result=ActionResult(ok, t, tg, (t,) if ok else (), not ok))
             for i, (t, k, d, ts, ok, tg) in enumerate(values)]
    c_store, py_store = _stores(tmp)
    try:
        for store in (c_store, py_store):
            assert store.open_session(scenario="s") == 1
            store.write(batch)
            assert list(store.events(EventQuery())) == batch
    finally:
        c_store.close()
        py_store.close()
    _same_rows(_dump(tmp / "c.db"), _dump(tmp / "py.db"))


def test_postgresql_reads_back_what_the_c_writer_stored(tmp_path: Path, pg_server_url: str) -> None:
    from tests.conftest import _reset_pg

    _reset_pg(pg_server_url)
    stores = [SqlStore(f"sqlite:///{tmp_path}/c.db"), SqlStore(pg_server_url)]
    assert stores[0]._batch is not None and stores[1]._batch is None
    ids = EventIds(1)
    batches = [_batch(1, ids, 60, nul=False), _batch(1, ids, 40, nul=False)]
    try:
        for store in stores:
            assert store.open_session(scenario="s") == 1
            for batch in batches:
                store.write(batch)
        c_store, pg = stores
        assert list(c_store.events()) == list(pg.events())
        assert c_store.episodes(corrected=False) == pg.episodes(corrected=False)
        assert c_store.episodes() == pg.episodes()
        assert c_store.llm_calls(1) == pg.llm_calls(1)
        assert c_store.notes() == pg.notes()
        assert c_store.feedback() == pg.feedback()
        assert c_store.count_events() == 100
    finally:
        for store in stores:
            store.close()


@pytest.mark.parametrize("bad", ["duplicate id", "nan", "huge int", "object"])
def test_a_bad_batch_is_one_store_error_and_stores_nothing(tmp_path: Path, bad: str) -> None:
    ids = EventIds(1)
    good, batch, after = _batch(1, ids, 10), _batch(1, ids, 200), _batch(1, ids, 5)
    k = [i for i, e in enumerate(batch) if isinstance(e, ActionEvent)][150]  # a later INSERT
    e = batch[k]
    assert isinstance(e, ActionEvent)
    if bad == "duplicate id":
        batch.append(good[0])
    elif bad == "nan":  # SQLite binds NaN as NULL: NOT NULL fails
        batch[k] = e._replace(duration=math.nan)
    elif bad == "huge int":
        batch[k] = e._replace(tick=2**63)
    else:
        batch[k] = e._replace(task=object())  # type: ignore[arg-type]
    c_store, py_store = _stores(tmp_path)
    try:
        for store in (c_store, py_store):
            assert store.open_session(scenario="s") == 1
            store.write(good)
            with pytest.raises(StoreError, match=r"writing \d+ events in sqlite:///.* failed"):
                store.write(batch)
            assert store.count_events() == 10  # all or nothing
            store.write(after)  # and the store goes on
            assert store.count_events() == 15
    finally:
        c_store.close()
        py_store.close()
    _same_rows(_dump(tmp_path / "c.db"), _dump(tmp_path / "py.db"))


@pytest.fixture
def forked_store(tmp_path: Path) -> Iterator[SqlStore]:
    store = SqlStore(f"sqlite:///{tmp_path}/f.db")
    yield store
    store.close()


def test_a_forked_child_writes_on_a_connection_of_its_own(forked_store: SqlStore) -> None:
    store = forked_store
    ids = EventIds(store.open_session(scenario="s"))
    store.write([_action(ids, i) for i in range(10)])  # the parent's connection is open

    def child() -> None:  # inherits the open writer: it must not use or close it
        child_ids = EventIds(1, 1000)
        store.write([_action(child_ids, i) for i in range(20)])
        store.close()

    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=child)
    proc.start()
    proc.join(30)
    assert proc.exitcode == 0
    store.write([_action(ids, i) for i in range(5)])  # the parent's still works
    assert store.count_events() == 35


def test_the_writer_is_used_only_on_the_sqlite_library_of_sqlite3(tmp_path: Path) -> None:
    import _sqlite3

    from swarmlearn.store import _sqlite_batch

    assert _sqlite_batch.same_library(_sqlite3.__file__)
    assert not _sqlite_batch.same_library(_sqlite_batch.__file__.replace("store/_sqlite_batch",
                                                                        "no/such"))
    untrack = pytest.importorskip("swarmlearn.core._untrack")
    assert not _sqlite_batch.same_library(untrack.__file__)  # an extension without SQLite
