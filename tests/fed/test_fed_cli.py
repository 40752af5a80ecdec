"""``swarmlearn fed simulate`` end to end, and its one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("flwr")

from swarmlearn.cli import main

TOML = """
[federation]
rounds = 1
episodes = 2
[evaluation]
episodes = 2
scenarios = ["troubleshooting", "search"]
[vocabulary]
episodes = 3
[[nodes]]
name = "a"
scenarios = ["troubleshooting"]
[[nodes]]
name = "b"
scenarios = ["search"]
"""


def _run(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr("sys.argv", ["swarmlearn", *args])
    with pytest.raises(SystemExit) as done:
        main()
    return int(done.value.code or 0)


def test_simulate_writes_a_report_per_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "fed.toml"
    cfg.write_text(TOML, encoding="utf-8")
    out = tmp_path / "r.json"
    assert _run(monkeypatch, "fed", "simulate", str(cfg), "--epsilon", "off,8",
                "-o", str(out)) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert [r["target_epsilon"] for r in report["runs"]] == [None, 8.0]
    assert report["runs"][1]["result"]["epsilon"] <= 8.0
    assert "nodes better" in capsys.readouterr().out


def test_bad_input_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "fed.toml"
    cfg.write_text(TOML, encoding="utf-8")
    assert _run(monkeypatch, "fed", "simulate", str(cfg), "--epsilon", "off,zero") == 2
    assert "--epsilon: expected numbers or 'off'" in capsys.readouterr().err
    assert _run(monkeypatch, "fed", "simulate", str(tmp_path / "nope.toml")) == 3
    assert "cannot read the federation config" in capsys.readouterr().err
