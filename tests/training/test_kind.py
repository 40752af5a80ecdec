"""The LoRA adapter kind end to end on a tiny random Llama served by a real llama.cpp server:
produce (data set → training → GGUF → adapter directory), gate on held-out tasks, apply and
revert on a live server; bad adapters change nothing live; the CLI around it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import heldout, record_teacher, run_cli, warm_base_cache
from swarmlearn.errors import ArtifactError, ConfigError
from swarmlearn.lifecycle import (
    ArtifactState,
    GateConfig,
    Lifecycle,
    LifecycleConfig,
    ProduceContext,
    Produced,
    run_gate,
)
from swarmlearn.store import SqlStore
from swarmlearn.training.data import DATASET_KIND, DatasetConfig

pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("xllamacpp")

from swarmlearn.serving import LlamaServer, LlamaServerConfig
from swarmlearn.training.adapters import AdapterDir, AdapterPointer, resolve_adapter
from swarmlearn.training.kind import LoraAdapterKind, build_lora_kind
from swarmlearn.training.lora import LoraTrainConfig

pytestmark = pytest.mark.integration

TRAIN = LoraTrainConfig(rank=4, alpha=8.0, max_steps=2, batch_size=4, threads=1)


@pytest.fixture(scope="module")
def loop(tiny_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory,
         ) -> Iterator[dict[str, Any]]:
    """A store with a teacher's episodes and one adapter version produced from them."""
    folder = tmp_path_factory.mktemp("loop")
    store = SqlStore(f"sqlite:///{folder}/store.db")
    record_teacher(store, episodes=12)
    root = folder / "lora"
    warm_base_cache(root, tiny_files)
    kind = LoraAdapterKind(heldout(), store, base=tiny_files["gguf"], root=root,
                           data=DatasetConfig(max_examples=16), train=TRAIN)
    life = Lifecycle(store, kind.name, kind.scope,
                     LifecycleConfig(gate=GateConfig(min_tasks=2)))
    version = life.register(kind.produce(ProduceContext(store=store, scope=kind.scope,
                                                        champion=None)))
    yield {"store": store, "kind": kind, "life": life, "version": version, "root": root,
           "tiny": tiny_files}
    store.close()


def test_produce_registers_a_version_with_its_files_and_lineage(loop: dict[str, Any]) -> None:
    v, store = loop["version"], loop["store"]
    pointer = AdapterPointer.from_version(v)
    assert v.kind == "lora_adapter" and v.scope == "troubleshooting[heldout]"
    assert v.state is ArtifactState.CANDIDATE
    for name in ("adapter.gguf", "adapter_model.safetensors", "adapter_config.json",
                 "metrics.json", "dataset.json", "adapter.json"):
        assert (pointer.directory / name).is_file(), name
    assert pointer.directory.parent == AdapterDir(loop["root"]).scope_dir(v.scope)
    lineage = v.lineage
    dataset = store.get_artifact_by_id(lineage.inputs["dataset"])
    manifest = json.loads(dataset.payload or b"")
    assert dataset.kind == DATASET_KIND and manifest["train"] + manifest["val"] == 16
    assert lineage.metrics["steps"] == 2 and lineage.config["train"]["rank"] == 4
    assert resolve_adapter("v1", store=store, scope=v.scope)[0] == pointer.gguf
    assert resolve_adapter(str(pointer.directory))[0] == pointer.gguf


def test_the_gate_evaluates_both_sides_on_the_same_tasks(
        loop: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import swarmlearn.session

    kind, life, v = loop["kind"], loop["life"], loop["version"]
    seen: list[tuple[str, int]] = []
    kind.on_task = lambda side, r: seen.append((side, r.task))
    episodes: list[Any] = []
    real = swarmlearn.session.run_session

    def recorded(*args: Any, **kwargs: Any) -> Any:
        run = real(*args, **kwargs)
        episodes.extend(run.episodes)
        return run

    monkeypatch.setattr(swarmlearn.session, "run_session", recorded)
    run = run_gate(life, kind, v, tasks=2)
    # every gate episode's LLM workers got replies from their server, not errors (the tiny
    # model's context was 256 tokens: every decision's prompt was refused with HTTP 400)
    assert len(episodes) == 4
    for e in episodes:
        assert e.stats.get("llm_calls", 0) > 0 and e.stats.get("llm_failed", 0) == 0, e.stats
    d = run.decision
    assert d.paired == 2 and {t for _, t in seen} == set(d.tasks)
    # both sides at once (each on its own server), each through the same tasks in order
    assert [t for s, t in seen if s == "base model"] == [t for s, t in seen if s == v.label]
    assert len(seen) == 4
    assert run.version.state in (ArtifactState.PROMOTED, ArtifactState.REJECTED)
    assert run.version.gate is not None and "wins" in run.version.gate


def test_a_gate_whose_server_refuses_the_prompts_is_an_error(loop: dict[str, Any],
                                                             tmp_path: Path) -> None:
    """A base whose context (256 tokens) is shorter than the workers' prompts: its server
    answers HTTP 400 to every decision, and the evaluation ends on the first task, naming
    it, instead of scoring the failures as the model's."""
    from tiny_llama import tiny_model, write_base_gguf

    from swarmlearn.lifecycle import HeldOutTasks

    short = write_base_gguf(tiny_model(seed=1, context=256), tmp_path / "short.gguf")
    kind = LoraAdapterKind(heldout(), loop["store"], base=short, root=tmp_path / "lora",
                           eval_threads=1)
    played: list[Any] = []
    kind.on_task = lambda side, r: played.append(r)
    with pytest.raises(ArtifactError, match=r"base model: \d+ of \d+ LLM calls on task "
                                            r"900001 failed") as info:
        kind.evaluate(None, HeldOutTasks(scope=kind.scope, seeds=(900_001, 900_002)))
    assert "\n" not in str(info.value) and not played


def test_a_side_that_fails_stops_the_other_and_rejects_the_version(
        loop: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """evaluate_pair: the base side raises after its first task; the adapter side, waiting
    for its second task, stops instead of playing on; the gate records the failure."""
    import threading

    kind, life = loop["kind"], loop["life"]
    version = life.register(Produced(payload=loop["version"].payload,
                                     summary=dict(loop["version"].meta),
                                     lineage=loop["version"].lineage))
    both_started = threading.Barrier(2, timeout=60)
    played: list[str] = []

    def task(side: str, r: Any) -> None:
        played.append(side)
        both_started.wait()  # both sides finished one task
        if side == "base model":
            raise RuntimeError("the base server died")
        time.sleep(0.5)  # the adapter side reaches its next task after the failure

    monkeypatch.setattr(kind, "on_task", task)
    with pytest.raises(RuntimeError, match="the base server died"):
        run_gate(life, kind, version, tasks=3)
    assert played.count(version.label) == 1  # the second task was never started
    assert life.get(version.version).state is ArtifactState.REJECTED


def test_apply_and_revert_on_a_live_server_and_bad_files_change_nothing(
        loop: dict[str, Any], tmp_path: Path) -> None:
    kind, v, tiny = loop["kind"], loop["version"], loop["tiny"]
    gguf = kind.gguf_of(v)
    config = LlamaServerConfig(model=tiny["gguf"], threads=1, log_dir=tmp_path / "live")
    with LlamaServer(config) as live:
        kind.server = live
        kind.apply(v)  # loaded (at scale 0), then raised: no other adapter
        [a] = live.lora_adapters()
        assert Path(a.path).resolve() == gguf and a.scale == 1.0
        kind.revert(None)
        assert [x.scale for x in live.lora_adapters()] == [0.0]
        kind.apply(v)
        before = live.lora_adapters()
        data = gguf.read_bytes()
        try:
            gguf.write_bytes(data[: len(data) // 2])  # truncated behind the store's back
            with pytest.raises(ArtifactError, match="changed since it was registered") as info:
                kind.apply(v)
            assert "\n" not in str(info.value)
        finally:
            gguf.write_bytes(data)
        other = tmp_path / "other.gguf"
        _wrong_base_adapter(other)
        with pytest.raises(ConfigError, match=r"does not have|do not fit|another") as info:
            live.load_lora(other)
        assert "\n" not in str(info.value)
        assert live.lora_adapters() == before  # the live adapter stays
        kind.server = None


def _wrong_base_adapter(path: Path) -> None:
    """A LoRA adapter GGUF for a model 576 wide (SmolLM2's), not the tiny one."""
    import gguf
    import numpy as np

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_string("general.type", "adapter")
    w.add_string("adapter.type", "lora")
    w.add_float32("adapter.lora.alpha", 8.0)
    w.add_tensor("blk.0.attn_q.weight.lora_a", np.zeros((4, 576), dtype=np.float32))
    w.add_tensor("blk.0.attn_q.weight.lora_b", np.zeros((576, 4), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_a_failed_training_registers_nothing(loop: dict[str, Any]) -> None:
    kind, life, store = loop["kind"], loop["life"], loop["store"]
    before = [v.version for v in life.versions()]
    bad = LoraAdapterKind(heldout(), store, base=loop["tiny"]["gguf"], root=loop["root"],
                          data=DatasetConfig(max_examples=8),
                          train=LoraTrainConfig(layers=(99,), max_steps=1, threads=1))
    from swarmlearn.errors import TrainingError

    with pytest.raises(TrainingError, match="layers") as info:
        life.register(bad.produce(ProduceContext(store=store, scope=kind.scope,
                                                 champion=None)))
    assert "\n" not in str(info.value)
    assert [v.version for v in life.versions()] == before
    dirs = AdapterDir(loop["root"])
    dirs.sweep(store, kind.scope)
    pointed = {AdapterPointer.from_version(v).directory for v in life.versions(payload=True)}
    assert set(dirs.scope_dir(kind.scope).iterdir()) == pointed


def test_the_daemon_builder_checks_its_options(loop: dict[str, Any]) -> None:
    kind = build_lora_kind(heldout(), loop["store"], base=str(loop["tiny"]["gguf"]),
                           train={"rank": 4, "max_seconds": 60}, data={"max_examples": 8})
    assert kind.train.rank == 4 and kind.data.max_examples == 8
    with pytest.raises(ConfigError, match="unknown option"):
        build_lora_kind(heldout(), loop["store"], bogus=1)
    with pytest.raises(ConfigError, match="rank"):
        build_lora_kind(heldout(), loop["store"], train={"rank": 0})


# -- the CLI ------------------------------------------------------------------------------
def test_cli_train_list_export_and_one_line_errors(
        loop: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    store, root, tiny = loop["store"].url, str(loop["root"]), loop["tiny"]
    common = ["troubleshooting", "--variant", "heldout", "--store", store]
    code, out, err = run_cli(monkeypatch, capsys, "lora", "train", *common, "--dir", root,
                             "--base", str(tiny["gguf"]), "--max-steps", "1", "--rank", "4",
                             "--max-examples", "8", "--threads", "1")
    assert code == 0, err
    assert "lora_adapter/troubleshooting[heldout] v" in out and "tokens/s" in out
    code, out, _ = run_cli(monkeypatch, capsys, "lora", "list", *common)
    assert code == 0 and "v1" in out and "candidate" in out
    peft_dir = AdapterPointer.from_version(loop["version"]).directory
    code, out, err = run_cli(monkeypatch, capsys, "lora", "export", str(peft_dir), "--base",
                          str(tiny["gguf"]), "-o", str(tmp_path / "x.gguf"))
    assert code == 0 and (tmp_path / "x.gguf").is_file(), err
    notes = tmp_path / "notes.txt"
    notes.write_text("not a model")
    for args, text in (
        (["lora", "train", *common, "--dir", root, "--base", str(notes)], "is not a model"),
        (["lora", "apply", *common, "v42", "--dir", root, "--base", str(tiny["gguf"])],
         "no version 42"),
        (["lora", "export", str(peft_dir), "--base", str(notes), "-o", str(tmp_path / "y")],
         "not a readable GGUF"),
        (["eval", "troubleshooting", "--workers", "llm", "--adapter", str(notes),
          "--no-store", "-n", "1"], "not a GGUF"),
        (["eval", "troubleshooting", "--workers", "llm", "--adapter", "v9", "--store",
          store, "-n", "1"], "no version 9"),
    ):
        code, out, err = run_cli(monkeypatch, capsys, *args)
        assert code != 0, (args, out)
        line = " ".join(err.split())
        assert text in line and len(err.strip().splitlines()) == 1, (args, err)
