"""The profile and snapshot commands, end to end on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from swarmlearn.errors import ArtifactError, ConfigError, StoreError, exit_code_for
from swarmlearn.learn._analyze_cli import learn_app
from swarmlearn.learn._cli import profile_app, snapshot_app
from swarmlearn.learn.snapshot import SNAPSHOT_KIND
from swarmlearn.store import SqlStore

app = typer.Typer()
app.add_typer(profile_app, name="profile")
app.add_typer(snapshot_app, name="snapshot")
app.add_typer(learn_app, name="learn")


@pytest.fixture
def cli(store_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("SWARMLEARN_STORE", store_url)
    monkeypatch.setenv("COLUMNS", "200")
    return CliRunner()


def _ok(cli: CliRunner, *args: str) -> str:
    result = cli.invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def _fails(cli: CliRunner, *args: str) -> Result:
    result = cli.invoke(app, list(args))
    assert result.exit_code != 0
    return result


def test_profile_commands(cli: CliRunner, store_url: str) -> None:
    assert "no profiles" in _ok(cli, "profile", "list")
    out = _ok(
        cli,
        "profile",
        "bootstrap",
        "troubleshooting",
        "-n",
        "5",
        "--episodes",
        "4",
        "--bootstrap-sessions",
        "2",
        "-k",
        "outage",
        "-k",
        "faulty service",
        "--priority",
        "3",
    )
    assert "→ bootstrap" in out and "→ validating" in out and "→ active" in out
    assert "profile troubleshooting: active after 3 sessions" in out
    out = _ok(cli, "profile", "list")
    assert "troubleshooting" in out and "active" in out and "faulty service, outage" in out
    out = _ok(cli, "profile", "show", "troubleshooting")
    assert "session groups" in out and "validate" in out and "strategy fifo" in out
    assert "dependency graph: " in out and "Restart after" in out
    data = json.loads(_ok(cli, "profile", "show", "troubleshooting", "--json", "--version", "1"))
    assert data["state"] == "bootstrap" and data["format_version"] == 1
    assert "already active" in _ok(cli, "profile", "bootstrap", "troubleshooting")
    missing = _fails(cli, "profile", "show", "nope")
    assert isinstance(missing.exception, StoreError) and exit_code_for(missing.exception) == 5


def test_snapshot_commands(cli: CliRunner, store_url: str, tmp_path: Path) -> None:
    assert "no snapshots" in _ok(cli, "snapshot", "list")
    _ok(cli, "profile", "bootstrap", "troubleshooting", "-n", "3", "--episodes", "3")
    assert _ok(cli, "snapshot", "list", "--scope", "session").count("session:") == 3
    out = _ok(
        cli,
        "snapshot",
        "merge",
        "scenario",
        "troubleshooting",
        "--from-sessions",
        "--strategy",
        "time-decay",
        "--half-life",
        "2",
    )
    assert "stored scenario:troubleshooting v1: merged 3 snapshots (time-decay)" in out
    assert "9 episodes" in out
    out = _ok(
        cli,
        "snapshot",
        "merge",
        "scenario",
        "troubleshooting",
        "--latest",
        "1",
        "--strategy",
        "success-weighted",
    )
    assert "v2: merged 1 snapshots" in out
    target = tmp_path / "snap.json"
    assert "exported scenario:troubleshooting v1" in _ok(
        cli, "snapshot", "export", "scenario", "troubleshooting", str(target), "--version", "1"
    )
    assert json.loads(target.read_text())["sessions"] == 3
    assert "as scenario:troubleshooting v3" in _ok(cli, "snapshot", "import", str(target))
    out = _ok(cli, "snapshot", "list", "--scope", "scenario", "--key", "troubleshooting")
    assert "time-decay" in out and "import" in out and out.count("scenario:troubleshooting") == 3


def _state(url: str) -> list[tuple[str, int, str]]:
    with SqlStore(url) as st:
        return sorted((r.name, r.version, r.sha256) for r in st.artifacts(SNAPSHOT_KIND))


def test_snapshot_errors_are_one_line(cli: CliRunner, store_url: str, tmp_path: Path) -> None:
    _ok(cli, "profile", "bootstrap", "troubleshooting", "-n", "2", "--episodes", "2")
    _ok(cli, "snapshot", "merge", "scenario", "troubleshooting", "--from-sessions")
    with SqlStore(store_url) as st:
        st.put_artifact(SNAPSHOT_KIND, "scenario:troubleshooting", b"\x00garbage")
    before = _state(store_url)
    r = _fails(cli, "snapshot", "merge", "scenario", "troubleshooting", "--latest", "2")
    assert isinstance(r.exception, ArtifactError) and exit_code_for(r.exception) == 9
    assert "snapshot scenario:troubleshooting v2: payload is not zlib" in str(r.exception)
    assert _state(store_url) == before  # the failed merge changed nothing
    bad = tmp_path / "bad.json"
    bad.write_text('{"format_version": 2}')
    r = _fails(cli, "snapshot", "import", str(bad))
    assert str(r.exception) == f"{bad}: format_version 2 is not supported (expected 1)"
    for args, message in [
        (("--strategy", "time-decay"), "time-decay needs a half-life"),
        (("--latest", "0"), "--latest: expected >= 1"),
        (("--strategy", "success-weighted", "--floor", "0"), "floor: expected > 0.0"),
    ]:
        r = _fails(cli, "snapshot", "merge", "scenario", "troubleshooting", *args)
        assert isinstance(r.exception, ConfigError) and message in str(r.exception)
        assert "\n" not in str(r.exception)
    r = _fails(cli, "snapshot", "merge", "scenario", "nothing")
    assert "no stored snapshots to merge (scenario:nothing)" in str(r.exception)
    assert _fails(cli, "snapshot", "merge", "planet", "x").exit_code == 2  # usage error
    assert _state(store_url) == before


def test_learn_analyze_registers_a_lifecycle_candidate(cli: CliRunner, store_url: str) -> None:
    from swarmlearn.core.scenario import load_scenario
    from swarmlearn.lifecycle import ArtifactState, Lifecycle
    from swarmlearn.session import run_session

    sc = load_scenario("troubleshooting").override(workers={"policy": "adaptive"})
    with SqlStore(store_url) as st:
        sessions = [run_session(sc, episodes=4, store=st, seed=s).session for s in (1, 50)]
    out = _ok(cli, "learn", "analyze", "troubleshooting", "--trials", "0")
    assert "offline_model/troubleshooting v1: candidate" in out
    out = _ok(cli, "learn", "analyze", "troubleshooting", "--trials", "0", "--promote")
    assert "offline_model/troubleshooting v2: promoted" in out
    with SqlStore(store_url) as st:
        life = Lifecycle(st, "offline_model", "troubleshooting")
        first, second = life.get(1), life.get(2)
        assert first.state is ArtifactState.CANDIDATE and life.champion().id == second.id
        assert second.lineage.parent == first.id
        assert sorted(second.lineage.inputs["sessions"]) == sorted(sessions)
        steps = [r.step for r in life.log()]
        assert steps[:3] == ["promote", "evaluate", "produce"] and steps.count("produce") == 2
