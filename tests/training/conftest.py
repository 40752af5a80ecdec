"""Fixtures for the training tests: recorded stores and a scripted LLM swarm."""

from __future__ import annotations

import hashlib
import json
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
