"""Feedback classifier vs TF-IDF + logistic regression vs SetFit, in one run, same splits.

    .venv/bin/python benchmarks/feedback.py [--seeds 0] [--setfit-iterations 2] [--out r.json]
    .venv/bin/python benchmarks/feedback.py --report r.json [r2.json …]  # reprint saved runs

For each split seed the bundled set (docs/feedback.md) is split 60/20/20
(stratified). Each method trains on the training split, uses the
validation split its own way (ours: early stopping; TF-IDF: picks C;
SetFit: none, it has no early stopping) and is scored once on the held-out
test split. Macro-F1 has a 95% percentile bootstrap interval over the test
examples (resampled within each split, the per-split figures averaged);
the differences are paired bootstraps (the same resamples for both).
Prediction rates are texts/s over 1,000 bundled texts, batch 64, on the
threads given (a timing, not a pass/fail figure: the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from swarmlearn.feedback import (
    BUNDLED_LABELS,
    Example,
    bundled_dataset,
    default_encoder_dir,
    load_examples,
    macro_f1,
    split_examples,
)

LABELS = list(BUNDLED_LABELS)
ROUNDS = 2000


def _idx(labels: list[str]) -> list[int]:
    return [LABELS.index(x) for x in labels]


def _rate(predict: Any, texts: list[str]) -> float:
    predict(texts[:64])  # warm up
    t0 = time.perf_counter()
    predict(texts)
    return len(texts) / (time.perf_counter() - t0)


def run_tfidf(train: list[Example], val: list[Example], test: list[Example],
              rate_texts: list[str]) -> dict[str, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.pipeline import make_pipeline, make_union

    best: tuple[float, float, Any] | None = None
    t0 = time.perf_counter()
    for c in (1.0, 3.0, 10.0, 30.0, 100.0):  # C chosen on the validation split
        pipe = make_pipeline(
            make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                       TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)),
            LogisticRegression(C=c, max_iter=3000))
        pipe.fit([e.text for e in train], [e.label for e in train])
        score = f1_score([e.label for e in val], pipe.predict([e.text for e in val]),
                         average="macro")
        if best is None or score > best[0]:
            best = (score, c, pipe)
    assert best is not None
    pipe = best[2]
    return {"pred": _idx(list(pipe.predict([e.text for e in test]))), "train_s":
            time.perf_counter() - t0, "config": f"word 1-2 + char 2-5 TF-IDF, C={best[1]:g}",
            "rate": _rate(pipe.predict, rate_texts)}


def run_ours(train: list[Example], val: list[Example], test: list[Example],
             rate_texts: list[str], seed: int, threads: int) -> dict[str, Any]:
    from swarmlearn.feedback import FeedbackTrainer, TrainConfig

    cfg = TrainConfig(seed=seed, threads=threads)
    t0 = time.perf_counter()
    result = FeedbackTrainer(cfg).train(train, val, progress=_dots)
    clf = result.classifier
    probs = clf.probabilities([e.text for e in test])
    pred = [LABELS.index(clf.labels[int(k)]) for k in probs.argmax(axis=1)]
    return {"pred": pred, "train_s": time.perf_counter() - t0,
            "config": f"MiniLM-L6 full fine-tune, {len(result.history)} epochs "
                      f"(best {result.best_epoch}), lr {cfg.lr:g}/{cfg.head_lr:g}",
            "rate": _rate(clf.predict, rate_texts)}


def run_setfit(train: list[Example], test: list[Example], rate_texts: list[str], seed: int,
               iterations: int) -> dict[str, Any]:
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    model = SetFitModel.from_pretrained(str(default_encoder_dir()))
    data = Dataset.from_dict({"text": [e.text for e in train], "label": [e.label for e in train]})
    args = TrainingArguments(batch_size=16, num_epochs=1, num_iterations=iterations, seed=seed,
                             report_to="none")
    t0 = time.perf_counter()
    Trainer(model=model, args=args, train_dataset=data).train()
    train_s = time.perf_counter() - t0
    pred = _idx([str(x) for x in model.predict([e.text for e in test])])
    return {"pred": pred, "train_s": train_s,
            "config": f"MiniLM-L6 body, {iterations} pair iterations, 1 epoch, LR head",
            "rate": _rate(model.predict, rate_texts)}


def _dots(p: Any) -> None:
    if p.val_macro_f1 is not None:
        print(f"    epoch {p.epoch}: val macro-F1 {p.val_macro_f1:.3f}", file=sys.stderr,
              flush=True)


# -- figures -------------------------------------------------------------------------
def _resampled(truth: list[list[int]], preds: list[list[int]], rng_seed: int) -> np.ndarray:
    """Per bootstrap round: the mean over splits of macro-F1 on a resample of each split."""
    rng = np.random.default_rng(rng_seed)
    out = np.zeros(ROUNDS)
    for t, p in zip(truth, preds, strict=True):
        t_a, p_a = np.asarray(t), np.asarray(p)
        idx = rng.integers(0, len(t), size=(ROUNDS, len(t)))
        out += np.array([macro_f1(t_a[i], p_a[i], len(LABELS)) for i in idx])
    return out / len(truth)


def figures(results: dict[str, Any]) -> dict[str, Any]:
    truth = [s["truth"] for s in results["splits"]]
    methods = [m for m in ("ours", "tfidf", "setfit") if all(m in s for s in results["splits"])]
    point = {m: float(np.mean([macro_f1(np.asarray(s["truth"]), np.asarray(s[m]["pred"]),
                                        len(LABELS)) for s in results["splits"]]))
             for m in methods}
    boots = {m: _resampled(truth, [s[m]["pred"] for s in results["splits"]], 7) for m in methods}
    out: dict[str, Any] = {"methods": {}}
    for m in methods:
        lo, hi = np.quantile(boots[m], [0.025, 0.975])
        out["methods"][m] = {"macro_f1": point[m], "low": float(lo), "high": float(hi),
                             "rate": float(np.mean([s[m]["rate"] for s in results["splits"]])),
                             "train_s": float(np.mean([s[m]["train_s"]
                                                       for s in results["splits"]])),
                             "config": results["splits"][0][m]["config"]}
    for m in methods:
        if m == "ours":
            continue
        d = boots["ours"] - boots[m]  # same seeds: the same resamples for both
        lo, hi = np.quantile(d, [0.025, 0.975])
        out["methods"][m]["diff"] = {"value": point["ours"] - point[m], "low": float(lo),
                                     "high": float(hi), "p_not_better": float((d <= 0).mean())}
    return out


def print_table(results: dict[str, Any]) -> None:
    f = figures(results)
    names = {"ours": "ours (fine-tuned MiniLM)", "tfidf": "TF-IDF + logistic regression",
             "setfit": "SetFit (MiniLM)"}
    n = sum(len(s["truth"]) for s in results["splits"])
    print(f"\nheld-out test: {len(results['splits'])} split(s), seeds {results['seeds']}, "
          f"{n} test examples in all; threads {results['threads']}")
    print(f"{'method':<30} {'macro-F1 [95% CI]':<24} {'ours - it [95% CI]':<26} "
          f"{'P(ours≤it)':>10} {'texts/s':>9} {'train s':>8}")
    for m, r in f["methods"].items():
        d = r.get("diff")
        diff = f"{d['value']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]" if d else "–"
        pv = f"{d['p_not_better']:.3f}" if d else "–"
        print(f"{names[m]:<30} {r['macro_f1']:.3f} [{r['low']:.3f}, {r['high']:.3f}]   "
              f"{diff:<26} {pv:>10} {r['rate']:>9.0f} {r['train_s']:>8.0f}")
    for m, r in f["methods"].items():
        print(f"  {m}: {r['config']}")
    if results.get("setfit_skipped"):
        print(f"  setfit: skipped ({results['setfit_skipped']})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--setfit-iterations", type=int, default=2)
    ap.add_argument("--no-setfit", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("feedback_bench.json"))
    ap.add_argument("--report", type=Path, nargs="+",
                    help="Reprint the table of saved runs (their splits pooled).")
    a = ap.parse_args()
    if a.report:
        runs = [json.loads(p.read_text()) for p in a.report]
        merged = {**runs[0], "seeds": [x for r in runs for x in r["seeds"]],
                  "splits": [sp for r in runs for sp in r["splits"]]}
        print_table(merged)
        return
    import torch

    torch.set_num_threads(a.threads)
    examples = load_examples(bundled_dataset())
    rate_texts = [examples[i % len(examples)].text for i in range(1000)]
    results: dict[str, Any] = {"seeds": a.seeds, "threads": a.threads, "splits": []}
    setfit_ok = not a.no_setfit
    if setfit_ok:
        try:
            import setfit  # noqa: F401
        except ImportError as exc:
            setfit_ok = False
            results["setfit_skipped"] = f"not installed: {exc}"
    for seed in a.seeds:
        s = split_examples(examples, seed=seed)
        row: dict[str, Any] = {"seed": seed, "truth": _idx([e.label for e in s.test])}
        print(f"split {seed}: TF-IDF + LR", file=sys.stderr, flush=True)
        row["tfidf"] = run_tfidf(s.train, s.val, s.test, rate_texts)
        print(f"split {seed}: ours", file=sys.stderr, flush=True)
        row["ours"] = run_ours(s.train, s.val, s.test, rate_texts, seed, a.threads)
        if setfit_ok:
            print(f"split {seed}: SetFit", file=sys.stderr, flush=True)
            row["setfit"] = run_setfit(s.train, s.test, rate_texts, seed, a.setfit_iterations)
        results["splits"].append(row)
        a.out.write_text(json.dumps(results))
    print_table(results)


if __name__ == "__main__":
    main()
