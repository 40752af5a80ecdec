"""Crash safety and concurrent writers, with real processes on one SQLite file."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest

from swarmlearn.core.bus import EventBus
from swarmlearn.core.events import SEQ_BITS, EpisodeEnded, EpisodeStarted, Event
from swarmlearn.errors import ConfigError
from swarmlearn.store import EventQuery, Recorder, SqlStore
from swarmlearn.store._recorder import MAX_PENDING


def _run_cli(url: str, episodes: int, stdout: IO[bytes] | int = subprocess.DEVNULL
             ) -> subprocess.Popen[bytes]:
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
        stdout=stdout,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},  # a printed line is in the file at once
    )


# A swarm with a side channel: "ended ID ACTIONS" when the swarm publishes an episode's end
# (inline, before the recorder has it), "reported ID ACTIONS" when run_session reports it.
_DRIVER = """
import os, sys
from swarmlearn.core.events import EpisodeEnded
from swarmlearn.core.scenario import load_scenario
from swarmlearn.session import run_session
from swarmlearn.store import SqlStore

fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_APPEND)
def line(kind, e):
    os.write(fd, f"{kind} {e.id} {e.actions}\\n".encode())
def ended(batch):
    for e in batch:
        if type(e) is EpisodeEnded:
            line("ended", e)
run_session(load_scenario("troubleshooting").override(workers={"policy": "random"}),
            episodes=1_000_000, store=SqlStore(sys.argv[1]),
            subscribers=[lambda bus: bus.subscribe(ended, name="side-channel", inline=True)],
            on_episode=lambda e: line("reported", e))
"""


def _side_channel(path: Path) -> tuple[dict[int, int], dict[int, int]]:
    """Episode id → actions, for the episodes the swarm ended and those it reported."""
    seen: dict[str, dict[int, int]] = {"ended": {}, "reported": {}}
    if path.exists():
        for line in path.read_text().splitlines():
            kind, eid, actions = line.split()
            seen[kind][int(eid)] = int(actions)
    return seen["ended"], seen["reported"]


def _wait_until(ready: Callable[[], bool], proc: subprocess.Popen[bytes], what: str,
                stderr: Path | None = None) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if ready():
            return
        time.sleep(0.2)
    detail = stderr.read_text()[-2000:] if stderr is not None and stderr.exists() else ""
    raise AssertionError(f"{what} (exit {proc.poll()}) {detail}")


def _check_consistent(st: SqlStore, db: Path) -> None:
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        con.close()
    for ep in st.episodes():
        # by id range alone (ids hold the session): with session= SQLite scans the session
        got = list(st.events(EventQuery(after_id=ep.first_event - 1, before_id=ep.last_event + 1)))
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


@pytest.mark.parametrize("locked", [0.0, 1.5], ids=["free", "store-locked"])
def test_kill_9_loses_at_most_the_unflushed_batch(tmp_path: Path, locked: float) -> None:
    """Of the episodes the swarm ended, a kill -9 loses at most MAX_PENDING actions, and
    nothing of the episodes it reported as ended — also while another writer holds the
    store's lock (the recorder then stops the swarm instead of trailing it)."""
    db, side = tmp_path / "crash.db", tmp_path / "side"
    url = f"sqlite:///{db}"
    err = tmp_path / "stderr"
    with err.open("wb") as fh:
        proc = subprocess.Popen([sys.executable, "-c", _DRIVER, url, str(side)], stderr=fh)
    lock: sqlite3.Connection | None = None
    try:
        _wait_until(lambda: len(_side_channel(side)[1]) > 300, proc,
                    "the swarm did not get going", err)
        if locked:  # a second process takes the write lock, as `swarmlearn run` twice would
            lock = sqlite3.connect(db, isolation_level=None, timeout=30)
            lock.execute("BEGIN IMMEDIATE")
        time.sleep(locked or 1.0)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        if lock is not None:
            lock.execute("ROLLBACK")
            lock.close()
    ended, reported = _side_channel(side)
    with SqlStore(url) as st:
        stored = st.count_events()
        stored_episodes = {e.id for e in st.episodes()}
        _check_consistent(st, db)
    assert reported.keys() <= stored_episodes, "an episode reported as ended was lost"
    assert sum(ended.values()) - stored <= MAX_PENDING, (
        f"{sum(ended.values())} actions in ended episodes, {stored} stored")


def test_kill_9_of_the_cli_loses_no_printed_episode_and_a_rerun_continues(tmp_path: Path) -> None:
    db, out = tmp_path / "crash.db", tmp_path / "out.txt"
    url = f"sqlite:///{db}"
    with out.open("wb") as fh:
        proc = _run_cli(url, 1_000_000, stdout=fh)
        try:
            _wait_until(lambda: out.read_text().count("\n") > 300, proc,
                        "the CLI printed no episodes")
            time.sleep(1.0)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    printed = [
        (int(m[1]), int(m[2]))
        for m in re.finditer(r"^episode\s+(\d+)\s.*\bactions (\d+)$", out.read_text(), re.M)
    ]
    assert len(printed) > 300
    with SqlStore(url) as st:
        crashed = st.sessions()[0]
        assert crashed.status == "interrupted"
        stored = {e.episode: e.actions for e in st.episodes(session=crashed.id)}
        lost = [(ep, n) for ep, n in printed if stored.get(ep) != n]
        assert not lost, f"printed as ended but not stored: {lost[:5]}"
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


def test_an_episode_is_reported_only_once_it_is_stored(tmp_path: Path) -> None:
    from swarmlearn.core.scenario import load_scenario
    from swarmlearn.session import run_session

    st = SqlStore(f"sqlite:///{tmp_path}/r.db")
    reported: list[int] = []

    def check(e: EpisodeEnded) -> None:
        assert e.id in {s.id for s in st.episodes()}
        assert st.count_events(e.session) >= e.actions
        reported.append(e.episode)

    result = run_session(load_scenario("troubleshooting"), episodes=30, store=st, on_episode=check)
    assert reported == list(range(30)) and len(result.episodes) == 30


def test_a_slow_swarms_report_is_made_at_its_episodes_end() -> None:
    st = SqlStore("sqlite://")
    bus: EventBus[Event] = EventBus()
    rec = Recorder(st, bus, max_delay=0.2)
    made: list[int] = []
    time.sleep(0.25)  # more than max_delay since the last report: a slow swarm
    bus.publish([EpisodeStarted(1, 0, "t", "", 0, 0, 0.0)])
    rec.when_durable(1, lambda: made.append(1))
    assert made == [1]  # the recorder committed at once instead of after max_delay
    bus.publish([EpisodeStarted(2, 0, "t", "", 1, 1, 0.0)])
    rec.when_durable(2, lambda: made.append(2))  # a fast swarm: waits for the next commit
    assert not rec.durable(2) and made == [1]
    rec.flush()
    rec.deliver()
    assert made == [1, 2]
    rec.close()


@pytest.mark.parametrize(("field", "kwargs"), [
    ("max_pending", {"max_pending": 0}),
    ("batch_size", {"max_pending": 8, "batch_size": 9}),
    ("max_delay", {"max_delay": -1.0}),
])
def test_recorder_settings_are_checked(field: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as info:
        Recorder(SqlStore("sqlite://"), EventBus(), **kwargs)
    assert info.value.field == field
