"""Training data from the store: SFT examples and DPO pairs, rendered as served.

Builders read the recorded episodes of one scenario (its variant's sessions,
any worker kind) and replay each one (:mod:`swarmlearn.training._replay`) to
get every decision as the chat messages an LLM worker would have been sent —
built by :func:`swarmlearn.llm.prompt.build_messages` — with
:func:`~swarmlearn.llm.prompt.format_reply` of the recorded action as the
answer::

    data = SFTBuilder(DatasetConfig(min_score=0.5)).build(store, scenario)
    files = data.write(directory)            # train.jsonl, val.jsonl, dataset.json
    record = register_dataset(store, data, files)   # an artifact with its lineage

* :class:`SFTBuilder`: decisions of successful episodes (``success_only``,
  ``min_score``), by default only those that made progress
  (``progress_only``: a wasted action of a successful episode is no example);
* :class:`DPOBuilder`: per task seed, a decision a successful episode took
  (chosen) beside the different one a failed episode took in the very same
  prompt (rejected), when the two episodes' scores differ by ``min_gap`` or
  more; at most ``max_pairs_per_task`` per task;
* filters both share: episodes whose task seed is in ``exclude_seeds`` (the
  gates' held-out block by default) are never read, exact duplicates are
  dropped, at most ``max_examples`` are kept (a seeded sample), and the
  train/validation split is by task seed (no task is on both sides).

An episode that cannot be replayed faithfully (its replayed results differ
from the recorded ones, or an LLM manager guided it) is left out and counted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeGuard

from swarmlearn._config import check_range
from swarmlearn.core.events import EpisodeEnded
from swarmlearn.core.scenario import Scenario
from swarmlearn.errors import ConfigError, TrainingError
from swarmlearn.llm._types import Message
from swarmlearn.llm.prompt import PROMPT_VERSION
from swarmlearn.llm.worker import LLMWorkerConfig
from swarmlearn.store import ArtifactRecord, EventQuery, Store
from swarmlearn.training._replay import Decision, ReplayedEpisode, replay_episode
from swarmlearn.types import OutcomeKind

__all__ = [
    "DATASET_KIND",
    "DPOBuilder",
    "DPOPair",
    "Dataset",
    "DatasetBuilder",
    "DatasetConfig",
    "DatasetFiles",
    "SFTBuilder",
    "SFTExample",
    "load_jsonl",
    "register_dataset",
]

logger = logging.getLogger(__name__)

DATASET_KIND = "lora_dataset"
FORMAT_VERSION = 1
#: session kinds never read (the daemon's own record)
NOT_LEARNED_FROM = ("daemon",)
#: the lifecycle's gates draw held-out task seeds from here up (LifecycleConfig.held_out_base)
GATE_SEEDS = (900_000, 2**31 - 1)


@dataclass(frozen=True, kw_only=True, slots=True)
class DatasetConfig:
    """What the builders read and keep (module docstring)."""

    min_score: float = 0.0
    success_only: bool = True
    progress_only: bool = True
    plans: bool = True  # SFT: also the plan request of each episode (when the LLM is asked)
    dedup: bool = True
    max_examples: int = 0  # 0: no cap
    val_fraction: float = 0.1
    max_sessions: int = 200
    max_episodes: int = 0  # 0: every recorded episode (newest kept when capped)
    exclude_seeds: tuple[tuple[int, int], ...] = (GATE_SEEDS,)  # inclusive ranges
    min_gap: float = 0.25  # DPO: chosen episode's score minus rejected's, at least
    max_pairs_per_task: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        check_range("min_score", self.min_score, lo=0.0, hi=1.0)
        check_range("max_examples", self.max_examples, lo=0)
        check_range("val_fraction", self.val_fraction, lo=0.0, hi=0.5)
        check_range("max_sessions", self.max_sessions, lo=1)
        check_range("max_episodes", self.max_episodes, lo=0)
        check_range("min_gap", self.min_gap, lo=0.0, hi=1.0)
        check_range("max_pairs_per_task", self.max_pairs_per_task, lo=1)
        for lo, hi in self.exclude_seeds:
            if lo > hi:
                raise ConfigError(f"exclude_seeds: range {lo}-{hi} is empty",
                                  field="exclude_seeds", value=(lo, hi))

    def excluded(self, seed: int) -> bool:
        return any(lo <= seed <= hi for lo, hi in self.exclude_seeds)

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(map(list, v)) if k == "exclude_seeds" else v)
                for k, v in ((f, getattr(self, f)) for f in self.__slots__)}


def _messages_json(messages: Sequence[Message]) -> list[dict[str, str]]:
    return [{"role": m.role.value, "content": m.content} for m in messages]


@dataclass(frozen=True, slots=True)
class SFTExample:
    """A prompt (system + user) and the reply to learn, with where it came from."""

    messages: tuple[Message, ...]
    reply: str
    meta: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        chat = [*_messages_json(self.messages), {"role": "assistant", "content": self.reply}]
        return {"messages": chat, "meta": dict(self.meta)}


@dataclass(frozen=True, slots=True)
class DPOPair:
    """One prompt with a chosen and a rejected reply (TRL's conversational format)."""

    messages: tuple[Message, ...]
    chosen: str
    rejected: str
    meta: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"prompt": _messages_json(self.messages),
                "chosen": [{"role": "assistant", "content": self.chosen}],
                "rejected": [{"role": "assistant", "content": self.rejected}],
                "meta": dict(self.meta)}


Record = SFTExample | DPOPair


@dataclass(frozen=True, slots=True)
class DatasetFiles:
    directory: Path
    train: Path
    val: Path
    manifest: Path
    sha256: Mapping[str, str]


@dataclass(slots=True)
class Dataset:
    """What a builder made: train and validation records, their lineage, the counts."""

    kind: str  # "sft" or "dpo"
    scenario: str
    train: list[Record]
    val: list[Record]
    lineage: dict[str, Any]
    stats: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.train) + len(self.val)

    def manifest(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, "kind": self.kind, "scenario": self.scenario,
                "train": len(self.train), "val": len(self.val), "stats": dict(self.stats),
                "lineage": self.lineage}

    def write(self, directory: Path) -> DatasetFiles:
        """Write ``train.jsonl``, ``val.jsonl`` and ``dataset.json`` (atomically each)."""
        directory.mkdir(parents=True, exist_ok=True)
        digests: dict[str, str] = {}
        paths = {}
        for name, records in (("train", self.train), ("val", self.val)):
            text = "".join(json.dumps(r.to_json(), ensure_ascii=False) + "\n" for r in records)
            paths[name] = _atomic_write(directory / f"{name}.jsonl", text.encode())
            digests[f"{name}.jsonl"] = hashlib.sha256(text.encode()).hexdigest()
        manifest = {**self.manifest(), "sha256": digests}
        path = _atomic_write(directory / "dataset.json",
                             json.dumps(manifest, indent=2).encode())
        return DatasetFiles(directory, paths["train"], paths["val"], path, digests)


def _atomic_write(path: Path, data: bytes) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


#: what each objective's records hold (TRL's conversational formats)
_EXPECTED = {"sft": "'messages' ending with the assistant's reply",
             "dpo": "'prompt', 'chosen', 'rejected' (lists of chat messages)"}


def _chat(value: Any) -> TypeGuard[list[dict[str, str]]]:
    """A non-empty list of chat messages (``role`` and ``content`` strings)."""
    return isinstance(value, list) and bool(value) and all(
        isinstance(m, dict) and isinstance(m.get("role"), str)
        and isinstance(m.get("content"), str) for m in value)


def _fits(record: dict[str, Any], objective: str) -> bool:
    if objective == "sft":
        messages = record.get("messages")
        return _chat(messages) and messages[-1]["role"] == "assistant"
    return all(_chat(record.get(k)) for k in ("prompt", "chosen", "rejected"))


def load_jsonl(path: Path, objective: str | None = None) -> list[dict[str, Any]]:
    """The records of a JSONL data set; TrainingError (file and line) if one is malformed,
    or — with ``objective`` (``"sft"``, ``"dpo"``) — not a record of that objective."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise TrainingError(f"{path}: cannot read the data set ({exc})") from exc
    out = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise TrainingError(f"{path}:{i}: not JSON ({exc})") from exc
        if not isinstance(record, dict) or not ("messages" in record or "prompt" in record):
            raise TrainingError(f"{path}:{i}: expected an object with 'messages' (SFT) or "
                                f"'prompt', 'chosen', 'rejected' (DPO)")
        if objective is not None and not _fits(record, str(objective)):
            want = str(objective)
            other = next((k for k in _EXPECTED if k != want and _fits(record, k)), "")
            what = {"sft": "an SFT record", "dpo": "a DPO record"}.get(other,
                                                                     "not a usable record")
            raise TrainingError(f"{path}:{i}: {what}; the objective '{want}' expects "
                                f"{_EXPECTED[want]}")
        out.append(record)
    return out


def register_dataset(store: Store, data: Dataset, files: DatasetFiles) -> ArtifactRecord:
    """Record a written data set as a ``lora_dataset`` artifact (payload: its manifest)."""
    manifest = {**data.manifest(), "sha256": dict(files.sha256),
                "directory": str(files.directory.resolve())}
    return store.put_artifact(DATASET_KIND, data.scenario, json.dumps(manifest).encode(),
                              meta={"kind": data.kind, "train": len(data.train),
                                    "val": len(data.val),
                                    "directory": str(files.directory.resolve())},
                              format_version=FORMAT_VERSION, status="ready")


# -- reading and replaying the store ------------------------------------------------------
@dataclass(slots=True)
class _Read:
    episodes: list[ReplayedEpisode]
    sessions: list[int]
    stats: dict[str, int]


def _sessions(store: Store, scenario: Scenario, limit: int, stats: dict[str, int]) -> list[int]:
    """The sessions of ``scenario`` (same variant, same environment and workers), oldest
    first; sessions recorded with another environment or worker count are counted, not read."""
    want = scenario.to_dict()
    keep = []
    for s in store.sessions(scenario=scenario.name, limit=limit * 4):
        if s.variant != scenario.variant or s.kind in NOT_LEARNED_FROM:
            continue
        env = s.config.get("environment")
        workers = s.config.get("workers", {})
        if env is not None and (env != want.get("environment")
                                or workers.get("count") != scenario.workers.count):
            stats["sessions_other_config"] = stats.get("sessions_other_config", 0) + 1
            continue
        keep.append(s.id)
    return sorted(keep)[-limit:]


def _plans(store: Store, sid: int) -> dict[str, list[list[str]]]:
    out: dict[str, list[list[str]]] = {}
    for note in store.notes(session=sid, kind="plan"):
        order = str(note.data.get("order", ""))
        out.setdefault(note.task, []).append([n for n in order.split(",") if n])
    return out


def read_episodes(store: Store, scenario: Scenario, config: DatasetConfig, *,
                  worker_config: LLMWorkerConfig | None = None,
                  keep: Callable[[EpisodeEnded], bool] | None = None) -> _Read:
    """Replay the recorded episodes of ``scenario`` that ``keep(ended)`` accepts."""
    from swarmlearn.llm.backend import learned_dependencies

    stats: dict[str, int] = {}
    sessions = _sessions(store, scenario, config.max_sessions, stats)
    learned = learned_dependencies(store, scenario)
    ends = [(sid, e) for sid in sessions for e in store.episodes(session=sid)]
    stats["episodes_recorded"] = len(ends)
    ends = [(sid, e) for sid, e in ends if not config.excluded(e.seed)]
    stats["episodes_excluded_seeds"] = stats["episodes_recorded"] - len(ends)
    if keep is not None:
        ends = [(sid, e) for sid, e in ends if keep(e)]
    if config.max_episodes and len(ends) > config.max_episodes:
        ends = ends[-config.max_episodes:]
    stats["episodes_read"] = len(ends)
    out: list[ReplayedEpisode] = []
    by_session: dict[int, list[EpisodeEnded]] = {}
    for sid, e in ends:
        by_session.setdefault(sid, []).append(e)
    for sid, eps in by_session.items():
        plans = _plans(store, sid)
        used: dict[str, int] = {}
        for e in eps:
            if e.first_event < 0:
                continue
            events = list(store.events(EventQuery(session=sid, after_id=e.first_event - 1,
                                                  before_id=e.last_event + 1)))
            recorded = plans.get(e.task, [])
            k = used.get(e.task, 0)
            used[e.task] = k + 1
            ep = replay_episode(scenario, e, events, worker_config=worker_config,
                                learned=learned, recorded_plan=recorded[k] if k < len(
                                    recorded) else ())
            if ep.diverged:
                stats["episodes_diverged"] = stats.get("episodes_diverged", 0) + 1
                logger.info("episode %s (%s) left out: %s", e.id, e.task, ep.diverged)
                continue
            out.append(ep)
    stats["episodes_replayed"] = len(out)
    return _Read(out, sessions, stats)


def _val_seed(seed: int, fraction: float) -> bool:
    h = int(hashlib.sha256(f"val:{seed}".encode()).hexdigest()[:8], 16)
    return (h % 10_000) < fraction * 10_000


def _key(messages: Sequence[Message], *replies: str) -> str:
    h = hashlib.sha256()
    for m in messages:
        h.update(m.role.value.encode() + b"\0" + m.content.encode() + b"\0")
    for r in replies:
        h.update(r.encode() + b"\1")
    return h.hexdigest()


def _finish(kind: str, scenario: Scenario, records: list[tuple[int, Record]],
            read: _Read, config: DatasetConfig, stats: dict[str, int]) -> Dataset:
    if config.max_examples and len(records) > config.max_examples:
        rng = random.Random(config.seed)
        records = rng.sample(records, config.max_examples)
        stats["capped"] = 1
    train = [r for seed, r in records if not _val_seed(seed, config.val_fraction)]
    val = [r for seed, r in records if _val_seed(seed, config.val_fraction)]
    if not train:
        raise TrainingError(
            f"{scenario.label}: no usable {kind.upper()} examples in the store "
            f"({_describe(read.stats | stats)})")
    lineage = {
        "scenario": scenario.label, "builder": kind, "prompt_version": PROMPT_VERSION,
        "sessions": read.sessions, "episodes": sorted(e.ended.id for e in read.episodes),
        "task_seeds": sorted({e.ended.seed for e in read.episodes}),
        "plans": sorted({e.plan_source for e in read.episodes}),
        "config": config.to_dict(), "created": time.time(),
    }
    return Dataset(kind, scenario.label, train, val, lineage, {**read.stats, **stats,
                                                                "train": len(train),
                                                                "val": len(val)})


def _describe(stats: Mapping[str, int]) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in stats.items()) or "nothing read"


class DatasetBuilder(Protocol):
    """Builds a data set of one scenario from the store."""

    kind: str

    def build(self, store: Store, scenario: Scenario) -> Dataset: ...


def _meta(ep: ReplayedEpisode, d: Decision) -> dict[str, Any]:
    e = ep.ended
    return {"session": e.session, "episode": e.id, "task_seed": e.seed, "tick": d.tick,
            "worker": d.worker, "purpose": d.purpose, "score": e.outcome.value}


class SFTBuilder:
    """Decisions of successful episodes as SFT examples (module docstring)."""

    kind = "sft"

    def __init__(self, config: DatasetConfig | None = None, *,
                 worker_config: LLMWorkerConfig | None = None) -> None:
        self.config = config or DatasetConfig()
        self.worker_config = worker_config

    def _keep(self, ended: EpisodeEnded) -> bool:
        cfg = self.config
        if cfg.success_only and ended.outcome.kind is not OutcomeKind.SUCCESS:
            return False
        return bool(ended.outcome.value >= cfg.min_score)

    def build(self, store: Store, scenario: Scenario) -> Dataset:
        cfg = self.config
        read = read_episodes(store, scenario, cfg, worker_config=self.worker_config,
                             keep=self._keep)
        stats = {"not_offered": 0, "no_progress": 0, "duplicates": 0}
        seen: set[str] = set()
        records: list[tuple[int, Record]] = []
        for ep in read.episodes:
            for d in ep.decisions:
                if d.purpose == "plan" and not cfg.plans:
                    continue
                if not d.offered:
                    stats["not_offered"] += 1
                    continue
                if cfg.progress_only and not d.progress:
                    stats["no_progress"] += 1
                    continue
                key = _key(d.messages, d.reply)
                if cfg.dedup and key in seen:
                    stats["duplicates"] += 1
                    continue
                seen.add(key)
                records.append((ep.ended.seed, SFTExample(d.messages, d.reply, _meta(ep, d))))
        return _finish(self.kind, scenario, records, read, cfg, stats)


class DPOBuilder:
    """Chosen/rejected decisions in the same prompt of a task (module docstring)."""

    kind = "dpo"

    def __init__(self, config: DatasetConfig | None = None, *,
                 worker_config: LLMWorkerConfig | None = None) -> None:
        self.config = config or DatasetConfig()
        self.worker_config = worker_config

    def build(self, store: Store, scenario: Scenario) -> Dataset:
        cfg = self.config
        read = read_episodes(store, scenario, cfg, worker_config=self.worker_config)
        by_task: dict[int, list[ReplayedEpisode]] = {}
        for ep in read.episodes:
            by_task.setdefault(ep.ended.seed, []).append(ep)
        stats = {"tasks_with_both": 0, "duplicates": 0}
        seen: set[str] = set()
        records: list[tuple[int, Record]] = []
        for seed, eps in sorted(by_task.items()):
            good = [e for e in eps if e.ended.outcome.kind is OutcomeKind.SUCCESS
                    and e.ended.outcome.value >= cfg.min_score]
            bad = [e for e in eps if e not in good]
            if not good or not bad:
                continue
            stats["tasks_with_both"] += 1
            pairs = 0
            for r, c, d_r, d_c in _pairs(good, bad, cfg.min_gap):
                key = _key(d_r.messages, d_c.reply, d_r.reply)
                if key in seen:
                    stats["duplicates"] += 1
                    continue
                seen.add(key)
                meta = {"task_seed": seed, "chosen_episode": c.ended.id,
                        "rejected_episode": r.ended.id, "tick": d_r.tick,
                        "worker": d_r.worker, "gap": round(c.ended.outcome.value
                                                           - r.ended.outcome.value, 4)}
                records.append((seed, DPOPair(d_r.messages, d_c.reply, d_r.reply, meta)))
                pairs += 1
                if pairs >= cfg.max_pairs_per_task:
                    break
        return _finish(self.kind, scenario, records, read, cfg, stats)


def _pairs(good: Sequence[ReplayedEpisode], bad: Sequence[ReplayedEpisode], min_gap: float,
           ) -> Iterable[tuple[ReplayedEpisode, ReplayedEpisode, Decision, Decision]]:
    """(rejected episode, chosen episode, rejected decision, chosen decision) in the same
    prompt, the chosen one offered and useful, the two actions different."""
    chosen: dict[str, tuple[ReplayedEpisode, Decision]] = {}
    for ep in sorted(good, key=lambda e: -e.ended.outcome.value):
        for d in ep.decisions:
            if d.purpose == "decide" and d.offered and d.progress:
                chosen.setdefault(_key(d.messages), (ep, d))
    for ep in bad:
        for d in ep.decisions:
            hit = chosen.get(_key(d.messages)) if d.purpose == "decide" else None
            if hit is None or hit[1].reply == d.reply:
                continue
            if hit[0].ended.outcome.value - ep.ended.outcome.value < min_gap:
                continue
            yield ep, hit[0], d, hit[1]
