"""DPO as a real choice of the ``lora_adapter`` kind, on top of the SFT adapter.

The daemon's TOML options (``build_lora_kind``) and ``swarmlearn lora train
--objective dpo`` both train on the DPO builder's pairs; with ``init_adapter``
(``--init``: a version, ``champion`` or a directory) the training starts from
that adapter, and the lineage names the objective, the builder and the parent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import heldout, record_pairs, run_cli, warm_base_cache
from swarmlearn.lifecycle import Lifecycle, ProduceContext
from swarmlearn.store import SqlStore
from swarmlearn.training.data import DATASET_KIND, load_jsonl

pytest.importorskip("torch")
pytest.importorskip("peft")

from swarmlearn.training.adapters import AdapterPointer
from swarmlearn.training.kind import build_lora_kind

TRAIN = {"rank": 4, "alpha": 8.0, "max_steps": 1, "batch_size": 2, "threads": 1}
DATA = {"min_gap": 0.1, "max_examples": 8}


@pytest.fixture(scope="module")
def pairs(tiny_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory,
          ) -> Iterator[dict[str, Any]]:
    """A store with successful and failed episodes on the same tasks, a warm base, and an
    SFT adapter trained from it as the champion."""
    folder = tmp_path_factory.mktemp("pairs")
    store = SqlStore(f"sqlite:///{folder}/store.db")
    record_pairs(store)
    root = folder / "lora"
    warm_base_cache(root, tiny_files)
    options = {"base": str(tiny_files["gguf"]), "root": str(root), "data": DATA}
    sft = build_lora_kind(heldout(), store, train=TRAIN, **options)
    life = Lifecycle(store, sft.name, sft.scope)
    champion = life.promote(life.register(sft.produce(ProduceContext(
        store=store, scope=sft.scope, champion=None))), reason="the SFT adapter")
    yield {"store": store, "root": root, "tiny": tiny_files, "options": options,
           "life": life, "sft": champion}
    store.close()


def _dpo_lineage(store: SqlStore, lineage: Any, parent: Any) -> None:
    assert lineage.inputs["objective"] == "dpo" and lineage.inputs["builder"] == "DPOBuilder"
    assert lineage.config["train"]["objective"] == "dpo" and lineage.metrics["objective"] == "dpo"
    dataset = store.get_artifact_by_id(lineage.inputs["dataset"])
    assert dataset.kind == DATASET_KIND and dataset.meta["kind"] == "dpo"
    rows = load_jsonl(Path(dataset.meta["directory"]) / "train.jsonl", "dpo")
    assert rows and lineage.metrics["examples"] == len(rows)
    folder = str(AdapterPointer.from_version(parent).directory)
    assert lineage.parent == parent.id
    assert lineage.inputs["init_adapter"]["version"] == parent.label
    assert lineage.inputs["init_adapter"]["directory"] == folder
    assert lineage.config["train"]["init_adapter"] == folder
    assert lineage.metrics["init_adapter"] == folder


def test_the_daemon_options_train_dpo_on_top_of_the_champion(pairs: dict[str, Any]) -> None:
    store, life = pairs["store"], pairs["life"]
    kind = build_lora_kind(heldout(), store, train={**TRAIN, "objective": "dpo",
                                                    "init_adapter": "champion"},
                           **pairs["options"])
    produced = kind.produce(ProduceContext(store=store, scope=kind.scope,
                                           champion=life.champion()))
    _dpo_lineage(store, produced.lineage, pairs["sft"])


def test_lora_train_objective_dpo_init_version(pairs: dict[str, Any],
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """From a version that is not the champion (there is none now): it is the parent."""
    store, tiny, sft = pairs["store"], pairs["tiny"], pairs["sft"]
    pairs["life"].rollback("the base model is live again")
    code, out, err = run_cli(
        monkeypatch, capsys, "lora", "train", "troubleshooting", "--variant", "heldout",
        "--store", store.url, "--dir", str(pairs["root"]), "--base", str(tiny["gguf"]),
        "--objective", "dpo", "--init", f"v{sft.version}", "--min-gap", "0.1",
        "--max-examples", "8", "--max-steps", "1", "--batch", "2", "--threads", "1")
    assert code == 0, err
    assert "(dpo)" in out
    newest = pairs["life"].versions()[0]
    assert newest.version == sft.version + 1
    _dpo_lineage(store, newest.lineage, sft)
    train = newest.lineage.config["train"]  # the SFT adapter's shape, not the CLI's defaults
    assert (train["rank"], train["alpha"]) == (4, 8.0)
