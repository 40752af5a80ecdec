"""A question-answering environment over JSONL: exact match and token F1.

Each line is an object with ``question`` (text), ``answers`` (a non-empty list
of acceptable answers, or one string) and optionally ``context``, ``id`` and
``split`` (``train`` / ``val`` / ``test``). Lines without ``split`` are dealt
to the splits by a seeded shuffle in the proportions of ``QAConfig``. A line
that is not JSON or lacks a field is a :class:`ConfigError` naming the file
and line, before any call is made.
"""

from __future__ import annotations

import json
import random
import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from swarmlearn._config import check_range
from swarmlearn.errors import ConfigError
from swarmlearn.llm import CompletionRequest, LLMClient, Message
from swarmlearn.skills._env import Split, Trajectory

__all__ = ["QAConfig", "QAEnv", "QAItem", "exact_match", "normalize_answer", "token_f1"]

QA_SYSTEM = "Answer the question. Reply with the answer only, no explanation."


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (the SQuAD rule)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, answers: Sequence[str]) -> bool:
    p = normalize_answer(prediction)
    return any(p == normalize_answer(a) for a in answers)


def _f1(prediction: str, answer: str) -> float:
    p, a = normalize_answer(prediction).split(), normalize_answer(answer).split()
    common = sum((Counter(p) & Counter(a)).values())
    if not p or not a:
        return float(p == a)
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(a)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, answers: Sequence[str]) -> float:
    return max((_f1(prediction, a) for a in answers), default=0.0)


@dataclass(frozen=True, kw_only=True, slots=True)
class QAItem:
    id: int
    question: str
    answers: tuple[str, ...]
    context: str = ""
    split: Split | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class QAConfig:
    path: str
    val_fraction: float = 0.3
    test_fraction: float = 0.3
    seed: int = 0
    max_tokens: int = 32

    def __post_init__(self) -> None:
        check_range("val_fraction", self.val_fraction, lo=0.0, hi=1.0)
        check_range("test_fraction", self.test_fraction, lo=0.0, hi=1.0)
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ConfigError("val_fraction + test_fraction must be < 1 (train needs tasks)",
                              field="val_fraction", value=self.val_fraction)
        check_range("max_tokens", self.max_tokens, lo=1)


def _item(line: str, n: int, where: str) -> QAItem:
    try:
        d = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}:{n}: not JSON ({exc.msg})", field="path") from exc
    if not isinstance(d, dict):
        raise ConfigError(f"{where}:{n}: expected an object", field="path")
    for key in ("question", "answers"):
        if key not in d:
            raise ConfigError(f"{where}:{n}: missing field {key!r}", field=key)
    answers = [d["answers"]] if isinstance(d["answers"], str) else d["answers"]
    if not isinstance(answers, list) or not answers or not all(
            isinstance(a, str) for a in answers):
        raise ConfigError(f"{where}:{n}: 'answers' must be a string or a non-empty list of "
                          "strings", field="answers")
    if not isinstance(d["question"], str) or not d["question"].strip():
        raise ConfigError(f"{where}:{n}: 'question' must be a non-empty string", field="question")
    split = d.get("split")
    if split is not None and split not in {s.value for s in Split}:
        raise ConfigError(f"{where}:{n}: split {split!r} is not train, val or test",
                          field="split")
    return QAItem(id=int(d.get("id", n)), question=d["question"], answers=tuple(answers),
                  context=str(d.get("context", "")),
                  split=Split(split) if split is not None else None)


def load_items(path: str | Path) -> list[QAItem]:
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read ({exc.strerror})", field="path") from exc
    items = [_item(line, n, str(p)) for n, line in enumerate(lines, 1) if line.strip()]
    ids = [i.id for i in items]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{p}: ids must be unique", field="id")
    if not items:
        raise ConfigError(f"{p}: no items", field="path")
    return items


class QAEnv:
    """:class:`~swarmlearn.skills.SkillEnv` over QA items (module docstring)."""

    min_cost: float | None = 0.0  # cost = 1 - F1, and an exact match has F1 1

    def __init__(self, items: Sequence[QAItem], config: QAConfig, name: str = "qa") -> None:
        self.name = name
        self.config = config
        self._items = {i.id: i for i in items}
        loose = [i.id for i in items if i.split is None]
        random.Random(config.seed).shuffle(loose)
        n_val = round(len(loose) * config.val_fraction)
        n_test = round(len(loose) * config.test_fraction)
        dealt = {**{t: Split.VAL for t in loose[:n_val]},
                 **{t: Split.TEST for t in loose[n_val:n_val + n_test]},
                 **{t: Split.TRAIN for t in loose[n_val + n_test:]}}
        self._splits: dict[Split, list[int]] = {s: [] for s in Split}
        for i in items:
            self._splits[i.split or dealt[i.id]].append(i.id)
        for s in (Split.TRAIN, Split.VAL):
            if not self._splits[s]:
                raise ConfigError(f"{config.path}: the {s.value} split is empty", field="path")

    @classmethod
    def from_config(cls, config: QAConfig) -> QAEnv:
        return cls(load_items(config.path), config, name=Path(config.path).stem)

    def tasks(self, split: Split) -> Sequence[int]:
        return tuple(self._splits[split])

    def request(self, task: int, skill: str) -> CompletionRequest:
        item = self._items[task]
        system = QA_SYSTEM if not skill.strip() else f"{QA_SYSTEM}\n\n# Skill\n{skill.strip()}"
        user = (f"Context: {item.context}\n\n" if item.context else "") + \
            f"Question: {item.question}\nAnswer:"
        return CompletionRequest(messages=(Message.system(system), Message.user(user)),
                                 max_tokens=self.config.max_tokens, temperature=0.0,
                                 seed=self.config.seed, purpose="skill-target")

    def run(self, task: int, skill: str, client: LLMClient) -> Trajectory:
        item = self._items[task]
        answer = client.complete(self.request(task, skill)).text.strip()
        answer = answer.splitlines()[0].strip() if answer else ""
        f1 = token_f1(answer, item.answers)
        solved = exact_match(answer, item.answers)
        text = (f"Question: {item.question}\n"
                + (f"Context: {item.context[:600]}\n" if item.context else "")
                + f"Model answer: {answer[:300]!r}\nReference: {item.answers[0]!r}\n"
                f"Exact match: {solved}, token F1: {f1:.2f}")
        return Trajectory(task=task, solved=solved, score=f1, cost=1.0 - f1, text=text)
