"""Records of the feedback package that need no torch: a prediction, the classifier protocol."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol, runtime_checkable

__all__ = ["Prediction", "TextClassifier"]


class Prediction(NamedTuple):
    label: str
    confidence: float  # the probability of ``label``
    probabilities: tuple[float, ...]  # over the classifier's labels, in their order


@runtime_checkable
class TextClassifier(Protocol):
    """What attaching feedback needs of a classifier (a fake in tests, the real one else)."""

    labels: tuple[str, ...]
    version: str

    def predict(self, texts: Sequence[str], *, batch_size: int = 64) -> list[Prediction]: ...
