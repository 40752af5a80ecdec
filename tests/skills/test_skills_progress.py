"""``swarmlearn skills train`` with stderr not a terminal: each stage and step as a plain
progress line while it runs (ops.progress.CliProgress), each finished step a line on stdout.

The two LLM endpoints are scripted clients in this process (the HTTP path is the slow
test in test_skills_cli.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from swarmlearn.cli import app
from swarmlearn.llm import LLMClientConfig, ScriptedLLMClient
from swarmlearn.skills._fake import ScriptedWorld

OPTIMIZE = ('[optimize]\nepochs = 1\nbatch_size = 4\nminibatch_size = 2\nedit_budget = 3\n'
            'gate_alpha = 0.25\ngate_min_tasks = 5\nconcurrency = 1\n')


def test_train_piped_shows_stages_and_steps_as_lines(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    w = ScriptedWorld(categories=6, per_category=6)

    def client(cfg: LLMClientConfig) -> ScriptedLLMClient:
        return ScriptedLLMClient(default=w.target if cfg.base_url.endswith("/target")
                                 else w.optimizer)

    monkeypatch.setattr("swarmlearn.skills._cli.HttpLLMClient", client)
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'[qa]\npath = "{w.write(tmp_path / "qa.jsonl")}"\n'
                   '[target]\nbase_url = "http://127.0.0.1:9/target"\n'
                   '[optimizer]\nbase_url = "http://127.0.0.1:9/optimizer"\n' + OPTIMIZE)
    got = CliRunner().invoke(app, ["skills", "train", str(cfg), "--run-dir",
                                   str(tmp_path / "run")])
    assert got.exit_code == 0, (got.output, got.exception)
    lines = [x for x in got.stderr.splitlines() if x.startswith("skills train: ")]
    assert lines[0].startswith("skills train: starting · "), lines
    staged = [m.groups() for x in lines
              if (m := re.match(r"skills train: (\d)/4 steps \(\d+%\) · step (\d) · ([^·]+) · "
                                r"calls \d+ · tokens \d+", x))]
    assert {int(done) for done, _, _ in staged} >= {0, 1, 2, 3}, lines  # during the run
    assert len({stage for _, _, stage in staged}) > 1, lines  # each stage named
    assert re.match(r"skills train: 4/4 steps \(100%\) · ", lines[-1]), lines
    assert [x.split(":")[0] for x in got.stdout.splitlines() if x.startswith("step ")] == [
        f"step {i}/4" for i in range(1, 5)]
    assert "\x1b" not in got.stderr
