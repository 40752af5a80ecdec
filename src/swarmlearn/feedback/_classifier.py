"""The trained classifier: prediction, evaluation, and its checkpoint directory.

A checkpoint is a directory, never a pickle::

    feedback.json        format_version, version, labels (index order), max_length,
                         encoder source and fingerprint, training config, data, history, metrics
    model.safetensors    every weight (encoder.* and head.*)
    encoder/             the encoder's config.json and tokenizer files

``version`` is ``sha256(model.safetensors + labels + temperature)[:12]``: two
checkpoints with the same version classify alike, confidences included. It is what
a feedback event records.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from swarmlearn.errors import ArtifactError, ConfigError
from swarmlearn.feedback._data import Example
from swarmlearn.feedback._encoder import CONFIG_FILE, check_checkpoint_target
from swarmlearn.feedback._metrics import Evaluation, evaluate_predictions
from swarmlearn.feedback._model import EncoderClassifier, load_encoder, nn, tokenize, torch
from swarmlearn.feedback._types import Prediction

__all__ = ["FORMAT_VERSION", "FeedbackClassifier"]

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
INT8_SUFFIX = "+int8"
#: texts per forward pass: with short texts (about 13 tokens) a batch of 32 was as fast as
#: 64 or 128 on this 2-core CPU, and smaller batches pad less
BATCH_SIZE = 32


def _version(weights: Path, labels: Sequence[str], temperature: float) -> str:
    h = hashlib.sha256()
    with weights.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    h.update(json.dumps([list(labels), temperature]).encode())
    return h.hexdigest()[:12]


class FeedbackClassifier:
    """Text → (label, confidence). Build one with :class:`FeedbackTrainer` or :meth:`load`."""

    def __init__(self, model: EncoderClassifier, tokenizer: Any, labels: Sequence[str], *,
                 max_length: int = 64, meta: Mapping[str, Any] | None = None,
                 version: str = "unsaved", temperature: float = 1.0) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.labels = tuple(labels)
        self.max_length = max_length
        self.meta: dict[str, Any] = dict(meta or {})
        self.version = version
        self.temperature = temperature  # softmax(logits / T), T fitted on validation

    @property
    def quantized(self) -> bool:
        """Whether the Linear layers run in int8 (see :meth:`to_int8`)."""
        return self.version.endswith(INT8_SUFFIX)

    def to_int8(self) -> FeedbackClassifier:
        """A copy whose Linear layers (encoder and head) are dynamically quantized to int8.

        Weights are stored as int8, activations quantized per batch on the fly
        (``torch.ao.quantization.quantize_dynamic``): prediction is about 2-3× as
        fast on a CPU, for a measured cost in macro-F1 (docs/feedback.md). For
        prediction only: it is never saved, and its :attr:`version` is the
        checkpoint's with ``+int8`` (it can classify a few texts differently).
        """
        if self.quantized:
            return self
        import copy
        import warnings

        with warnings.catch_warnings():  # torch.ao's eager quantization warns it is deprecated
            warnings.simplefilter("ignore", category=DeprecationWarning)
            warnings.simplefilter("ignore", category=UserWarning)
            model = torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
                copy.deepcopy(self.model).eval(), {nn.Linear}, dtype=torch.qint8)
        return FeedbackClassifier(model, self.tokenizer, self.labels, max_length=self.max_length,
                                  meta=self.meta, version=self.version + INT8_SUFFIX,
                                  temperature=self.temperature)

    # -- prediction ---------------------------------------------------------------
    def probabilities(self, texts: Sequence[str], *,
                      batch_size: int = BATCH_SIZE) -> NDArray[np.float32]:
        """Softmax over the labels, one row per text.

        The texts are sorted by length and batched in that order, each batch
        padded only to its own longest text (dynamic padding), so short texts
        are never padded to a long one's length; the rows come back in the
        order given.
        """
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        self.model.eval()
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                batch = tokenize(self.tokenizer, [texts[i] for i in idx], self.max_length)
                out[idx] = torch.softmax(self.model(batch) / self.temperature, dim=-1).numpy()
        return out

    def predict(self, texts: Sequence[str], *, batch_size: int = BATCH_SIZE) -> list[Prediction]:
        probs = self.probabilities(texts, batch_size=batch_size)
        best = probs.argmax(axis=1)
        return [Prediction(self.labels[int(k)], float(p[k]), tuple(float(x) for x in p))
                for k, p in zip(best, probs, strict=True)]

    def evaluate(self, examples: Sequence[Example], *, rounds: int = 2000,
                 seed: int = 0) -> Evaluation:
        """Accuracy, macro-F1 (bootstrap intervals) and the confusion matrix on ``examples``."""
        index = {x: i for i, x in enumerate(self.labels)}
        unknown = sorted({e.label for e in examples} - set(index))
        if unknown:
            raise ConfigError(f"labels {', '.join(unknown)} are not among the classifier's "
                              f"({', '.join(self.labels)})", field="label")
        probs = self.probabilities([e.text for e in examples])
        return evaluate_predictions(self.labels, [index[e.label] for e in examples],
                                    [int(k) for k in probs.argmax(axis=1)],
                                    rounds=rounds, seed=seed)

    # -- checkpoints --------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the checkpoint directory (whole or not at all) and set :attr:`version`."""
        from safetensors.torch import save_file

        if self.quantized:
            raise ConfigError("an int8 classifier is for prediction only: save the checkpoint "
                              "it came from", field="model")
        target = check_checkpoint_target(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            (tmp / "encoder").mkdir(parents=True)
            state = {k: v.detach().contiguous() for k, v in self.model.state_dict().items()}
            save_file(state, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
            encoder: Any = self.model.encoder
            encoder.config.save_pretrained(str(tmp / "encoder"))
            self.tokenizer.save_pretrained(str(tmp / "encoder"))
            version = _version(tmp / WEIGHTS_FILE, self.labels, self.temperature)
            config = {**self.meta, "format_version": FORMAT_VERSION, "version": version,
                      "labels": list(self.labels), "max_length": self.max_length,
                      "pooling": "mean", "temperature": self.temperature,
                      "created": time.time()}
            (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2, default=str) + "\n",
                                           encoding="utf-8")
            old = target.parent / f".{target.name}.old-{os.getpid()}"
            if target.exists():
                target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        except OSError as exc:
            raise ArtifactError(f"{target}: cannot write the checkpoint: {exc}") from exc
        finally:
            with contextlib.suppress(OSError):
                shutil.rmtree(tmp, ignore_errors=True)
        self.version = version
        self.meta = {k: v for k, v in config.items() if k not in ("labels", "max_length")}
        return target

    @classmethod
    def load(cls, path: str | Path) -> FeedbackClassifier:
        """Read a checkpoint directory; ArtifactError names what is wrong with it."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        p = Path(path)
        cfg_file = p / CONFIG_FILE
        if not cfg_file.is_file():
            raise ConfigError(f"{p}: no feedback classifier there ({CONFIG_FILE} missing); "
                              "train one with `swarmlearn feedback train`", field="model",
                              value=str(p))
        try:
            config = json.loads(cfg_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ArtifactError(f"{cfg_file}: not a readable JSON config: {exc}") from exc
        if not isinstance(config, dict) or config.get("format_version") != FORMAT_VERSION:
            got = config.get("format_version") if isinstance(config, dict) else None
            raise ArtifactError(f"{cfg_file}: format_version {got!r}, this swarmlearn reads "
                                f"{FORMAT_VERSION}")
        labels = config.get("labels")
        if (not isinstance(labels, list) or not labels
                or not all(isinstance(x, str) and x for x in labels)):
            raise ArtifactError(f"{cfg_file}: 'labels' must be a non-empty list of names")
        tokenizer, encoder = load_encoder(p / "encoder", weights=False)
        model = EncoderClassifier(encoder, len(labels))
        try:
            state = load_file(str(p / WEIGHTS_FILE))
            model.load_state_dict(state, strict=True)
        except (OSError, SafetensorError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ArtifactError(f"{p / WEIGHTS_FILE}: cannot load the weights: {first}") from exc
        meta = {k: v for k, v in config.items() if k not in ("labels", "max_length")}
        temperature = config.get("temperature", 1.0)
        if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not (
                temperature > 0):
            raise ArtifactError(f"{cfg_file}: 'temperature' must be a positive number, got "
                                f"{temperature!r}")
        return cls(model, tokenizer, labels, max_length=int(config.get("max_length", 64)),
                   meta=meta, version=str(config.get("version", "unknown")),
                   temperature=float(temperature))
