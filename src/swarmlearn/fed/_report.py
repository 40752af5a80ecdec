"""Utility of a federation: each node's swarm with the federated statistics vs alone.

For every node, the held-out evaluation scenarios split into those it *saw*
(trained on, in any variant) and those it *never saw*. On each side, the
success rate with the federated statistics and with its local-only ones
(Wilson 95% intervals over the pooled held-out tasks), and per node the
difference on its unseen scenarios; over the nodes, the Student-t 95% interval
of that difference. "Federated better on unseen" holds for a node when its
difference is above 0, and for the federation when every node's is and the
interval over nodes lies wholly above 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from swarmlearn._stats import summarize, wilson

__all__ = ["NodeUtility", "UtilitySummary", "summarize_utility"]


@dataclass(frozen=True, slots=True)
class NodeUtility:
    node: int
    unseen: tuple[str, ...]
    fed_unseen: tuple[int, int]  # successes, episodes
    local_unseen: tuple[int, int]
    fed_seen: tuple[int, int]
    local_seen: tuple[int, int]

    @staticmethod
    def _rate(p: tuple[int, int]) -> float:
        return p[0] / p[1] if p[1] else math.nan

    @property
    def gain_unseen(self) -> float:
        return self._rate(self.fed_unseen) - self._rate(self.local_unseen)

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "unseen": list(self.unseen),
                "fed_unseen": self._rate(self.fed_unseen),
                "local_unseen": self._rate(self.local_unseen),
                "fed_seen": self._rate(self.fed_seen), "local_seen": self._rate(self.local_seen),
                "gain_unseen": self.gain_unseen}


@dataclass(frozen=True, slots=True)
class UtilitySummary:
    epsilon: float | None
    nodes: tuple[NodeUtility, ...]

    def pooled(self, side: str) -> tuple[int, int]:
        pairs = [getattr(n, side) for n in self.nodes]
        return sum(p[0] for p in pairs), sum(p[1] for p in pairs)

    def rate(self, side: str) -> tuple[float, float, float]:
        k, n = self.pooled(side)
        lo, hi = wilson(k, n)
        return (k / n if n else math.nan, lo, hi)

    def gain(self) -> tuple[float, float, float]:
        s = summarize([n.gain_unseen for n in self.nodes if not math.isnan(n.gain_unseen)])
        return (s.mean, s.ci_low, s.ci_high)

    @property
    def nodes_better(self) -> int:
        return sum(1 for n in self.nodes if n.gain_unseen > 0)

    @property
    def every_node_better(self) -> bool:
        return bool(self.nodes) and self.nodes_better == len(self.nodes) and self.gain()[1] > 0

    def to_dict(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon, "nodes": [n.to_dict() for n in self.nodes],
                "episodes": {side: self.pooled(side)[1] for side in
                             ("fed_unseen", "local_unseen", "fed_seen", "local_seen")},
                "fed_unseen": self.rate("fed_unseen"), "local_unseen": self.rate("local_unseen"),
                "fed_seen": self.rate("fed_seen"), "local_seen": self.rate("local_seen"),
                "gain_unseen": self.gain(), "nodes_better": self.nodes_better,
                "every_node_better": self.every_node_better}


def _pair(metrics: Mapping[str, float], side: str, names: Sequence[str]) -> tuple[int, int]:
    return (int(sum(metrics[f"{side}.{s}.successes"] for s in names)),
            int(sum(metrics[f"{side}.{s}.episodes"] for s in names)))


def summarize_utility(evaluation: Mapping[int, Mapping[str, float]],
                      scenarios: Sequence[str], epsilon: float | None) -> UtilitySummary:
    """The figures of one federation from its nodes' evaluation metrics."""
    nodes = []
    for node, m in sorted(evaluation.items()):
        seen = [s for s in scenarios if m.get(f"seen.{s}", 0.0) > 0]
        unseen = [s for s in scenarios if s not in seen]
        nodes.append(NodeUtility(node, tuple(unseen), _pair(m, "fed", unseen),
                                 _pair(m, "local", unseen), _pair(m, "fed", seen),
                                 _pair(m, "local", seen)))
    return UtilitySummary(epsilon, tuple(nodes))
