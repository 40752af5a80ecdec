"""Crash safety and concurrent writers, with real processes on one SQLite file."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from swarmlearn.core.events import SEQ_BITS
from swarmlearn.store import EventQuery, SqlStore


def _run_cli(url: str, episodes: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "swarmlearn.cli",
            "run",
            "troubleshooting",
            "-n",
            str(episodes),
            "--store",
            url,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _check_consistent(st: SqlStore, db: Path) -> None:
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        con.close()
    for ep in st.episodes():
        got = list(
            st.events(
                EventQuery(
                    session=ep.session, after_id=ep.first_event - 1, before_id=ep.last_event + 1
                )
            )
        )
        assert len(got) == ep.actions, f"episode {ep.id} lost events"


def test_two_processes_writing_one_file_lose_nothing(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    url = f"sqlite:///{db}"
    SqlStore(url).close()  # create the schema once; both writers then race on data only
    procs = [_run_cli(url, 150) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err.decode()
    with SqlStore(url) as st:
        sessions = st.sessions()
        assert len(sessions) == 2 and all(s.status == "completed" for s in sessions)
        for s in sessions:
            episodes = st.episodes(session=s.id)
            assert len(episodes) == 150
            assert st.count_events(s.id) == sum(e.actions for e in episodes)
            assert s.summary["actions"] == st.count_events(s.id)
        _check_consistent(st, db)


def test_kill_9_loses_at_most_the_unflushed_batch(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    url = f"sqlite:///{db}"
    proc = _run_cli(url, 1_000_000)
    seen = 0
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(0.3)
            if db.exists():
                try:
                    with SqlStore(url) as st:
                        seen = st.count_events()
                except Exception:
                    continue
            if seen > 5_000:
                break
        assert seen > 5_000, "the writer did not get going"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    with SqlStore(url) as st:
        assert st.count_events() >= seen  # everything committed before the kill is there
        crashed = st.sessions()[0]
        assert crashed.status == "interrupted"
        _check_consistent(st, db)
        before = {e.id for e in st.events()}
    # a restarted run continues with fresh ids: nothing collides, nothing is damaged
    proc = _run_cli(url, 20)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    with SqlStore(url) as st:
        new = st.sessions()[0]
        assert new.id > crashed.id and new.status == "completed"
        after = list(st.events())
        assert {e.id for e in after} >= before
        assert all(e.id >> SEQ_BITS == new.id for e in after if e.id not in before)
        _check_consistent(st, db)


@pytest.mark.parametrize("episodes", [3])
def test_resume_continues_ids(tmp_path: Path, episodes: int) -> None:
    from swarmlearn.core.scenario import load_scenario
    from swarmlearn.session import run_session

    st = SqlStore(f"sqlite:///{tmp_path}/r.db")
    sc = load_scenario("troubleshooting")
    first = run_session(sc, episodes=episodes, store=st)
    n = st.count_events(first.session)
    again = run_session(sc, episodes=episodes, store=st, resume=first.session, seed=100)
    assert again.session == first.session
    ids = [e.id for e in st.events(EventQuery(session=first.session))]
    assert len(ids) == len(set(ids)) == n + again.actions
