"""Our Flower strategy: sample, send the global numbers, clip, aggregate, add noise.

:class:`SwarmStrategy` implements Flower's message strategy API
(``configure_train`` / ``aggregate_train`` / ``configure_evaluate`` /
``aggregate_evaluate``). Nodes reply with their *update* (new minus old,
already clipped to C by the node when DP is on); the server checks every
update (wrong shapes or non-finite numbers are refused and logged, like a
failed reply) and clips it again — a node cannot spend more than its
share of the privacy by skipping the clip. Then:

* no DP: the aggregator of the config (sum for counts, FedAvg weighted by
  examples for weights, or the trimmed mean / coordinate median);
* central DP: the sum of the clipped updates plus N(0, (z·C)²) on every
  coordinate, divided by the fixed denominator (1 for sums; the expected
  number of nodes q·N for means), and one round composed in the ledger;
* local DP: each node added N(0, (z·C)²) itself; the server only sums/averages.

A failed reply (an error, or no reply before the round's timeout) is data:
logged, counted in the round's record, and left out; the round goes on.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from swarmlearn._extras import require
from swarmlearn.fed._aggregate import Aggregator, aggregate
from swarmlearn.fed._dp import DpConfig, DpMode, DpUnit, PrivacyLedger, add_noise, clip_update

__all__ = ["RoundRecord", "SwarmStrategy", "sample_nodes"]

logger = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]
fl = require("flwr.app", "fed")
strategy_mod = require("flwr.serverapp.strategy", "fed")


def sample_nodes(node_ids: Sequence[int], rate: float, rng: np.random.Generator) -> list[int]:
    """Poisson sampling: each node is asked with probability ``rate`` on its own."""
    if rate >= 1.0:
        return list(node_ids)
    return [n for n in node_ids if rng.random() < rate]


@dataclass(slots=True)
class RoundRecord:
    round: int
    asked: list[int] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)
    failures: dict[int, str] = field(default_factory=dict)
    norms: dict[int, float] = field(default_factory=dict)  # before clipping
    noise_std: float = 0.0
    epsilon: float | None = None
    delta: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"round": self.round, "asked": self.asked, "answered": self.answered,
                "failures": {str(k): v for k, v in self.failures.items()},
                "norms": {str(k): v for k, v in self.norms.items()},
                "noise_std": self.noise_std, "epsilon": self.epsilon, "delta": self.delta,
                "metrics": self.metrics}


_Strategy: Any = strategy_mod.Strategy


class SwarmStrategy(_Strategy):  # type: ignore[misc]
    """Flower strategy for sums (statistics) and means (weights), with central or local DP."""

    def __init__(self, *, aggregator: Aggregator, dp: DpConfig, sample_rate: float = 1.0,
                 trim: float = 0.2, expected_nodes: int, seed: int = 0,
                 ledger: PrivacyLedger | None = None, node_config: dict[str, Any] | None = None,
                 episodes_per_node: int = 1) -> None:
        self.aggregator = aggregator
        self.dp = dp
        self.sample_rate = sample_rate
        self.trim = trim
        self.expected_nodes = expected_nodes
        self.rng = np.random.default_rng(seed)
        self.ledger = ledger
        self.node_config = node_config or {}
        # the most a node's update may weigh: C, or with episodes as the unit C per
        # episode (honest nodes stay under it; the server re-clips to it)
        self.update_bound = dp.clip * (episodes_per_node if dp.unit is DpUnit.EPISODE else 1)
        self.current: list[F64] = []
        self.records: dict[int, RoundRecord] = {}

    # -- training -----------------------------------------------------------------------
    def configure_train(self, server_round: int, arrays: Any, config: Any,
                        grid: Any) -> Iterable[Any]:
        self.current = [np.asarray(a, np.float64) for a in arrays.to_numpy_ndarrays()]
        nodes = sample_nodes(sorted(grid.get_node_ids()), self.sample_rate, self.rng)
        rec = self.records.setdefault(server_round, RoundRecord(server_round))
        rec.asked = nodes
        config["server-round"] = server_round
        config["noise-std-total"] = self.noise_std_total(server_round - 1)
        if self.dp.enabled:
            assert self.dp.noise_multiplier is not None
            if self.dp.unit is DpUnit.EPISODE:
                config["clip-episode"] = self.dp.clip
            else:
                config["clip"] = self.dp.clip
            if self.dp.mode is DpMode.LOCAL:
                config["local-noise-std"] = self.dp.noise_multiplier * self.dp.clip
        for k, v in self.node_config.items():
            config[k] = v
        content = fl.RecordDict({"arrays": arrays, "config": config})
        return [fl.Message(content, n, fl.MessageType.TRAIN) for n in nodes]

    def _check(self, reply: Any) -> tuple[list[F64], float] | str:
        """The reply's update and weight, or why it is refused."""
        if reply.has_error():
            return f"error: {reply.error.reason}"
        try:
            update = [np.asarray(a, np.float64)
                      for a in reply.content["update"].to_numpy_ndarrays()]
            metrics = reply.content["metrics"]
            weight = float(metrics.get("num-examples", 1))
        except (KeyError, TypeError, ValueError) as exc:
            return f"malformed reply: {exc!r}"
        shapes = [a.shape for a in self.current]
        if [a.shape for a in update] != shapes:
            return f"update shapes {[a.shape for a in update]} are not {shapes}"
        if not (weight > 0 and math.isfinite(weight)):
            return f"num-examples {weight!r} is not a positive number"
        return update, weight

    def aggregate_train(self, server_round: int, replies: Iterable[Any]) -> tuple[Any, Any]:
        rec = self.records.setdefault(server_round, RoundRecord(server_round))
        updates: list[list[F64]] = []
        weights: list[float] = []
        metric_sums: dict[str, float] = {}
        for reply in replies:
            node = int(reply.metadata.src_node_id)
            checked = self._check(reply)
            if isinstance(checked, str):
                rec.failures[node] = checked
                logger.warning("round %d: node %d left out (%s)", server_round, node, checked)
                continue
            update, weight = checked
            if self.dp.enabled:
                update, norm = clip_update(update, self.update_bound)
                rec.norms[node] = norm
            rec.answered.append(node)
            updates.append(update)
            weights.append(weight)
            for k, v in reply.content["metrics"].items():
                if isinstance(v, int | float) and not isinstance(v, bool):
                    metric_sums[k] = metric_sums.get(k, 0.0) + float(v)
        for node in rec.asked:
            if node not in rec.answered and node not in rec.failures:
                rec.failures[node] = "no reply before the round's timeout"
                logger.warning("round %d: node %d left out (no reply in time)", server_round, node)
        rec.metrics = metric_sums
        if not updates and self.dp.mode is not DpMode.CENTRAL:
            return None, fl.MetricRecord(metric_sums) if metric_sums else None
        agg = self._aggregate(updates, weights, rec)
        new = [c + a for c, a in zip(self.current, agg, strict=True)]
        return fl.ArrayRecord([np.asarray(a) for a in new]), fl.MetricRecord(metric_sums)

    def _aggregate(self, updates: list[list[F64]], weights: list[float],
                   rec: RoundRecord) -> list[F64]:
        mean = self.aggregator is Aggregator.MEAN
        if self.dp.mode is not DpMode.CENTRAL:
            if not updates:
                return [np.zeros_like(c) for c in self.current]
            w = None if self.dp.enabled else weights  # under DP every node weighs the same
            return aggregate(self.aggregator, updates, weights=w, trim=self.trim,
                             denominator=(self.sample_rate * self.expected_nodes
                                          if mean and self.dp.enabled else None))
        assert self.dp.noise_multiplier is not None
        summed = (aggregate(Aggregator.SUM, updates) if updates
                  else [np.zeros_like(c) for c in self.current])
        rec.noise_std = self.dp.noise_multiplier * self.dp.clip
        noisy = add_noise(summed, rec.noise_std, self.rng)
        if self.ledger is not None:
            spent = self.ledger.record_round()
            rec.epsilon, rec.delta = spent.epsilon, spent.delta
        if mean:
            den = self.sample_rate * self.expected_nodes  # fixed: never the count that answered
            noisy = [a / den for a in noisy]
            rec.noise_std /= den
        return noisy

    # -- evaluation ----------------------------------------------------------------------
    def noise_std_total(self, released: int) -> float:
        """The std of the noise per coordinate of the summed counts after ``released``
        rounds (central: z·C·√r; local: z·C·√(updates received))."""
        if not self.dp.enabled or self.dp.noise_multiplier is None:
            return 0.0
        sigma = self.dp.noise_multiplier * self.dp.clip
        if self.dp.mode is DpMode.CENTRAL:
            return sigma * math.sqrt(released)
        answered = sum(len(r.answered) for k, r in self.records.items() if k <= released)
        return sigma * math.sqrt(answered)

    def configure_evaluate(self, server_round: int, arrays: Any, config: Any,
                           grid: Any) -> Iterable[Any]:
        config["server-round"] = server_round
        config["noise-std-total"] = self.noise_std_total(server_round)
        for k, v in self.node_config.items():
            config[k] = v
        content = fl.RecordDict({"arrays": arrays, "config": config})
        return [fl.Message(content, n, fl.MessageType.EVALUATE)
                for n in sorted(grid.get_node_ids())]

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Any]) -> Any:
        """Each node's metrics, keyed ``node<id>.<name>`` (evaluation is per node)."""
        out: dict[str, float] = {}
        for reply in replies:
            if reply.has_error():
                logger.warning("evaluation: node %d failed (%s)", reply.metadata.src_node_id,
                               reply.error.reason)
                continue
            for k, v in reply.content["metrics"].items():
                out[f"node{reply.metadata.src_node_id}.{k}"] = float(v)
        return fl.MetricRecord(out)

    def summary(self) -> None:
        logger.info("SwarmStrategy: aggregator=%s dp=%s sample_rate=%s", self.aggregator,
                    self.dp.to_dict(), self.sample_rate)
