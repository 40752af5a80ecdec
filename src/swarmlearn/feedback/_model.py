"""The network: a Hugging Face encoder, mean pooling over its tokens, a linear head.

Importing this module imports torch and transformers (the ``feedback``
extra); ``swarmlearn.feedback`` imports it only when a model is used.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from swarmlearn._extras import require

# models come from a path or an installed package, never from a hub (docs/architecture.md)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
require("torch", "feedback")
require("transformers", "feedback")

import torch  # noqa: E402
from torch import nn  # noqa: E402

# the torch modules of this package import torch from here, after the check above
__all__ = ["Batch", "EncoderClassifier", "load_encoder", "mean_pool", "nn", "tokenize", "torch"]

logger = logging.getLogger(__name__)

Batch = dict[str, torch.Tensor]


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of the token vectors ``hidden[b, t, :]`` where ``mask[b, t]`` is 1."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)


class EncoderClassifier(nn.Module):
    """``head(dropout(mean_pool(encoder(tokens))))`` → one logit per label."""

    def __init__(self, encoder: nn.Module, n_labels: int, *, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        config: Any = encoder.config
        hidden = int(config.hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, n_labels)

    def embed(self, batch: Batch) -> torch.Tensor:
        out = self.encoder(**batch)
        return mean_pool(out.last_hidden_state, batch["attention_mask"])

    def classify(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(pooled))  # type: ignore[no-any-return]

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.classify(self.embed(batch))


def load_encoder(path: Path, *, weights: bool = True) -> tuple[Any, nn.Module]:
    """The tokenizer and encoder of an HF directory; ``weights=False``: the architecture
    only (randomly initialised, for a checkpoint's weights to be loaded into)."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    if weights:
        encoder = AutoModel.from_pretrained(str(path))
    else:
        encoder = AutoModel.from_config(  # type: ignore[no-untyped-call]
            AutoConfig.from_pretrained(str(path)))
    return tokenizer, encoder


def tokenize(tokenizer: Any, texts: list[str], max_length: int) -> Batch:
    enc = tokenizer(texts, padding=True, truncation=True, max_length=max_length,
                    return_tensors="pt")
    return {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
