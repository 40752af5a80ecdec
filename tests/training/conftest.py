"""Fixtures for the training tests: recorded stores and a scripted LLM swarm."""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from swarmlearn.core.scenario import Scenario, load_scenario
from swarmlearn.llm import CompletionRequest, ScriptedLLMClient
from swarmlearn.llm.backend import Backend
from swarmlearn.session import run_session
from swarmlearn.store import SqlStore


def heldout() -> Scenario:
    return load_scenario("troubleshooting", variant="heldout")


def record_teacher(store: SqlStore, *, episodes: int = 30, seed: int = 1000,
                   policy: str = "adaptive", scenario: Scenario | None = None) -> None:
    """A learning rule swarm's session (the teacher) recorded in ``store``."""
    sc = (scenario or heldout()).override(workers={"policy": policy})
    run_session(sc, episodes=episodes, seed=seed, store=store)


def record_pairs(store: SqlStore, *, episodes: int = 12, seed: int = 5000) -> None:
    """Successful and failed episodes on the same task seeds (what DPO pairs are made of):
    the teacher once, random rule workers twice."""
    for worker_seed, policy in ((1, "adaptive"), (2, "random"), (3, "random")):
        sc = heldout().override(workers={"policy": policy})
        run_session(sc, episodes=episodes, seed=seed, worker_seed=worker_seed, store=store)


class PickingClient(ScriptedLLMClient):
    """An LLM that answers the static plan and picks an action by a hash of the prompt;
    every request it was sent is kept (what the served workers were asked)."""

    def __init__(self) -> None:
        super().__init__(default=self.reply)

    @staticmethod
    def reply(request: CompletionRequest) -> str:
        schema: Any = request.json_schema or {}
        props = schema.get("properties", {})
        if "order" in props:
            return json.dumps({"order": ["CheckStatus", "ReadLogs", "AnalyzeMetrics",
                                         "Diagnose", "Restart"]})
        labels = props["action"]["enum"]
        text = request.messages[-1].content.encode()
        return json.dumps({"action": labels[int(hashlib.sha256(text).hexdigest(), 16)
                                            % len(labels)]})


@pytest.fixture
def scripted_llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[PickingClient]:
    """LLM workers of any session run on a :class:`PickingClient` (no server)."""
    client = PickingClient()
    monkeypatch.setattr("swarmlearn.llm.backend.open_backend",
                        lambda scenario: Backend(client, "scripted", "scripted://"))
    yield client


@pytest.fixture
def teacher_store(tmp_path: Path) -> Iterator[SqlStore]:
    store = SqlStore(f"sqlite:///{tmp_path}/teacher.db")
    record_teacher(store)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture(scope="session")
def tiny_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny random Llama as an HF directory (with the bundled tokenizer) and as the base
    GGUF llama.cpp serves (skipped without torch, gguf or the bundled model)."""
    pytest.importorskip("torch")
    pytest.importorskip("gguf")
    from tiny_llama import save_hf, tiny_model, write_base_gguf

    from swarmlearn.errors import MissingExtraError
    from swarmlearn.serving import default_model_path

    try:
        default_model_path()
    except MissingExtraError:
        pytest.skip("the bundled SmolLM2 (its tokenizer) is not installed")
    folder = tmp_path_factory.mktemp("tiny-files")
    model = tiny_model(seed=1)
    return {"hf": save_hf(model, folder / "hf"),
            "gguf": write_base_gguf(model, folder / "tiny-base.gguf")}


def warm_base_cache(root: Path, tiny: dict[str, Path]) -> None:
    """Put the tiny HF directory in ``root``'s base cache as the tiny GGUF's dequantized
    copy (what the trainer would make itself in ~40 s: the tokenizer is read from GGUF)."""
    import shutil

    from swarmlearn.training._base import check_base

    base = check_base(tiny["gguf"])
    dest = root / "base-cache" / f"{base.path.stem}-{base.fingerprint()[:16]}"
    if not dest.exists():
        shutil.copytree(tiny["hf"], dest)
        (dest / ".complete").write_text("ok")


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
            *args: str) -> tuple[int, str, str]:
    """``swarmlearn ARGS`` in this process: (exit code, stdout, stderr); logging restored."""
    from swarmlearn.cli import main

    monkeypatch.setattr(sys, "argv", ["swarmlearn", *args])
    root, ours = logging.getLogger(), logging.getLogger("swarmlearn")
    saved = (root.handlers[:], root.level, ours.level)
    try:
        with pytest.raises(SystemExit) as info:
            main()
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        ours.setLevel(saved[2])
    out = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 1), out.out, out.err
