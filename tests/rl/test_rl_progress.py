"""``swarmlearn rl train`` with stderr not a terminal: plain, throttled progress lines while
it trains (ops.progress.CliProgress) with the mean return and the last evaluation."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from swarmlearn.ops import progress as progress_module
from swarmlearn.rl import rl_app
from swarmlearn.rl._loop import LoopConfig

SMALL = {
    "eval_every": 300,
    "eval_episodes": 2,
    "checkpoint_every": 600,
    "dqn": {"hidden": [16], "learning_starts": 100, "train_freq": 32, "gradient_steps": 1},
}


@pytest.mark.usefixtures("gym")
def test_train_piped_writes_throttled_lines_while_it_trains(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the loop reports every step (not every 0.5 s of a machine whose speed varies) and the
    # progress clock moves 1 s a reading: a line about every 10th report (interval 10 s)
    monkeypatch.setitem(LoopConfig.__init__.__kwdefaults__, "progress_interval", 0.0)
    monkeypatch.setattr(progress_module, "time",
                        SimpleNamespace(monotonic=itertools.count(0, 1).__next__))
    config = tmp_path / "small.json"
    config.write_text(json.dumps(SMALL))
    result = CliRunner().invoke(rl_app, ["train", "CartPole-v1", "--steps", "600", "--config",
                                         str(config), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, (result.output, result.exception)
    lines = [x for x in result.stderr.splitlines() if x.startswith("CartPole-v1: ")]
    counts = [int(x.split(": ")[1].split("/")[0]) for x in lines]
    assert counts[0] == 0 and counts[-1] == 600 and counts == sorted(counts), lines
    assert 10 < len(lines) < 200, lines  # during training, far fewer than the 600 reports
    assert lines[0].startswith("CartPole-v1: 0/600 steps (0%) · mean return - · eval - · ")
    assert re.match(r"CartPole-v1: 600/600 steps \(100%\) · mean return \d+\.\d · "
                    r"eval \d+\.\d · ", lines[-1]), lines[-1]
    assert "\x1b" not in result.stderr and "\r" not in result.stderr
