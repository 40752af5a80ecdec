"""DPO as a real choice of the ``lora_adapter`` kind: the daemon's TOML options
(``build_lora_kind``) and ``swarmlearn lora train --objective dpo`` both train on
the DPO builder's pairs, and the lineage says so (objective, builder, data set)."""

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

from swarmlearn.training.kind import build_lora_kind

TRAIN = {"rank": 4, "alpha": 8.0, "max_steps": 1, "batch_size": 2, "threads": 1}
DATA = {"min_gap": 0.1, "max_examples": 8}


@pytest.fixture(scope="module")
def pairs(tiny_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory,
          ) -> Iterator[dict[str, Any]]:
    """A store with successful and failed episodes on the same tasks, and a warm base."""
    folder = tmp_path_factory.mktemp("pairs")
    store = SqlStore(f"sqlite:///{folder}/store.db")
    record_pairs(store)
    root = folder / "lora"
    warm_base_cache(root, tiny_files)
    yield {"store": store, "root": root, "tiny": tiny_files}
    store.close()


def _dpo_lineage(store: SqlStore, lineage: Any) -> None:
    assert lineage.inputs["objective"] == "dpo" and lineage.inputs["builder"] == "DPOBuilder"
    assert lineage.config["train"]["objective"] == "dpo" and lineage.metrics["objective"] == "dpo"
    dataset = store.get_artifact_by_id(lineage.inputs["dataset"])
    assert dataset.kind == DATASET_KIND and dataset.meta["kind"] == "dpo"
    rows = load_jsonl(Path(dataset.meta["directory"]) / "train.jsonl", "dpo")
    assert rows and lineage.metrics["examples"] == len(rows)


def test_the_daemon_options_choose_dpo(pairs: dict[str, Any]) -> None:
    store = pairs["store"]
    kind = build_lora_kind(heldout(), store, base=str(pairs["tiny"]["gguf"]),
                           root=str(pairs["root"]), train={**TRAIN, "objective": "dpo"},
                           data=DATA)
    produced = kind.produce(ProduceContext(store=store, scope=kind.scope, champion=None))
    _dpo_lineage(store, produced.lineage)


def test_lora_train_objective_dpo(pairs: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    store, tiny = pairs["store"], pairs["tiny"]
    code, out, err = run_cli(
        monkeypatch, capsys, "lora", "train", "troubleshooting", "--variant", "heldout",
        "--store", store.url, "--dir", str(pairs["root"]), "--base", str(tiny["gguf"]),
        "--objective", "dpo", "--min-gap", "0.1", "--max-examples", "8", "--max-steps", "1",
        "--rank", "4", "--alpha", "8", "--batch", "2", "--threads", "1")
    assert code == 0, err
    assert "(dpo)" in out
    [version] = Lifecycle(store, "lora_adapter", heldout().label).versions()
    _dpo_lineage(store, version.lineage)
