"""DPO through the trainer on a tiny random Llama: pairs from the store, the loss, the result.

The DPO builder's pairs (a successful episode's decision beside the different
one a failed episode took in the same prompt) are trained with
``objective="dpo"``. At the first step the adapter's ``lora_B`` is zero, so
the policy is its reference and the loss is exactly ``ln 2``; after training,
the adapter prefers the chosen replies over the rejected ones more than the
base model does (the margin of the DPO objective is positive on the pairs).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from conftest import heldout, record_pairs
from swarmlearn.store import SqlStore
from swarmlearn.training.data import DatasetConfig, DPOBuilder, load_jsonl

pytest.importorskip("torch")
pytest.importorskip("peft")

from swarmlearn.training.lora import LoraTrainConfig, LoraTrainer


@pytest.fixture(scope="module")
def dpo_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("dpo")
    store = SqlStore(f"sqlite:///{folder}/dpo.db")
    record_pairs(store)
    data = DPOBuilder(DatasetConfig(min_gap=0.1, val_fraction=0.0, max_examples=8)).build(
        store, heldout())
    store.close()
    files = data.write(folder / "ds")
    return {"train": files.train}


def _margins(base_dir: Path, adapter: Path, train: Path) -> list[float]:
    """Per pair: (log p(chosen) - log p(rejected)) with the adapter minus without it."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from swarmlearn.training import _loop

    tok = AutoTokenizer.from_pretrained(base_dir)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), adapter)
    model.eval()
    pairs, _ = _loop.tokenize_dpo(tok, load_jsonl(train), 4096)
    out = []
    with torch.no_grad():
        for chosen, rejected in pairs:
            ids, mask, labels = _loop._batch(torch, [chosen, rejected], tok.pad_token_id)
            on, _ = _loop._token_logps(torch, model, ids, mask, labels)
            with model.disable_adapter():
                off, _ = _loop._token_logps(torch, model, ids, mask, labels)
            out.append(float((on[0] - on[1]) - (off[0] - off[1])))
    return out


def test_dpo_training_starts_at_ln2_and_learns_to_prefer_the_chosen(
        tiny_files: dict[str, Path], dpo_files: dict[str, Path], tmp_path: Path) -> None:
    rows = load_jsonl(dpo_files["train"])
    assert rows and all({"prompt", "chosen", "rejected"} <= set(r) for r in rows)
    cfg = LoraTrainConfig(objective="dpo", rank=4, alpha=8.0, batch_size=2, max_steps=8,
                          epochs=10, learning_rate=2e-2, warmup_steps=0, dpo_beta=0.5,
                          threads=1)
    result = LoraTrainer(cfg).train(base=tiny_files["hf"], train=dpo_files["train"],
                                    output=tmp_path / "dpo")
    m: dict[str, Any] = dict(result.metrics)
    assert m["objective"] == "dpo" and m["steps"] == 8 and m["examples"] == len(rows)
    assert m["first_loss"] == pytest.approx(math.log(2), abs=1e-4)  # policy == reference
    assert m["final_loss"] < m["first_loss"] - 0.05, m  # the loss fell
    margins = _margins(tiny_files["hf"], result.output, dpo_files["train"])
    assert sum(margins) / len(margins) > 0.5, margins  # chosen over rejected, vs the base


def test_dpo_from_an_sft_adapter_starts_from_it_and_it_is_the_reference(
        tiny_files: dict[str, Path], dpo_files: dict[str, Path], tmp_path: Path) -> None:
    """DPO on top of an SFT adapter (``init_adapter``): the SFT adapter's weights are the
    start, its shape replaces the config's, and the reference is that starting policy —
    so the first loss is ln 2 again (against the base model it would not be)."""
    import json

    from safetensors.numpy import load_file

    sft = tmp_path / "sft.jsonl"
    sft.write_text("".join(json.dumps({"messages": r["prompt"] + r["chosen"]}) + "\n"
                           for r in load_jsonl(dpo_files["train"])))
    first = LoraTrainer(LoraTrainConfig(rank=4, alpha=8.0, batch_size=2, max_steps=8,
                                        epochs=10, learning_rate=5e-2, warmup_steps=0,
                                        threads=1)).train(
        base=tiny_files["hf"], train=sft, output=tmp_path / "sft")
    cfg = LoraTrainConfig(objective="dpo", rank=2, alpha=2.0, batch_size=2, max_steps=2,
                          learning_rate=1e-6, warmup_steps=0, dpo_beta=0.5, threads=1,
                          init_adapter=str(first.output))
    result = LoraTrainer(cfg).train(base=tiny_files["hf"], train=dpo_files["train"],
                                    output=tmp_path / "dpo")
    m: dict[str, Any] = dict(result.metrics)
    assert result.config.rank == 4 and result.config.alpha == 8.0  # the SFT adapter's shape
    assert m["init_adapter"] == str(first.output.resolve())
    assert m["first_loss"] == pytest.approx(math.log(2), abs=1e-4)  # reference == start
    start = load_file(str(first.output / "adapter_model.safetensors"))
    end = load_file(str(result.output / "adapter_model.safetensors"))
    assert start.keys() == end.keys()
    for k, v in start.items():  # two steps at 1e-6 from the SFT weights, not from B = 0
        assert abs(end[k] - v).max() < 1e-3 * max(1.0, float(abs(v).max())), k
    assert max(float(abs(v).max()) for k, v in end.items() if "lora_B" in k) > 1e-2
    assert sum(_margins(tiny_files["hf"], first.output, dpo_files["train"])) != 0.0
