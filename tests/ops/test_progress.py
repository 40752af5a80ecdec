"""ops.progress: long commands show progress on stderr, as plain lines when piped."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from swarmlearn.ops.progress import CliProgress

TESTS = str(Path(__file__).parents[1])
SCENARIO = "examples/troubleshooting.toml"


def _piped() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=100_000), out


def test_piped_progress_is_plain_lines_throttled_with_rate_and_time_left() -> None:
    console, out = _piped()
    assert not console.is_terminal
    with CliProgress(console, unit="trials", interval=3600) as bar:
        task = bar.add("learn analyze x", total=4, info="2 sessions")
        bar.update(task, completed=1)  # within the interval, same info: no line
        bar.update(task, completed=2, info="half way")
        bar.update(task, completed=3)
        bar.update(task, completed=4, done=True)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3, lines
    assert lines[0].startswith("learn analyze x: 0/4 trials (0%) · 2 sessions · 0:00:00 elapsed")
    assert lines[1].startswith("learn analyze x: 2/4 trials (50%) · half way · ")
    assert "/s · " in lines[1] and lines[1].endswith(" left")
    assert lines[2].startswith("learn analyze x: 4/4 trials (100%)")
    assert not lines[2].endswith(" left")
    assert "\x1b" not in out.getvalue() and "\r" not in out.getvalue()


def test_piped_progress_prints_again_after_the_interval() -> None:
    console, out = _piped()
    with CliProgress(console, interval=0) as bar:
        task = bar.add("x", total=3)
        for i in range(1, 4):
            bar.update(task, completed=i)
    assert [line.split(" · ")[0] for line in out.getvalue().splitlines()] == [
        "x: 0/3 (0%)", "x: 1/3 (33%)", "x: 2/3 (67%)", "x: 3/3 (100%)"]


def test_terminal_progress_is_a_rich_bar() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    with CliProgress(console, unit="trials") as bar:
        task = bar.add("learn analyze x", total=5)
        bar.update(task, completed=5, done=True)
    text = out.getvalue()
    assert "\x1b[" in text and "5/5" in text and "learn analyze x" in text


def test_learn_analyze_shows_its_trials(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from swarmlearn.cli import app
    from swarmlearn.core.scenario import load_scenario
    from swarmlearn.session import run_session
    from swarmlearn.store import SqlStore

    sc = load_scenario("troubleshooting").override(workers={"policy": "adaptive"})
    with SqlStore(store_url) as st:
        for seed in (1, 50):
            run_session(sc, episodes=4, store=st, seed=seed)
    result = CliRunner().invoke(app, ["learn", "analyze", "troubleshooting", "--trials", "3",
                                      "--store", store_url])
    assert result.exit_code == 0, (result.output, result.exception)
    lines = [x for x in result.stderr.splitlines() if x.startswith("learn analyze")]
    assert lines[0].startswith("learn analyze troubleshooting: 0/3 trials (0%) · 2 sessions")
    assert lines[-1].startswith("learn analyze troubleshooting: 3/3 trials (100%)")
    assert "\x1b" not in result.stderr
    assert "offline_model/troubleshooting v1: candidate" in result.stdout


def test_daemon_run_once_shows_each_level_runs_stages(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from swarmlearn.cli import app
    from swarmlearn.core.scenario import load_scenario
    from swarmlearn.session import run_session
    from swarmlearn.store import SqlStore

    monkeypatch.syspath_prepend(TESTS)  # daemon_fakes, also for the trainer child
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")]))
    url = f"sqlite:///{tmp_path}/store.db"
    sc = load_scenario(SCENARIO, variant="heldout").override(workers={"policy": "adaptive"})
    with SqlStore(url) as st:
        run_session(sc, episodes=3, store=st, seed=10_000)
    toml = tmp_path / "daemon.toml"
    toml.write_text(f'[daemon]\nscenario = "{SCENARIO}"\nvariant = "heldout"\n'
                    f'run_dir = "{tmp_path / "run"}"\ngate_tasks = 30\n'
                    f'[levels.fake]\nkind = "daemon_fakes:build"\ntrigger = "manual"\n')
    result = CliRunner().invoke(app, ["daemon", "run-once", "--config", str(toml),
                                      "--store", url, "--level", "fake"])
    assert result.exit_code == 0, (result.output, result.exception)
    lines = [x for x in result.stderr.splitlines() if x.startswith("daemon fake_kind")]
    stages = [x.split(": ", 1)[1].split(" · ")[:2] for x in lines]
    assert [s[0] for s in stages] == ["0/4", "1/4", "2/4", "3/4", "4/4"], lines
    assert stages[0][1].startswith("training (")
    assert stages[1][1] == "v1 trained" and stages[2][1] == "gating v1"
    assert stages[3][1].startswith(("v1 promoted: ", "v1 rejected: "))
    assert stages[4][1].startswith("done in ") and "\x1b" not in result.stderr
    assert "1 level run(s)" in result.stdout
