"""The learning daemon: triggers → train (child process) → gate → promote → watch → roll back.

Fault tests run the daemon as a real process and ``kill -9`` it; after each the
artifact table must be consistent (:func:`assert_consistent`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from swarmlearn._daemon_config import daemon_config_from_mapping, load_daemon_config
from swarmlearn.cli import app
from swarmlearn.core.scenario import load_scenario
from swarmlearn.daemon import DAEMON_SESSION_KIND, LearningDaemon, level_status
from swarmlearn.errors import ArtifactError, ConfigError
from swarmlearn.learn.kinds import champion_policies
from swarmlearn.lifecycle import Alias, ArtifactState, Lifecycle
from swarmlearn.session import run_session
from swarmlearn.store import EventQuery, SqlStore

SCENARIO = "examples/troubleshooting.toml"
TESTS = str(Path(__file__).parent)
FAKE = "daemon_fakes:build"


def config(tmp_path: Path, levels: dict[str, Any], **daemon: Any) -> Any:
    return daemon_config_from_mapping({
        "daemon": {"scenario": SCENARIO, "variant": "heldout", "run_dir": str(tmp_path / "run"),
                   "poll_s": 0.1, "gate_tasks": 30, "cpu_share": 1.0, **daemon},
        "levels": levels})


def record(url: str, sessions: int, *, first: int = 10_000, harder: bool = False) -> None:
    sc = load_scenario(SCENARIO, variant="heldout").override(workers={"policy": "adaptive"})
    if harder:  # the same scenario label, but the environment got much harder
        sc = sc.override(limits={"max_ticks": 4})
    with SqlStore(url) as st:
        for i in range(sessions):
            seeds = list(range(first + 10 * i, first + 10 * i + 10))
            run_session(sc, store=st, seeds=seeds, policies=champion_policies(st, sc))


def assert_consistent(st: SqlStore) -> None:
    """Aliases point at artifacts in the right state; nothing is left half-done."""
    states = {s.value for s in ArtifactState}
    for rec in st.artifacts(payload=False):
        assert rec.status in states, rec
        assert rec.status != ArtifactState.EVALUATING, f"{rec.kind}/{rec.name} v{rec.version}"
        assert st.learning_log(artifact_id=rec.id, steps=["produce"]), "registered without log"
    for a in st.aliases():
        target = st.get_artifact_by_id(a.artifact_id, payload=False)
        assert (target.kind, target.name) == (a.kind, a.scope)
        if a.alias == Alias.CHAMPION:
            assert target.status == ArtifactState.PROMOTED
    champions = [(a.kind, a.scope) for a in st.aliases() if a.alias == Alias.CHAMPION]
    assert len(champions) == len(set(champions))


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/store.db"


@pytest.fixture(autouse=True)
def _fakes_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(TESTS)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")]))


# -- config -----------------------------------------------------------------------------------
def test_default_levels_and_mode_selection() -> None:
    cfg = load_daemon_config(scenario="troubleshooting")
    assert [lv.name for lv in cfg.active_levels()] == ["snapshot", "offline_model", "dqn_policy"]
    assert cfg.level("snapshot").trigger == "count >= 20"
    offline = load_daemon_config(scenario="troubleshooting", mode="offline-only")
    assert [lv.name for lv in offline.active_levels()] == ["snapshot", "offline_model"]
    assert load_daemon_config(scenario="troubleshooting", mode="lora-only").active_levels() == []


def test_config_errors_name_the_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "daemon.toml"
    for text, field in (
        ('[daemon]\nscenario = "x"\n[levels.snapshot]\ntrigger = "count 5"\n',
         "levels.snapshot.trigger"),
        ('[daemon]\nscenario = "x"\npoll_s = -1\n', "daemon.poll_s"),
        ('[daemon]\nscenario = "x"\n[daemon.gate]\nalpha = 2\n', "daemon.gate.alpha"),
        ('[daemon]\nscenario = "x"\n[levels.lora]\nkind = "nonsense"\n', "levels.lora.kind"),
        ('[daemon]\n', "daemon.scenario"),
        ('[demon]\nscenario = "x"\n', "demon"),
    ):
        bad.write_text(text)
        with pytest.raises(ConfigError) as err:
            load_daemon_config(bad)
        assert str(err.value).startswith(str(bad)) and field in str(err.value), err.value
    bad.write_text("[daemon\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_daemon_config(bad)


# -- end to end, in process -----------------------------------------------------------------------
def test_a_pass_trains_gates_and_promotes_a_snapshot(tmp_path: Path, url: str) -> None:
    record(url, 2)
    cfg = config(tmp_path, {"snapshot": {"trigger": "count >= 20"}})
    daemon = LearningDaemon(cfg, url)
    try:
        assert daemon.run_once() == 1
        assert daemon.run_once() == 0  # nothing new
        st = daemon.store
        assert st is not None
        life = Lifecycle(st, "snapshot", "scenario:troubleshooting[heldout]")
        champ = life.champion()
        assert champ is not None and champ.state is ArtifactState.PROMOTED
        assert champ.gate is not None and champ.gate["promote"]
        assert champ.lineage.inputs["episodes"] == 20
        events = list(st.events(EventQuery(session=daemon._session)))
        assert [e.action for e in events] == ["trigger", "train", "promote"]
        assert {s.kind for s in st.sessions()} >= {DAEMON_SESSION_KIND}
        status = level_status(cfg, st)[0]
        assert status.champion is not None and status.champion["version"] == 1
        assert status.last_run is not None and status.last_run.step == "run-done"
        assert "0 new episodes" in status.next_trigger
        assert_consistent(st)
    finally:
        daemon.close()


def test_the_daemon_on_sqlite_and_postgresql(tmp_path: Path, store_url: str) -> None:
    record(store_url, 1)
    cfg = config(tmp_path, {"fake": {"kind": FAKE, "quality": 0.9, "trigger": "count >= 5"}})
    daemon = LearningDaemon(cfg, store_url)
    try:
        assert daemon.run_once() == 1
        st = daemon.store
        assert st is not None
        assert Lifecycle(st, "fake_kind", "troubleshooting[heldout]").champion() is not None
        t0 = time.monotonic()
        daemon._wait(0.3)  # PostgreSQL: LISTEN; SQLite: a sleep
        assert time.monotonic() - t0 < 2.0
        assert_consistent(st)
    finally:
        daemon.close()


def test_a_failing_level_is_recorded_backs_off_and_spares_the_others(
        tmp_path: Path, url: str) -> None:
    record(url, 2)
    cfg = config(tmp_path, {"broken": {"kind": FAKE, "mode": "raise", "trigger": "count >= 5",
                                       "name": "broken_kind"},
                            "died": {"kind": FAKE, "mode": "exit", "trigger": "count >= 5",
                                     "name": "died_kind"},
                            "good": {"kind": FAKE, "quality": 0.9, "trigger": "count >= 5"}},
                 backoff_s=3600)
    daemon = LearningDaemon(cfg, url)
    try:
        assert daemon.run_once() == 3
        st = daemon.store
        assert st is not None
        fails = {r.data["level"]: r.reason for r in st.learning_log(steps=["run-failed"])}
        assert "the trainer exploded" in fails["broken"]
        assert "died (exit code 3)" in fails["died"]
        assert Lifecycle(st, "fake_kind", "troubleshooting[heldout]").champion() is not None
        record(url, 1, first=20_000)
        assert daemon.run_once() == 1  # the good level; the failed ones back off
        status = {s.level: s for s in level_status(cfg, st)}
        assert "backing off" in status["broken"].next_trigger
        assert status["broken"].failures and "exploded" in status["broken"].failures[0].reason
        assert_consistent(st)
    finally:
        daemon.close()


def test_two_levels_cannot_train_one_lineage(tmp_path: Path, url: str) -> None:
    cfg = config(tmp_path, {"a": {"kind": FAKE}, "b": {"kind": FAKE}})
    with pytest.raises(ConfigError, match="levels a and b both train fake_kind"):
        LearningDaemon(cfg, url).run_once()


def test_a_trainer_out_of_time_is_killed(tmp_path: Path, url: str,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    record(url, 1)
    monkeypatch.setenv("FAKE_TRAINER_PIDFILE", str(tmp_path / "trainer.pid"))
    cfg = config(tmp_path, {"slow": {"kind": FAKE, "mode": "hang", "trigger": "count >= 5",
                                     "timeout_s": 4}})
    daemon = LearningDaemon(cfg, url)
    try:
        daemon.run_once()
        st = daemon.store
        assert st is not None
        [fail] = st.learning_log(steps=["run-failed"])
        assert "ran out of time (4 s)" in fail.reason
        pid = int((tmp_path / "trainer.pid").read_text())
        assert not _alive(pid)
        assert st.artifacts(payload=False) == []  # nothing registered
    finally:
        daemon.close()


def test_a_worse_challenger_is_rejected_and_kept(tmp_path: Path, url: str) -> None:
    record(url, 1)
    good = config(tmp_path, {"fake": {"kind": FAKE, "quality": 0.9, "trigger": "count >= 5"}})
    daemon = LearningDaemon(good, url)
    daemon.run_once()
    daemon.close()
    record(url, 1, first=20_000)
    worse = config(tmp_path, {"fake": {"kind": FAKE, "quality": 0.1, "trigger": "count >= 5"}})
    daemon = LearningDaemon(worse, url)
    try:
        daemon.run_once()
        st = daemon.store
        assert st is not None
        life = Lifecycle(st, "fake_kind", "troubleshooting[heldout]")
        v2 = life.get(2)
        assert v2.state is ArtifactState.REJECTED and v2.gate is not None
        assert v2.gate["challenger"]["success_rate"] < v2.gate["champion"]["success_rate"]
        assert life.champion().version == 1  # type: ignore[union-attr]
        assert_consistent(st)
    finally:
        daemon.close()


def test_a_live_drop_rolls_back_with_the_reason(tmp_path: Path, url: str) -> None:
    record(url, 2)
    first = LearningDaemon(config(tmp_path, {"snapshot": {"trigger": "count >= 20"}}), url)
    first.run_once()
    first.close()
    daemon = LearningDaemon(config(tmp_path, {"snapshot": {"trigger": "manual"}}), url)
    try:
        daemon.run_once()
        st = daemon.store
        assert st is not None
        life = Lifecycle(st, "snapshot", "scenario:troubleshooting[heldout]")
        assert life.champion() is not None
        record(url, 2, first=30_000, harder=True)  # the environment got harder
        daemon.run_once()
        assert life.champion() is None  # rolled back to the baseline (no earlier champion)
        [rb] = st.learning_log(steps=["rollback"])
        assert rb.data["automatic"] is True and "fell below the gated" in rb.reason
        assert life.get(1).state is ArtifactState.RETIRED
        events = [e.action for e in st.events(EventQuery(session=daemon._session))]
        assert "rollback" in events
        assert_consistent(st)
    finally:
        daemon.close()


def test_passes_follow_the_store_by_watermark_and_count_what_came(
        tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """After its first pass the daemon reads only the new episodes' light rows: no full
    episode read, no count; the watch and the trigger still see every new episode."""
    record(url, 2)
    first = LearningDaemon(config(tmp_path, {"snapshot": {"trigger": "count >= 20"}}), url)
    first.run_once()
    first.close()
    daemon = LearningDaemon(config(tmp_path, {"snapshot": {"trigger": "count >= 20"}}), url)
    try:
        daemon.run_once()  # starts following; the watch reads the champion's episodes once
        st = daemon.store
        assert st is not None
        calls: list[str] = []
        for name in ("episodes", "count_episodes"):
            real = getattr(st, name)
            monkeypatch.setattr(st, name, lambda *a, _r=real, _n=name, **k: (
                calls.append(_n), _r(*a, **k))[1])
        daemon.run_once()
        assert daemon._total == 20
        record(url, 1, first=40_000)
        daemon.run_once()
        assert daemon._total == 30 == st.count_episodes(
            scenario="troubleshooting", variant="heldout", exclude_kinds=[DAEMON_SESSION_KIND])
        assert [lv.live.episodes for lv in daemon.levels if lv.live is not None] == [10]
        assert calls.count("episodes") == 0 and calls.count("count_episodes") == 1  # ours
    finally:
        daemon.close()


def test_store_unreachable_then_back(tmp_path: Path) -> None:
    blocker = tmp_path / "db"
    blocker.write_text("not a folder")  # the store's folder cannot be made
    url = f"sqlite:///{blocker}/store.db"
    cfg = config(tmp_path, {"snapshot": {"trigger": "count >= 20"}}, poll_s=0.05)
    daemon = LearningDaemon(cfg, url)
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    status = tmp_path / "run" / "status.json"
    try:
        _wait(lambda: status.exists() and "store unreachable" in status.read_text())
        blocker.unlink()
        blocker.mkdir()
        _wait(lambda: '"state": "running"' in status.read_text(), timeout=15)
    finally:
        daemon.stop()
        thread.join(10)
    assert not thread.is_alive()


# -- the command line --------------------------------------------------------------------------
def test_cli_trigger_run_once_status_and_artifacts(tmp_path: Path, url: str) -> None:
    record(url, 1)
    toml = tmp_path / "daemon.toml"
    toml.write_text(f'[daemon]\nscenario = "{SCENARIO}"\nvariant = "heldout"\n'
                    f'run_dir = "{tmp_path / "run"}"\ngate_tasks = 30\ncpu_share = 1.0\n'
                    f'[levels.fake]\nkind = "{FAKE}"\ntrigger = "manual"\n')
    run = CliRunner().invoke
    out = run(app, ["daemon", "run-once", "--config", str(toml), "--store", url])
    assert out.exit_code == 0 and "0 level run(s)" in out.output  # manual: not by itself
    out = run(app, ["daemon", "trigger", "fake", "--config", str(toml), "--store", url])
    assert out.exit_code == 0 and "requested" in out.output
    out = run(app, ["daemon", "run-once", "--config", str(toml), "--store", url])
    assert out.exit_code == 0 and "1 level run(s)" in out.output, out.output
    out = run(app, ["daemon", "run-once", "--config", str(toml), "--store", url,
                    "--level", "fake"])
    assert out.exit_code == 0, out.output
    out = run(app, ["daemon", "status", "--config", str(toml), "--store", url])
    assert out.exit_code == 0 and "not running" in out.output and "v1" in out.output
    scope = "troubleshooting[heldout]"
    out = run(app, ["daemon", "artifacts", "list", "--store", url])
    assert out.exit_code == 0 and "champion" in out.output and "rejected" in out.output
    out = run(app, ["daemon", "artifacts", "show", "fake_kind", scope, "1", "--store", url])
    assert out.exit_code == 0 and "lineage" in out.output and "promote" in out.output
    out = run(app, ["daemon", "artifacts", "diff", "fake_kind", scope, "1", "2", "--store", url])
    assert out.exit_code == 0 and "gate.promote" in out.output
    out = run(app, ["daemon", "artifacts", "rollback", "fake_kind", scope, "--store", url])
    assert out.exit_code == 0 and "the baseline" in out.output
    out = run(app, ["daemon", "artifacts", "promote", "fake_kind", scope, "2", "--store", url])
    assert isinstance(out.exception, ArtifactError) and "is rejected" in str(out.exception)
    out = run(app, ["daemon", "artifacts", "show", "nope", scope, "--store", url])
    assert isinstance(out.exception, ConfigError) and "no artifact nope/" in str(out.exception)
    out = run(app, ["daemon", "log", "--store", url])
    assert out.exit_code == 0 and "rollback" in out.output
    out = run(app, ["daemon", "gate-sim", "--trials", "300", "--tasks", "30"])
    assert out.exit_code == 0 and "promotions in 300 gates" in out.output
    with SqlStore(url) as st:
        assert_consistent(st)


# -- fault tests: real processes, kill -9 ----------------------------------------------------------
def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _wait(cond: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.1)


def _start_daemon(toml: Path, url: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")]),
           "FAKE_TRAINER_PIDFILE": str(tmp_path / "trainer.pid")}
    return subprocess.Popen(
        [sys.executable, "-c", "from swarmlearn.cli import main; main()", "daemon", "run",
         "--config", str(toml), "--store", url], env=env,
        stdout=(tmp_path / "daemon.out").open("wb"), stderr=subprocess.STDOUT)


def _toml(tmp_path: Path, options: str) -> Path:
    """A daemon config for the real-process tests. nice = 0: at the default 19 a daemon
    leading its own session barely runs beside a loaded machine's other work (its priority
    is tested in test_daemon_priority.py), and these tests time what it does."""
    toml = tmp_path / "daemon.toml"
    toml.write_text(f'[daemon]\nscenario = "{SCENARIO}"\nvariant = "heldout"\npoll_s = 0.2\n'
                    'nice = 0\ncpu_share = 1.0\n'
                    f'run_dir = "{tmp_path / "run"}"\ngate_tasks = 30\n'
                    f'[levels.fake]\nkind = "{FAKE}"\ntrigger = "count >= 5"\n{options}\n')
    return toml


def _restart_and_finish(tmp_path: Path, url: str) -> SqlStore:
    """A new daemon that trains fine: it must clean up and run the lost trigger again."""
    cfg = config(tmp_path, {"fake": {"kind": FAKE, "quality": 0.9, "trigger": "count >= 5"}})
    daemon = LearningDaemon(cfg, url)
    try:
        assert daemon.run_once() == 1  # the trigger was not lost
    finally:
        daemon.close()
    return SqlStore(url)


def test_kill_9_during_training_loses_nothing(tmp_path: Path, url: str) -> None:
    record(url, 1)
    proc = _start_daemon(_toml(tmp_path, 'mode = "hang"'), url, tmp_path)
    try:
        _wait(lambda: (tmp_path / "trainer.pid").exists())
        trainer = int((tmp_path / "trainer.pid").read_text())
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        _wait(lambda: not _alive(trainer), timeout=10)  # the trainer dies with the daemon
    finally:
        if proc.poll() is None:
            proc.kill()
    st = _restart_and_finish(tmp_path, url)
    with st:
        steps = [r.step for r in st.learning_log(kind="fake_kind", steps=[
            "run-start", "run-failed", "run-done"])]
        assert steps == ["run-start", "run-failed", "run-start", "run-done"]
        interrupted = st.learning_log(kind="fake_kind", steps=["run-failed"])[0]
        assert interrupted.data["interrupted"] is True
        life = Lifecycle(st, "fake_kind", "troubleshooting[heldout]")
        assert life.champion() is not None and life.champion().version == 1  # type: ignore[union-attr]
        assert_consistent(st)


def test_kill_9_during_the_gate_rejects_the_half_gated_version(tmp_path: Path, url: str) -> None:
    record(url, 1)
    proc = _start_daemon(_toml(tmp_path, "eval_sleep = 60"), url, tmp_path)
    try:
        def gating() -> bool:
            with SqlStore(url) as st:
                return bool(st.learning_log(kind="fake_kind", steps=["evaluate"]))
        _wait(gating)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    with SqlStore(url) as st:
        assert st.get_artifact("fake_kind", "troubleshooting[heldout]").status == "evaluating"
    st = _restart_and_finish(tmp_path, url)
    with st:
        life = Lifecycle(st, "fake_kind", "troubleshooting[heldout]")
        v1 = life.get(1)
        assert v1.state is ArtifactState.REJECTED and "interrupted" in v1.meta["failure"]
        champ = life.champion()
        assert champ is not None and champ.version == 2
        assert_consistent(st)


def test_start_status_stop(tmp_path: Path, url: str) -> None:
    toml = _toml(tmp_path, "quality = 0.9")
    run = CliRunner().invoke
    out = run(app, ["daemon", "start", "--config", str(toml), "--store", url],
              env={"PYTHONPATH": TESTS})
    assert out.exit_code == 0 and "daemon started" in out.output, out.output
    try:
        again = run(app, ["daemon", "start", "--config", str(toml), "--store", url])
        assert isinstance(again.exception, ConfigError)
        assert "already runs" in str(again.exception)
        record(url, 1)  # the running daemon trains on these by itself

        def promoted() -> bool:  # the champion, not the challenger of a gate still running
            with SqlStore(url) as st:
                return any(a.alias == "champion" for a in st.aliases("fake_kind"))
        _wait(promoted, timeout=120)
        out = run(app, ["daemon", "status", "--config", str(toml), "--store", url])
        assert "running, pid" in out.output and "v1" in out.output and "promoted" in out.output, \
            out.output
    finally:
        out = run(app, ["daemon", "stop", "--run-dir", str(tmp_path / "run")])
    assert out.exit_code == 0 and "daemon stopped" in out.output
