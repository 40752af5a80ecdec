"""What killed trainings leave in the adapter directory is removed when the next training
starts (``LoraAdapterKind.produce`` → ``AdapterDir.sweep``), and nothing else is.

No torch, no server: the base is a numpy-made GGUF header and the registered version a
numpy-made adapter (``fake_gguf.py``); produce fails on the empty store right after its
sweep (no usable examples), which is enough to see what the sweep kept."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from fake_gguf import base_gguf, register_version

from conftest import heldout
from swarmlearn.errors import TrainingError
from swarmlearn.lifecycle import Lifecycle, ProduceContext
from swarmlearn.store import SqlStore
from swarmlearn.training.adapters import ADAPTER_KIND, SWEEP_GRACE_S, AdapterDir
from swarmlearn.training.kind import LoraAdapterKind

pytest.importorskip("gguf")
pytest.importorskip("safetensors.numpy")


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _leftover(folder: Path, *, age_s: float = 0.0) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_model.safetensors").write_bytes(b"half")
    if age_s:
        then = time.time() - age_s
        for p in (folder / "adapter_model.safetensors", folder):
            os.utime(p, (then, then))
    return folder


def test_a_new_training_removes_what_killed_ones_left_and_keeps_the_rest(
        tmp_path: Path) -> None:
    base = base_gguf(tmp_path / "base.gguf")
    root = tmp_path / "lora"
    with SqlStore(f"sqlite:///{tmp_path}/store.db") as store:
        kind = LoraAdapterKind(heldout(), store, base=base, root=root)
        life = Lifecycle(store, ADAPTER_KIND, kind.scope)
        _, gguf = register_version(life, root, base, seed=1)
        scope = AdapterDir(root).scope_dir(kind.scope)
        dead = _dead_pid()
        gone = [_leftover(scope / f"run-{dead}-0"),  # a training killed mid-way
                _leftover(scope / f".staging-{dead}-run-{dead}-1"),
                _leftover(scope / "0123456789ab", age_s=SWEEP_GRACE_S + 60)]  # never registered
        kept = [gguf.parent,  # a registered version
                _leftover(scope / f"run-{os.getpid()}-9"),  # a training of a live process
                _leftover(scope / "ba9876543210", age_s=60)]  # settled, maybe registering now
        with pytest.raises(TrainingError, match="no usable SFT examples"):
            kind.produce(ProduceContext(store=store, scope=kind.scope, champion=None))
        assert sorted(scope.iterdir()) == sorted(kept)
        assert not any(p.exists() for p in gone)
        assert life.versions()[0].version == 1  # the store is untouched
