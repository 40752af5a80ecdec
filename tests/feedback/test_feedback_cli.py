"""``swarmlearn feedback`` end to end on the tiny BERT: train, eval + report, predict, attach."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from feedback_tiny import tiny_examples

from swarmlearn.cli import main
from swarmlearn.core.events import EpisodeEnded
from swarmlearn.store import SqlStore
from swarmlearn.types import Failure, Success


def _cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
         *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["swarmlearn", *args])
    with pytest.raises(SystemExit) as info:
        main()
    out = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 1), out.out, out.err


@pytest.fixture(autouse=True)
def _restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("COLUMNS", "200")
    root, ours = logging.getLogger(), logging.getLogger("swarmlearn")
    saved = (root.handlers[:], root.level, ours.level)
    yield
    root.handlers[:], root.level = saved[0], saved[1]
    ours.setLevel(saved[2])


def test_train_eval_predict_attach(tiny_encoder: Path, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(e._asdict()) + "\n" for e in tiny_examples(20)))
    model = tmp_path / "model"
    code, out, err = _cli(monkeypatch, capsys, "feedback", "train", "--data", str(data),
                          "--encoder", str(tiny_encoder), "--out", str(model), "--epochs", "4",
                          "--lr", "2e-3", "--head-lr", "2e-2", "--threads", "1")
    assert code == 0, err
    assert "held-out test: macro-F1" in out and "version" in out
    assert (model / "model.safetensors").is_file()
    report = tmp_path / "r.html"
    code, out, err = _cli(monkeypatch, capsys, "feedback", "eval", "--model", str(model),
                          "--report", str(report), "--threads", "1")
    assert code == 0, err
    assert "test split" in out and "macro-F1" in out
    page = report.read_text()
    assert "Confusion matrix" in page and "data:image/png;base64" in page and "Training" in page
    code, out, _ = _cli(monkeypatch, capsys, "feedback", "eval", "--model", str(model), "--json",
                        "--threads", "1")
    assert code == 0 and json.loads(out)["n"] == 12
    code, out, _ = _cli(monkeypatch, capsys, "feedback", "predict", "great fixed works",
                        "still broken down", "--model", str(model), "--json", "--threads", "1")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["label"] for r in rows] == ["joy", "frustration"]

    store = f"sqlite:///{tmp_path}/s.db"
    st = SqlStore(store)
    sid = st.open_session(scenario="s")
    st.write([EpisodeEnded(sid << 32 | 1, sid, "maze:7", "", 0, 7, Failure("timeout"), 3, 3,
                           0.1, sid << 32, sid << 32 | 1, {}, 1.0)])
    code, out, err = _cli(monkeypatch, capsys, "feedback", "attach", str(sid), "maze:7",
                          "great fixed works perfect", "--model", str(model), "--store", store,
                          "--threads", "1")
    assert code == 0, err
    assert "joy" in out and "success" in out and "applied" in out
    assert st.episodes(session=sid)[0].outcome == Success(1.0)
    code, out, _ = _cli(monkeypatch, capsys, "feedback", "list", "--store", store)
    assert code == 0 and "maze:7" in out and "great fixed works perfect" in out
    st.close()


def test_bad_input_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok", "label": "neutral"}\n{"text": "x"\n')
    code, _, err = _cli(monkeypatch, capsys, "feedback", "train", "--data", str(bad),
                        "--out", str(tmp_path / "m"))
    assert code == 2 and f"{bad}:2: not valid JSON" in " ".join(err.split())
    assert len(err.strip().splitlines()) <= 2  # one message (wrapped at most once)
    code, _, err = _cli(monkeypatch, capsys, "feedback", "predict", "hello", "--model",
                        str(tmp_path / "none"))
    assert code == 2 and "no feedback classifier" in err
    code, _, err = _cli(monkeypatch, capsys, "feedback", "attach", "1", "t", "text",
                        "--model", str(tmp_path / "none"))
    assert code == 2 and "no feedback classifier" in err
    assert not (tmp_path / "m").exists()


def test_hidden_and_int8_predict(tiny_encoder: Path, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    """`feedback hidden` on a tiny model of the bundled labels: four conditions, JSON out."""
    model = tmp_path / "model"
    code, _, err = _cli(monkeypatch, capsys, "feedback", "train", "--encoder", str(tiny_encoder),
                        "--out", str(model), "--epochs", "1", "--threads", "1")
    assert code == 0, err
    code, out, err = _cli(monkeypatch, capsys, "feedback", "predict", "great, that fixed it",
                          "--model", str(model), "--int8", "--json")
    assert code == 0, err
    assert json.loads(out)["label"] in ("joy", "relief", "impatience", "frustration", "anger",
                                        "neutral")
    report = tmp_path / "h.json"
    code, out, err = _cli(monkeypatch, capsys, "feedback", "hidden", "troubleshooting",
                          "--runs", "2", "--sessions", "2", "--episodes", "2", "--model",
                          str(model), "--int8", "-o", str(report))
    assert code == 0, err
    for name in ("environment", "feedback", "silence", "lies"):
        assert name in out
    data = json.loads(report.read_text())
    assert set(data["conditions"]) == {"environment", "feedback", "silence", "lies"}
    assert data["tallies"]["feedback"]["said"] == 2 * 2 * 2 * 2  # runs × sides × sessions × tasks
    assert data["tallies"]["silence"]["said"] == 0


def test_hidden_needs_a_model_of_every_emotion(tiny_encoder: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(e._asdict()) + "\n" for e in tiny_examples(10)))
    model = tmp_path / "model"
    code, _, err = _cli(monkeypatch, capsys, "feedback", "train", "--data", str(data),
                        "--encoder", str(tiny_encoder), "--out", str(model), "--epochs", "1")
    assert code == 0, err
    code, _, err = _cli(monkeypatch, capsys, "feedback", "hidden", "troubleshooting",
                        "--model", str(model), "--runs", "2", "--sessions", "1")
    assert code == 2 and "needs texts labeled relief, impatience, anger" in " ".join(err.split())
    assert "runs ×" not in err  # refused before any work
