"""A tiny random Llama-architecture model, as an HF model and as a base GGUF llama.cpp serves.

The GGUF is written here with the ``gguf`` package, following llama.cpp's
HF → GGUF conversion for the ``llama`` architecture: the rows of q and k are
permuted (``permute_rows``, llama.cpp's ``LlamaModel.permute``), every weight
is float32 (so llama.cpp and torch compute the same numbers), and the
tokenizer is the bundled SmolLM2's (the server needs one; prompts are sent as
token ids). Grouped-query attention (4 heads, 2 KV heads) exercises the k
permutation with its own head count.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from swarmlearn.serving import default_model_path
from swarmlearn.training.gguf_export import permute_rows

HIDDEN, LAYERS, HEADS, KV_HEADS, FFN = 64, 2, 4, 2, 128

_TOKENIZER_KEYS = ("tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens",
                   "tokenizer.ggml.token_type", "tokenizer.ggml.merges",
                   "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                   "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id",
                   "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_space_prefix",
                   "tokenizer.chat_template")


#: the context the GGUF declares, which llama.cpp caps each slot's context at: an LLM
#: worker's prompt is ~450 tokens (at 256 every decision was refused with HTTP 400)
CONTEXT = 2048


def tiny_config(context: int = CONTEXT) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=49152, hidden_size=HIDDEN, intermediate_size=FFN,
                       num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                       num_key_value_heads=KV_HEADS, max_position_embeddings=context,
                       rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
                       initializer_range=0.2, bos_token_id=1, eos_token_id=2, pad_token_id=2)


def tiny_model(seed: int = 0, context: int = CONTEXT) -> Any:
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    model = LlamaForCausalLM(tiny_config(context)).eval()
    with torch.no_grad():  # norms away from 1, so a mistake in them would show
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    return model


def _copy_tokenizer(writer: Any, gguf: Any) -> None:
    reader = gguf.GGUFReader(str(default_model_path()), "r")
    for key in _TOKENIZER_KEYS:
        field = reader.fields.get(key)
        if field is None:
            continue
        value = field.contents()
        vtype = field.types[0]
        if vtype == gguf.GGUFValueType.ARRAY:
            writer.add_array(key, value)
        elif vtype == gguf.GGUFValueType.STRING:
            writer.add_string(key, value)
        elif vtype == gguf.GGUFValueType.BOOL:
            writer.add_bool(key, bool(value))
        else:
            writer.add_uint32(key, int(value))


def write_base_gguf(model: Any, path: Path) -> Path:
    """``model`` (a tiny LlamaForCausalLM) as a float32 llama GGUF at ``path``."""
    import gguf
    import numpy as np

    cfg = model.config
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-llama")
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_freq_base(10000.0)
    w.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    w.add_vocab_size(cfg.vocab_size)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    _copy_tokenizer(w, gguf)
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    w.add_tensor("token_embd.weight", sd["model.embed_tokens.weight"])
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        w.add_tensor(f"blk.{i}.attn_norm.weight", sd[p + "input_layernorm.weight"])
        w.add_tensor(f"blk.{i}.attn_q.weight",
                     np.ascontiguousarray(permute_rows(sd[p + "self_attn.q_proj.weight"],
                                                       cfg.num_attention_heads)))
        w.add_tensor(f"blk.{i}.attn_k.weight",
                     np.ascontiguousarray(permute_rows(sd[p + "self_attn.k_proj.weight"],
                                                       cfg.num_key_value_heads)))
        w.add_tensor(f"blk.{i}.attn_v.weight", sd[p + "self_attn.v_proj.weight"])
        w.add_tensor(f"blk.{i}.attn_output.weight", sd[p + "self_attn.o_proj.weight"])
        w.add_tensor(f"blk.{i}.ffn_norm.weight", sd[p + "post_attention_layernorm.weight"])
        w.add_tensor(f"blk.{i}.ffn_gate.weight", sd[p + "mlp.gate_proj.weight"])
        w.add_tensor(f"blk.{i}.ffn_up.weight", sd[p + "mlp.up_proj.weight"])
        w.add_tensor(f"blk.{i}.ffn_down.weight", sd[p + "mlp.down_proj.weight"])
    w.add_tensor("output_norm.weight", sd["model.norm.weight"])
    w.add_tensor("output.weight", sd["lm_head.weight"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def save_hf(model: Any, folder: Path) -> Path:
    """``model`` and the bundled tokenizer as an HF directory (a base the trainer loads)."""
    from transformers import AutoTokenizer

    model.save_pretrained(folder)
    bundled = default_model_path()
    AutoTokenizer.from_pretrained(bundled.parent, gguf_file=bundled.name).save_pretrained(folder)
    return folder
