"""skillrl 1.0.0, with the same scripted clients, scores an outage as 0.0 (we raise)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from swarmlearn.errors import BackendUnavailable
from swarmlearn.llm import CompletionRequest
from swarmlearn.skills import QAConfig, QAEnv, SkillOptConfig
from swarmlearn.skills._fake import ScriptedWorld

pytest.importorskip("skillrl")
_spec = importlib.util.spec_from_file_location(
    "bench_skills", Path(__file__).resolve().parents[2] / "benchmarks" / "skills_vs_skillrl.py")
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_skillrl_scores_an_outage_as_zero(tmp_path: Path) -> None:
    w = ScriptedWorld(categories=6, per_category=6)
    env = QAEnv.from_config(QAConfig(path=str(w.write(tmp_path / "qa.jsonl"))))

    def down(request: CompletionRequest) -> str:
        raise BackendUnavailable("connection refused")

    cfg = SkillOptConfig(epochs=1, batch_size=4, minibatch_size=2)
    summary, _ = bench.run_peer(env, w, tmp_path / "peer", cfg, target=down)
    assert summary["test_hard"] == 0.0  # a dead server became a score, not an error
