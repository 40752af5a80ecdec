"""A training run on disk: ``<root>/<name>/<version>/<timestamp>/``.

Layout::

    metadata.json            counts (steps, episodes, checkpoints), status, best score
    config.json              the full configuration the run was started with
    train_episodes.jsonl     one EpisodeRecord per line
    eval_episodes.jsonl      one EpisodeRecord per line (greedy evaluation episodes)
    checkpoints/step_N/      tensors.safetensors + state.json (the last K are kept)
    checkpoints/latest.json  {"step": N, "dir": "step_N"}
    checkpoints/best/        the best-scoring checkpoint (kept whatever K is)
    checkpoints/best.json    {"score": s, "step": N}

Every write goes through here and every failure raises
:class:`~swarmlearn.errors.TrainingError`; JSON files are replaced
atomically, checkpoint directories are renamed into place.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from swarmlearn.errors import ArtifactError, ConfigError, TrainingError
from swarmlearn.rl._checkpoint import read_checkpoint, write_checkpoint, write_json_atomic
from swarmlearn.rl._protocols import StateTree
from swarmlearn.rl._records import EpisodeRecord

__all__ = ["EpisodeLog", "RunDir", "RunMetadata"]

logger = logging.getLogger(__name__)

RUN_FORMAT = 1
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")
_STEP_DIR = re.compile(r"^step_(\d+)$")


class EpisodeLog(enum.StrEnum):
    TRAIN = "train"
    EVAL = "eval"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunMetadata:
    """What ``metadata.json`` holds; the counts are those of the files beside it."""

    name: str
    version: str
    created: str
    updated: str
    status: str = "running"
    steps: int = 0
    train_episodes: int = 0
    eval_episodes: int = 0
    checkpoints: tuple[int, ...] = ()
    best_score: float | None = None
    best_step: int | None = None
    info: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": RUN_FORMAT,
            "name": self.name,
            "version": self.version,
            "created": self.created,
            "updated": self.updated,
            "status": self.status,
            "steps": self.steps,
            "train_episodes": self.train_episodes,
            "eval_episodes": self.eval_episodes,
            "checkpoints": list(self.checkpoints),
            "best_score": self.best_score,
            "best_step": self.best_step,
            "info": dict(self.info),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunMetadata:
        if data.get("format_version") != RUN_FORMAT:
            raise ArtifactError(
                f"run metadata format {data.get('format_version')!r} is not {RUN_FORMAT}"
            )
        try:
            return cls(
                name=str(data["name"]),
                version=str(data["version"]),
                created=str(data["created"]),
                updated=str(data["updated"]),
                status=str(data["status"]),
                steps=int(data["steps"]),
                train_episodes=int(data["train_episodes"]),
                eval_episodes=int(data["eval_episodes"]),
                checkpoints=tuple(int(s) for s in data["checkpoints"]),
                best_score=None if data["best_score"] is None else float(data["best_score"]),
                best_step=None if data["best_step"] is None else int(data["best_step"]),
                info=dict(data.get("info", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"malformed run metadata: {exc!r}") from exc


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _check_name(field_name: str, value: str) -> None:
    if not _SAFE_NAME.match(value) or value in {".", ".."}:
        raise ConfigError(
            f"{field_name}: {value!r} is not a safe directory name "
            "(letters, digits, '.', '_', '-'; not starting with a dot)",
            field=field_name,
            value=value,
        )


class RunDir:
    """One run directory; create with :meth:`create`, reopen with :meth:`open`."""

    def __init__(self, path: Path, metadata: RunMetadata) -> None:
        self.path = path
        self.metadata = metadata
        self._logs: dict[EpisodeLog, IO[str]] = {}

    # ---- creating and opening -----------------------------------------------------------

    @classmethod
    def create(
        cls,
        root: Path | str,
        name: str,
        version: str = "v1",
        *,
        config: Mapping[str, Any],
        info: Mapping[str, Any] | None = None,
    ) -> RunDir:
        """Make ``root/name/version/<UTC timestamp>/`` with config.json and metadata.json."""
        _check_name("name", name)
        _check_name("version", version)
        parent = Path(root) / name / version
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        try:
            parent.mkdir(parents=True, exist_ok=True)
            path = parent / stamp
            suffix = 1
            while True:
                try:
                    path.mkdir()
                    break
                except FileExistsError:
                    suffix += 1
                    path = parent / f"{stamp}-{suffix}"
            (path / "checkpoints").mkdir()
        except OSError as exc:
            raise TrainingError(f"cannot create run directory under {parent}: {exc}") from exc
        now = _now()
        run = cls(
            path,
            RunMetadata(
                name=name, version=version, created=now, updated=now, info=dict(info or {})
            ),
        )
        write_json_atomic(path / "config.json", dict(config))
        run._write_metadata()
        logger.info("created run directory %s", path)
        return run

    @classmethod
    def open(cls, path: Path | str) -> RunDir:
        """Open an existing run directory; ArtifactError when it is not one."""
        path = Path(path)
        try:
            with open(path / "metadata.json", encoding="utf-8") as fh:
                data = json.load(fh)
        except FileNotFoundError as exc:
            raise ArtifactError(f"{path} is not a run directory (no metadata.json)") from exc
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"cannot read {path / 'metadata.json'}: {exc}") from exc
        return cls(path, RunMetadata.from_dict(data))

    def read_config(self) -> dict[str, Any]:
        try:
            with open(self.path / "config.json", encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"cannot read {self.path / 'config.json'}: {exc}") from exc
        if not isinstance(data, dict):
            raise ArtifactError(f"{self.path / 'config.json'} is not a JSON object")
        return data

    # ---- metadata -----------------------------------------------------------------------

    def update(self, **changes: Any) -> None:
        """Change metadata fields and rewrite metadata.json."""
        self.metadata = replace(self.metadata, updated=_now(), **changes)
        self._write_metadata()

    def _write_metadata(self) -> None:
        write_json_atomic(self.path / "metadata.json", self.metadata.to_dict())

    # ---- episode logs -------------------------------------------------------------------

    def log_path(self, kind: EpisodeLog) -> Path:
        return self.path / f"{kind.value}_episodes.jsonl"

    def append_episode(self, kind: EpisodeLog, record: EpisodeRecord) -> None:
        """Append one line to the train or eval log (flushed; errors raise TrainingError)."""
        path = self.log_path(kind)
        try:
            fh = self._logs.get(kind)
            if fh is None:
                fh = self._logs[kind] = open(path, "a", encoding="utf-8")
            fh.write(json.dumps(record.to_dict(), allow_nan=False) + "\n")
            fh.flush()
        except (OSError, ValueError) as exc:
            raise TrainingError(f"cannot write {path}: {exc}") from exc

    def read_episodes(self, kind: EpisodeLog) -> list[EpisodeRecord]:
        path = self.log_path(kind)
        if not path.exists():
            return []
        records = []
        try:
            with open(path, encoding="utf-8") as fh:
                for n, line in enumerate(fh, 1):
                    if line.strip():
                        try:
                            records.append(EpisodeRecord.from_dict(json.loads(line)))
                        except ValueError as exc:
                            raise ArtifactError(f"{path}:{n}: {exc}") from exc
        except OSError as exc:
            raise ArtifactError(f"cannot read {path}: {exc}") from exc
        return records

    def truncate_episodes(self, kind: EpisodeLog, count: int) -> None:
        """Keep only the first ``count`` records (used when resuming from a checkpoint)."""
        records = self.read_episodes(kind)
        if len(records) <= count:
            return
        self._close_log(kind)
        path = self.log_path(kind)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                for record in records[:count]:
                    fh.write(json.dumps(record.to_dict(), allow_nan=False) + "\n")
            os.replace(tmp, path)
        except OSError as exc:
            raise TrainingError(f"cannot rewrite {path}: {exc}") from exc

    def _close_log(self, kind: EpisodeLog) -> None:
        fh = self._logs.pop(kind, None)
        if fh is not None:
            try:
                fh.close()
            except OSError as exc:
                raise TrainingError(f"cannot close {self.log_path(kind)}: {exc}") from exc

    def close(self) -> None:
        """Close the episode logs."""
        for kind in list(self._logs):
            self._close_log(kind)

    # ---- checkpoints --------------------------------------------------------------------

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    def checkpoint_steps(self) -> list[int]:
        """Steps of the ``step_N`` checkpoints on disk, ascending."""
        if not self.checkpoints_dir.is_dir():
            return []
        steps = [
            int(m.group(1))
            for p in self.checkpoints_dir.iterdir()
            if p.is_dir() and (m := _STEP_DIR.match(p.name))
        ]
        return sorted(steps)

    def save_checkpoint(self, step: int, state: StateTree, *, keep: int) -> Path:
        """Write ``checkpoints/step_N``, point latest.json at it, keep the newest ``keep``."""
        path = self.checkpoints_dir / f"step_{step}"
        write_checkpoint(path, state)
        write_json_atomic(self.checkpoints_dir / "latest.json", {"step": step, "dir": path.name})
        for old in self.checkpoint_steps()[:-keep]:
            try:
                shutil.rmtree(self.checkpoints_dir / f"step_{old}")
            except OSError as exc:
                raise TrainingError(f"cannot remove old checkpoint step_{old}: {exc}") from exc
        self.update(checkpoints=tuple(self.checkpoint_steps()))
        return path

    def latest_step(self) -> int | None:
        pointer = self.checkpoints_dir / "latest.json"
        if not pointer.exists():
            return None
        try:
            with open(pointer, encoding="utf-8") as fh:
                return int(json.load(fh)["step"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ArtifactError(f"cannot read {pointer}: {exc}") from exc

    def load_checkpoint(self, step: int | None = None) -> StateTree:
        """The checkpoint at ``step`` (default: latest); ArtifactError when there is none."""
        if step is None:
            step = self.latest_step()
            if step is None:
                raise ArtifactError(f"run {self.path} has no checkpoint yet")
        return read_checkpoint(self.checkpoints_dir / f"step_{step}")

    def drop_checkpoints_after(self, step: int) -> None:
        """Remove ``step_N`` checkpoints with ``N > step`` (left by a run resumed earlier)."""
        for later in (s for s in self.checkpoint_steps() if s > step):
            try:
                shutil.rmtree(self.checkpoints_dir / f"step_{later}")
            except OSError as exc:
                raise TrainingError(f"cannot remove checkpoint step_{later}: {exc}") from exc

    # ---- best ---------------------------------------------------------------------------

    def best(self) -> tuple[float, int] | None:
        """``(score, step)`` of the best checkpoint saved so far, from disk."""
        pointer = self.checkpoints_dir / "best.json"
        if not pointer.exists():
            return None
        try:
            with open(pointer, encoding="utf-8") as fh:
                data = json.load(fh)
            return float(data["score"]), int(data["step"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ArtifactError(f"cannot read {pointer}: {exc}") from exc

    def save_best(self, score: float, step: int, state: StateTree) -> None:
        write_checkpoint(self.checkpoints_dir / "best", state)
        write_json_atomic(self.checkpoints_dir / "best.json", {"score": score, "step": step})
        self.update(best_score=score, best_step=step)

    def load_best(self) -> StateTree:
        if self.best() is None:
            raise ArtifactError(f"run {self.path} has no best checkpoint yet")
        return read_checkpoint(self.checkpoints_dir / "best")
