"""A llama base GGUF header and PEFT LoRA adapter directories made with numpy alone.

No model, no torch, no server: shapes are what the export and the checks read
(``serving.check_lora`` reads only the base's header), so these files stand in
for a base model and trained adapters wherever the numbers themselves do not
matter. Four heads and two KV heads, so k has its own head count.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HIDDEN, HEADS, KV_HEADS, RANK = 64, 4, 2, 4
#: the HF attention modules adapted → their GGUF base tensor
MODULES = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output"}


def _rows(module: str, hidden: int) -> int:
    kv = hidden // HEADS * KV_HEADS  # k and v rows under grouped-query attention
    return hidden if module in ("q_proj", "o_proj") else kv


def base_gguf(path: Path, hidden: int = HIDDEN) -> Path:
    """A llama base GGUF with the attention weights of two layers (zeros; shapes matter)."""
    import gguf
    import numpy as np

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_uint32("llama.attention.head_count", HEADS)
    w.add_uint32("llama.attention.head_count_kv", KV_HEADS)
    for layer in range(2):
        for module, name in MODULES.items():
            w.add_tensor(f"blk.{layer}.{name}.weight",
                         np.zeros((_rows(module, hidden), hidden), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def peft_dir(folder: Path, *, hidden: int = HIDDEN, drop: str = "", seed: int = 0,
             config: dict[str, Any] | None = None) -> tuple[Path, dict[str, Any]]:
    """A PEFT LoRA adapter directory on both layers' q/k/v/o (random A and B)."""
    import numpy as np
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    tensors = {}
    for layer in range(2):
        for module in MODULES:
            stem = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            tensors[f"{stem}.lora_A.weight"] = rng.standard_normal((RANK, hidden), np.float32)
            tensors[f"{stem}.lora_B.weight"] = rng.standard_normal(
                (_rows(module, hidden), RANK), np.float32)
    if drop:
        del tensors[drop]
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    cfg = config if config is not None else {"r": RANK, "lora_alpha": 8,
                                             "target_modules": list(MODULES)}
    (folder / "adapter_config.json").write_text(json.dumps(cfg))
    return folder, tensors


def register_version(life: Any, root: Path, base: Path, seed: int) -> tuple[int, Path]:
    """A version of ``life``'s scope as ``LoraAdapterKind.produce`` leaves it: a settled
    directory (random PEFT weights exported for ``base``), its JSON pointer registered."""
    from swarmlearn.lifecycle import Lineage, Produced
    from swarmlearn.llm.prompt import PROMPT_VERSION
    from swarmlearn.training._base import check_base
    from swarmlearn.training.adapters import AdapterDir, AdapterPointer, sha256_file
    from swarmlearn.training.gguf_export import export_gguf

    dirs = AdapterDir(root)
    run = dirs.staging(life.scope)
    peft_dir(run, seed=seed)
    export_gguf(run, base, run / "adapter.gguf")
    folder = dirs.settle(run, life.scope)
    pointer = AdapterPointer(directory=folder.resolve(),
                             gguf_sha256=sha256_file(folder / "adapter.gguf"), base=str(base),
                             base_fingerprint=check_base(base).fingerprint(),
                             prompt_version=PROMPT_VERSION)
    (folder / "adapter.json").write_bytes(pointer.to_bytes())
    v = life.register(Produced(payload=pointer.to_bytes(), summary={"directory": str(folder)},
                               lineage=Lineage(metrics={"examples": 10, "tokens_per_s": 1.0})))
    return v.version, pointer.gguf
