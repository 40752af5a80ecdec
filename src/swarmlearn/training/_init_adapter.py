"""The adapter a training starts from (``LoraTrainConfig.init_adapter``).

DPO is normally run on top of the SFT adapter: the policy starts as that
adapter, and so does its reference (the DPO paper's ``π_ref = π_SFT``; TRL's
``DPOTrainer`` keeps a frozen copy of a pretrained adapter as the reference).
A training from an adapter continues it: the adapter's rank, alpha, target
modules and layers replace the config's (:func:`adopt`, logged when they
differ), and its weights are the starting point (:func:`load_weights`, in the
trainer's child).

:func:`check_init` runs in the caller, before a model is loaded; each problem
is one line:

* not a directory with a PEFT LoRA ``adapter_config.json`` and a readable
  ``adapter_model.safetensors`` (corrupt, truncated, DoRA/rsLoRA, a tensor
  that is not a Llama projection's LoRA weight) — ``ArtifactError``;
* trained on another base: the fingerprint in its ``adapter.json`` (a
  registered version's directory) differs, or — with a GGUF base — a tensor's
  name or shape does not fit it (the export and the server's own check,
  :func:`~swarmlearn.training.gguf_export.export_gguf`) — ``ArtifactError``.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from swarmlearn.errors import ArtifactError, ConfigError, TrainingError
from swarmlearn.training._base import BaseModel

__all__ = ["InitAdapter", "adopt", "check_init", "load_weights"]

logger = logging.getLogger(__name__)

WEIGHTS = "adapter_model.safetensors"


@dataclass(frozen=True, slots=True)
class InitAdapter:
    """A checked starting adapter: where it is and its shape."""

    directory: Path
    rank: int
    alpha: float
    target_modules: tuple[str, ...]
    layers: tuple[int, ...]  # empty: every layer


def check_init(path: Path | str, base: BaseModel, *, field: str = "init_adapter",
               ) -> InitAdapter:
    """``path`` as a starting adapter for ``base``, or a one-line error (module docstring)."""
    from swarmlearn.training.gguf_export import _adapter_config, export_gguf

    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"{field}: {str(folder)!r} is not an adapter directory (a PEFT "
                          f"directory, or a version: 3, v3, champion)", field=field,
                          value=str(folder))
    _check_pointer(folder, base, field)
    cfg = _adapter_config(folder)
    with tempfile.TemporaryDirectory(prefix="swarmlearn-init-") as tmp:
        try:  # reads every tensor: names, pairs, and shapes against a GGUF base
            export_gguf(folder, base.path, Path(tmp) / "init.gguf")
        except (ArtifactError, ConfigError) as exc:
            raise ArtifactError(f"{field}: {exc}") from exc
    targets = cfg.get("target_modules")
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise ArtifactError(f"{field}: {folder}/adapter_config.json: target_modules "
                            f"{targets!r} is not a list of module names")
    layers = cfg.get("layers_to_transform")
    layers = () if layers is None else (layers,) if isinstance(layers, int) else layers
    return InitAdapter(folder.resolve(), int(cfg["r"]), float(cfg["lora_alpha"]),
                       tuple(sorted(targets)), tuple(int(i) for i in layers))


def _check_pointer(folder: Path, base: BaseModel, field: str) -> None:
    """A registered version's directory names the base it was trained on: it must be this."""
    pointer = folder / "adapter.json"
    if not pointer.is_file():
        return
    try:
        data = json.loads(pointer.read_text(encoding="utf-8"))
        trained_on, fingerprint = str(data["base"]), str(data["base_fingerprint"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{field}: {pointer} is not an adapter record ({exc})") from exc
    if fingerprint != base.fingerprint():
        raise ArtifactError(f"{field}: {folder} was trained on {trained_on}, not on "
                            f"{base.path}")


def adopt(cfg: Any, init: InitAdapter) -> Any:
    """``cfg`` (a LoraTrainConfig) with the starting adapter's shape and path."""
    shape = {"rank": init.rank, "alpha": init.alpha, "target_modules": init.target_modules,
             "layers": init.layers}
    differ = {k: v for k, v in shape.items()
              if (tuple(sorted(getattr(cfg, k))) if k == "target_modules" else getattr(cfg, k))
              != v}
    if differ:
        logger.warning("starting from %s: its %s replace the config's", init.directory,
                       ", ".join(f"{k} {list(v) if isinstance(v, tuple) else v}"
                                 for k, v in differ.items()))
    return replace(cfg, init_adapter=str(init.directory), **shape)


def load_weights(model: Any, folder: Path) -> None:
    """The starting adapter's weights into ``model`` (a PEFT model of the same shape), every
    LoRA weight of it accounted for; TrainingError naming the first that is not."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    try:
        weights = load_file(str(folder / WEIGHTS))
    except Exception as exc:  # safetensors raises its own errors on a bad file
        raise TrainingError(f"init_adapter: {folder / WEIGHTS}: cannot read ({exc})") from exc
    result: Any = set_peft_model_state_dict(model, weights)
    missing = [k for k in result.missing_keys if "lora_" in k]
    for what, keys in (("has weights the model does not", result.unexpected_keys),
                       ("lacks weights the model has", missing)):
        if keys:
            raise TrainingError(f"init_adapter: {folder} {what} ({len(keys)}, first "
                                f"{keys[0]})")
