"""The LoRA trainer on a tiny random Llama: it learns, stops on budget, fails in one line,
and a training killed mid-way leaves no adapter behind."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import heldout
from swarmlearn.errors import ConfigError, TrainingError
from swarmlearn.store import SqlStore
from swarmlearn.training.data import DatasetConfig, SFTBuilder

pytest.importorskip("torch")
pytest.importorskip("peft")

from swarmlearn.training.lora import (
    STAGING_PREFIX,
    LoraTrainConfig,
    LoraTrainer,
    TrainProgress,
)

FAST = dict(rank=4, alpha=8.0, batch_size=4, learning_rate=2e-2, warmup_steps=0, threads=1)


@pytest.fixture(scope="module")
def tiny_base(tiny_files: dict[str, Path]) -> Path:
    """A tiny random Llama with the bundled tokenizer, as an HF directory."""
    return tiny_files["hf"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    from conftest import record_teacher

    folder = tmp_path_factory.mktemp("data")
    store = SqlStore(f"sqlite:///{folder}/t.db")
    record_teacher(store, episodes=12)
    files = SFTBuilder(DatasetConfig(max_examples=40, val_fraction=0.25)).build(
        store, heldout()).write(folder / "ds")
    store.close()
    yield {"train": files.train, "val": files.val}


def test_the_trainer_learns_and_writes_a_peft_adapter(tiny_base: Path, data: dict[str, Path],
                                                       tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    seen: list[TrainProgress] = []
    result = LoraTrainer(LoraTrainConfig(max_steps=16, epochs=3, **FAST)).train(
        base=tiny_base, train=data["train"], val=data["val"], output=tmp_path / "a",
        on_progress=seen.append)
    m = result.metrics
    assert [p.step for p in seen] == list(range(1, 17)) and seen[-1].eta == 0.0
    assert m["steps"] == 16 and m["stopped"] == "steps"
    assert m["final_loss"] < m["first_loss"] - 2.0  # the loss fell (measured 12.1 -> 8.9)
    assert m["val_loss"] < m["val_loss_before"]
    for key in ("tokens_per_s", "train_seconds", "wall_seconds", "peak_rss_mb"):
        assert m[key] > 0
    tensors = load_file(str(result.output / "adapter_model.safetensors"))
    bs = [v for k, v in tensors.items() if "lora_B" in k]
    assert len(bs) == 2 * 4 and all(abs(b).max() > 0 for b in bs)  # B starts at zero
    config = json.loads((result.output / "adapter_config.json").read_text())
    assert config["r"] == 4 and sorted(config["target_modules"]) == sorted(
        ["q_proj", "k_proj", "v_proj", "o_proj"])
    assert json.loads((result.output / "metrics.json").read_text())["steps"] == 16
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(STAGING_PREFIX)]


def test_reply_tokens_only_are_targets(tiny_base: Path, data: dict[str, Path]) -> None:
    from transformers import AutoTokenizer

    from swarmlearn.training._loop import tokenize_sft
    from swarmlearn.training.data import load_jsonl

    tok = AutoTokenizer.from_pretrained(tiny_base)
    records = load_jsonl(data["train"])[:5]
    items, dropped = tokenize_sft(tok, records, 4096)
    assert dropped == 0
    for record, item in zip(records, items, strict=True):
        reply = tok.decode(item.ids[item.n_prompt:])
        assert reply == record["messages"][-1]["content"] + "<|im_end|>"
        assert tok.decode(item.ids[:item.n_prompt]).endswith("<|im_start|>assistant\n")
    assert tokenize_sft(tok, records, 64) == ([], 5)


def test_a_time_budget_stops_cleanly(tiny_base: Path, data: dict[str, Path],
                                     tmp_path: Path) -> None:
    cfg = LoraTrainConfig(max_seconds=0.5, epochs=200, **FAST)
    result = LoraTrainer(cfg).train(base=tiny_base, train=data["train"], output=tmp_path / "t")
    assert result.metrics["stopped"] == "time" and result.metrics["steps"] >= 1
    assert (result.output / "adapter_model.safetensors").is_file()


def test_under_a_time_budget_the_rate_decays_to_where_the_budget_ends(
        tiny_base: Path, data: dict[str, Path], tmp_path: Path) -> None:
    """200 epochs planned, 3 s granted: the learning rate falls as the time runs out (to
    10% at the end), not along the 200 epochs it will never reach; ETA is the time left."""
    seen: list[TrainProgress] = []
    cfg = LoraTrainConfig(max_seconds=3.0, epochs=200, val_batches=0, **FAST)
    result = LoraTrainer(cfg).train(base=tiny_base, train=data["train"],
                                    output=tmp_path / "t", on_progress=seen.append)
    assert result.metrics["stopped"] == "time" and len(seen) >= 3
    assert seen[0].lr == pytest.approx(FAST["learning_rate"])
    # most of the decay was done (planned over 200 epochs, it would still be at ~100%),
    # however few steps the machine's load lets into the 3 s
    assert seen[-1].lr < 0.6 * FAST["learning_rate"]
    assert all(a.lr >= b.lr for a, b in itertools.pairwise(seen))
    assert all(p.eta <= 3.0 for p in seen)


def test_bad_input_is_one_line(tiny_base: Path, data: dict[str, Path], tmp_path: Path) -> None:
    trainer = LoraTrainer(LoraTrainConfig(max_steps=1, **FAST))
    not_a_model = tmp_path / "notes.txt"
    not_a_model.write_text("hello")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    cases = [
        (ConfigError, dict(base=not_a_model, train=data["train"]), "is not a model"),
        (ConfigError, dict(base=tmp_path, train=data["train"]), "no config.json"),
        (ConfigError, dict(base=tmp_path / "nope", train=data["train"]), "no such file"),
        (TrainingError, dict(base=tiny_base, train=empty), "is empty"),
        (ConfigError, dict(base=tiny_base, train=tmp_path / "none.jsonl"), "no such data"),
    ]
    for error, kwargs, text in cases:
        with pytest.raises(error, match=text) as info:
            trainer.train(output=tmp_path / "out", **kwargs)  # type: ignore[arg-type]
        assert "\n" not in str(info.value)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
    with pytest.raises(TrainingError, match=r"broken.jsonl:1: .*ending with the assistant") as info:
        trainer.train(base=tiny_base, train=broken, output=tmp_path / "out")
    assert "\n" not in str(info.value) and not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match="target_modules"):
        LoraTrainConfig(target_modules=("embed_tokens",))


KILLED = """
import sys
from swarmlearn.training.lora import LoraTrainConfig, LoraTrainer
cfg = LoraTrainConfig(rank=4, epochs=1000, threads=1, batch_size=2)
LoraTrainer(cfg).train(base=sys.argv[1], train=sys.argv[2], output=sys.argv[3],
                       on_progress=lambda p: print("step", p.step, flush=True))
"""


def test_a_training_killed_mid_way_leaves_no_adapter(tiny_base: Path, data: dict[str, Path],
                                                      tmp_path: Path) -> None:
    out = tmp_path / "adapters" / "v1"
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(tiny_base), str(data["train"]),
                             str(out)], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # wait until it is training
        if proc.stdout.readline().startswith("step 2"):
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(1.0)  # the trainer's child dies with its parent (PR_SET_PDEATHSIG)
    assert not out.exists()
    staging = [p for p in out.parent.iterdir() if p.name.startswith(STAGING_PREFIX)]
    assert len(staging) == 1  # what it left: a staging directory, no adapter
    result = LoraTrainer(LoraTrainConfig(max_steps=1, **FAST)).train(
        base=tiny_base, train=data["train"], output=out)
    assert result.output == out and (out / "adapter_model.safetensors").is_file()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(STAGING_PREFIX)]


def test_a_data_set_of_the_other_objective_is_one_line_naming_the_file_and_line(
        tiny_base: Path, data: dict[str, Path], tmp_path: Path) -> None:
    """DPO pairs given to an SFT run, SFT examples to a DPO run, or either as the other's
    validation set: one line naming the file, the line and what the objective expects,
    before the trainer's child is started (it raised a bare KeyError from there)."""
    pairs = tmp_path / "pairs.jsonl"
    user = [{"role": "user", "content": "which action?"}]
    pairs.write_text(json.dumps({"prompt": user,
                                 "chosen": [{"role": "assistant", "content": "a"}],
                                 "rejected": [{"role": "assistant", "content": "b"}]}) + "\n")
    cases = [("sft", dict(train=pairs), pairs, "'messages'"),
             ("dpo", dict(train=data["train"]), data["train"], "'prompt', 'chosen', 'rejected'"),
             ("sft", dict(train=data["train"], val=pairs), pairs, "'messages'")]
    for i, (objective, files, named, expected) in enumerate(cases):
        trainer = LoraTrainer(LoraTrainConfig(objective=objective, max_steps=1, **FAST))
        started = time.monotonic()
        with pytest.raises(TrainingError) as info:
            trainer.train(base=tiny_base, output=tmp_path / f"out{i}", **files)
        text = str(info.value)
        assert f"{named}:1:" in text and expected in text and objective in text, text
        assert "\n" not in text and not (tmp_path / f"out{i}").exists()
        assert time.monotonic() - started < 5.0  # no child, no model loaded
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(STAGING_PREFIX)]
