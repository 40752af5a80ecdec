"""Fine-tuning the feedback classifier: AdamW, linear warmup then decay, early stopping.

The happy path is two lines::

    result = FeedbackTrainer(TrainConfig()).train(splits.train, splits.val)
    result.classifier.save(".swarmlearn/feedback/model")

``mode="full"`` trains the encoder and the head (encoder at ``lr``, head at
``head_lr``); ``mode="frozen"`` keeps the encoder fixed, embeds every text
once and trains only the head, which takes seconds on a slow CPU. After
each epoch the validation macro-F1 is measured; the best epoch's weights
are kept, and training stops after ``patience`` epochs without a better one.
"""

from __future__ import annotations

import enum
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from swarmlearn._config import check_range
from swarmlearn.errors import ConfigError, TrainingError
from swarmlearn.feedback._classifier import FeedbackClassifier
from swarmlearn.feedback._data import BUNDLED_LABELS, Example
from swarmlearn.feedback._encoder import check_encoder, encoder_fingerprint
from swarmlearn.feedback._metrics import fit_temperature, macro_f1
from swarmlearn.feedback._model import (
    Batch,
    EncoderClassifier,
    load_encoder,
    nn,
    tokenize,
    torch,
)

__all__ = ["EpochRecord", "FeedbackTrainer", "TrainConfig", "TrainMode", "TrainProgress",
           "TrainResult", "linear_warmup"]

logger = logging.getLogger(__name__)


class TrainMode(enum.StrEnum):
    FULL = "full"
    FROZEN = "frozen"


@dataclass(frozen=True, kw_only=True, slots=True)
class TrainConfig:
    encoder: str = ""  # an HF encoder directory; "" = the bundled all-MiniLM-L6-v2
    mode: TrainMode = TrainMode.FULL
    epochs: int = 12
    batch_size: int = 16
    lr: float = 8e-5  # the encoder's (full mode)
    head_lr: float = 3e-3
    weight_decay: float = 0.01
    warmup: float = 0.1  # share of the steps spent warming up
    patience: int = 3  # epochs without a better validation macro-F1 before stopping
    max_length: int = 64  # tokens
    dropout: float = 0.1
    seed: int = 0
    threads: int = 0  # torch intra-op threads; 0 leaves torch's setting

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "mode", TrainMode(self.mode))
        except ValueError as exc:
            raise ConfigError(f"mode: expected full or frozen, got {self.mode!r}", field="mode",
                              value=self.mode) from exc
        check_range("epochs", self.epochs, lo=1)
        check_range("batch_size", self.batch_size, lo=1)
        check_range("lr", self.lr, lo=0.0)
        check_range("head_lr", self.head_lr, lo=0.0)
        check_range("weight_decay", self.weight_decay, lo=0.0)
        check_range("warmup", self.warmup, lo=0.0, hi=1.0)
        check_range("patience", self.patience, lo=1)
        check_range("max_length", self.max_length, lo=4)
        check_range("dropout", self.dropout, lo=0.0, hi=0.9)
        check_range("threads", self.threads, lo=0)

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(getattr(self, k)) if k == "mode" else getattr(self, k))
                for k in self.__slots__}


@dataclass(frozen=True, slots=True)
class TrainProgress:
    """Handed to the progress callback after every step and every epoch's validation."""

    epoch: int  # 1-based
    epochs: int
    step: int  # steps done so far, all epochs
    total_steps: int
    loss: float  # this step's training loss
    val_macro_f1: float | None = None  # set after an epoch's validation
    val_loss: float | None = None


@dataclass(frozen=True, slots=True)
class EpochRecord:
    epoch: int
    train_loss: float
    val_loss: float
    val_macro_f1: float
    seconds: float

    def to_dict(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in self.__slots__}


@dataclass(slots=True)
class TrainResult:
    classifier: FeedbackClassifier
    history: list[EpochRecord]
    best_epoch: int
    stopped_early: bool
    step_losses: list[float] = field(default_factory=list)
    seconds: float = 0.0


def linear_warmup(step: int, warmup_steps: int, total_steps: int) -> float:
    """The learning-rate factor at ``step`` (0-based): up linearly over ``warmup_steps``,
    then down linearly to 0 at ``total_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    rest = max(1, total_steps - warmup_steps)
    return max(0.0, (total_steps - step) / rest)


def _label_order(train: Sequence[Example]) -> tuple[str, ...]:
    seen = {e.label for e in train}
    known = [x for x in BUNDLED_LABELS if x in seen]
    return (*known, *sorted(seen - set(known)))


class FeedbackTrainer:
    """Trains a :class:`FeedbackClassifier` from labeled examples (see the module docstring)."""

    def __init__(self, config: TrainConfig | None = None) -> None:
        self.config = config or TrainConfig()

    def train(
        self, train: Sequence[Example], val: Sequence[Example], *,
        progress: Callable[[TrainProgress], None] | None = None,
        stop: threading.Event | None = None,
    ) -> TrainResult:
        cfg = self.config
        if not train or not val:
            raise ConfigError("training needs training and validation examples "
                              f"(got {len(train)} and {len(val)})", field="data")
        labels = _label_order(train)
        extra = sorted({e.label for e in val} - set(labels))
        if extra:
            raise ConfigError(f"validation labels {', '.join(extra)} never occur in training",
                              field="data")
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        encoder_dir = check_encoder(cfg.encoder or None)
        torch.manual_seed(cfg.seed)
        try:
            tokenizer, encoder = load_encoder(encoder_dir)
        except (OSError, ValueError) as exc:
            raise TrainingError(f"cannot load the encoder at {encoder_dir}: {exc}") from exc
        model = EncoderClassifier(encoder, len(labels), dropout=cfg.dropout)
        run = _Run(cfg, model, tokenizer, labels, progress, stop)
        started = time.perf_counter()
        history = run.fit(train, val)
        best = max(history, key=lambda r: (r.val_macro_f1, -r.val_loss))
        meta = {"encoder": {"source": str(encoder_dir),
                            "fingerprint": encoder_fingerprint(encoder_dir),
                            "model_type": str(getattr(encoder.config, "model_type", ""))},
                "train": cfg.to_dict(), "best_epoch": best.epoch,
                "history": [r.to_dict() for r in history]}
        clf = FeedbackClassifier(model, tokenizer, labels, max_length=cfg.max_length, meta=meta,
                                 temperature=run.temperature)
        return TrainResult(clf, history, best.epoch, len(history) < cfg.epochs,
                           run.step_losses, time.perf_counter() - started)


class _Run:
    """One training run's state: the optimizer, the schedule, the best weights so far."""

    def __init__(self, cfg: TrainConfig, model: EncoderClassifier, tokenizer: Any,
                 labels: tuple[str, ...], progress: Callable[[TrainProgress], None] | None,
                 stop: threading.Event | None) -> None:
        self.cfg, self.model, self.tokenizer, self.labels = cfg, model, tokenizer, labels
        self.progress, self.stop = progress, stop
        self.frozen = cfg.mode is TrainMode.FROZEN
        self.index = {x: i for i, x in enumerate(labels)}
        self.step_losses: list[float] = []
        self.loss_fn = nn.CrossEntropyLoss()
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.temperature = 1.0  # set after training, on the validation split

    # -- inputs -------------------------------------------------------------------
    def _targets(self, examples: Sequence[Example]) -> torch.Tensor:
        return torch.tensor([self.index[e.label] for e in examples], dtype=torch.long)

    def _features(self, examples: Sequence[Example]) -> torch.Tensor:
        """Frozen mode: every text's pooled encoder output, computed once."""
        self.model.eval()
        parts = []
        with torch.inference_mode():
            for start in range(0, len(examples), 64):
                texts = [e.text for e in examples[start:start + 64]]
                parts.append(self.model.embed(tokenize(self.tokenizer, texts,
                                                       self.cfg.max_length)))
        return torch.cat(parts).clone()

    def _batches(self, examples: Sequence[Example],
                 features: torch.Tensor | None) -> Iterator[tuple[Batch | torch.Tensor, list[int]]]:
        order = torch.randperm(len(examples), generator=self.generator).tolist()
        for start in range(0, len(order), self.cfg.batch_size):
            idx = order[start:start + self.cfg.batch_size]
            if features is not None:
                yield features[idx], idx
            else:
                texts = [examples[i].text for i in idx]
                yield tokenize(self.tokenizer, texts, self.cfg.max_length), idx

    # -- the loop -----------------------------------------------------------------
    def _optimizer(self, total_steps: int) -> tuple[torch.optim.Optimizer, Any]:
        cfg = self.cfg
        decay: list[nn.Parameter] = []
        no_decay: list[nn.Parameter] = []
        for name, p in self.model.encoder.named_parameters():
            if self.frozen:
                p.requires_grad_(False)
                continue
            (no_decay if p.ndim < 2 or "LayerNorm" in name else decay).append(p)
        groups: list[dict[str, Any]] = [
            {"params": list(self.model.head.parameters()), "lr": cfg.head_lr,
             "weight_decay": cfg.weight_decay}]
        if not self.frozen:
            groups += [{"params": decay, "lr": cfg.lr, "weight_decay": cfg.weight_decay},
                       {"params": no_decay, "lr": cfg.lr, "weight_decay": 0.0}]
        opt = torch.optim.AdamW(groups)
        warmup = max(1, math.ceil(cfg.warmup * total_steps))
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: linear_warmup(s, warmup, total_steps))
        return opt, sched

    def _logits(self, inputs: Batch | torch.Tensor) -> torch.Tensor:
        if isinstance(inputs, torch.Tensor):
            return self.model.classify(inputs)
        logits: torch.Tensor = self.model(inputs)
        return logits

    def _val_logits(self, val: Sequence[Example], features: torch.Tensor | None) -> torch.Tensor:
        self.model.eval()
        with torch.inference_mode():
            if features is not None:
                return self.model.classify(features)
            return torch.cat([self.model(tokenize(
                self.tokenizer, [e.text for e in val[s:s + 64]], self.cfg.max_length))
                for s in range(0, len(val), 64)])

    def _validate(self, val: Sequence[Example],
                  features: torch.Tensor | None) -> tuple[float, float]:
        targets = self._targets(val)
        logits = self._val_logits(val, features)
        loss = float(self.loss_fn(logits, targets))
        pred = logits.argmax(dim=1).numpy().astype(np.int64)
        return loss, macro_f1(targets.numpy().astype(np.int64), pred, len(self.labels))

    def _keep(self) -> dict[str, torch.Tensor]:
        module: nn.Module = self.model.head if self.frozen else self.model
        return {k: v.detach().clone() for k, v in module.state_dict().items()}

    def fit(self, train: Sequence[Example], val: Sequence[Example]) -> list[EpochRecord]:
        cfg = self.cfg
        train_feats = self._features(train) if self.frozen else None
        val_feats = self._features(val) if self.frozen else None
        targets = self._targets(train)
        per_epoch = math.ceil(len(train) / cfg.batch_size)
        total = per_epoch * cfg.epochs
        opt, sched = self._optimizer(total)
        history: list[EpochRecord] = []
        best_key: tuple[float, float] | None = None
        best_state: dict[str, torch.Tensor] = {}
        step, since_best = 0, 0
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            self.model.train()
            if self.frozen:
                self.model.encoder.eval()
            losses = []
            for inputs, idx in self._batches(train, train_feats):
                loss = self.loss_fn(self._logits(inputs), targets[idx])
                if not torch.isfinite(loss):
                    raise TrainingError(f"epoch {epoch}, step {step + 1}: the loss is {loss}; "
                                        "lower the learning rate")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                opt.step()
                sched.step()
                step += 1
                losses.append(loss.item())
                self.step_losses.append(losses[-1])
                if self.progress is not None:
                    self.progress(TrainProgress(epoch, cfg.epochs, step, total, losses[-1]))
                if self.stop is not None and self.stop.is_set():
                    break
            val_loss, val_f1 = self._validate(val, val_feats)
            history.append(EpochRecord(epoch, float(np.mean(losses)), val_loss, val_f1,
                                       time.perf_counter() - t0))
            logger.info("epoch %d: train loss %.4f, val loss %.4f, val macro-F1 %.3f",
                        epoch, history[-1].train_loss, val_loss, val_f1)
            if self.progress is not None:
                self.progress(TrainProgress(epoch, cfg.epochs, step, total, losses[-1],
                                            val_f1, val_loss))
            key = (val_f1, -val_loss)
            if best_key is None or key > best_key:
                best_key, best_state, since_best = key, self._keep(), 0
            else:
                since_best += 1
            if since_best >= cfg.patience or (self.stop is not None and self.stop.is_set()):
                break
        (self.model.head if self.frozen else self.model).load_state_dict(best_state)
        self.model.eval()
        self.temperature = fit_temperature(self._val_logits(val, val_feats).numpy(),
                                           self._targets(val).numpy())
        return history
