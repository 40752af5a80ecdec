"""ops.dashboard / ``swarmlearn report``: built from a real store, opened in Debian's headless
chromium: it renders, logs no console error, and every plot drew data."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from swarmlearn.cli import app
from swarmlearn.core.events import LLMCallEvent
from swarmlearn.core.scenario import load_scenario
from swarmlearn.errors import ConfigError
from swarmlearn.lifecycle import Lifecycle, Lineage, Produced, TaskResult, gate
from swarmlearn.ops.dashboard import DashboardConfig, build_dashboard
from swarmlearn.rl._protocols import EpisodeStatus
from swarmlearn.rl._records import EpisodeRecord
from swarmlearn.rl._rundir import EpisodeLog, RunDir
from swarmlearn.session import run_session
from swarmlearn.store import SqlStore

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _fill(tmp: Path) -> tuple[str, Path]:
    """A store with sessions of two scenarios, LLM calls, a lineage with a promotion, a
    rejection and a rollback; a DQN run directory."""
    url = f"sqlite:///{tmp / 's.db'}"
    store = SqlStore(url)
    for name in ("troubleshooting", "maze"):
        sc = load_scenario(name)
        for k in range(4):
            run_session(sc, episodes=8, store=store, seed=100 * k, kind="learn")
    sid = store.open_session(scenario="troubleshooting", kind="run")
    store.write([LLMCallEvent((sid << 32) | i, sid, "troubleshooting:1", 0, i, "decide", "m",
                              "", 300 + i, 20, 0.2 + 0.01 * i, True, "", 0.0)
                 for i in range(40)])
    store.close_session(sid, summary={"episodes": 1, "success_rate": 1.0, "actions": 40})
    life = Lifecycle(store, "snapshot", "troubleshooting")
    win = ([TaskResult(i, False, 1.0) for i in range(30)],
           [TaskResult(i, True, 1.0) for i in range(30)])
    for result in (win, win, (win[1], win[0])):
        v = life.register(Produced(payload=b"{}", lineage=Lineage()))
        life.decide(life.start_evaluation(v), gate(*result))
    life.rollback("live success fell", automatic=True)
    store.close()
    runs = tmp / "runs"
    rd = RunDir.create(runs, "CartPole-v1", config={"env_id": "CartPole-v1"})
    for i in range(50):
        rd.append_episode(EpisodeLog.TRAIN, EpisodeRecord(
            index=i, step=20 * (i + 1), total_reward=10.0 + i, length=20,
            status=EpisodeStatus.TERMINATED, extras={"loss": 1.0 / (i + 1)}))
    rd.close()
    return url, runs


def test_dashboard_has_every_section_with_data(tmp_path: Path) -> None:
    url, runs = _fill(tmp_path)
    store = SqlStore(url, read_only=True)
    board = build_dashboard(store, DashboardConfig(runs_dir=str(runs)))
    by_title = {p["title"]: p for p in board.plots}
    sections = {p["section"] for p in board.plots}
    assert sections == {"Sessions", "Learning curves", "LLM calls", "Training", "Artifacts"}
    for p in board.plots:
        assert p["series"], p["title"]
        assert all(math.isfinite(v) for pts in p["series"].values() for pt in pts for v in pt)
    live = by_title["Live (champion) version of each lineage over time (0: baseline)"]
    assert [pt[1] for pt in live["series"]["snapshot/troubleshooting"]] == [1.0, 2.0, 1.0]
    loss = by_title["DQN training loss (run directories)"]
    assert len(next(iter(loss["series"].values()))) == 50
    html = board.render()
    for fetches in (" src=", "<link", "fetch(", "XMLHttpRequest", "@import"):  # no network
        assert fetches not in html
    store.close()


def _dom(path: Path) -> tuple[str, str]:
    assert CHROMIUM is not None
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-dev-shm-usage", f"--user-data-dir={path.parent / 'chrome-profile'}",
         "--enable-logging=stderr", "--v=1", "--virtual-time-budget=5000", "--dump-dom",
         path.as_uri()], capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    return proc.stdout.decode(), proc.stderr.decode()


def _console_errors(log: str) -> list[str]:
    return [line for line in log.splitlines() if "CONSOLE" in line
            or "Uncaught" in line]


@pytest.mark.slow  # two chromium starts: ~10 s
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                    "(apt-get install chromium; scripts/install.sh dev does it)")
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    url, runs = _fill(tmp_path)
    out = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["report", "--store", url, "-o", str(out),
                                      "--runs-dir", str(runs)])
    assert result.exit_code == 0, result.output
    figures = len(re.findall(r'<figure class="chart"', out.read_text()))
    dom, log = _dom(out)
    assert _console_errors(log) == []
    assert re.search(r'<div id="errors" hidden', dom), "the page caught a script error"
    assert re.search(rf'data-rendered="{figures}"', dom)
    points = [int(n) for n in re.findall(r'<svg class="plot"[^>]*data-points="(\d+)"', dom)]
    assert len(points) == figures >= 7 and all(n > 0 for n in points)
    assert dom.count('class="series"') >= figures
    rows = [int(n) for n in re.findall(r'data-rows="(\d+)"', dom)]
    assert len(rows) == 3 and all(n > 0 for n in rows)

    broken = tmp_path / "broken.html"  # the check sees a script error when there is one
    broken.write_text(out.read_text().replace("drawPlot(f,", "drawPlott(f,"))
    dom, log = _dom(broken)
    assert _console_errors(log) and not re.search(r'<div id="errors" hidden', dom)


def test_report_refuses_a_missing_store_before_writing(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", "--store", str(tmp_path / "none.db"),
                                      "-o", str(out)])
    assert isinstance(result.exception, ConfigError) and "no store at" in str(result.exception)
    assert not out.exists() and not (tmp_path / "none.db").exists()
