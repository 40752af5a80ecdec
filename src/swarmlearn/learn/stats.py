"""Learned statistics, updated from the event stream.

Tables (every value a pair of weights ``[success, failure]``):

* ``actions``        action name → did the action succeed (was it useful)
* ``targets``        (action, target) → the same, per target
* ``contexts``       (context, action) → the same, per visible target context;
                     these are the bandit arms the selection policies use
* ``transitions``    (previous step, step) → how well the *episode* went
* ``ngrams3/4``      a worker's last 3 / 4 steps → how well the episode went

A *step* is the token ``action@context`` (see :func:`token`): what was done,
and in what visible situation. An episode credits its steps with its graded
value — a success's score (which falls with wasted actions), a timeout's
partial score, 0 for a failure — as success weight, and the rest as failure
weight, so efficient sequences come to look better than wasteful ones.
* ``strategies``     selection strategy → episodes won / lost (meta-learning)

Memory stays bounded on long runs: counts decay by ``decay`` per episode
(exponential forgetting in O(1), with a global scale instead of touching
every entry) and every table has a cap; past it the weakest tenth of the
entries is evicted. ``size()`` reports the table sizes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from swarmlearn._config import check_range
from swarmlearn.core.events import ActionEvent, EpisodeEnded, Event
from swarmlearn.errors import ArtifactError
from swarmlearn.types import OutcomeKind

__all__ = ["START", "Counts", "LearnedStats", "StatsConfig", "token", "value_of"]

try:  # the C accelerator (learn/_fast.c): the same updates, bit for bit
    from swarmlearn.learn import _fast
except ImportError:  # not built: the Python code below does it all
    _fast = None  # type: ignore[assignment]

#: whether LearnedStats uses the C updates by default (SWARMLEARN_PURE_PYTHON=1: never)
FAST = _fast is not None and os.environ.get("SWARMLEARN_PURE_PYTHON", "") in ("", "0")

Counts: TypeAlias = list[float]  # [success weight, failure weight] (scaled, see LearnedStats)
Key: TypeAlias = Any
START = "^"  # the token before a worker's first action
FORMAT_VERSION = 1
TABLES = ("actions", "targets", "contexts", "transitions", "ngrams3", "ngrams4", "strategies")


def token(action: str, context: str) -> str:
    """The sequence token of a step: ``action@context`` (or the action alone)."""
    return f"{action}@{context}" if context else action


def value_of(s: float, f: float, prior: float = 1.0) -> float:
    """A value in (-1, 1): (s - f) / (s + f + prior), shrunk towards 0 when little is known."""
    return (s - f) / (s + f + prior)


@dataclass(frozen=True, kw_only=True, slots=True)
class StatsConfig:
    decay: float = 1.0  # per-episode multiplier of all counts (1.0 = never forget)
    max_entries: int = 50_000  # cap per table

    def __post_init__(self) -> None:
        check_range("decay", self.decay, lo=0.5, hi=1.0)
        check_range("max_entries", self.max_entries, lo=16)


class LearnedStats:
    """Counts learned from events; feed it with :meth:`observe` (a bus handler).

    ``fast``: the C updates (True), the Python ones (False), or C when built (None);
    both leave the same tables, bit for bit (tests/learn/test_stats.py).
    """

    def __init__(self, config: StatsConfig | None = None, *, fast: bool | None = None) -> None:
        self.config = config or StatsConfig()
        self.fast = bool((FAST if fast is None else fast) and _fast is not None)
        self._tokens: dict[Any, str] = {}  # (context, action) → its step token (C updates)
        self.actions: dict[Key, Counts] = {}
        self.targets: dict[Key, Counts] = {}
        self.contexts: dict[Key, Counts] = {}
        self.transitions: dict[Key, Counts] = {}
        self.ngrams3: dict[Key, Counts] = {}
        self.ngrams4: dict[Key, Counts] = {}
        self.strategies: dict[Key, Counts] = {}
        self.episodes: Counts = [0.0, 0.0]
        self.events_seen = 0
        self.evicted = 0
        # all stored weights are multiplied by _scale; reading divides by it
        self._scale = 1.0
        # ``epoch`` changes when anything beyond single arm counts changes (an episode end):
        # the bonus memoizes its sequence part per epoch (learn/bonus.py)
        self.epoch = 0
        self._sequences: dict[tuple[int, int], list[str]] = {}  # (session, worker) → names
        #: the tables in TABLES order (they are never replaced, only changed in place)
        self._all: tuple[dict[Key, Counts], ...] = tuple(getattr(self, n) for n in TABLES)

    # -- updating -------------------------------------------------------------------
    def observe(self, batch: Sequence[Event]) -> None:
        """Bus handler: action events update the per-action tables at once, the
        episode end attributes its outcome to the transitions and n-grams."""
        if self.fast:
            _fast.observe(self, self._tokens, batch, ActionEvent, EpisodeEnded)
            return
        for event in batch:
            if isinstance(event, ActionEvent):
                self.observe_action(event)
            elif isinstance(event, EpisodeEnded):
                self.end_episode(event)

    def observe_action(self, e: ActionEvent) -> None:
        # the hot path of online learning: the bumps are written out, not called
        self.events_seen += 1
        w = self._scale
        i = 0 if e.result[0] else 1
        name = e.action
        c = self.actions.get(name)
        if c is None:
            c = self.actions[name] = [0.0, 0.0]
        c[i] += w
        if e.target:  # (name, "") would only repeat the actions table
            key = (name, e.target)
            c = self.targets.get(key)
            if c is None:
                c = self.targets[key] = [0.0, 0.0]
            c[i] += w
        arm = (e.context, name)
        c = self.contexts.get(arm)
        if c is None:
            c = self.contexts[arm] = [0.0, 0.0]
        c[i] += w
        skey = (e.session, e.worker)
        seq = self._sequences.get(skey)
        if seq is None:
            seq = self._sequences[skey] = []
        seq.append(f"{name}@{e.context}" if e.context else name)

    def end_episode(self, e: EpisodeEnded) -> None:
        value = e.outcome.value if e.outcome.kind is OutcomeKind.SUCCESS else 0.0
        if e.outcome.kind is OutcomeKind.TIMEOUT:
            value = 0.5 * e.outcome.value  # partial progress, but the task was not done
        sequences, session = self._sequences, e.session
        mine = [k for k in sequences if k[0] == session]
        if len(mine) == len(sequences):  # one session at a time, as a swarm runs: all of them
            steps = list(sequences.values())
            sequences.clear()
        else:
            steps = [sequences.pop(k) for k in mine]
        self.attribute(steps, value)  # in the order the workers first acted, as before

    def attribute(self, sequences: Iterable[Sequence[str]], value: float) -> None:
        """Credit an episode's value in [0, 1] to the transitions and n-grams of its
        step sequences: ``value`` as success weight, ``1 - value`` as failure weight."""
        value = min(1.0, max(0.0, float(value)))
        ws, wf = self._scale * value, self._scale * (1.0 - value)
        trans, g3, g4 = self.transitions, self.ngrams3, self.ngrams4
        if self.fast:
            _fast.credit(trans, g3, g4, sequences, ws, wf)
            sequences = ()
        for seq in sequences:
            p3 = p2 = p1 = START  # the three steps before a, oldest first: p3, p2, p1
            for a in seq:
                for table, key in ((trans, (p1, a)), (g3, (p2, p1, a)), (g4, (p3, p2, p1, a))):
                    c = table.get(key)
                    if c is None:
                        table[key] = [ws, wf]
                    else:
                        c[0] += ws
                        c[1] += wf
                p3, p2, p1 = p2, p1, a
        self.episodes[0 if value > 0.0 else 1] += self._scale
        self._decay()
        self._enforce_caps()
        self.epoch += 1

    def record_strategy(self, strategy: str, won: bool) -> None:
        _bump(self.strategies, strategy, 0 if won else 1, self._scale)

    def _decay(self) -> None:
        d = self.config.decay
        if d >= 1.0:
            return
        self._scale /= d  # new counts weigh 1/d more than old ones: old ones decay by d
        if self._scale > 1e150:
            self._rescale()

    def _rescale(self) -> None:
        s = self._scale
        for table in self._tables():
            for c in table.values():
                c[0] /= s
                c[1] /= s
        self.episodes = [self.episodes[0] / s, self.episodes[1] / s]
        self._scale = 1.0

    def _enforce_caps(self) -> None:
        cap = self.config.max_entries
        if max(map(len, self._all)) <= cap:
            return  # every episode end asks: one pass over the seven sizes
        for table in self._all:
            if len(table) > cap:
                keep = int(cap * 0.9)
                ranked = sorted(table.items(), key=lambda kv: kv[1][0] + kv[1][1], reverse=True)
                self.evicted += len(table) - keep
                table.clear()
                table.update(ranked[:keep])

    def _tables(self) -> Iterator[dict[Key, Counts]]:
        for name in TABLES:
            yield getattr(self, name)

    # -- reading (all O(1)) -----------------------------------------------------------
    def get(self, table: dict[Key, Counts], key: Key) -> tuple[float, float]:
        """(successes, failures) of ``key``, in decayed count units."""
        c = table.get(key)
        if c is None:
            return (0.0, 0.0)
        s = self._scale
        return (c[0] / s, c[1] / s)

    def arm(self, context: str, action: str) -> tuple[float, float]:
        return self.get(self.contexts, (context, action))

    @property
    def scale(self) -> float:
        return self._scale

    def size(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in TABLES}

    def episodes_won_lost(self) -> tuple[float, float]:
        return (self.episodes[0] / self._scale, self.episodes[1] / self._scale)

    # -- persistence -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        s = self._scale
        data: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "config": {"decay": self.config.decay, "max_entries": self.config.max_entries},
            "episodes": [self.episodes[0] / s, self.episodes[1] / s],
            "events_seen": self.events_seen,
        }
        for name in TABLES:
            data[name] = [[*_key_list(k), c[0] / s, c[1] / s]
                          for k, c in getattr(self, name).items()]
        return data

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "stats") -> LearnedStats:
        if not isinstance(data, dict):
            raise ArtifactError(f"{where}: expected an object, got {type(data).__name__}")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ArtifactError(f"{where}: format_version {version!r} is not supported "
                                f"(expected {FORMAT_VERSION})")
        try:
            cfg = data.get("config", {})
            stats = cls(StatsConfig(decay=float(cfg.get("decay", 1.0)),
                                    max_entries=int(cfg.get("max_entries", 50_000))))
            stats.episodes = [float(data["episodes"][0]), float(data["episodes"][1])]
            stats.events_seen = int(data.get("events_seen", 0))
            for name in TABLES:
                table = getattr(stats, name)
                for row in data.get(name, []):
                    *key, s, f = row
                    if s < 0 or f < 0 or not (math.isfinite(s) and math.isfinite(f)):
                        raise ValueError(f"negative or non-finite count in {name}: {row!r}")
                    table[_key_from_list(name, key)] = [float(s), float(f)]
        except ArtifactError:
            raise
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ArtifactError(f"{where}: malformed statistics: {exc}") from exc
        return stats

    def copy(self) -> LearnedStats:
        return LearnedStats.from_dict(self.to_dict())


def _bump(table: dict[Key, Counts], key: Key, i: int, w: float) -> None:
    c = table.get(key)
    if c is None:
        c = table[key] = [0.0, 0.0]
    c[i] += w


def _key_list(key: Key) -> list[str]:
    return list(key) if isinstance(key, tuple) else [key]


def _key_from_list(table: str, key: list[Any]) -> Key:
    if not all(isinstance(k, str) for k in key) or not key:
        raise ValueError(f"bad key {key!r} in {table}")
    arity = {"actions": 1, "strategies": 1, "targets": 2, "contexts": 2, "transitions": 2,
             "ngrams3": 3, "ngrams4": 4}[table]
    if len(key) != arity:
        raise ValueError(f"key {key!r} in {table} should have {arity} parts")
    return key[0] if arity == 1 else tuple(key)
