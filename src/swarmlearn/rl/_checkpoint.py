"""State trees on disk: arrays in ``tensors.safetensors``, everything else in ``state.json``.

A :data:`~swarmlearn.rl.StateTree` is nested dicts (string keys) of NumPy
arrays and JSON values.  :func:`split_state` replaces every array by
``{"__array__": "dotted.key"}`` and collects the arrays; :func:`join_state`
puts them back.  A checkpoint directory is written under a temporary name
and renamed into place, so a crash never leaves a half-written one under
the real name.  Nothing is pickled.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from swarmlearn._extras import require
from swarmlearn.errors import ArtifactError, TrainingError
from swarmlearn.rl._protocols import StateTree

__all__ = [
    "STATE_FILE",
    "TENSORS_FILE",
    "join_state",
    "read_checkpoint",
    "split_state",
    "write_checkpoint",
    "write_json_atomic",
]

STATE_FILE = "state.json"
TENSORS_FILE = "tensors.safetensors"
_ARRAY = "__array__"


def split_state(tree: StateTree) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Separate a state tree into a JSON-ready tree and a flat dict of arrays."""
    arrays: dict[str, np.ndarray] = {}

    def walk(value: Any, key: str) -> Any:
        if isinstance(value, np.ndarray):
            arrays[key] = np.ascontiguousarray(value)
            return {_ARRAY: key}
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for k, v in value.items():
                if not isinstance(k, str):
                    raise TypeError(f"state key {k!r} under {key or '<root>'!r} is not a string")
                out[k] = walk(v, f"{key}.{k}" if key else k)
            return out
        if isinstance(value, list | tuple):
            return [walk(v, f"{key}.{i}") for i, v in enumerate(value)]
        if value is None or isinstance(value, bool | int | float | str):
            return value
        raise TypeError(f"state value at {key!r} has unsupported type {type(value).__name__}")

    return walk(tree, ""), arrays


def join_state(tree: Any, arrays: dict[str, np.ndarray]) -> Any:
    """Inverse of :func:`split_state`."""
    if isinstance(tree, dict):
        if set(tree) == {_ARRAY}:
            key = tree[_ARRAY]
            if key not in arrays:
                raise ArtifactError(f"checkpoint refers to array {key!r} that is not stored")
            return arrays[key]
        return {k: join_state(v, arrays) for k, v in tree.items()}
    if isinstance(tree, list):
        return [join_state(v, arrays) for v in tree]
    return tree


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` via a temporary file and rename; TrainingError on failure."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, allow_nan=False)
            fh.write("\n")
        os.replace(tmp, path)
    except (OSError, ValueError, TypeError) as exc:
        _remove_quietly(tmp)
        raise TrainingError(f"cannot write {path}: {exc}") from exc


def write_checkpoint(path: Path, tree: StateTree) -> None:
    """Write ``tree`` as the checkpoint directory ``path`` (replacing one already there)."""
    st = require("safetensors.numpy", "rl")
    try:
        meta, arrays = split_state(tree)
    except TypeError as exc:
        raise TrainingError(f"cannot checkpoint to {path}: {exc}") from exc
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        st.save_file(arrays, str(tmp / TENSORS_FILE))
        with open(tmp / STATE_FILE, "w", encoding="utf-8") as fh:
            json.dump(meta, fh, allow_nan=True)
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    except (OSError, ValueError) as exc:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        raise TrainingError(f"cannot write checkpoint {path}: {exc}") from exc


def read_checkpoint(path: Path) -> StateTree:
    """Read a checkpoint directory written by :func:`write_checkpoint`."""
    st = require("safetensors.numpy", "rl")
    try:
        with open(path / STATE_FILE, encoding="utf-8") as fh:
            meta = json.load(fh)
        arrays = st.load_file(str(path / TENSORS_FILE))
    except FileNotFoundError as exc:
        raise ArtifactError(f"checkpoint {path} is incomplete: {exc.filename} is missing") from exc
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"cannot read checkpoint {path}: {exc}") from exc
    tree = join_state(meta, arrays)
    if not isinstance(tree, dict):
        raise ArtifactError(f"checkpoint {path}: state is not a mapping")
    return tree


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
