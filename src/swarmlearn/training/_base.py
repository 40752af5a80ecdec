"""The base model a LoRA adapter is trained on: a GGUF file or a Hugging Face directory.

The served model is a GGUF file; ``transformers`` loads it (``gguf_file=``),
dequantized to float32 and with llama.cpp's q/k row order undone, so the
adapter is trained on the very weights llama.cpp serves. Any HF model
directory (``config.json`` + weights) works too. What is not a model is a
one-line :class:`~swarmlearn.errors.ConfigError` before torch is imported.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarmlearn._extras import require
from swarmlearn.errors import ConfigError, TrainingError

__all__ = ["BaseModel", "check_base", "load_base", "require_lora"]

_GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True, slots=True)
class BaseModel:
    """Where a base model is: a GGUF file (``gguf`` set) or an HF directory."""

    path: Path
    gguf: bool

    @property
    def label(self) -> str:
        return self.path.name

    def fingerprint(self) -> str:
        """sha256 of the GGUF file's first MiB and size, or of the HF config (cheap, stable)."""
        h = hashlib.sha256()
        if self.gguf:
            with self.path.open("rb") as fh:
                h.update(fh.read(1 << 20))
            h.update(str(self.path.stat().st_size).encode())
        else:
            h.update((self.path / "config.json").read_bytes())
        return h.hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "gguf": self.gguf, "fingerprint": self.fingerprint()}


def check_base(path: Path | str, *, field: str = "base") -> BaseModel:
    """``path`` as a :class:`BaseModel`, or a one-line ConfigError saying why it is not one."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ConfigError(f"{field}: no such file or directory {str(p)!r}", field=field,
                          value=str(p))
    if p.is_dir():
        config = p / "config.json"
        if not config.is_file():
            raise ConfigError(f"{field}: {str(p)!r} is not a model directory (no config.json)",
                              field=field, value=str(p))
        try:
            data = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{field}: {config} is not a model config ({exc})", field=field,
                              value=str(p)) from exc
        if not isinstance(data, dict) or "model_type" not in data:
            raise ConfigError(f"{field}: {config} has no model_type", field=field,
                              value=str(p))
        return BaseModel(p.resolve(), gguf=False)
    try:
        with p.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise ConfigError(f"{field}: cannot read {str(p)!r}: {exc.strerror}", field=field,
                          value=str(p)) from exc
    if magic != _GGUF_MAGIC:
        raise ConfigError(f"{field}: {str(p)!r} is not a model (neither a GGUF file nor a "
                          f"directory with config.json)", field=field, value=str(p))
    return BaseModel(p.resolve(), gguf=True)


def require_lora() -> None:
    """Import the ``lora`` extra's packages, or MissingExtraError naming the install."""
    for module in ("torch", "transformers", "peft", "safetensors"):
        require(module, "lora")


def _clear_quantization(model: Any) -> None:
    """A GGUF-loaded model is dequantized, but transformers marks it quantized, and PEFT /
    TRL then refuse or mistreat it: clear the marks."""
    for obj, attr in ((model, "hf_quantizer"), (model, "is_quantized"),
                      (model.config, "quantization_config")):
        if hasattr(obj, attr):
            try:
                setattr(obj, attr, None if attr != "is_quantized" else False)
            except AttributeError:
                pass
    if "quantization_config" in getattr(model.config, "__dict__", {}):
        del model.config.__dict__["quantization_config"]


def load_base(base: BaseModel, *, cache: Path | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) in float32 on the CPU; TrainingError (one line) if loading fails.

    A GGUF base takes ~40 s to parse and dequantize on this machine; with ``cache``
    the result is kept there as an HF directory (float32 safetensors, keyed by the
    file's fingerprint) and later loads take seconds.
    """
    require_lora()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cached = cache / f"{base.path.stem}-{base.fingerprint()[:16]}" if (
        cache is not None and base.gguf) else None
    if cached is not None and (cached / ".complete").is_file():
        return load_base(BaseModel(cached, gguf=False))
    where = {"gguf_file": base.path.name} if base.gguf else {}
    folder = base.path.parent if base.gguf else base.path
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, **where)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, **where)
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
        first = " ".join(str(exc).split())[:200]
        raise TrainingError(f"cannot load the base model {base.path}: {first}") from exc
    _clear_quantization(model)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if cached is not None:
        _save_cache(model, tokenizer, cached)
    return model, tokenizer


def _save_cache(model: Any, tokenizer: Any, folder: Path) -> None:
    """Write the dequantized base as an HF directory, atomically (a rename at the end)."""
    import shutil

    tmp = folder.with_name(f".{folder.name}.tmp{os.getpid()}")
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / ".complete").write_text("ok", encoding="utf-8")
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
    except OSError:  # a cache is an optimisation: never a failure
        shutil.rmtree(tmp, ignore_errors=True)
