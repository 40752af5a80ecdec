"""The daemon's CPU share: after a level run that used C CPU-seconds, no level run starts
until C / cpu_share has passed since it began; a level due meanwhile waits, and runs after."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from swarmlearn._cpu_share import ShareWait, share_wait_from_log
from swarmlearn._daemon_config import load_daemon_config
from swarmlearn.cli import app
from swarmlearn.daemon import LearningDaemon, level_status
from swarmlearn.errors import ConfigError
from swarmlearn.store import EventQuery, LogRecord, SqlStore
from test_daemon import FAKE, SCENARIO, TESTS, assert_consistent, config, record

BURN = 0.4  # CPU-seconds the fake trainer spends in its child


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/store.db"


@pytest.fixture(autouse=True)
def _fakes_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(TESTS)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")]))


def burner(tmp_path: Path, **daemon: Any) -> Any:
    return config(tmp_path, {"fake": {"kind": FAKE, "quality": 0.9, "trigger": "count >= 5",
                                      "burn": BURN}}, **daemon)


def runs(st: SqlStore) -> list[LogRecord]:
    return st.learning_log(kind="fake_kind", steps=["run-start", "run-done", "run-failed"])


def actions(daemon: LearningDaemon) -> list[str]:
    assert daemon.store is not None
    return [e.action for e in daemon.store.events(EventQuery(session=daemon._session))]


# -- config -----------------------------------------------------------------------------------
def test_cpu_share_defaults_to_a_twentieth_and_bad_values_are_one_line(tmp_path: Path) -> None:
    assert load_daemon_config(scenario="troubleshooting").cpu_share == 0.05
    toml = tmp_path / "daemon.toml"
    toml.write_text('[daemon]\nscenario = "x"\ncpu_share = 1\n')
    assert load_daemon_config(toml).cpu_share == 1.0
    for bad in ("0", "-0.25", "1.5", "inf", "nan", '"half"', "true"):
        toml.write_text(f'[daemon]\nscenario = "x"\ncpu_share = {bad}\n')
        with pytest.raises(ConfigError) as err:
            load_daemon_config(toml)
        message = str(err.value)
        assert message.startswith(f"{toml}: daemon.cpu_share: expected"), message
        assert "\n" not in message


# -- the wait, as a pure rule ---------------------------------------------------------------------
def test_a_share_wait_lasts_cpu_over_share_from_the_runs_start() -> None:
    wait = ShareWait("snapshot", started=1000.0, cpu_s=2.0, share=0.25)
    assert wait.until == 1008.0
    assert wait.left(1001.0) == 7.0 and wait.left(1008.0) == 0.0 and wait.left(2000.0) == 0.0
    assert wait.left(500.0) == 8.0  # a clock set back does not stretch it


def _done(level: str, started: float, cpu_s: float) -> LogRecord:
    return LogRecord(1, started + 1, "k", "s", "run-done", "", 0, "", {
        "level": level, "started": started, "cpu_s": cpu_s}, "h", 1)


def test_the_binding_wait_is_the_one_that_ends_last() -> None:
    a, b = _done("a", 1000.0, 1.0), _done("b", 1001.0, 0.1)  # until 1002, 1001.2
    assert share_wait_from_log([a, b, None], 0.5) == ShareWait("a", 1000.0, 1.0, 0.5)
    assert share_wait_from_log([a, b], 1.0) is None  # 1.0: no bound
    assert share_wait_from_log([None], 0.5) is None


# -- the daemon ----------------------------------------------------------------------------------
def test_under_a_quarter_share_a_due_level_waits_four_times_the_runs_cpu(
        tmp_path: Path, url: str) -> None:
    record(url, 1)
    cfg = burner(tmp_path, cpu_share=0.25)
    daemon = LearningDaemon(cfg, url)
    try:
        assert daemon.run_once() == 1
        st = daemon.store
        assert st is not None
        [_, first] = runs(st)
        cpu, started = first.data["cpu_s"], first.data["started"]
        assert BURN <= cpu < BURN + 5.0, cpu  # the child's burn is in it
        assert daemon.share_wait == ShareWait("fake", started, cpu, 0.25)
        record(url, 1, first=20_000)  # due again at once
        passes = 0
        while daemon.run_once() == 0:
            passes += 1
            assert daemon._waiting == ["fake"]
            if passes == 1:
                [status] = level_status(cfg, st)
                assert "cpu share 0.25" in status.next_trigger, status.next_trigger
            time.sleep(0.05)
        second = runs(st)[2]
        assert second.step == "run-start"
        waited = second.data["started"] - started
        assert 4 * cpu <= waited < 4 * cpu + 1.0, (waited, cpu)  # one pass late at most
        assert passes > 3
        [wait] = st.learning_log(kind="fake_kind", steps=["wait"])  # once, not once a pass
        assert wait.data["until"] == pytest.approx(started + 4 * cpu)
        assert "waits; cpu share 0.25" in wait.reason
        assert actions(daemon) == ["trigger", "train", "promote", "wait", "trigger", "train",
                                   "reject"]
        assert_consistent(st)
    finally:
        daemon.close()


def test_the_wait_survives_a_restart_and_a_forced_run_does_not_wait(
        tmp_path: Path, url: str) -> None:
    record(url, 1)
    cfg = burner(tmp_path, cpu_share=0.01)
    daemon = LearningDaemon(cfg, url)
    try:
        daemon.run_once()
        held = daemon.share_wait
    finally:
        daemon.close()
    record(url, 1, first=20_000)
    for _ in range(2):  # new daemons read the wait from the log, and record it once
        daemon = LearningDaemon(cfg, url)
        try:
            assert daemon.run_once() == 0
            assert held is not None and daemon.share_wait is not None
            assert daemon.share_wait.until == pytest.approx(held.until)
            assert daemon.store is not None
            assert len(daemon.store.learning_log(kind="fake_kind", steps=["wait"])) == 1
        finally:
            daemon.close()
    daemon = LearningDaemon(cfg, url)
    try:
        assert daemon.run_once(force=["fake"]) == 1  # a person asked for it: now
    finally:
        daemon.close()


def test_at_a_share_of_one_nothing_waits(tmp_path: Path, url: str) -> None:
    record(url, 1)
    daemon = LearningDaemon(burner(tmp_path, cpu_share=1.0), url)
    try:
        assert daemon.run_once() == 1
        record(url, 1, first=20_000)
        assert daemon.run_once() == 1
        assert daemon.share_wait is None and "wait" not in actions(daemon)
        st = daemon.store
        assert st is not None
        assert all(r.data["cpu_s"] >= BURN for r in runs(st) if r.step == "run-done")
    finally:
        daemon.close()


def test_status_shows_the_wait_and_a_stop_during_it_is_prompt(tmp_path: Path, url: str) -> None:
    record(url, 1)
    cfg = burner(tmp_path, cpu_share=0.01, poll_s=0.05)
    daemon = LearningDaemon(cfg, url)
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    status = tmp_path / "run" / "status.json"
    try:
        _wait(lambda: status.exists() and "next_run_at" in status.read_text())
        record(url, 1, first=20_000)
        _wait(lambda: json.loads(status.read_text()).get("waiting") == ["fake"])
        state = json.loads(status.read_text())
        assert state["cpu_share"] == 0.01 and state["next_run_at"] > time.time() + 30
        assert "no level run before" in state["share_wait"]
        (tmp_path / "run" / "daemon.pid").write_text(str(os.getpid()))  # "running"
        toml = tmp_path / "daemon.toml"
        toml.write_text(f'[daemon]\nscenario = "{SCENARIO}"\nvariant = "heldout"\n'
                        f'run_dir = "{tmp_path / "run"}"\ncpu_share = 0.01\n'
                        f'[levels.fake]\nkind = "{FAKE}"\ntrigger = "count >= 5"\n')
        out = CliRunner().invoke(app, ["daemon", "status", "--config", str(toml),
                                       "--store", url])
        assert out.exit_code == 0, out.output
        assert "next level run at" in out.output and "due: fake" in out.output, out.output
    finally:
        t0 = time.monotonic()
        daemon.stop()
        thread.join(10)
    assert not thread.is_alive() and time.monotonic() - t0 < 2.0


def _wait(cond: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)
