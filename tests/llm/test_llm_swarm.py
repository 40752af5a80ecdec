"""LLM workers in a real swarm on a real llama.cpp server on loopback."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from swarmlearn.core.events import EpisodeEnded
from swarmlearn.core.scenario import load_scenario
from swarmlearn.session import run_session
from swarmlearn.store import SqlStore

pytestmark = pytest.mark.integration


def test_llm_swarm_records_calls_and_survives_a_server_kill(tmp_path: Path) -> None:
    pytest.importorskip("xllamacpp")
    from swarmlearn.serving import LlamaServer, LlamaServerConfig

    store = SqlStore(f"sqlite:///{tmp_path}/llm.db")
    with LlamaServer(LlamaServerConfig(parallel=2, log_dir=tmp_path,
                                       health_interval_s=0.5)) as server:
        sc = load_scenario("troubleshooting").override(
            environment={"services": 3}, limits={"max_ticks": 3},
            workers={"kind": "llm", "count": 2, "url": server.base_url})
        first_pid = server.pid
        assert first_pid is not None

        def kill_after_first(ended: EpisodeEnded) -> None:
            if ended.episode == 0:
                os.kill(first_pid, signal.SIGKILL)  # only the child this test started

        result = run_session(sc, episodes=2, store=store, on_episode=kill_after_first)
        assert server.restarts == 1 and server.pid != first_pid
    assert len(result.episodes) == 2  # the run went on after the server died
    second = result.episodes[1]
    assert second.actions > 0
    total = sum(e.actions for e in result.episodes)
    invalid = sum(e.stats["invalid_actions"] for e in result.episodes)
    assert invalid / total <= 0.01  # the schema grammar keeps actions valid
    calls = store.llm_calls(result.session)
    decide = [c for c in calls if c.purpose == "decide"]
    assert len(decide) >= total and all(c.prompt_tokens > 0 for c in decide if c.ok)
    assert sum(e.stats["llm_calls"] for e in result.episodes) == len(calls)
