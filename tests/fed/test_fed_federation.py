"""Federations of real swarms through our Strategy, on the in-process Flower grid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("flwr")

from swarmlearn.errors import ScenarioError
from swarmlearn.fed import (
    Aggregator,
    DpConfig,
    FedConfig,
    SnapshotCodec,
    load_config,
    robust_bound,
    simulate,
)
from swarmlearn.fed._apps import vocabulary_for
from swarmlearn.fed._config import NodeSpec, scenario_ref
from swarmlearn.fed._node import play_round
from swarmlearn.learn.merge import merge
from swarmlearn.learn.snapshot import LearningSnapshot, SnapshotScope
from swarmlearn.learn.stats import LearnedStats


def _config(nodes: list[dict[str, Any]], **federation: Any) -> FedConfig:
    fed = {"rounds": 2, "episodes": 2, "round_timeout": 30.0, **federation}
    dp = fed.pop("dp", {})
    return FedConfig.from_dict({
        "federation": fed, "dp": dp,
        "evaluation": {"episodes": 3, "scenarios": ["troubleshooting", "search"]},
        "vocabulary": {"episodes": 5},
        "nodes": nodes})


HONEST = [{"name": "a", "scenarios": ["troubleshooting"]},
          {"name": "b", "scenarios": ["search"]},
          {"name": "c", "scenarios": ["troubleshooting:hard", "search"]}]


def test_a_crashed_node_is_left_out_and_the_rounds_go_on() -> None:
    cfg = _config([*HONEST, {"name": "x", "scenarios": ["search"], "behaviour": "crash"}])
    result = simulate(cfg)
    assert result.stopped == "completed" and len(result.rounds) == 2
    for rec in result.rounds:
        assert len(rec.answered) == 3
        (reason,) = rec.failures.values()
        assert "crashed" in reason
    assert sorted(result.evaluation) == [0, 1, 2, 3]  # evaluation still asks every node


def test_a_slow_node_is_left_out_after_the_timeout() -> None:
    cfg = _config([*HONEST[:2], {"name": "s", "scenarios": ["search"], "behaviour": "slow"}],
                  rounds=1, round_timeout=1.0)
    result = simulate(cfg, threads=3)
    (rec,) = result.rounds
    assert len(rec.answered) == 2
    assert list(rec.failures.values()) == ["no reply before the round's timeout"]


def test_the_federated_sum_is_the_additive_merge_of_the_nodes_snapshots() -> None:
    """One round from nothing: the server's total equals learn.merge's Additive merge of
    what each node learned (counts summed, not rates averaged), key by key."""
    cfg = _config(HONEST, rounds=1)
    result = simulate(cfg)
    codec = SnapshotCodec(vocabulary_for(cfg))
    empty = LearningSnapshot(scope=SnapshotScope.GLOBAL, key="federation",
                             stats=LearnedStats(), created=0.0)
    parts = []
    for node in cfg.nodes:
        r = play_round(node, empty, codec, round_=1, episodes=2)
        parts.append(LearningSnapshot.from_episodes(
            r.episodes, scope=SnapshotScope.GLOBAL, key="federation",
            stats=codec.decode_stats(codec.encode_stats(r.stats)),
            sessions=len(node.scenarios), created=0.0))
    merged = merge(parts)
    fed = codec.decode(result.final)
    got, want = fed.stats.to_dict(), merged.stats.to_dict()

    def table(d: dict[str, Any], t: str) -> dict[tuple[str, ...], float]:
        return {(*r[:-2], side): r[i] for r in d[t] for side, i in (("s", -2), ("f", -1))}

    for t in ("actions", "contexts", "transitions", "strategies"):
        assert table(got, t) == pytest.approx(table(want, t)), t
    assert got["episodes"] == pytest.approx(want["episodes"])
    assert got["contexts"], "the shared statistics are not empty"
    for count in ("episodes", "successes", "actions", "solved_actions", "sessions"):
        assert getattr(fed, count) == getattr(merged, count)
    assert fed.episodes == 2 * 4  # 2 tasks × 4 (node, scenario) pairs


def test_one_garbage_node_cannot_move_the_robust_aggregate_far() -> None:
    """Four honest nodes and one sending huge random numbers: the sum/mean moves by
    orders of magnitude; the coordinate median stays within the spread of the honest
    updates (the stated bound) of the clean result."""
    honest = [{"name": f"h{i}", "scenarios": ["troubleshooting" if i % 2 else "search"]}
              for i in range(4)]
    bad = {"name": "g", "scenarios": ["search"], "behaviour": "garbage"}
    finals = {}
    for agg, nodes in (("mean", honest), ("median", honest), ("mean+bad", [*honest, bad]),
                       ("median+bad", [*honest, bad])):
        cfg = _config(nodes, rounds=1, aggregator=agg.split("+")[0])
        finals[agg] = simulate(cfg).final
    codec = SnapshotCodec(vocabulary_for(_config(honest, rounds=1)))
    updates = []
    for n in honest:
        spec = NodeSpec(name=n["name"], scenarios=tuple(n["scenarios"]))
        empty = codec.decode(codec.zeros())
        updates.append(play_round(spec, empty, codec, round_=1, episodes=2).update)
    bound = robust_bound(updates)

    def dist(a: list[Any], b: list[Any]) -> float:
        return float(np.sqrt(sum(np.sum((x - y) ** 2) for x, y in zip(a, b, strict=True))))

    moved_mean = dist(finals["mean+bad"], finals["mean"])
    moved_median = dist(finals["median+bad"], finals["median"])
    assert moved_median <= bound
    assert moved_mean > 100 * bound


def test_central_dp_reports_epsilon_every_round_and_the_budget_stops_the_run() -> None:
    cfg = _config(HONEST, rounds=6,
                  dp={"mode": "central", "clip": 50.0, "noise_multiplier": 1.0,
                      "budget_epsilon": 6.0})
    result = simulate(cfg)
    eps = [r.epsilon for r in result.rounds]
    assert all(e is not None for e in eps) and eps == sorted(eps)  # type: ignore[type-var]
    assert result.epsilon is not None and result.epsilon <= 6.0
    assert len(result.rounds) < 6 and result.stopped.startswith("privacy budget")
    assert all(r.noise_std == 50.0 for r in result.rounds)
    # every update the server summed was within the clip (norms are before clipping)
    assert all(n > 0 for r in result.rounds for n in r.norms.values())


def test_robust_aggregation_with_central_dp_is_refused() -> None:
    with pytest.raises(Exception, match="no bounded sensitivity"):
        _config(HONEST, aggregator="median",
                dp={"mode": "central", "clip": 1.0, "noise_multiplier": 1.0})


def test_local_dp_runs_and_accounts() -> None:
    cfg = _config(HONEST, rounds=2, dp={"mode": "local", "clip": 20.0, "target_epsilon": 8.0})
    result = simulate(cfg)
    assert result.epsilon is not None and result.epsilon <= 8.0 + 1e-6
    assert len(result.rounds) == 2


def test_a_bad_config_file_is_one_line_naming_file_line_and_field(tmp_path: Path) -> None:
    p = tmp_path / "fed.toml"
    p.write_text('[federation]\nrounds = 2\n\n[[nodes]]\nname = "a"\n'
                 'scenarios = ["no_such_scenario"]\n', encoding="utf-8")
    with pytest.raises(ScenarioError) as err:
        load_config(p)
    msg = str(err.value)
    assert "fed.toml:6" in msg and "nodes[0].scenarios[0]" in msg and "\n" not in msg
    p.write_text('[federation]\nrounds = 0\n[[nodes]]\nname="a"\nscenarios=["maze"]\n')
    with pytest.raises(ScenarioError, match=r"fed.toml:2: federation.rounds: expected >= 1"):
        load_config(p)


def test_the_example_config_loads() -> None:
    cfg = load_config(Path(__file__).parents[2] / "examples/fed/ten_nodes.toml")
    assert len(cfg.nodes) == 10
    assert all(1 <= len(n.scenarios) <= 2 for n in cfg.nodes)
    assert cfg.federation.aggregator is Aggregator.SUM
    for n in cfg.nodes:
        for ref in n.scenarios:
            scenario_ref(ref)


def test_result_is_json(tmp_path: Path) -> None:
    cfg = _config(HONEST[:2], rounds=1, dp={"mode": "off"})
    out = simulate(cfg).to_dict()
    json.dumps(out, default=float)
    assert out["kind"] == "federation" and DpConfig.from_dict(out["config"]["dp"]).mode == "off"


def test_with_episodes_as_the_unit_one_episode_moves_the_update_by_at_most_c() -> None:
    cfg = _config(HONEST, rounds=1)
    codec = SnapshotCodec(vocabulary_for(cfg))
    node = NodeSpec(name="a", scenarios=("troubleshooting",))
    start = codec.decode(codec.zeros())
    clip = 2.0
    three = play_round(node, start, codec, round_=1, episodes=3, clip_each=clip)
    two = play_round(node, start, codec, round_=1, episodes=2, clip_each=clip)
    diff = np.linalg.norm(three.update[0] - two.update[0])
    assert 0 < diff <= clip + 1e-9
    assert np.linalg.norm(three.update[0]) <= 3 * clip + 1e-9
    assert not np.any(three.update[1])  # the summary counts are not released under DP


def test_episode_unit_federation_runs_and_accounts() -> None:
    cfg = _config(HONEST, rounds=2, dp={"mode": "central", "unit": "episode", "clip": 3.0,
                                        "target_epsilon": 8.0})
    result = simulate(cfg)
    assert result.epsilon is not None and result.epsilon <= 8.0 + 1e-6
    assert all(r.noise_std == pytest.approx(3.0 * result.noise_multiplier) for r in result.rounds)
    assert all(len(r.answered) == 3 for r in result.rounds)


def test_dqn_policies_are_federated_with_fedavg() -> None:
    pytest.importorskip("gymnasium")
    cfg = FedConfig.from_dict({
        "federation": {"payload": "dqn", "aggregator": "mean", "rounds": 2,
                       "round_timeout": 60.0},
        "dqn": {"steps": 300, "learning_starts": 100, "eval_episodes": 2, "hidden": [16]},
        "nodes": [{"name": "a"}, {"name": "b"},
                  {"name": "x", "behaviour": "crash"}]})
    from swarmlearn.fed._dqn import initial_params

    first = initial_params(cfg.dqn, rounds=2, seed=0)
    result = simulate(cfg)
    assert [len(r.answered) for r in result.rounds] == [2, 2]
    assert all(len(r.failures) == 1 for r in result.rounds)
    assert result.rounds[0].metrics["num-examples"] == 600  # 2 nodes × 300 steps
    assert not np.allclose(result.final[0], first[0])  # the global weights moved
    for m in result.evaluation.values():
        assert 0 < m["fed.return"] <= 500 and 0 < m["local.return"] <= 500
    with pytest.raises(Exception, match="a node needs at least one scenario"):
        FedConfig.from_dict({"nodes": [{"name": "a"}]})
