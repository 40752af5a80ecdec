"""``swarmlearn feedback train`` and ``hidden`` with stderr not a terminal: plain progress
lines while they work (ops.progress.CliProgress) — the loss throttled, each condition, run
and side of ``hidden`` a line at once — on the tiny BERT."""

from __future__ import annotations

import itertools
import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from swarmlearn.cli import main
from swarmlearn.ops import progress as progress_module


@pytest.fixture(autouse=True)
def _restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    root, ours = logging.getLogger(), logging.getLogger("swarmlearn")
    saved = (root.handlers[:], root.level, ours.level)
    yield
    root.handlers[:], root.level = saved[0], saved[1]
    ours.setLevel(saved[2])


def _err(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
         *args: str) -> str:
    monkeypatch.setattr(sys, "argv", ["swarmlearn", *args])
    with pytest.raises(SystemExit) as info:
        main()
    err = capsys.readouterr().err
    assert info.value.code in (0, None), err
    assert "\x1b" not in err and "\r" not in err
    return err


def test_train_then_hidden_piped(tiny_encoder: Path, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    # the progress clock 3 s on at each reading: a loss line every few steps (interval 10 s)
    monkeypatch.setattr(progress_module, "time",
                        SimpleNamespace(monotonic=itertools.count(0, 3).__next__))
    model = tmp_path / "model"
    err = _err(monkeypatch, capsys, "feedback", "train", "--encoder", str(tiny_encoder),
               "--out", str(model), "--epochs", "1", "--batch-size", "32", "--threads", "1")
    lines = [x for x in err.splitlines() if x.startswith("training: ")]
    steps = [(int(m[1]), int(m[2])) for x in lines if (m := re.match(r"training: (\d+)/(\d+) ", x))]
    total = steps[-1][1]
    assert re.fullmatch(r"training: 0:00:\d\d elapsed", lines[0]), lines  # no total yet
    assert steps[-1] == (total, total) and any(0 < s < total for s, _ in steps), lines
    assert len(lines) < total + 1, lines  # throttled: not a line per step
    assert re.search(r" · epoch 1/1 · loss \d\.\d{3}", lines[-1]), lines

    err = _err(monkeypatch, capsys, "feedback", "hidden", "troubleshooting", "--runs", "2",
               "--sessions", "1", "--episodes", "1", "--model", str(model))
    lines = [x for x in err.splitlines() if x.startswith("hidden signal: ")]
    assert lines[0].startswith("hidden signal: 0/16 · "), lines
    for name in ("environment", "feedback", "silence", "lies"):
        for side in ("on", "off"):
            assert any(x.split(" · ", 1)[1].startswith(f"{name} · run 1 {side}")
                       for x in lines[1:]), (name, side, lines)
    assert lines[-1].startswith("hidden signal: 16/16 · lies · run 2 off"), lines
