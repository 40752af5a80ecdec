"""Data files are read line by line; a bad line is one error naming the file and the line."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from swarmlearn.errors import ConfigError
from swarmlearn.feedback import (
    BUNDLED_LABELS,
    DataError,
    Example,
    bundled_dataset,
    fold_examples,
    load_examples,
    split_examples,
)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_jsonl_and_csv_read_alike(tmp_path: Path) -> None:
    j = _write(tmp_path / "a.jsonl", '{"text": "great", "label": "joy"}\n\n'
                                     '{"text": "noch kaputt", "label": "frustration", '
                                     '"lang": "de"}\n')
    c = _write(tmp_path / "a.csv", 'text,label,lang\ngreat,joy,\n"noch kaputt",frustration,de\n')
    want = [Example("great", "joy", ""), Example("noch kaputt", "frustration", "de")]
    assert load_examples(j) == want and load_examples(c) == want


@pytest.mark.parametrize(("name", "content", "line", "what"), [
    ("b.jsonl", '{"text": "ok", "label": "neutral"}\n{"text": "x", "label": \n', 2,
     "not valid JSON"),
    ("b.jsonl", '{"text": "ok", "label": "neutral"}\n["ok"]\n', 2, "expected a JSON object"),
    ("b.jsonl", '{"text": "", "label": "joy"}\n', 1, "'text' must be a non-empty string"),
    ("b.jsonl", '{"text": "fine"}\n', 1, "'label' is missing"),
    ("b.jsonl", '{"text": "fine", "label": "glee"}\n', 1, "unknown label 'glee'"),
    ("b.jsonl", '{"text": "fine", "label": "joy", "lable": "x"}\n', 1, "unknown field 'lable'"),
    ("b.jsonl", '{"text": 3, "label": "joy"}\n', 1, "'text' must be a non-empty string"),
    ("b.csv", "text,label\nok,neutral\nfine,joy,extra\n", 3, "expected 2 columns"),
    ("b.csv", "words,label\nok,neutral\n", 1, "must name a 'text' column"),
])
def test_a_bad_line_names_file_and_line(tmp_path: Path, name: str, content: str, line: int,
                                        what: str) -> None:
    p = _write(tmp_path / name, content)
    with pytest.raises(DataError) as info:
        load_examples(p, labels=BUNDLED_LABELS)
    assert str(info.value).startswith(f"{p}:{line}: ") and what in str(info.value)
    assert info.value.line == line and info.value.path == str(p)


def test_whole_file_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read"):
        load_examples(tmp_path / "missing.jsonl")
    with pytest.raises(DataError, match="unsupported data format"):
        load_examples(_write(tmp_path / "x.txt", "hello"))
    with pytest.raises(DataError, match="no examples"):
        load_examples(_write(tmp_path / "e.jsonl", "\n\n"))
    (tmp_path / "bin.jsonl").write_bytes(b'{"text": "\xff\xfe", "label": "joy"}\n')
    with pytest.raises(DataError, match="UTF-8"):
        load_examples(tmp_path / "bin.jsonl")


def test_labels_optional_for_prediction(tmp_path: Path) -> None:
    p = _write(tmp_path / "t.jsonl", '{"text": "great"}\n')
    assert load_examples(p, require_label=False) == [Example("great", "", "")]


def test_bundled_set_is_varied_and_labeled_by_the_scheme() -> None:
    examples = load_examples(bundled_dataset(), labels=BUNDLED_LABELS)
    assert len(examples) >= 300
    by_label = Counter(e.label for e in examples)
    assert set(by_label) == set(BUNDLED_LABELS) and min(by_label.values()) >= 50
    langs = Counter(e.lang for e in examples)
    assert langs["en"] >= 200 and len(langs) >= 2
    assert len({e.text.lower() for e in examples}) == len(examples)  # no duplicates
    negated = [e for e in examples if any(w in e.text.lower().split() for w in ("not", "no"))]
    assert {e.label for e in negated} >= {"joy", "frustration", "impatience"}
    for line in bundled_dataset().read_text(encoding="utf-8").splitlines():
        assert set(json.loads(line)) == {"text", "label", "lang"}


def test_splits_are_seeded_stratified_and_disjoint() -> None:
    examples = load_examples(bundled_dataset())
    a, b = split_examples(examples, seed=0), split_examples(examples, seed=0)
    assert a == b and split_examples(examples, seed=1) != a
    assert sum(map(len, a)) == len(examples)
    texts = [set(e.text for e in part) for part in a]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])
    test_counts = Counter(e.label for e in a.test)
    assert set(test_counts.values()) == {15}  # 20 % of 75 per label
    with pytest.raises(ValueError, match="split fractions"):
        split_examples(examples, val=0.6, test=0.5)


def test_folds_hold_out_every_example_once() -> None:
    examples = load_examples(bundled_dataset())
    folds = [fold_examples(examples, fold=k, folds=5, seed=3) for k in range(5)]
    tests = [t for f in folds for t in f.test]
    assert sorted(tests) == sorted(examples)  # disjoint, and every example is tested once
    for k, f in enumerate(folds):
        assert sorted(f.train + f.val + f.test) == sorted(examples)
        assert (len(f.train), len(f.val), len(f.test)) == (270, 90, 90)
        assert set(f.val) == set(folds[(k + 1) % 5].test)  # validation is the next test part
        assert Counter(e.label for e in f.test) == {x: 15 for x in BUNDLED_LABELS}
    assert fold_examples(examples, fold=2, seed=3) == folds[2]
    with pytest.raises(ConfigError, match="fold"):
        fold_examples(examples, fold=5, folds=5)
    with pytest.raises(ConfigError, match="folds"):
        fold_examples(examples, fold=0, folds=2)
