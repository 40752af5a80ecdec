"""What a node shares, each behind one small interface: to numbers, from numbers.

A :class:`Codec` turns a value into a list of float arrays (what a Flower
``ArrayRecord`` carries, what clipping, noise and aggregation work on) and back:

* :class:`SnapshotCodec` — a learning snapshot: the learned statistics
  (every table's ``[success, failure]`` weights) over a public
  :class:`Vocabulary`, and the summary counts (sessions, episodes, successes,
  actions, solved actions). These are sums: a node's update is the counts its
  own episodes added, and the federation adds the updates up — the same thing
  :func:`swarmlearn.learn.merge.merge` with ``Additive`` does to snapshots;
  rates are never averaged. Decoding clamps counts to >= 0 (noise can push a
  count below 0; clamping is post-processing and costs no privacy).
* :class:`LoraCodec` — the tensors of a PEFT adapter's ``adapter_model.safetensors``.
* :class:`DqnCodec` — a DQN policy's flat parameter vector (:mod:`swarmlearn.rl`).

The vocabulary is public: the statistics' keys that playing the scenarios on
public seeds produces (:func:`build_vocabulary`), fixed before the
federation starts, so the positions of the numbers say nothing about any
node's episodes. Keys a node meets outside it are kept locally and not shared.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from swarmlearn._extras import require
from swarmlearn.core.scenario import Scenario
from swarmlearn.errors import ArtifactError, ConfigError
from swarmlearn.learn.snapshot import LearningSnapshot, SnapshotScope
from swarmlearn.learn.stats import TABLES, LearnedStats

__all__ = [
    "Codec",
    "DqnCodec",
    "LoraCodec",
    "SnapshotCodec",
    "Vocabulary",
    "build_vocabulary",
]

F64 = npt.NDArray[np.float64]
T = TypeVar("T")
VOCAB_FORMAT = 1
COUNTS = ("sessions", "episodes", "successes", "actions", "solved_actions")


class Codec(Protocol[T]):
    """A value as float arrays and back (``decode(encode(v))`` equals ``v``)."""

    def encode(self, value: T) -> list[F64]: ...

    def decode(self, arrays: Sequence[npt.NDArray[Any]]) -> T: ...


# -- statistics and snapshots ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Vocabulary:
    """The public, ordered keys of the shared statistics: (table, key parts)."""

    keys: tuple[tuple[str, tuple[str, ...]], ...]

    def __post_init__(self) -> None:
        if len(set(self.keys)) != len(self.keys):
            raise ConfigError("vocabulary: a key is listed twice")
        for table, _ in self.keys:
            if table not in TABLES:
                raise ConfigError(f"vocabulary: unknown table {table!r}")

    def __len__(self) -> int:
        return len(self.keys)

    def index(self) -> dict[tuple[str, tuple[str, ...]], int]:
        return {k: i for i, k in enumerate(self.keys)}

    def tables(self) -> dict[str, int]:
        out = dict.fromkeys(TABLES, 0)
        for table, _ in self.keys:
            out[table] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"format_version": VOCAB_FORMAT, "keys": [[t, *k] for t, k in self.keys]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "vocabulary") -> Vocabulary:
        if data.get("format_version") != VOCAB_FORMAT:
            raise ArtifactError(f"{where}: format_version {data.get('format_version')!r} is "
                                f"not supported (expected {VOCAB_FORMAT})")
        try:
            return cls(tuple((str(r[0]), tuple(str(p) for p in r[1:])) for r in data["keys"]))
        except (KeyError, TypeError, IndexError) as exc:
            raise ArtifactError(f"{where}: malformed keys ({exc})") from exc

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict()), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ArtifactError(f"{path}: cannot read the vocabulary ({exc})") from exc
        return cls.from_dict(data, where=str(path))


def _rows(stats: LearnedStats, tables: Sequence[str]) -> list[tuple[str, tuple[str, ...],
                                                                    float, float]]:
    d = stats.to_dict()
    return [(t, tuple(str(p) for p in row[:-2]), float(row[-2]), float(row[-1]))
            for t in tables for row in d[t]]


def build_vocabulary(scenarios: Sequence[Scenario], *, episodes: int = 20,
                     seed: int = 900_000,
                     tables: Sequence[str] = ("contexts",)) -> Vocabulary:
    """The keys the ``tables`` get when each scenario is played on the public seeds
    ``seed, seed+1, …`` (``episodes`` of them) by a learning swarm: public data only."""
    from swarmlearn.learn.policies import LearningPolicies, LearningState
    from swarmlearn.session import run_session

    unknown = [t for t in tables if t not in TABLES]
    if unknown:
        raise ConfigError(f"vocabulary.tables: unknown table {unknown[0]!r} "
                          f"(known: {', '.join(TABLES)})", field="vocabulary.tables")
    seen: dict[tuple[str, tuple[str, ...]], None] = {}
    for sc in scenarios:
        policies = LearningPolicies("adaptive", LearningState())
        run_session(sc.override(workers={"policy": "adaptive"}),
                    seeds=list(range(seed, seed + episodes)), policies=policies)
        for table, key, _, _ in _rows(policies.state.stats, tables):
            seen.setdefault((table, key), None)
    for strategy in ("ucb1", "greedy", "thompson", "thompson-mean", "adaptive"):
        if "strategies" in tables:
            seen.setdefault(("strategies", (strategy,)), None)
    return Vocabulary(tuple(sorted(seen)))


class SnapshotCodec:
    """A :class:`LearningSnapshot` ↔ [statistics vector, counts vector].

    The statistics vector holds 2·len(vocabulary) + 2 numbers: each key's
    success and failure weight, then the episodes won and lost.
    """

    def __init__(self, vocabulary: Vocabulary, *, scope: SnapshotScope = SnapshotScope.GLOBAL,
                 key: str = "federation") -> None:
        self.vocabulary = vocabulary
        self.scope = scope
        self.key = key
        self._index = vocabulary.index()

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        return [(2 * len(self.vocabulary) + 2,), (len(COUNTS),)]

    def zeros(self) -> list[F64]:
        return [np.zeros(s) for s in self.shapes]

    def groups(self) -> list[npt.NDArray[np.int64] | None]:
        """Pair groups for :func:`swarmlearn.fed.denoise`: the keys of one context (the
        arms a bandit compares) together, every other key alone."""
        ids: dict[tuple[str, ...], int] = {}
        out = []
        for table, key in self.vocabulary.keys:
            g = ("contexts", key[0]) if table == "contexts" else (table, *key)
            out.append(ids.setdefault(g, len(ids)))
        out.append(len(ids))  # episodes won / lost
        return [np.asarray(out, np.int64), None]

    def encode_stats(self, stats: LearnedStats) -> F64:
        vec = np.zeros(2 * len(self.vocabulary) + 2)
        index = self._index
        for table, key, s, f in _rows(stats, TABLES):
            i = index.get((table, key))
            if i is not None:
                vec[2 * i] = s
                vec[2 * i + 1] = f
        won, lost = stats.episodes_won_lost()
        vec[-2], vec[-1] = won, lost
        return vec

    def decode_stats(self, vec: npt.NDArray[Any]) -> LearnedStats:
        v = np.asarray(vec, np.float64)
        if v.shape != (2 * len(self.vocabulary) + 2,):
            raise ArtifactError(f"statistics vector: expected {2 * len(self.vocabulary) + 2} "
                                f"numbers, got shape {v.shape}")
        v = np.where(np.isfinite(v), np.maximum(v, 0.0), 0.0)
        data: dict[str, Any] = {"format_version": 1,
                                "config": {"decay": 1.0, "max_entries": 50_000},
                                "episodes": [float(v[-2]), float(v[-1])], "events_seen": 0}
        for t in TABLES:
            data[t] = []
        for i, (table, key) in enumerate(self.vocabulary.keys):
            s, f = float(v[2 * i]), float(v[2 * i + 1])
            if s > 0.0 or f > 0.0:
                data[table].append([*key, s, f])
        return LearnedStats.from_dict(data, where="federated statistics")

    def encode(self, value: LearningSnapshot) -> list[F64]:
        counts = np.array([float(getattr(value, c)) for c in COUNTS])
        return [self.encode_stats(value.stats), counts]

    def decode(self, arrays: Sequence[npt.NDArray[Any]]) -> LearningSnapshot:
        if len(arrays) != 2:
            raise ArtifactError(f"snapshot arrays: expected 2 (statistics, counts), "
                                f"got {len(arrays)}")
        stats = self.decode_stats(arrays[0])
        c = np.asarray(arrays[1], np.float64)
        if c.shape != (len(COUNTS),):
            raise ArtifactError(f"snapshot counts: expected {len(COUNTS)}, got {c.shape}")
        n = {name: max(0, round(float(x))) if math.isfinite(float(x)) else 0
             for name, x in zip(COUNTS, c, strict=True)}
        n["successes"] = min(n["successes"], n["episodes"])
        n["solved_actions"] = min(n["solved_actions"], n["actions"])
        return LearningSnapshot(scope=self.scope, key=self.key, stats=stats, created=0.0,
                                sessions=n["sessions"], episodes=n["episodes"],
                                successes=n["successes"], actions=n["actions"],
                                solved_actions=n["solved_actions"])


# -- LoRA adapters --------------------------------------------------------------------------
ADAPTER_FILE = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"


class LoraCodec:
    """A PEFT adapter directory ↔ its tensors (sorted by name, float32 → float64).

    ``decode`` needs a ``template`` directory (an adapter of the same shape, e.g.
    the node's own) for the config and the tensor names, and writes to ``out``.
    """

    def __init__(self, template: Path, out: Path) -> None:
        self.template = Path(template)
        self.out = Path(out)
        self.names = sorted(self._load(self.template))

    @staticmethod
    def _load(directory: Path) -> dict[str, npt.NDArray[Any]]:
        st = require("safetensors.numpy", "lora")
        path = Path(directory) / ADAPTER_FILE
        if not path.is_file():
            raise ArtifactError(f"{directory}: no {ADAPTER_FILE} (not a PEFT adapter directory)")
        try:
            return dict(st.load_file(str(path)))
        except Exception as exc:  # safetensors raises its own error types
            raise ArtifactError(f"{path}: cannot read the adapter ({exc})") from exc

    def encode(self, value: Path) -> list[F64]:
        tensors = self._load(value)
        if sorted(tensors) != self.names:
            raise ArtifactError(f"{value}: its tensors are not those of {self.template}")
        return [np.asarray(tensors[n], np.float64) for n in self.names]

    def decode(self, arrays: Sequence[npt.NDArray[Any]]) -> Path:
        st = require("safetensors.numpy", "lora")
        shapes = {n: a.shape for n, a in self._load(self.template).items()}
        if len(arrays) != len(self.names):
            raise ArtifactError(f"adapter arrays: expected {len(self.names)}, got {len(arrays)}")
        tensors: dict[str, npt.NDArray[Any]] = {}
        for n, a in zip(self.names, arrays, strict=True):
            if tuple(np.shape(a)) != tuple(shapes[n]):
                raise ArtifactError(f"adapter tensor {n}: shape {np.shape(a)}, expected "
                                    f"{shapes[n]}")
            tensors[n] = np.ascontiguousarray(a, dtype=np.float32)
        self.out.mkdir(parents=True, exist_ok=True)
        tmp = self.out / (ADAPTER_FILE + ".tmp")
        st.save_file(tensors, str(tmp))
        tmp.replace(self.out / ADAPTER_FILE)
        shutil.copyfile(self.template / ADAPTER_CONFIG, self.out / ADAPTER_CONFIG)
        return self.out


# -- DQN policies ---------------------------------------------------------------------------
class DqnCodec:
    """A :class:`swarmlearn.rl.DQN` policy ↔ its flat parameter vector.

    ``decode`` loads the numbers into ``agent`` (online and target network) and
    returns it; the replay buffer and optimizer state stay the node's own.
    """

    def __init__(self, agent: Any) -> None:
        self.agent = agent

    def encode(self, value: Any) -> list[F64]:
        return [np.asarray(value.net.params, np.float64).copy()]

    def decode(self, arrays: Sequence[npt.NDArray[Any]]) -> Any:
        params = self.agent.net.params
        if len(arrays) != 1 or np.shape(arrays[0]) != params.shape:
            raise ArtifactError(f"DQN arrays: expected one vector of {params.shape[0]}, got "
                                f"{[np.shape(a) for a in arrays]}")
        params[...] = np.asarray(arrays[0], np.float32)
        self.agent.target_params[...] = params
        return self.agent
