"""The same apps on Flower's Ray simulation engine (slow: Ray takes ~10 s to start)."""

from __future__ import annotations

import pytest

pytest.importorskip("ray")

from swarmlearn.fed import Backend, FedConfig, simulate


@pytest.mark.slow
def test_ray_simulation_runs_the_federation_and_leaves_a_crashed_node_out() -> None:
    cfg = FedConfig.from_dict({
        "federation": {"rounds": 2, "episodes": 2, "round_timeout": 60.0},
        "dp": {"mode": "central", "clip": 50.0, "target_epsilon": 8.0},
        "evaluation": {"episodes": 2, "scenarios": ["troubleshooting", "search"]},
        "vocabulary": {"episodes": 3},
        "nodes": [{"name": "a", "scenarios": ["troubleshooting"]},
                  {"name": "b", "scenarios": ["search"]},
                  {"name": "x", "scenarios": ["search"], "behaviour": "crash"}]})
    result = simulate(cfg, backend=Backend.RAY)
    assert result.stopped == "completed" and len(result.rounds) == 2
    for rec in result.rounds:
        assert len(rec.answered) == 2 and len(rec.failures) == 1
    assert result.epsilon is not None and result.epsilon <= 8.0 + 1e-6
    assert sorted(result.evaluation) == [0, 1, 2]
