"""``swarmlearn skills`` end to end over HTTP (scripted OpenAI-compatible servers on
127.0.0.1): train with progress and the HTML report, show/diff write nothing, bad input is
one line before any work, and a real ``kill -9`` of the training process, then resume,
gives the run an uninterrupted one gives."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from swarmlearn.cli import app, main
from swarmlearn.llm import CompletionRequest, ScriptedLLMClient
from swarmlearn.skills import QAConfig, QAEnv, SkillOptConfig, SkillOptimizer
from swarmlearn.skills._fake import POISON, ScriptedWorld, serve

runner = CliRunner()
OPTIMIZE = ('[optimize]\nepochs = 2\nbatch_size = 4\nminibatch_size = 2\nedit_budget = 3\n'
            'gate_alpha = 0.25\ngate_min_tasks = 5\nconcurrency = 1\n')


@dataclass
class Served:
    world: ScriptedWorld
    qa: Path
    urls: dict[str, str]
    pause: list[float]  # seconds the target waits per call


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    w = ScriptedWorld(categories=6, per_category=6)
    pause = [0.0]

    def slow_target(request: CompletionRequest) -> str:
        time.sleep(pause[0])
        return w.target(request)

    servers: list[ThreadingHTTPServer] = []
    urls = {}
    for name, fn in (("target", slow_target), ("optimizer", w.optimizer)):
        server, urls[name] = serve(fn)
        servers.append(server)
    yield Served(w, w.write(tmp_path / "qa.jsonl"), urls, pause)
    for s in servers:
        s.shutdown()


def _config(tmp_path: Path, qa: Path, urls: dict[str, str], epochs: int = 2) -> Path:
    p = tmp_path / "run.toml"
    p.write_text(f'[qa]\npath = "{qa}"\n[target]\nbase_url = "{urls["target"]}"\nretries = 0\n'
                 f'[optimizer]\nbase_url = "{urls["optimizer"]}"\nretries = 0\n'
                 + OPTIMIZE.replace("epochs = 2", f"epochs = {epochs}"))
    return p


@pytest.mark.slow
def test_train_over_http_shows_progress_and_writes_the_report(served: Served,
                                                              tmp_path: Path) -> None:
    cfg, run_dir = _config(tmp_path, served.qa, served.urls, epochs=1), tmp_path / "run"
    got = runner.invoke(app, ["skills", "train", str(cfg), "--run-dir", str(run_dir)])
    assert got.exit_code == 0, got.output
    assert "step 4/4" in got.output and "test exact 0.000 → " in got.output
    page = (run_dir / "report.html").read_text()
    assert "Accuracy per step" in page and page.count("<img") == 2
    state = json.loads((run_dir / "state.json").read_text())
    assert state["status"] == "done" and "Rule c1" in state["best"]
    again = runner.invoke(app, ["skills", "optimize", str(cfg), "--run-dir", str(run_dir)])
    assert again.exit_code == 0 and json.loads((run_dir / "state.json").read_text()) == state


def test_show_and_diff_write_nothing(tmp_path: Path) -> None:
    w = ScriptedWorld(categories=4, per_category=5)
    env = QAEnv.from_config(QAConfig(path=str(w.write(tmp_path / "qa.jsonl"))))
    run_dir = tmp_path / "run"
    SkillOptimizer(env, target=ScriptedLLMClient(default=w.target),
                   optimizer=ScriptedLLMClient(default=w.optimizer), run_dir=run_dir,
                   config=SkillOptConfig(epochs=1, batch_size=4, minibatch_size=2,
                                         gate_alpha=0.25, gate_min_tasks=4)).train()
    before = {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()}
    shown = runner.invoke(app, ["skills", "show", str(run_dir)])
    assert shown.exit_code == 0 and "Rule c" in shown.output and "accept" in shown.output
    diffed = runner.invoke(app, ["skills", "diff", str(run_dir)])
    assert diffed.exit_code == 0 and "+Rule c" in diffed.output and POISON not in diffed.output
    assert {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()} == before
    missing = runner.invoke(app, ["skills", "show", str(tmp_path / "nowhere")])
    assert missing.exit_code != 0


@pytest.mark.parametrize(("text", "message"), [
    ("[qa\npath = 1", "not TOML"),
    ('[qa]\npath = "x.jsonl"\n', "needs [target]"),
    ('[qa]\npath = "x.jsonl"\n[target]\nbase_url = "http://127.0.0.1:9"\n[swarm]\n'
     'scenario = "maze"\n', "one of [qa] or [swarm]"),
    ('[qa]\npath = "QA"\n[target]\nbase_url = "http://127.0.0.1:9"\n[optimize]\nepochs = 0\n',
     "epochs"),
    ('[qa]\npath = "BAD"\n[target]\nbase_url = "http://127.0.0.1:9"\n', "bad.jsonl:2: missing "
     "field 'answers'"),
])
def test_bad_input_is_one_line_before_any_work(tmp_path: Path, text: str, message: str,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "answers": ["a"]}\n{"question": "q2"}\n')
    ok = ScriptedWorld(2, 3).write(tmp_path / "qa.jsonl")
    cfg = tmp_path / "c.toml"
    cfg.write_text(text.replace("BAD", str(bad)).replace('"QA"', f'"{ok}"'))
    argv = ["swarmlearn", "skills", "train", str(cfg), "--run-dir", str(tmp_path / "r")]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_:
        main()  # what the swarmlearn command runs: one line and an exit code
    assert exit_.value.code != 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "r").exists()  # nothing written


def _finished_run(tmp_path: Path) -> tuple[Path, Path]:
    """A finished run directory of a 1-epoch run and its QA file."""
    w = ScriptedWorld(categories=4, per_category=5)
    qa = w.write(tmp_path / "qa.jsonl")
    run_dir = tmp_path / "run"
    SkillOptimizer(QAEnv.from_config(QAConfig(path=str(qa))),
                   target=ScriptedLLMClient(default=w.target),
                   optimizer=ScriptedLLMClient(default=w.optimizer), run_dir=run_dir,
                   config=SkillOptConfig(epochs=1, batch_size=4, minibatch_size=2,
                                         edit_budget=3, gate_alpha=0.25, gate_min_tasks=5,
                                         concurrency=1)).train()
    return run_dir, qa


@pytest.mark.parametrize(("text", "message"), [
    ("[qa\npath = 1", "not TOML"),
    ('[qa]\npath = "BAD"\n[target]\nbase_url = "http://127.0.0.1:9"\n', "bad.jsonl:2: missing "
     "field 'answers'"),
    ('[qa]\npath = "QA"\n[target]\nbase_url = "http://127.0.0.1:9"\n[optimize]\nepochs = 1\n'
     'batch_size = 4\nminibatch_size = 2\nedit_budget = 3\ngate_alpha = 0.25\n'
     'gate_min_tasks = 5\nseed = 7\n', "cannot resume with a different seed"),
    ('[qa]\npath = "QA"\n[target]\nbase_url = "http://127.0.0.1:9"\n[optimize]\nepochs = -1\n',
     "epochs"),
])
@pytest.mark.parametrize("command", ["resume", "train"])
def test_bad_input_on_a_stored_run_is_one_line_and_loses_nothing(
        tmp_path: Path, text: str, message: str, command: str,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir, qa = _finished_run(tmp_path)
    stored = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "answers": ["a"]}\n{"question": "q2"}\n')
    cfg = tmp_path / "c.toml"
    cfg.write_text(text.replace("BAD", str(bad)).replace('"QA"', f'"{qa}"'))
    monkeypatch.chdir(tmp_path)
    argv = (["resume", str(run_dir), "--config", str(cfg)] if command == "resume"
            else ["train", str(cfg), "--run-dir", str(run_dir)])
    monkeypatch.setattr(sys, "argv", ["swarmlearn", "skills", *argv])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code != 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], lines
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == stored  # nothing lost


def test_a_corrupt_state_file_is_one_line_and_is_left_as_it_is(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    run_dir, qa = _finished_run(tmp_path)
    state = run_dir / "state.json"
    state.write_bytes(state.read_bytes()[:200])  # a torn copy, as a disk error leaves it
    torn = state.read_bytes()
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[qa]\npath = "{qa}"\n[target]\nbase_url = "http://127.0.0.1:9"\n')
    monkeypatch.chdir(tmp_path)
    for argv in (["resume", str(run_dir), "--config", str(cfg)],
                 ["train", str(cfg), "--run-dir", str(run_dir)], ["show", str(run_dir)]):
        monkeypatch.setattr(sys, "argv", ["swarmlearn", "skills", *argv])
        with pytest.raises(SystemExit) as exit_:
            main()
        assert exit_.value.code != 0
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(lines) == 1 and "unreadable state" in lines[0], lines
        assert state.read_bytes() == torn  # not overwritten by a fresh run


def _steps(run_dir: Path) -> int:
    try:
        return int(json.loads((run_dir / "state.json").read_text())["step"])
    except (OSError, ValueError, KeyError):
        return -1


def _comparable(run_dir: Path) -> dict[str, Any]:
    s = json.loads((run_dir / "state.json").read_text())
    return {k: s[k] for k in ("best", "current", "history", "rejected", "step", "usage",
                              "test", "status", "versions", "scores")}


@pytest.mark.slow
@pytest.mark.parametrize("kill_after_step", [1, 3])  # steps 5-8 are converged: no calls
def test_kill_9_mid_run_then_resume_gives_the_uninterrupted_run(
        served: Served, tmp_path: Path, kill_after_step: int) -> None:
    cfg = _config(tmp_path, served.qa, served.urls)
    cli = [sys.executable, "-m", "swarmlearn.cli", "skills"]
    whole = tmp_path / "whole"
    subprocess.run([*cli, "train", str(cfg), "--run-dir", str(whole)], check=True,
                   capture_output=True, timeout=300)
    served.pause[0] = 0.02  # slow enough to be caught mid-step
    cut = tmp_path / "cut"
    proc = subprocess.Popen([*cli, "train", str(cfg), "--run-dir", str(cut)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _steps(cut) < kill_after_step and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # into the next step
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    killed_at = _steps(cut)
    assert 0 <= killed_at < 8
    served.pause[0] = 0.0
    subprocess.run([*cli, "resume", str(cut), "--config", str(cfg)], check=True,
                   capture_output=True, timeout=300)
    assert _comparable(cut) == _comparable(whole)


def test_publish_registers_the_best_and_promote_makes_it_live(tmp_path: Path) -> None:
    from swarmlearn.skills import LiveSkill
    from swarmlearn.store import SqlStore

    w = ScriptedWorld(categories=4, per_category=5)
    env = QAEnv.from_config(QAConfig(path=str(w.write(tmp_path / "qa.jsonl"))))
    run = SkillOptimizer(env, target=ScriptedLLMClient(default=w.target),
                         optimizer=ScriptedLLMClient(default=w.optimizer),
                         run_dir=tmp_path / "run",
                         config=SkillOptConfig(epochs=1, batch_size=4, minibatch_size=2,
                                               gate_alpha=0.25, gate_min_tasks=4)).train()
    url = f"sqlite:///{tmp_path}/s.db"
    got = runner.invoke(app, ["skills", "publish", str(tmp_path / "run"), "--scope", "qa",
                              "--store", url])
    assert got.exit_code == 0 and "skill/qa v1: candidate" in got.output
    live = LiveSkill(SqlStore(url), "qa", poll_s=0.0, default="none")
    assert live() == "none"
    got = runner.invoke(app, ["skills", "publish", str(tmp_path / "run"), "--scope", "qa",
                              "--store", url, "--promote"])
    assert got.exit_code == 0 and "v2: promoted" in got.output
    assert live() == run.best
