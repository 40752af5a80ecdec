"""``swarmlearn fed simulate`` with stderr not a terminal: a line per round and the rounds
done as plain, throttled progress lines (ops.progress.CliProgress), no control codes."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("flwr")

from swarmlearn.cli import main
from swarmlearn.ops import progress as progress_module

TOML = """
[federation]
rounds = 4
episodes = 1
[evaluation]
episodes = 1
scenarios = ["troubleshooting"]
[vocabulary]
episodes = 2
[[nodes]]
name = "a"
scenarios = ["troubleshooting"]
[[nodes]]
name = "b"
scenarios = ["troubleshooting"]
"""


def test_simulate_piped_shows_the_rounds_as_they_go(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    # the progress clock 6 s on at each reading: a line every other round (interval 10 s)
    monkeypatch.setattr(progress_module, "time",
                        SimpleNamespace(monotonic=itertools.count(0, 6).__next__))
    cfg = tmp_path / "fed.toml"
    cfg.write_text(TOML, encoding="utf-8")
    monkeypatch.setattr("sys.argv", ["swarmlearn", "fed", "simulate", str(cfg),
                                     "--epsilon", "off"])
    with pytest.raises(SystemExit) as done:
        main()
    err = capsys.readouterr().err
    assert done.value.code in (0, None), err
    lines = [x for x in err.splitlines() if x.startswith("no DP: ")]
    counts = [int(m.group(1)) for x in lines if (m := re.match(r"no DP: (\d)/4 rounds", x))]
    assert counts[0] == 0 and counts[-1] == 4 and 2 < len(counts) < 6, lines
    assert [x for x in lines if " round " in x] == [
        f"no DP: round {r}: 2 nodes" for r in range(1, 5)], lines
    # each count line comes after the round it counts
    for i, x in enumerate(lines):
        if m := re.match(r"no DP: (\d)/4 rounds", x):
            assert sum(" round " in y for y in lines[:i]) >= int(m.group(1)), lines
    assert "\x1b" not in err
