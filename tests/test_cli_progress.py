"""``swarmlearn eval`` (and ``--learning``) with stderr not a terminal: plain, throttled lines
while it works (ops.progress.CliProgress), not a bar rendered at the end."""

from __future__ import annotations

import itertools
import re
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from swarmlearn.cli import app
from swarmlearn.ops import progress as progress_module


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """ops.progress's clock, 4 s on at each reading: a line every few updates (interval 10 s)."""
    monkeypatch.setattr(progress_module, "time",
                        SimpleNamespace(monotonic=itertools.count(0, 4).__next__))


def _counts(stderr: str, prefix: str) -> list[int]:
    return [int(m.group(1)) for line in stderr.splitlines()
            if (m := re.match(rf"{prefix}[^:]*: (\d+)/", line))]


@pytest.mark.usefixtures("clock")
def test_eval_piped_writes_throttled_lines_with_the_success_rate() -> None:
    result = CliRunner().invoke(app, ["eval", "troubleshooting", "-n", "12", "--no-store"])
    assert result.exit_code == 0, (result.output, result.exception)
    lines = [x for x in result.stderr.splitlines() if x.startswith("eval troubleshooting:")]
    counts = _counts(result.stderr, "eval troubleshooting")
    assert counts[0] == 0 and counts[-1] == 12, lines
    assert 2 < len(lines) < 12, lines  # during the work, but not a line per episode
    assert counts == sorted(counts)
    assert lines[0].startswith("eval troubleshooting: 0/12 (0%) · success – · ")
    assert re.match(r"eval troubleshooting: 12/12 \(100%\) · success \d+% · ", lines[-1])
    assert "\x1b" not in result.stderr and "\r" not in result.stderr


@pytest.mark.usefixtures("clock")
def test_eval_learning_piped_names_each_run_and_side() -> None:
    result = CliRunner().invoke(app, ["eval", "troubleshooting", "--learning", "-n", "1",
                                      "--sessions", "2", "--episodes", "2", "--no-store"])
    assert result.exit_code == 0, (result.output, result.exception)
    lines = [x for x in result.stderr.splitlines() if x.startswith("learning")]
    heads = [x.split(": ")[0] for x in lines]
    assert heads[0] == "learning troubleshooting"
    assert "learning run 1/1 on troubleshooting" in heads
    assert heads[-1] == "learning run 1/1 off troubleshooting"
    assert re.match(r"learning run 1/1 off troubleshooting: 4/4 \(100%\) · success \d+% ",
                    lines[-1]), lines
    assert "\x1b" not in result.stderr
