"""Fixtures for serving tests: a tiny LoRA adapter GGUF for the bundled SmolLM2 model."""

from __future__ import annotations

from pathlib import Path

import pytest


def write_tiny_lora(path: Path, *, rank: int = 8, seed: int = 0, alpha: float = 8.0) -> Path:
    """A random LoRA adapter for SmolLM2-135M (llama arch, 30 blocks, width 576, 3 KV heads).

    It adapts ``attn_q`` (576→576) and ``attn_v`` (576→192) in every block, with
    weights large enough that scale 1 visibly changes the model's replies.
    GGUF shapes: ``lora_a`` is [in, rank], ``lora_b`` is [rank, out] (numpy
    arrays are the reverse).
    """
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", alpha)
    rng = np.random.default_rng(seed)
    for block in range(30):
        for name, n_out in (("attn_q", 576), ("attn_v", 192)):
            a = (rng.standard_normal((rank, 576)) * 0.5).astype(np.float32)
            b = (rng.standard_normal((n_out, rank)) * 0.5).astype(np.float32)
            writer.add_tensor(f"blk.{block}.{name}.weight.lora_a", a)
            writer.add_tensor(f"blk.{block}.{name}.weight.lora_b", b)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="session")
def tiny_lora(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("gguf")
    return write_tiny_lora(tmp_path_factory.mktemp("lora") / "tiny-lora.gguf")
