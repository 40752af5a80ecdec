"""The trainer on a tiny random BERT: parameters change, the loss falls, checkpoints round-trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from feedback_tiny import tiny_examples

from swarmlearn.errors import ArtifactError, ConfigError
from swarmlearn.feedback import FeedbackClassifier, FeedbackTrainer, TrainConfig, split_examples

torch = pytest.importorskip("torch")


def _config(encoder: Path, **over: object) -> TrainConfig:
    base: dict[str, object] = dict(encoder=str(encoder), epochs=6, batch_size=8, lr=2e-3,
                                   head_lr=2e-2, patience=6, threads=1, max_length=16)
    base.update(over)
    return TrainConfig(**base)  # type: ignore[arg-type]


def _encoder_state(encoder: Path) -> dict[str, torch.Tensor]:
    from transformers import AutoModel

    return {k: v.clone() for k, v in AutoModel.from_pretrained(str(encoder)).state_dict().items()}


def test_full_mode_changes_encoder_and_head_and_loss_falls(tiny_encoder: Path) -> None:
    splits = split_examples(tiny_examples(), seed=1)
    before = _encoder_state(tiny_encoder)
    seen: list[int] = []
    result = FeedbackTrainer(_config(tiny_encoder)).train(
        splits.train, splits.val, progress=lambda p: seen.append(p.step))
    after = result.classifier.model.encoder.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) > len(before) // 2, "the encoder's weights should move in full mode"
    steps = len(result.step_losses)
    per_epoch = steps // len(result.history)
    first, last = result.step_losses[:per_epoch], result.step_losses[-per_epoch:]
    assert sum(last) / len(last) < 0.7 * sum(first) / len(first)
    assert result.history[-1].train_loss < result.history[0].train_loss
    assert seen and seen[-1] == steps  # progress reached the last step
    assert result.classifier.labels == ("joy", "frustration", "neutral")  # the scheme's order


def test_frozen_mode_trains_only_the_head(tiny_encoder: Path) -> None:
    splits = split_examples(tiny_examples(), seed=2)
    before = _encoder_state(tiny_encoder)
    torch.manual_seed(0)
    result = FeedbackTrainer(_config(tiny_encoder, mode="frozen", epochs=10, patience=10)).train(
        splits.train, splits.val)
    after = result.classifier.model.encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert result.history[-1].train_loss < result.history[0].train_loss
    head = result.classifier.model.head.weight
    assert float(head.detach().abs().sum()) > 0


def test_early_stopping_keeps_the_best_epoch(tiny_encoder: Path) -> None:
    splits = split_examples(tiny_examples(), seed=3)
    result = FeedbackTrainer(_config(tiny_encoder, lr=0.0, head_lr=0.0, epochs=6,
                                     patience=1)).train(splits.train, splits.val)
    assert result.stopped_early and len(result.history) == 2 and result.best_epoch == 1


def test_checkpoint_round_trip_is_safetensors_and_json(tiny_encoder: Path, tmp_path: Path) -> None:
    splits = split_examples(tiny_examples(), seed=4)
    clf = FeedbackTrainer(_config(tiny_encoder, epochs=3)).train(splits.train, splits.val)
    texts = [e.text for e in splits.test]
    out = clf.classifier.save(tmp_path / "ckpt")
    assert clf.classifier.version != "unsaved" and len(clf.classifier.version) == 12
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert "model.safetensors" in files and "feedback.json" in files
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pkl", ".pth"))]
    config = json.loads((out / "feedback.json").read_text())
    assert config["format_version"] == 1 and config["labels"] == list(clf.classifier.labels)
    assert config["train"]["mode"] == "full" and config["history"]
    assert config["temperature"] == clf.classifier.temperature > 0
    loaded = FeedbackClassifier.load(out)
    assert loaded.version == clf.classifier.version and loaded.labels == clf.classifier.labels
    a, b = clf.classifier.probabilities(texts), loaded.probabilities(texts)
    assert abs(a - b).max() < 1e-5
    ev = loaded.evaluate(splits.test)
    assert ev.n == len(splits.test) and ev.macro_f1.low <= ev.macro_f1.value <= ev.macro_f1.high
    # saving again replaces the checkpoint whole; the same weights keep their version
    assert loaded.save(out) == out and loaded.version == clf.classifier.version


def test_bad_checkpoints_are_one_clear_error(tiny_encoder: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no feedback classifier"):
        FeedbackClassifier.load(tmp_path)
    (tmp_path / "feedback.json").write_text("{not json")
    with pytest.raises(ArtifactError, match=r"feedback\.json"):
        FeedbackClassifier.load(tmp_path)
    (tmp_path / "feedback.json").write_text(json.dumps({"format_version": 99}))
    with pytest.raises(ArtifactError, match="format_version 99"):
        FeedbackClassifier.load(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    splits = split_examples(tiny_examples(), seed=5)
    clf = FeedbackTrainer(_config(tiny_encoder, epochs=1)).train(splits.train, splits.val)
    with pytest.raises(ConfigError, match="not a feedback checkpoint"):
        clf.classifier.save(other)
    assert (other / "notes.txt").read_text() == "mine"


def test_config_and_inputs_are_checked(tiny_encoder: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ConfigError, match=r"config\.json"):
        FeedbackTrainer(TrainConfig(encoder=str(tmp_path))).train(
            tiny_examples(), tiny_examples())
    with pytest.raises(ConfigError, match="mode"):
        TrainConfig(mode="half")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="never occur in training"):
        FeedbackTrainer(_config(tiny_encoder)).train(
            [e for e in tiny_examples() if e.label == "joy"], tiny_examples())
    with pytest.raises(ConfigError, match="training and validation"):
        FeedbackTrainer(_config(tiny_encoder)).train([], [])


def test_int8_copy_classifies_alike_and_is_never_saved(tiny_encoder: Path, tmp_path: Path) -> None:
    splits = split_examples(tiny_examples(), seed=1)
    clf = FeedbackTrainer(_config(tiny_encoder)).train(splits.train, splits.val).classifier
    clf.save(tmp_path / "m")
    q = clf.to_int8()
    assert q.quantized and not clf.quantized and q.version == clf.version + "+int8"
    assert q.to_int8() is q
    texts = [e.text for e in splits.val + splits.train]
    full, small = clf.probabilities(texts), q.probabilities(texts)
    assert float(abs(full - small).max()) < 0.1  # int8 weights: close, not equal
    assert (full.argmax(axis=1) == small.argmax(axis=1)).mean() >= 0.9
    assert type(q.model.head).__module__.startswith("torch.ao.nn.quantized")
    assert isinstance(clf.model.head, torch.nn.Linear)  # the original is left as it was
    with pytest.raises(ConfigError, match="prediction only"):
        q.save(tmp_path / "q")


def test_predictions_come_back_in_the_order_given(tiny_encoder: Path) -> None:
    """Texts are batched by length; each row must still be its own text's."""
    splits = split_examples(tiny_examples(), seed=1)
    clf = FeedbackTrainer(_config(tiny_encoder, epochs=1)).train(splits.train,
                                                                 splits.val).classifier
    texts = ["great", "still broken down again error", "ok", "noted later check logs seen"]
    together = clf.probabilities(texts, batch_size=2)
    alone = [clf.probabilities([t])[0] for t in texts]
    for row, single in zip(together, alone, strict=True):
        assert float(abs(row - single).max()) < 1e-5
