"""A node's own work: learn on its private tasks, and measure a set of statistics.

A node plays ``episodes`` private tasks of each of its scenarios per round,
with rule workers whose learning policies start from the statistics it was
sent (the federation's). What its episodes added — the new statistics minus
the ones it started from, and the summary counts of those episodes — is the
update it shares. Its private task seeds are drawn from its own seed block
(never sent); the held-out evaluation seeds are disjoint from every node's.

The local-only baseline is the same node learning alone: the same tasks,
starting each round from its own statistics only.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from swarmlearn.core.events import EpisodeEnded
from swarmlearn.fed._config import EvalConfig, NodeSpec, scenario_ref
from swarmlearn.fed._dp import clip_update
from swarmlearn.fed._payload import SnapshotCodec
from swarmlearn.learn.policies import LearningPolicies, LearningState
from swarmlearn.learn.snapshot import LearningSnapshot, SnapshotScope
from swarmlearn.learn.stats import LearnedStats
from swarmlearn.session import run_session
from swarmlearn.types import OutcomeKind

__all__ = ["NodeRound", "ScenarioScore", "evaluate_stats", "node_seeds", "play_round"]

logger = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]
STRATEGY = "adaptive"
SEED_BLOCK = 1_000_000  # each node's private seeds: 1e6·(1 + node hash) + …


def node_seeds(node: NodeSpec, scenario: str, round_: int, episodes: int,
               seed: int = 0) -> list[int]:
    """The private task seeds of ``node`` for ``scenario`` in round ``round_`` (from 1)."""
    h = zlib.crc32(f"{seed}/{node.name}/{scenario}".encode()) % 1000
    start = SEED_BLOCK * (1 + h) + (round_ - 1) * episodes
    return list(range(start, start + episodes))


@dataclass(slots=True)
class NodeRound:
    """What one round of a node produced: its update and the episodes behind it."""

    update: list[F64]
    episodes: list[EpisodeEnded]
    stats: LearnedStats  # the statistics after the round (start + the node's episodes)
    exact: list[F64] | None = None  # the unclipped update, when ``update`` was clipped

    @property
    def successes(self) -> int:
        return sum(1 for e in self.episodes if e.outcome.kind is OutcomeKind.SUCCESS)


def play_round(node: NodeSpec, start: LearningSnapshot, codec: SnapshotCodec, *,
               round_: int, episodes: int, seed: int = 0,
               clip_each: float | None = None) -> NodeRound:
    """Play the node's private tasks of round ``round_`` from the statistics of
    ``start``; the update is what those episodes added (statistics and counts).

    With ``clip_each`` (DP with an episode as the unit) every episode starts from
    ``start`` alone and its own contribution is clipped to that L2 norm, so the
    update moves by at most ``clip_each`` when one episode is added or removed.
    """
    if clip_each is not None:
        return _play_independent(node, start, codec, round_=round_, episodes=episodes,
                                 seed=seed, clip=clip_each)
    state = LearningState(start.stats.copy())
    policies = LearningPolicies(STRATEGY, state)
    played: list[EpisodeEnded] = []
    for ref in node.scenarios:
        sc = scenario_ref(ref).override(workers={"policy": STRATEGY})
        result = run_session(sc, seeds=node_seeds(node, ref, round_, episodes, seed),
                             policies=policies)
        played.extend(result.episodes)
    mine = LearningSnapshot.from_episodes(played, scope=SnapshotScope.GLOBAL, key=node.name,
                                          stats=state.stats, sessions=len(node.scenarios),
                                          created=0.0)
    update = [codec.encode_stats(state.stats) - codec.encode_stats(start.stats),
              codec.encode(mine)[1]]
    return NodeRound(update, played, state.stats)


def _play_independent(node: NodeSpec, start: LearningSnapshot, codec: SnapshotCodec, *,
                      round_: int, episodes: int, seed: int, clip: float) -> NodeRound:
    base = codec.encode_stats(start.stats)
    total = np.zeros_like(base)
    exact = np.zeros_like(base)
    played: list[EpisodeEnded] = []
    for ref in node.scenarios:
        sc = scenario_ref(ref).override(workers={"policy": STRATEGY})
        for task in node_seeds(node, ref, round_, episodes, seed):
            state = LearningState(start.stats.copy())
            result = run_session(sc, seeds=[task], policies=LearningPolicies(STRATEGY, state))
            played.extend(result.episodes)
            delta = codec.encode_stats(state.stats) - base
            (clipped,), _ = clip_update([delta], clip)
            total += clipped
            exact += delta
    stats = codec.decode_stats(base + total)
    zeros = np.zeros(codec.shapes[1])
    return NodeRound([total, zeros], played, stats, exact=[exact, zeros])


@dataclass(frozen=True, slots=True)
class ScenarioScore:
    scenario: str
    episodes: int
    successes: int
    actions: int

    @property
    def success_rate(self) -> float:
        return self.successes / self.episodes if self.episodes else math.nan

    def to_dict(self) -> dict[str, float]:
        return {"episodes": self.episodes, "successes": self.successes,
                "actions": self.actions, "success_rate": self.success_rate}


def evaluate_stats(stats: LearnedStats, config: EvalConfig,
                   scenarios: Sequence[str] | None = None) -> dict[str, ScenarioScore]:
    """Success on the held-out tasks of each evaluation scenario, starting from ``stats``
    (each scenario from its own copy: what one scenario's tasks teach does not leak
    into the next one's score)."""
    refs = list(scenarios) if scenarios is not None else [
        f"{s}:{config.variant}" if config.variant else s for s in config.scenarios]
    out: dict[str, ScenarioScore] = {}
    seeds = list(range(config.seed, config.seed + config.episodes))
    for ref in refs:
        sc = scenario_ref(ref).override(workers={"policy": STRATEGY})
        policies = LearningPolicies(STRATEGY, LearningState(stats.copy()))
        result = run_session(sc, seeds=seeds, policies=policies)
        won = sum(1 for e in result.episodes if e.outcome.kind is OutcomeKind.SUCCESS)
        out[ref.partition(":")[0]] = ScenarioScore(ref, len(result.episodes), won,
                                                   result.actions)
    return out
