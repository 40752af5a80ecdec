"""The GGUF export without torch or a server: what it writes, and what it refuses.

A PEFT adapter directory (``adapter_config.json`` + ``adapter_model.safetensors``)
and a base GGUF header are written with numpy, ``safetensors`` and ``gguf``
(``fake_gguf.py``): no model, no llama.cpp, so this runs in a second. What llama.cpp
computes with the exported file is checked against PEFT in
``test_gguf_equivalence.py``; this file checks the metadata, the tensor names,
which ``lora_b`` rows are permuted and how, and that bad input is one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fake_gguf import HEADS, HIDDEN, KV_HEADS, MODULES, RANK, base_gguf, peft_dir

from swarmlearn.errors import ArtifactError, ConfigError
from swarmlearn.training.gguf_export import check_adapter, export_gguf, gguf_name, permute_rows

np = pytest.importorskip("numpy")
gguf = pytest.importorskip("gguf")
pytest.importorskip("safetensors.numpy")


def _read(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    r = gguf.GGUFReader(str(path))
    fields = {k: f.contents() for k, f in r.fields.items() if not k.startswith("GGUF.")}
    # a tensor's data comes back in numpy order: (rows, cols) as it was written
    return fields, {t.name: np.array(t.data).reshape([int(n) for n in reversed(t.shape)])
                    for t in r.tensors}


def test_the_export_writes_llama_cpp_s_adapter_format(tmp_path: Path) -> None:
    base = base_gguf(tmp_path / "base.gguf")
    folder, peft = peft_dir(tmp_path / "peft")
    out = export_gguf(folder, base, tmp_path / "adapter.gguf")
    fields, tensors = _read(out)
    assert fields["general.architecture"] == "llama"
    assert fields["general.type"] == "adapter" and fields["adapter.type"] == "lora"
    assert fields["adapter.lora.alpha"] == pytest.approx(8.0)
    want = {f"blk.{n}.{g}.weight.lora_{s}" for n in range(2) for g in MODULES.values()
            for s in "ab"}
    assert set(tensors) == want
    for layer in range(2):
        for module, name in MODULES.items():
            stem = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            a, b = peft[f"{stem}.lora_A.weight"], peft[f"{stem}.lora_B.weight"]
            target = f"blk.{layer}.{name}.weight"
            np.testing.assert_array_equal(tensors[f"{target}.lora_a"], a)  # A is never permuted
            heads = {"q_proj": HEADS, "k_proj": KV_HEADS}.get(module)
            expect = permute_rows(b, heads) if heads else b  # q by heads, k by KV heads
            np.testing.assert_array_equal(tensors[f"{target}.lora_b"], expect)
    info = check_adapter(out, base)
    assert (info.rank, info.alpha, info.tensors) == (RANK, 8.0, 16)
    assert not list(tmp_path.glob("*.tmp"))


def test_permute_rows_interleaves_each_head_s_rotary_halves() -> None:
    """llama.cpp's HF → GGUF q/k permutation (``LlamaModel.permute``): within each head of
    ``d`` rows, row ``i`` of the first half goes to ``2i`` and row ``d/2 + i`` to
    ``2i + 1`` — written here as that index map, not as the reshape it is built from."""
    rows, heads = 24, 3
    d = rows // heads
    b = np.arange(rows * 2).reshape(rows, 2)
    got = permute_rows(b, heads)
    for h in range(heads):
        for i in range(d // 2):
            np.testing.assert_array_equal(got[h * d + 2 * i], b[h * d + i])
            np.testing.assert_array_equal(got[h * d + 2 * i + 1], b[h * d + d // 2 + i])
    with pytest.raises(ArtifactError, match="cannot permute"):
        permute_rows(np.zeros((10, 2)), 3)


def test_peft_names_map_to_base_tensor_names() -> None:
    assert gguf_name("base_model.model.model.layers.7.self_attn.k_proj.lora_B.weight") == (
        "blk.7.attn_k.weight", "B")
    assert gguf_name("base_model.model.model.layers.0.mlp.down_proj.lora_A.default.weight") == (
        "blk.0.ffn_down.weight", "A")
    with pytest.raises(ArtifactError, match="not a LoRA weight"):
        gguf_name("base_model.model.model.embed_tokens.lora_embedding_A")


def _one_line(error: type[Exception], match: str, *args: Any) -> None:
    with pytest.raises(error, match=match) as info:
        export_gguf(*args)
    assert "\n" not in str(info.value), str(info.value)


def test_bad_adapters_are_one_line_and_write_nothing(tmp_path: Path) -> None:
    base = base_gguf(tmp_path / "base.gguf")
    out = tmp_path / "out.gguf"
    truncated, _ = peft_dir(tmp_path / "truncated")
    data = (truncated / "adapter_model.safetensors").read_bytes()
    (truncated / "adapter_model.safetensors").write_bytes(data[: len(data) // 2])
    _one_line(ArtifactError, "cannot read", truncated, base, out)
    no_config, _ = peft_dir(tmp_path / "no-config")
    (no_config / "adapter_config.json").unlink()
    _one_line(ArtifactError, "no readable adapter_config.json", no_config, base, out)
    not_lora, _ = peft_dir(tmp_path / "not-lora", config={"peft_type": "IA3"})
    _one_line(ArtifactError, "not a PEFT LoRA config", not_lora, base, out)
    dora, _ = peft_dir(tmp_path / "dora", config={"r": RANK, "lora_alpha": 8,
                                                  "use_dora": True})
    _one_line(ArtifactError, "use_dora", dora, base, out)
    half, _ = peft_dir(tmp_path / "half", drop="base_model.model.model.layers.1.self_attn."
                                                 "v_proj.lora_B.weight")
    _one_line(ArtifactError, r"blk\.1\.attn_v\.weight has lora_A only", half, base, out)
    wide, _ = peft_dir(tmp_path / "wide", hidden=2 * HIDDEN)  # trained on another base
    _one_line(ArtifactError, "does not fit the base", wide, base, out)
    good, _ = peft_dir(tmp_path / "good")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a model")
    _one_line(ArtifactError, "not a readable GGUF", good, notes, out)
    assert not out.exists() and not list(tmp_path.glob("*.tmp"))


def test_check_adapter_refuses_a_file_of_another_base(tmp_path: Path) -> None:
    small = base_gguf(tmp_path / "small.gguf")
    big = base_gguf(tmp_path / "big.gguf", hidden=2 * HIDDEN)
    folder, _ = peft_dir(tmp_path / "peft", hidden=2 * HIDDEN)
    adapter = export_gguf(folder, big, tmp_path / "big-adapter.gguf")
    assert check_adapter(adapter, big).rank == RANK
    with pytest.raises(ConfigError, match="another base") as info:
        check_adapter(adapter, small)
    assert "\n" not in str(info.value)
