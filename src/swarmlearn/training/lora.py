"""LoRA training: :class:`LoraTrainConfig` beside :class:`LoraTrainer`.

The happy path::

    trainer = LoraTrainer(LoraTrainConfig(rank=8, max_seconds=300))
    result = trainer.train(base="model.gguf", train="train.jsonl", val="val.jsonl",
                           output="adapters/run1")
    result.metrics["tokens_per_s"], result.output / "adapter_model.safetensors"

Training runs in a child process (``spawn``): the caller stays responsive and
gets all the memory back when it ends. The child loads the base model (a GGUF
file through ``transformers``' ``gguf_file=``, or an HF directory), wraps it
in a PEFT LoRA, trains with the plain loop of :mod:`swarmlearn.training._loop`
(loss on reply tokens only), and reports every step (loss, tokens/s, ETA) to
``on_progress``. It stops cleanly at ``max_steps`` or ``max_seconds`` and
writes ``adapter_model.safetensors`` + ``adapter_config.json`` (PEFT's format)
and ``metrics.json`` into a hidden staging directory, which becomes
``output`` only when everything is written: a training that is killed leaves
no adapter behind, only a staging directory that the next run removes.

Why a plain loop rather than TRL's ``SFTTrainer``: on this 2-core CPU it
trains faster on the same data, model and LoRA config
(``benchmarks/lora_loop.py`` prints both in one run), mainly because it
applies the output layer to the reply tokens only and pads per length group.
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import swarmlearn
from swarmlearn._config import check_range
from swarmlearn._proc import inherit_priority
from swarmlearn.errors import ConfigError, TrainingError
from swarmlearn.training._base import BaseModel, check_base

__all__ = ["DEFAULT_TARGETS", "LoraTrainConfig", "LoraTrainer", "Objective", "TrainProgress",
           "TrainResult"]

logger = logging.getLogger(__name__)

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")
_KNOWN_TARGETS = frozenset({*DEFAULT_TARGETS, "gate_proj", "up_proj", "down_proj"})
STAGING_PREFIX = ".staging-"


class Objective(StrEnum):
    """What an adapter is trained on: SFT examples or DPO pairs (``data.SFTBuilder`` /
    ``data.DPOBuilder`` make each)."""

    SFT = "sft"
    DPO = "dpo"


@dataclass(frozen=True, kw_only=True, slots=True)
class LoraTrainConfig:
    """How to train one adapter. ``max_steps`` / ``max_seconds`` 0 mean no limit."""

    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: tuple[str, ...] = DEFAULT_TARGETS
    #: adapt only these layers (empty: all); the top layers alone train ~2x faster (the
    #: backward pass stops at the lowest adapted layer)
    layers: tuple[int, ...] = ()
    objective: Objective = Objective.SFT
    epochs: int = 1
    batch_size: int = 4
    grad_accum: int = 1
    learning_rate: float = 5e-4
    weight_decay: float = 0.0
    warmup_steps: int = 5
    max_seq_len: int = 1024
    max_steps: int = 0
    #: the budget of the training steps and the two validation passes around them (the
    #: base model's load and the tokenizing come before it)
    max_seconds: float = 0.0
    dpo_beta: float = 0.1
    #: start from this PEFT adapter directory (empty: a new adapter, ``lora_B`` = 0): its
    #: weights, and its rank, alpha, targets and layers, which replace these
    #: (``_init_adapter``); the lifecycle kind also takes a version (3, v3, champion)
    init_adapter: str = ""
    #: validation loss over at most this many batches: each pass is a forward of every
    #: example (16 batches of 4 at ~450 tokens took ~100 s on 2 loaded threads)
    val_batches: int = 8
    threads: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        check_range("rank", self.rank, lo=1, hi=256)
        check_range("alpha", self.alpha, lo=0.0, lo_open=True)
        check_range("dropout", self.dropout, lo=0.0, hi=0.9)
        check_range("epochs", self.epochs, lo=1)
        check_range("batch_size", self.batch_size, lo=1)
        check_range("grad_accum", self.grad_accum, lo=1)
        check_range("learning_rate", self.learning_rate, lo=0.0, hi=1.0, lo_open=True)
        check_range("weight_decay", self.weight_decay, lo=0.0)
        check_range("warmup_steps", self.warmup_steps, lo=0)
        check_range("max_seq_len", self.max_seq_len, lo=16)
        check_range("max_steps", self.max_steps, lo=0)
        check_range("max_seconds", self.max_seconds, lo=0.0)
        check_range("dpo_beta", self.dpo_beta, lo=0.0, lo_open=True)
        check_range("val_batches", self.val_batches, lo=0)
        check_range("threads", self.threads, lo=1, hi=256)
        if any(i < 0 for i in self.layers) or len(set(self.layers)) != len(self.layers):
            raise ConfigError(f"layers: expected distinct layer numbers >= 0, got "
                              f"{list(self.layers)}", field="layers", value=list(self.layers))
        try:
            object.__setattr__(self, "objective", Objective(self.objective))
        except ValueError as exc:
            raise ConfigError(f"objective: expected 'sft' or 'dpo', got {self.objective!r}",
                              field="objective", value=self.objective) from exc
        unknown = [m for m in self.target_modules if m not in _KNOWN_TARGETS]
        if not self.target_modules or unknown:
            raise ConfigError(f"target_modules: expected some of {sorted(_KNOWN_TARGETS)}, "
                              f"got {list(self.target_modules)}", field="target_modules",
                              value=list(self.target_modules))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["target_modules"] = list(self.target_modules)
        d["layers"] = list(self.layers)
        d["objective"] = str(self.objective)
        return d


@dataclass(frozen=True, slots=True)
class TrainProgress:
    step: int
    steps: int
    loss: float
    tokens_per_s: float
    elapsed: float
    eta: float  # seconds left: of the planned steps, or of the time budget if it ends first
    lr: float = 0.0  # the learning rate of this step


@dataclass(frozen=True, slots=True)
class TrainResult:
    output: Path  # the adapter directory (PEFT format + metrics.json)
    metrics: Mapping[str, Any]
    config: LoraTrainConfig  # as trained: with a starting adapter, its shape
    base: Mapping[str, Any] = field(default_factory=dict)


def clean_staging(parent: Path) -> int:
    """Remove staging directories left by trainings that were killed; how many."""
    removed = 0
    if not parent.is_dir():
        return 0
    for p in parent.iterdir():
        if p.is_dir() and p.name.startswith(STAGING_PREFIX):
            pid = p.name.removeprefix(STAGING_PREFIX).split("-")[0]
            if pid.isdigit() and _alive(int(pid)):
                continue
            shutil.rmtree(p, ignore_errors=True)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LoraTrainer:
    """Trains one LoRA adapter in a child process (module docstring)."""

    def __init__(self, config: LoraTrainConfig | None = None, *,
                 base_cache: Path | None = None) -> None:
        self.config = config or LoraTrainConfig()
        self.base_cache = base_cache  # where a GGUF base is kept dequantized (load in seconds)

    def train(self, *, base: Path | str, train: Path | str, output: Path | str,
              val: Path | str | None = None,
              on_progress: Callable[[TrainProgress], None] | None = None,
              timeout_s: float | None = None) -> TrainResult:
        """Train on ``train`` (JSONL), write the adapter to ``output`` (must not exist)."""
        from swarmlearn.training._base import require_lora

        require_lora()
        model = check_base(base)
        cfg = self.config
        if cfg.init_adapter:
            from swarmlearn.training._init_adapter import adopt, check_init

            cfg = adopt(cfg, check_init(cfg.init_adapter, model))
        train_p = _data_file(train, "train", cfg.objective)
        val_p = _data_file(val, "val", cfg.objective) if val is not None else None
        out = Path(output).expanduser()
        if out.exists():
            raise ConfigError(f"output: {str(out)!r} exists already", field="output",
                              value=str(out))
        out.parent.mkdir(parents=True, exist_ok=True)
        clean_staging(out.parent)
        staging = out.parent / f"{STAGING_PREFIX}{os.getpid()}-{out.name}"
        staging.mkdir()
        try:
            metrics = self._run(cfg, model, train_p, val_p, staging, on_progress, timeout_s)
            staging.rename(out)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return TrainResult(out, metrics, cfg, model.to_dict())

    def _run(self, cfg: LoraTrainConfig, base: BaseModel, train: Path, val: Path | None,
             staging: Path, on_progress: Callable[[TrainProgress], None] | None,
             timeout_s: float | None) -> dict[str, Any]:
        spec = staging / "spec.json"
        spec.write_text(json.dumps({"config": cfg.to_dict(), "base": str(base.path),
                                    "train": str(train), "val": str(val) if val else None,
                                    "output": str(staging),
                                    "cache": str(self.base_cache) if self.base_cache else None}),
                        encoding="utf-8")
        limit = timeout_s if timeout_s is not None else (
            cfg.max_seconds * 2 + 600 if cfg.max_seconds else math.inf)
        deadline = time.monotonic() + limit
        env = dict(os.environ)
        package_root = str(Path(swarmlearn.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH"))
                                            if p)
        with (staging / "train.log").open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "swarmlearn.training._train_child", str(spec)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, env=env,
                start_new_session=True)
        inherit_priority(proc.pid)
        try:
            return self._wait(proc, deadline, on_progress, staging / "train.log")
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()

    def _wait(self, proc: subprocess.Popen[bytes], deadline: float,
              on_progress: Callable[[TrainProgress], None] | None, log: Path,
              ) -> dict[str, Any]:
        assert proc.stdout is not None
        lines = _lines(proc.stdout)
        while True:
            if time.monotonic() > deadline:
                raise TrainingError("the trainer ran out of time")
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                proc.wait()
                raise TrainingError(f"the trainer died (exit code {proc.returncode}; "
                                    f"log: {log})")
            try:
                kind, data = json.loads(line)
            except ValueError:
                continue  # not one of ours (a library printing)
            if kind == "progress" and on_progress is not None:
                on_progress(TrainProgress(data["step"], data["steps"], data["loss"],
                                          data["tokens_per_s"], data["elapsed"], data["eta"],
                                          data.get("lr", 0.0)))
            elif kind == "start":
                logger.info("training on %d examples (%d too long, left out); base loaded "
                            "in %.1f s", data["examples"], data["dropped"], data["load_s"])
            elif kind == "ok":
                metrics: dict[str, Any] = data
                return metrics
            elif kind == "error":
                raise TrainingError(f"training failed: {data}")


def _lines(stream: Any) -> queue.Queue[str | None]:
    """The lines of a child's stdout, read by a thread (None at the end)."""
    q: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for raw in stream:
            q.put(raw.decode("utf-8", "replace").strip())
        q.put(None)

    threading.Thread(target=pump, name="lora-train-reader", daemon=True).start()
    return q


def _data_file(path: Path | str, field: str, objective: str) -> Path:
    """A data set file whose every record is one of ``objective``'s (checked here, before
    the child loads a model: a DPO file given to an SFT run is one line naming its line)."""
    from swarmlearn.training.data import load_jsonl

    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"{field}: no such data set file {str(p)!r}", field=field,
                          value=str(p))
    if p.stat().st_size == 0:
        raise TrainingError(f"{field}: the data set {p} is empty (no usable episodes?)")
    load_jsonl(p, objective)
    return p
