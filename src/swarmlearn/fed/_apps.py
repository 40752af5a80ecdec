"""The Flower ServerApp and ClientApp of the federation of swarms.

The same two apps run in every setting: our in-process grid, Flower's Ray
simulation engine, and a deployment (``flower-superlink`` + ``flower-supernode``
processes). They find the federation's TOML through the closure they were
made with (:func:`make_apps`) or, deployed, through the run config key
``fed-config`` (a node's ``--node-config fed-config=…`` wins, so each site may
keep its copy elsewhere). A node's index in ``[[nodes]]`` is its
``partition-id`` node-config value.

Round protocol: the server sends the global snapshot's numbers (statistics
over the public vocabulary, and the summary counts); a node decodes them,
plays its round (:func:`swarmlearn.fed._node.play_round`), clips its update
when DP is on (and adds its own noise for local DP), and replies with the
update and ``num-examples`` (its episodes). It also plays the same tasks alone
(its local-only statistics, kept in its Context), the baseline of the report.
Evaluation: every node measures the final federated statistics and its
local-only ones on the held-out tasks of every evaluation scenario.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from swarmlearn._extras import require
from swarmlearn.fed import _dqn as dqn
from swarmlearn.fed._config import Behaviour, FedConfig, Payload, load_config
from swarmlearn.fed._dp import DpMode, PrivacyLedger, add_noise, clip_update, denoise
from swarmlearn.fed._node import evaluate_stats, play_round
from swarmlearn.fed._payload import DqnCodec, SnapshotCodec, Vocabulary, build_vocabulary
from swarmlearn.fed._strategy import RoundRecord, SwarmStrategy

__all__ = ["FedResult", "client_app", "make_apps", "run_federation", "server_app",
           "vocabulary_for"]

logger = logging.getLogger(__name__)

fl = require("flwr.app", "fed")
clientapp_mod = require("flwr.clientapp", "fed")
serverapp_mod = require("flwr.serverapp", "fed")


@functools.lru_cache(maxsize=8)
def _vocabulary(config_json: str) -> Vocabulary:
    cfg = FedConfig.from_dict(json.loads(config_json))
    from swarmlearn.fed._config import scenario_ref

    refs = sorted({*cfg.training_scenarios(), *cfg.evaluation_scenarios()})
    v = cfg.vocabulary
    return build_vocabulary([scenario_ref(r) for r in refs], episodes=v.episodes, seed=v.seed,
                            tables=v.tables)


def vocabulary_for(config: FedConfig) -> Vocabulary:
    """The public vocabulary of ``config`` (its scenarios played on the public seeds)."""
    return _vocabulary(json.dumps(config.to_dict(), sort_keys=True))


@functools.lru_cache(maxsize=4)
def _announced(text: str) -> Vocabulary:
    return Vocabulary.from_dict(json.loads(text), where="the server's vocabulary")


def _codec(conf: Any, cfg: FedConfig) -> SnapshotCodec:
    """The codec over the vocabulary the server announced (it is the server's to fix)."""
    text = conf.get("vocabulary")
    return SnapshotCodec(_announced(str(text)) if text else vocabulary_for(cfg))


@functools.lru_cache(maxsize=8)
def _load(path: str) -> FedConfig:
    return load_config(path)


def _config_of(context: Any, bound: FedConfig | None) -> FedConfig:
    if bound is not None:
        return bound
    path = context.node_config.get("fed-config") or context.run_config.get("fed-config")
    if not path:
        raise RuntimeError("no federation config: set run config or node config 'fed-config'")
    return _load(str(path))


# -- the node --------------------------------------------------------------------------------
def _node_train(msg: Any, context: Any, cfg: FedConfig) -> Any:
    if cfg.federation.payload is Payload.DQN:
        return _dqn_train(msg, context, cfg)
    index = int(context.node_config["partition-id"])
    node = cfg.node(index)
    conf = msg.content["config"]
    round_ = int(conf["server-round"])
    codec = _codec(conf, cfg)
    arrays = msg.content["arrays"].to_numpy_ndarrays()
    if node.behaviour is Behaviour.CRASH:
        raise RuntimeError(f"node {node.name}: crashed (behaviour = crash)")
    noise = float(conf.get("noise-std-total", 0.0))
    per_episode = float(conf["clip-episode"]) if "clip-episode" in conf else None
    if per_episode is not None:  # episodes as the unit: play from released numbers only
        zeros = codec.zeros()
        start = codec.decode(denoise(arrays, zeros, zeros, noise, groups=codec.groups()))
    else:
        start = _working(context, codec, arrays, noise)
    result = play_round(node, start, codec, round_=round_, episodes=cfg.federation.episodes,
                        seed=cfg.federation.seed, clip_each=per_episode)
    _local_only(context, node, codec, round_, cfg)
    update = result.update
    if node.behaviour is Behaviour.GARBAGE:
        rng = np.random.default_rng(round_)
        update = [rng.normal(0.0, 1e6, a.shape) for a in update]
    norm = float(np.sqrt(sum(float(np.sum(a * a)) for a in update)))
    exact = update if result.exact is None else result.exact
    if "clip" in conf:
        update = [update[0], np.zeros_like(update[1])]  # under DP only statistics are released
        update, norm = clip_update(update, float(conf["clip"]))
    # its own part, for its evaluation (and, with a node as the unit, for its training)
    _remember(context, "mine-exact", exact)
    _remember(context, "mine-clipped", update)
    if "local-noise-std" in conf:
        update = add_noise(update, float(conf["local-noise-std"]),
                           np.random.default_rng([cfg.federation.seed, index, round_]))
    if node.behaviour is Behaviour.SLOW:
        time.sleep(cfg.federation.round_timeout + 1.0)
    metrics = {"num-examples": len(result.episodes), "successes": result.successes,
               "update-norm": norm}
    content = fl.RecordDict({"update": fl.ArrayRecord([np.asarray(a) for a in update]),
                             "metrics": fl.MetricRecord(metrics)})
    return fl.Message(content, reply_to=msg)


def _state_arrays(context: Any, key: str, codec: SnapshotCodec) -> list[Any]:
    state = context.state
    return (state[key].to_numpy_ndarrays() if key in state.array_records else codec.zeros())


def _remember(context: Any, key: str, update: list[Any]) -> None:
    """Add ``update`` to the node's running total ``key`` (kept in its Context)."""
    have = (context.state[key].to_numpy_ndarrays() if key in context.state.array_records
            else [np.zeros_like(u) for u in update])
    context.state[key] = fl.ArrayRecord([np.asarray(a + u) for a, u in
                                         zip(have, update, strict=True)])


def _working(context: Any, codec: SnapshotCodec, arrays: list[Any],
             noise_std: float) -> Any:
    """The snapshot a node learns from: its own exact contributions plus what the
    others contributed, denoised (:func:`swarmlearn.fed.denoise`)."""
    if "mine-exact" not in context.state.array_records:  # nothing of its own in there
        zeros = codec.zeros()
        return codec.decode(denoise(arrays, zeros, zeros, noise_std, groups=codec.groups()))
    mine = _state_arrays(context, "mine-exact", codec)
    sent = _state_arrays(context, "mine-clipped", codec)
    return codec.decode(denoise(arrays, mine, sent, noise_std, groups=codec.groups()))


def _local_only(context: Any, node: Any, codec: SnapshotCodec, round_: int,
                cfg: FedConfig) -> None:
    """The baseline: the same round played from the node's own statistics only."""
    state = context.state
    own = (state["local-only"].to_numpy_ndarrays() if "local-only" in state.array_records
           else codec.zeros())
    result = play_round(node, codec.decode(own), codec, round_=round_,
                        episodes=cfg.federation.episodes, seed=cfg.federation.seed)
    state["local-only"] = fl.ArrayRecord([np.asarray(a + u) for a, u in
                                          zip(own, result.update, strict=True)])


def _dqn_train(msg: Any, context: Any, cfg: FedConfig) -> Any:
    """A DQN node's round: its agent takes the global weights, trains, replies with the
    change; its local-only twin trains the same steps on its own weights."""
    index = int(context.node_config["partition-id"])
    node = cfg.node(index)
    conf = msg.content["config"]
    round_ = int(conf["server-round"])
    if node.behaviour is Behaviour.CRASH:
        raise RuntimeError(f"node {node.name}: crashed (behaviour = crash)")
    rounds, d = cfg.federation.rounds, cfg.dqn
    seed = cfg.federation.seed * 1000 + index
    env_seed = 10_000 * (index + 1) + 1000 * round_
    glob = msg.content["arrays"].to_numpy_ndarrays()
    agent = dqn.load_agent(context, "dqn-fed", d, rounds=rounds, seed=seed)
    DqnCodec(agent).decode(glob)
    episodes = dqn.train_steps(agent, d, seed=env_seed)
    dqn.save_agent(context, "dqn-fed", agent)
    update = [a - np.asarray(g, np.float64) for a, g in
              zip(DqnCodec(agent).encode(agent), glob, strict=True)]
    alone = dqn.load_agent(context, "dqn-local", d, rounds=rounds, seed=seed)
    if round_ == 1:
        DqnCodec(alone).decode(glob)  # both start from the same first weights
    dqn.train_steps(alone, d, seed=env_seed)
    dqn.save_agent(context, "dqn-local", alone)
    if node.behaviour is Behaviour.GARBAGE:
        update = [np.random.default_rng(round_).normal(0.0, 1e3, a.shape) for a in update]
    norm = float(np.sqrt(sum(float(np.sum(a * a)) for a in update)))
    if "clip" in conf:
        update, norm = clip_update(update, float(conf["clip"]))
    if "local-noise-std" in conf:
        update = add_noise(update, float(conf["local-noise-std"]),
                           np.random.default_rng([cfg.federation.seed, index, round_]))
    metrics = {"num-examples": d.steps, "episodes": episodes, "update-norm": norm}
    return fl.Message(fl.RecordDict({"update": fl.ArrayRecord([np.asarray(a) for a in update]),
                                     "metrics": fl.MetricRecord(metrics)}), reply_to=msg)


def _dqn_evaluate(msg: Any, context: Any, cfg: FedConfig) -> Any:
    index = int(context.node_config["partition-id"])
    rounds, d = cfg.federation.rounds, cfg.dqn
    glob = msg.content["arrays"].to_numpy_ndarrays()
    alone = dqn.load_agent(context, "dqn-local", d, rounds=rounds, seed=index)
    metrics = {"partition-id": index,
               "fed.return": dqn.greedy_return(glob, d, rounds=rounds),
               "local.return": dqn.greedy_return(DqnCodec(alone).encode(alone), d,
                                                 rounds=rounds)}
    return fl.Message(fl.RecordDict({"metrics": fl.MetricRecord(metrics)}), reply_to=msg)


def _node_evaluate(msg: Any, context: Any, cfg: FedConfig) -> Any:
    if cfg.federation.payload is Payload.DQN:
        return _dqn_evaluate(msg, context, cfg)
    index = int(context.node_config["partition-id"])
    node = cfg.node(index)
    conf = msg.content["config"]
    codec = _codec(conf, cfg)
    fed = _working(context, codec, msg.content["arrays"].to_numpy_ndarrays(),
                   float(conf.get("noise-std-total", 0.0)))
    state = context.state
    own = (state["local-only"].to_numpy_ndarrays() if "local-only" in state.array_records
           else codec.zeros())
    metrics: dict[str, float] = {"partition-id": index}
    for side, snap in (("fed", fed), ("local", codec.decode(own))):
        for name, score in evaluate_stats(snap.stats, cfg.evaluation).items():
            metrics[f"{side}.{name}.successes"] = score.successes
            metrics[f"{side}.{name}.episodes"] = score.episodes
            metrics[f"{side}.{name}.actions"] = score.actions
    for name in cfg.evaluation.scenarios:
        metrics[f"seen.{name}"] = float(name in node.scenario_names)
    return fl.Message(fl.RecordDict({"metrics": fl.MetricRecord(metrics)}), reply_to=msg)


def _client(bound: FedConfig | None) -> Any:
    app = clientapp_mod.ClientApp()

    @app.train()  # type: ignore[untyped-decorator]
    def train(msg: Any, context: Any) -> Any:
        return _node_train(msg, context, _config_of(context, bound))

    @app.evaluate()  # type: ignore[untyped-decorator]
    def evaluate(msg: Any, context: Any) -> Any:
        return _node_evaluate(msg, context, _config_of(context, bound))

    return app


# -- the server ------------------------------------------------------------------------------
@dataclass(slots=True)
class FedResult:
    """A federation's rounds, privacy spent, why it stopped, and each node's evaluation."""

    config: dict[str, Any]
    rounds: list[RoundRecord] = field(default_factory=list)
    stopped: str = "completed"
    evaluation: dict[int, dict[str, float]] = field(default_factory=dict)
    final: list[Any] = field(default_factory=list)
    wall_seconds: float = 0.0
    noise_multiplier: float | None = None

    @property
    def epsilon(self) -> float | None:
        eps = [r.epsilon for r in self.rounds if r.epsilon is not None]
        return eps[-1] if eps else None

    def to_dict(self) -> dict[str, Any]:
        return {"format_version": 1, "kind": "federation", "config": self.config,
                "noise_multiplier": self.noise_multiplier,
                "rounds": [r.to_dict() for r in self.rounds], "stopped": self.stopped,
                "epsilon": self.epsilon,
                "evaluation": {str(k): v for k, v in self.evaluation.items()},
                "wall_seconds": self.wall_seconds}


def _wait_for_nodes(grid: Any, want: int, timeout: float) -> list[int]:
    """The connected nodes, once ``want`` are there (or whoever is after ``timeout``)."""
    t0 = time.monotonic()
    nodes = sorted(grid.get_node_ids())
    while len(nodes) < want and time.monotonic() - t0 < timeout:
        time.sleep(0.5)
        nodes = sorted(grid.get_node_ids())
    if len(nodes) < want:
        logger.warning("only %d of %d nodes connected; starting with them", len(nodes), want)
    return nodes


def run_federation(grid: Any, cfg: FedConfig, *,
                   on_round: Callable[[RoundRecord], None] | None = None) -> FedResult:
    """Run the rounds of ``cfg`` over ``grid`` (any Flower Grid), then the evaluation."""
    t0 = time.perf_counter()
    dp = cfg.resolved_dp()
    fed = cfg.federation
    nodes = _wait_for_nodes(grid, len(cfg.nodes), fed.round_timeout)
    ledger = (PrivacyLedger(dp.noise_multiplier, sample_rate=fed.sample_rate, delta=dp.delta,
                            budget=dp.budget_epsilon)
              if dp.enabled and dp.noise_multiplier is not None else None)
    strategy = SwarmStrategy(aggregator=fed.aggregator, dp=dp, sample_rate=fed.sample_rate,
                             trim=fed.trim, expected_nodes=len(nodes), seed=fed.seed,
                             ledger=ledger if dp.mode is DpMode.CENTRAL else None,
                             episodes_per_node=fed.episodes * max(len(n.scenarios)
                                                                  for n in cfg.nodes))
    if fed.payload is Payload.DQN:
        arrays = fl.ArrayRecord(dqn.initial_params(cfg.dqn, rounds=fed.rounds, seed=fed.seed))
    else:
        vocabulary = vocabulary_for(cfg)
        strategy.node_config["vocabulary"] = json.dumps(vocabulary.to_dict())
        arrays = fl.ArrayRecord(SnapshotCodec(vocabulary).zeros())
    result = FedResult(cfg.to_dict(), noise_multiplier=dp.noise_multiplier)
    for r in range(1, fed.rounds + 1):
        if ledger is not None and ledger.would_exceed():
            result.stopped = (f"privacy budget: round {r} would spend more than "
                              f"ε = {ledger.budget}")
            logger.info("%s", result.stopped)
            break
        messages = strategy.configure_train(r, arrays, fl.ConfigRecord(), grid)
        replies = grid.send_and_receive(messages, timeout=fed.round_timeout)
        new, _ = strategy.aggregate_train(r, replies)
        if new is not None:
            arrays = new
        rec = strategy.records[r]
        if ledger is not None and dp.mode is DpMode.LOCAL:  # every node's release is noisy
            spent = ledger.record_round()
            rec.epsilon, rec.delta = spent.epsilon, spent.delta
        result.rounds.append(rec)
        if on_round is not None:
            on_round(rec)
    replies = grid.send_and_receive(strategy.configure_evaluate(
        len(result.rounds), arrays, fl.ConfigRecord(), grid), timeout=fed.round_timeout * 4)
    for reply in replies:
        if reply.has_error():
            logger.warning("evaluation: node %d failed (%s)", reply.metadata.src_node_id,
                           reply.error.reason)
            continue
        m = {k: float(v) for k, v in reply.content["metrics"].items()}
        result.evaluation[int(m["partition-id"])] = m
    result.final = arrays.to_numpy_ndarrays()
    result.wall_seconds = time.perf_counter() - t0
    return result


def _server(bound: FedConfig | None, sink: list[FedResult] | None) -> Any:
    app = serverapp_mod.ServerApp()

    @app.main()  # type: ignore[untyped-decorator]
    def main(grid: Any, context: Any) -> None:
        cfg = _config_of(context, bound)
        result = run_federation(grid, cfg)
        out = context.run_config.get("fed-output")
        if out:
            Path(str(out)).write_text(json.dumps(result.to_dict(), default=float, indent=1),
                                      encoding="utf-8")
        if sink is not None:
            sink.append(result)

    return app


def make_apps(config: FedConfig, sink: list[FedResult] | None = None) -> tuple[Any, Any]:
    """A ServerApp and a ClientApp bound to ``config``; the server appends its result to
    ``sink``."""
    return _server(config, sink), _client(config)


# The deployed apps (the Flower app's components): they read ``fed-config``.
server_app = _server(None, None)
client_app = _client(None)
