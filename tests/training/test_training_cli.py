"""``swarmlearn lora list|apply|rollback`` and ``eval --adapter champion`` on registered versions.

The versions point at real GGUF adapters exported from numpy-made PEFT
directories for a numpy-made base header (``fake_gguf.py``): no torch, no
server (without ``--server`` apply and rollback move the champion alias,
which consumers read). A file changed behind the store's back, or a base the
version was not trained on, is refused in one line and the champion stays.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fake_gguf import base_gguf, peft_dir, register_version

from conftest import run_cli
from swarmlearn.errors import ConfigError
from swarmlearn.lifecycle import Lifecycle
from swarmlearn.store import SqlStore
from swarmlearn.training._cli import adapter_path
from swarmlearn.training.adapters import ADAPTER_KIND, AdapterDir

pytest.importorskip("gguf")
pytest.importorskip("safetensors.numpy")

SCOPE = "troubleshooting[heldout]"


def test_apply_rollback_list_and_the_champion_alias(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    base = base_gguf(tmp_path / "base.gguf")
    other = base_gguf(tmp_path / "other.gguf", hidden=128)
    root, url = tmp_path / "lora", f"sqlite:///{tmp_path}/store.db"
    store = SqlStore(url)
    life = Lifecycle(store, ADAPTER_KIND, SCOPE)
    (v1, gguf1), (v2, _), (v3, gguf3) = (register_version(life, root, base, s)
                                         for s in (1, 2, 3))
    store.close()
    common = ["troubleshooting", "--variant", "heldout", "--store", url]
    kind_opts = ["--dir", str(root), "--base", str(base)]

    def champion() -> Any:
        with SqlStore(url) as st:
            c = Lifecycle(st, ADAPTER_KIND, SCOPE).champion(payload=False)
            return None if c is None else c.version

    def run(*args: str) -> tuple[int, str, str]:
        code, out, err = run_cli(monkeypatch, capsys, *args)
        return code, out, " ".join(err.split())

    code, out, err = run("lora", "list", *common)
    assert code == 0 and "v1" in out and "v2" in out and "champion" not in out, err
    code, out, err = run("lora", "apply", *common, f"v{v1}", *kind_opts)
    assert code == 0 and "is the champion" in out and champion() == v1, err
    assert adapter_path("champion", "troubleshooting", "heldout", url) == str(gguf1)
    code, out, err = run("lora", "apply", *common, f"v{v2}", *kind_opts)
    assert code == 0 and champion() == v2, err
    code, out, err = run("lora", "list", *common)
    assert f"v{v2} (champion)" in out
    code, out, err = run("lora", "rollback", *common, *kind_opts)
    assert code == 0 and f"champion now lora_adapter/{SCOPE} v{v1}" in out, err
    assert champion() == v1

    data = gguf3.read_bytes()
    gguf3.write_bytes(data[: len(data) // 2])  # a candidate's file, truncated behind our back
    for args, text in (
        (["lora", "apply", *common, f"v{v3}", *kind_opts], "changed since it was registered"),
        (["lora", "apply", *common, f"v{v1}", "--dir", str(root), "--base", str(other)],
         "was trained on"),
        (["lora", "apply", *common, "v9", *kind_opts], "has no version 9"),
        (["lora", "rollback", *common, "--to", "9", *kind_opts], "has no version 9"),
    ):
        code, out, err = run(*args)
        assert code != 0 and text in err, (args, out, err)
        assert champion() == v1, args  # the champion stays
    gguf3.write_bytes(data)
    code, out, err = run("lora", "rollback", *common, *kind_opts)
    assert code == 0 and "champion now none (the base model)" in out and champion() is None
    with pytest.raises(ConfigError, match="no champion adapter") as info:
        adapter_path("champion", "troubleshooting", "heldout", url)
    assert "\n" not in str(info.value)


def test_a_bad_starting_adapter_is_one_line_before_any_work(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """``lora train --init``: an unknown version, no champion, a corrupt or truncated PEFT
    directory, one for another base (shapes, or the base its adapter.json names), a
    version trained on another base — each one line, before a data set is built."""
    import time

    base = base_gguf(tmp_path / "base.gguf")
    other = base_gguf(tmp_path / "other.gguf", hidden=128)
    root, url = tmp_path / "lora", f"sqlite:///{tmp_path}/store.db"
    store = SqlStore(url)
    v1, _ = register_version(Lifecycle(store, ADAPTER_KIND, SCOPE), root, base, 1)
    store.close()
    wide, _ = peft_dir(tmp_path / "wide", hidden=128)
    corrupt, _ = peft_dir(tmp_path / "corrupt")
    weights = corrupt / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    registered = next(AdapterDir(root).scope_dir(SCOPE).iterdir())
    common = ["lora", "train", "troubleshooting", "--variant", "heldout", "--store", url,
              "--dir", str(root), "--base", str(base)]
    for init, base_arg, text in (
        ("v42", base, "has no version 42"),
        ("champion", base, "no champion to start from"),
        ("no/such/dir", base, "neither an adapter directory nor a version"),
        (str(corrupt), base, "cannot read"),
        (str(wide), base, "does not fit the base"),
        (str(registered), other, "was trained on"),
        (f"v{v1}", other, "was trained on"),
    ):
        args = [*common[:-1], str(base_arg), "--init", init]
        started = time.monotonic()
        code, out, err = run_cli(monkeypatch, capsys, *args)
        assert code != 0 and text in " ".join(err.split()), (init, out, err)
        assert len(err.strip().splitlines()) == 1, (init, err)
        assert time.monotonic() - started < 10, init  # no data set built, no model loaded
    assert not (root / "datasets").exists()
