"""Labeled feedback texts: reading CSV/JSONL line by line, the bundled set, seeded splits.

A data file has one example a line: JSONL objects ``{"text": …, "label": …}``
(``lang`` optional), or CSV with a header naming ``text`` and ``label``
(``lang`` optional). Every line is checked as it is read; the first bad one
is a :class:`DataError` that names the file and the line and says what is
wrong. ``label`` may be left out (or empty) where only texts are wanted
(``require_label=False``, for prediction).
"""

from __future__ import annotations

import csv
import hashlib
import importlib.resources
import json
import random
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from swarmlearn.errors import ConfigError

__all__ = [
    "BUNDLED_LABELS",
    "DataError",
    "Example",
    "Splits",
    "bundled_dataset",
    "file_digest",
    "fold_examples",
    "load_examples",
    "split_examples",
]

#: the label scheme of the bundled set (docs/feedback.md describes each label)
BUNDLED_LABELS = ("joy", "relief", "impatience", "frustration", "anger", "neutral")
_FIELDS = ("text", "label", "lang")
MAX_TEXT = 2000  # characters; longer feedback is not a remark about a task


class DataError(ConfigError):
    """A data file is malformed; the message names the file and the line."""

    def __init__(self, message: str, *, path: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}", field="data", value=path)
        self.path = path
        self.line = line


class Example(NamedTuple):
    text: str
    label: str
    lang: str = ""


class Splits(NamedTuple):
    train: list[Example]
    val: list[Example]
    test: list[Example]


def bundled_dataset() -> Path:
    """The labeled feedback set shipped with swarmlearn (English, German, Spanish)."""
    return Path(str(importlib.resources.files("swarmlearn.feedback") / "data" / "feedback.jsonl"))


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check(record: dict[str, Any], labels: Sequence[str] | None, require_label: bool,
           path: str, line: int) -> Example:
    unknown = sorted(set(record) - set(_FIELDS))
    if unknown:
        raise DataError(f"unknown field {unknown[0]!r} (known: {', '.join(_FIELDS)})",
                        path=path, line=line)
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"'text' must be a non-empty string, got {text!r}", path=path, line=line)
    if len(text) > MAX_TEXT:
        raise DataError(f"'text' is {len(text)} characters long, at most {MAX_TEXT}",
                        path=path, line=line)
    label = record.get("label", "")
    if label is None:
        label = ""
    if not isinstance(label, str):
        raise DataError(f"'label' must be a string, got {label!r}", path=path, line=line)
    label = label.strip()
    if require_label and not label:
        raise DataError("'label' is missing or empty", path=path, line=line)
    if label and labels is not None and label not in labels:
        raise DataError(f"unknown label {label!r} (expected one of {', '.join(labels)})",
                        path=path, line=line)
    lang = record.get("lang", "") or ""
    if not isinstance(lang, str):
        raise DataError(f"'lang' must be a string, got {lang!r}", path=path, line=line)
    return Example(text.strip(), label, lang.strip())


def _jsonl_records(lines: Iterable[str], path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise DataError(f"not valid JSON: {exc.msg} (column {exc.colno})",
                            path=path, line=n) from exc
        if not isinstance(record, dict):
            raise DataError(f"expected a JSON object, got {type(record).__name__}",
                            path=path, line=n)
        yield n, record


def _csv_records(lines: Iterable[str], path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise DataError(f"bad CSV header: {exc}", path=path, line=1) from exc
    header = [h.strip() for h in header]
    if "text" not in header:
        raise DataError(f"the CSV header must name a 'text' column, got {header}",
                        path=path, line=1)
    try:
        for row in reader:
            n = reader.line_num
            if not any(c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise DataError(f"expected {len(header)} columns ({', '.join(header)}), got "
                                f"{len(row)}", path=path, line=n)
            yield n, dict(zip(header, row, strict=True))
    except csv.Error as exc:
        raise DataError(f"bad CSV: {exc}", path=path, line=reader.line_num) from exc


def load_examples(
    path: str | Path, *, labels: Sequence[str] | None = None, require_label: bool = True,
) -> list[Example]:
    """Read a CSV (``.csv``) or JSONL (``.jsonl``/``.json``) file of examples, line by line."""
    p = Path(path)
    where = str(p)
    suffix = p.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".json"):
        raise DataError(f"unsupported data format {suffix or '(none)'!r}: expected .csv or "
                        ".jsonl", path=where)
    try:
        fh = p.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror or exc}", path=where) from exc
    out: list[Example] = []
    with fh:
        records = _csv_records(fh, where) if suffix == ".csv" else _jsonl_records(fh, where)
        try:
            for n, record in records:
                out.append(_check(record, labels, require_label, where, n))
        except UnicodeDecodeError as exc:
            raise DataError(f"not UTF-8 text: {exc.reason}", path=where) from exc
    if not out:
        raise DataError("no examples in the file", path=where)
    return out


def split_examples(
    examples: Sequence[Example], *, seed: int = 0, val: float = 0.2, test: float = 0.2,
) -> Splits:
    """Stratified train/validation/test split, the same for the same seed and data.

    Each label's examples are shuffled with ``random.Random(seed)`` and cut by
    the fractions (at least one validation and one test example per label
    that has three or more).
    """
    if not (0.0 <= val < 1.0 and 0.0 <= test < 1.0 and val + test < 1.0):
        raise ConfigError(f"split fractions val={val}, test={test}: each in [0, 1), sum < 1",
                          field="split", value=(val, test))
    rng = random.Random(seed)
    by_label: dict[str, list[Example]] = {}
    for e in examples:
        by_label.setdefault(e.label, []).append(e)
    splits = Splits([], [], [])
    for label in sorted(by_label):
        group = list(by_label[label])
        rng.shuffle(group)
        n = len(group)
        n_test = max(1 if n >= 3 and test > 0 else 0, round(n * test))
        n_val = max(1 if n >= 3 and val > 0 else 0, round(n * val))
        splits.test.extend(group[:n_test])
        splits.val.extend(group[n_test:n_test + n_val])
        splits.train.extend(group[n_test + n_val:])
    for part in splits:
        rng.shuffle(part)
    return splits


def fold_examples(
    examples: Sequence[Example], *, fold: int, folds: int = 5, seed: int = 0,
) -> Splits:
    """Fold ``fold`` of a stratified ``folds``-fold cross-validation.

    Each label's examples are shuffled with ``random.Random(seed)`` and dealt
    round-robin into ``folds`` parts; fold ``k`` holds out part ``k`` as the
    test split and part ``k + 1`` (mod ``folds``) as the validation split, and
    trains on the rest. Over ``k = 0 … folds - 1`` every example is in exactly
    one test split, so the test splits are disjoint (with 5 folds: 60/20/20).
    """
    if folds < 3:
        raise ConfigError(f"folds: expected >= 3 (a test, a validation and a training "
                          f"part), got {folds}", field="folds", value=folds)
    if not 0 <= fold < folds:
        raise ConfigError(f"fold: expected 0 <= fold < {folds}, got {fold}", field="fold",
                          value=fold)
    rng = random.Random(seed)
    by_label: dict[str, list[Example]] = {}
    for e in examples:
        by_label.setdefault(e.label, []).append(e)
    splits = Splits([], [], [])
    val_part = (fold + 1) % folds
    for label in sorted(by_label):
        group = list(by_label[label])
        rng.shuffle(group)
        for i, e in enumerate(group):
            k = i % folds
            (splits.test if k == fold else splits.val if k == val_part
             else splits.train).append(e)
    for examples_of in splits:
        rng.shuffle(examples_of)
    return splits
