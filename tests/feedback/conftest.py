"""A tiny random BERT (built here, in seconds) for the feedback tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from feedback_tiny import WORDS

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-layer, 32-wide BERT with a word-level vocabulary, saved as safetensors."""
    import torch

    torch.set_num_threads(1)
    from transformers import BertConfig, BertModel, BertTokenizerFast

    d = tmp_path_factory.mktemp("tiny_bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(
        {w for ws in WORDS.values() for w in ws})]
    BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}).save_pretrained(str(d))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(str(d))
    return d
