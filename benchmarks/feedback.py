"""Feedback classifier vs TF-IDF + logistic regression vs SetFit: cross-validated, same folds.

    .venv/bin/python benchmarks/feedback.py [--folds 5] [--fold-seed 0] [--out r.json] [--resume]
    .venv/bin/python benchmarks/feedback.py --report r.json [r2.json …]  # reprint saved runs

The bundled set (docs/feedback.md) is cut into ``--folds`` stratified folds
(``fold_examples``): fold *k* tests on part *k*, validates on part *k + 1*
and trains on the rest (5 folds: 60/20/20), so every example is in exactly
one test split and the test splits are disjoint. Fold *k* trains with seed
*k* (ours and SetFit), so the training runs differ too. Each method trains
on the training part, uses the validation part its own way (ours: early
stopping and the softmax temperature; TF-IDF: picks C; SetFit: none, it has
no early stopping) and is scored once on the test part. Nothing is tuned on
a test part.

Figures, for each method and for ours minus each peer:

* macro-F1: the mean over folds of each fold's test macro-F1, with a 95%
  percentile bootstrap over test examples (each fold's examples resampled
  within the fold, the same resamples for both sides of a difference);
* over folds: the per-fold differences' mean with a Student-t 95% interval
  and the same interval corrected for the folds' overlapping training sets
  (Nadeau & Bengio 2003: variance × (1/K + n_test/n_train)), the
  conservative one; and in how many folds ours was ahead.

Prediction rates (texts/s over 1,000 bundled texts, length-sorted batches of
32, the model loaded once) are measured on one fold's models (``--rates-fold``,
default the last fold trained) for every method at 1 and 2 torch threads, in
``--rate-rounds`` rounds that each run every method in turn, the median kept,
so ratios between them are same-run figures. The machine is shared: absolute
rates move with the others' load; the ratios less so. Training uses
``--train-threads`` (default 1: on this shared 2-core machine a training step
took 0.8 s on 1 thread and 5.8 s on 2).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from swarmlearn._stats import t_ppf
from swarmlearn.feedback import (
    BUNDLED_LABELS,
    Example,
    bundled_dataset,
    default_encoder_dir,
    fold_examples,
    load_examples,
    macro_f1,
)

LABELS = list(BUNDLED_LABELS)
ROUNDS = 2000
RATE_TEXTS = 1000
METHODS = ("ours", "ours_int8", "tfidf", "setfit")
NAMES = {"ours": "ours: fine-tuned MiniLM-L6", "ours_int8": "ours, int8 Linear layers",
         "tfidf": "TF-IDF + logistic regression", "setfit": "SetFit (MiniLM-L6)"}


def _idx(labels: list[str]) -> list[int]:
    return [LABELS.index(x) for x in labels]


def _rate(predict: Any, texts: list[str]) -> float:
    predict(texts[:64])  # warm up
    t0 = time.perf_counter()
    predict(texts)
    return len(texts) / (time.perf_counter() - t0)


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- the methods: each returns its test predictions, its training time and a predictor --------
def run_tfidf(train: list[Example], val: list[Example], test: list[Example]) -> dict[str, Any]:
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
    return {"pred": _idx(list(pipe.predict([e.text for e in test]))),
            "train_s": time.perf_counter() - t0,
            "config": f"word 1-2 + char 2-5 TF-IDF, C={best[1]:g} (on validation)",
            "predict": pipe.predict}


def run_ours(train: list[Example], val: list[Example], test: list[Example], seed: int,
             threads: int) -> tuple[dict[str, Any], dict[str, Any]]:
    from swarmlearn.feedback import FeedbackTrainer, TrainConfig

    cfg = TrainConfig(seed=seed, threads=threads)
    t0 = time.perf_counter()
    result = FeedbackTrainer(cfg).train(train, val, progress=_epochs)
    train_s = time.perf_counter() - t0
    out = []
    for clf in (result.classifier, result.classifier.to_int8()):
        probs = clf.probabilities([e.text for e in test])
        out.append({"pred": [LABELS.index(clf.labels[int(k)]) for k in probs.argmax(axis=1)],
                    "train_s": train_s, "predict": clf.predict,
                    "config": f"full fine-tune, {len(result.history)} epochs (best "
                              f"{result.best_epoch}), lr {cfg.lr:g}/{cfg.head_lr:g}"
                              + (", then int8 dynamic quantization" if clf.quantized else "")})
    return out[0], out[1]


def run_setfit(train: list[Example], test: list[Example], seed: int,
               iterations: int) -> dict[str, Any]:
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    model = SetFitModel.from_pretrained(str(default_encoder_dir()))
    data = Dataset.from_dict({"text": [e.text for e in train], "label": [e.label for e in train]})
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="setfit-") as out_dir:  # never the cwd
        args = TrainingArguments(output_dir=out_dir, batch_size=16, num_epochs=1,
                                 num_iterations=iterations, seed=seed, report_to="none",
                                 save_strategy="no")
        Trainer(model=model, args=args, train_dataset=data).train()
    train_s = time.perf_counter() - t0
    return {"pred": _idx([str(x) for x in model.predict([e.text for e in test])]),
            "train_s": train_s,
            "config": f"MiniLM-L6 body, {iterations} pair iterations, 1 epoch, LR head",
            "predict": model.predict}


def _epochs(p: Any) -> None:
    if p.val_macro_f1 is not None:
        _log(f"    epoch {p.epoch}: val macro-F1 {p.val_macro_f1:.3f}")


def measure_rates(methods: dict[str, dict[str, Any]], texts: list[str], rounds: int) -> None:
    """Texts/s of every method at 1 and 2 threads: ``rounds`` rounds, each running every
    method in turn (so all see the same load), the median kept (same-run figures)."""
    import torch

    before = torch.get_num_threads()
    seen: dict[tuple[str, int], list[float]] = {}
    for r in range(rounds):
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for name, m in methods.items():
                rate = _rate(m["predict"], texts)
                seen.setdefault((name, threads), []).append(rate)
                _log(f"    round {r + 1}: {name} at {threads} thread(s): {rate:.0f} texts/s")
    for (name, threads), rates in seen.items():
        methods[name].setdefault("rates", {})[str(threads)] = float(np.median(rates))
        methods[name].setdefault("rate_rounds", {})[str(threads)] = rates
        methods[name]["load_average"] = os.getloadavg()[0]  # how busy the machine was
    torch.set_num_threads(before)


def rates_only(model: Path, rounds: int) -> None:
    """Prediction rates alone: a saved checkpoint (fp32 and int8) beside TF-IDF + LR fitted
    on the same training split, interleaved rounds, and the machine's load."""
    from swarmlearn.feedback import FeedbackClassifier, split_examples

    clf = FeedbackClassifier.load(model)
    data = clf.meta.get("data") or {}
    s = split_examples(load_examples(bundled_dataset()), seed=int(data.get("split_seed", 0)))
    examples = s.train + s.val + s.test
    texts = [examples[i % len(examples)].text for i in range(RATE_TEXTS)]
    live = {"ours": {"predict": clf.predict}, "ours_int8": {"predict": clf.to_int8().predict},
            "tfidf": run_tfidf(s.train, s.val, s.test)}
    load_before = os.getloadavg()[0]
    measure_rates(live, texts, rounds)
    print(f"\nprediction rates, texts/s (median of {rounds} interleaved rounds; load average "
          f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on 2 cores shared):")
    for name, m in live.items():
        print(f"  {NAMES[name]:<30} 1 thread {m['rates']['1']:>6.0f}   2 threads "
              f"{m['rates']['2']:>6.0f}   rounds {m['rate_rounds']}")
    for name in ("ours", "ours_int8"):
        print(f"  {name}/tfidf: " + ", ".join(
            f"{live[name]['rates'][k] / live['tfidf']['rates'][k]:.3f}× at {k} thread(s)"
            for k in ("1", "2")))


# -- figures -------------------------------------------------------------------------
def _resampled(truth: list[list[int]], preds: list[list[int]], rng_seed: int) -> np.ndarray:
    """Per bootstrap round: the mean over folds of macro-F1 on a resample of each fold."""
    rng = np.random.default_rng(rng_seed)
    out = np.zeros(ROUNDS)
    for t, p in zip(truth, preds, strict=True):
        t_a, p_a = np.asarray(t), np.asarray(p)
        idx = rng.integers(0, len(t), size=(ROUNDS, len(t)))
        out += np.array([macro_f1(t_a[i], p_a[i], len(LABELS)) for i in idx])
    return out / len(truth)


def _over_folds(diffs: list[float], n_test: int, n_train: int) -> dict[str, float]:
    """Mean of per-fold differences, t 95% and the Nadeau-Bengio corrected t 95%."""
    k = len(diffs)
    mean = float(np.mean(diffs))
    if k < 2:
        return {"mean": mean, "low": math.nan, "high": math.nan, "nb_low": math.nan,
                "nb_high": math.nan}
    var = float(np.var(diffs, ddof=1))
    t = t_ppf(0.975, k - 1)
    half = t * math.sqrt(var / k)
    nb_half = t * math.sqrt(var * (1.0 / k + n_test / n_train))
    return {"mean": mean, "low": mean - half, "high": mean + half, "nb_low": mean - nb_half,
            "nb_high": mean + nb_half}


def figures(results: dict[str, Any]) -> dict[str, Any]:
    """Every method over the folds it ran on; each difference over the folds both ran on."""
    folds = results["folds_done"]
    n_test = int(np.mean([len(f["truth"]) for f in folds]))
    n_train = int(np.mean([f["sizes"][0] for f in folds]))

    def f1s(m: str, fs: list[dict[str, Any]]) -> list[float]:
        return [macro_f1(np.asarray(f["truth"]), np.asarray(f[m]["pred"]), len(LABELS))
                for f in fs]

    def boots(m: str, fs: list[dict[str, Any]]) -> np.ndarray:  # seed 7: the same resamples
        return _resampled([f["truth"] for f in fs], [f[m]["pred"] for f in fs], 7)

    out: dict[str, Any] = {"methods": {}, "n_test": sum(len(f["truth"]) for f in folds)}
    for m in METHODS:
        fs = [f for f in folds if m in f]
        if not fs:
            continue
        b = boots(m, fs)
        lo, hi = np.quantile(b, [0.025, 0.975])
        timed = [f[m] for f in fs if "rate_rounds" in f[m]]  # the --rates-fold
        rates = {th: float(np.median([t["rates"][th] for t in timed]))
                 for th in ("1", "2") if timed}
        row: dict[str, Any] = {
            "folds": [f["fold"] for f in fs], "macro_f1": float(np.mean(f1s(m, fs))),
            "low": float(lo), "high": float(hi), "per_fold": f1s(m, fs), "rates": rates,
            "train_s": float(np.mean([f[m]["train_s"] for f in fs])),
            "config": fs[0][m]["config"]}
        if m != "ours":
            d = boots("ours", fs) - b
            dlo, dhi = np.quantile(d, [0.025, 0.975])
            diffs = [a - c for a, c in zip(f1s("ours", fs), f1s(m, fs), strict=True)]
            row["diff"] = {
                "value": float(np.mean(diffs)), "low": float(dlo), "high": float(dhi),
                "p_not_better": float((d <= 0).mean()), "folds_ahead": sum(x > 0 for x in diffs),
                "over_folds": _over_folds(diffs, n_test, n_train)}
        out["methods"][m] = row
    return out


def print_table(results: dict[str, Any]) -> None:
    f = figures(results)
    folds = results["folds_done"]
    print(f"\nheld-out test: {len(folds)} of {results['folds']} fold(s) (fold seed "
          f"{results['fold_seed']}), {f['n_test']} test examples in all, disjoint; training "
          f"threads {results['train_threads']}")
    print(f"{'method':<30} {'macro-F1 [95% CI]':<22} {'ours - it [bootstrap 95%]':<27} "
          f"{'over folds [t] [N-B t]':<40} {'ahead':>6} {'1 thr/s':>8} {'2 thr/s':>8} "
          f"{'train s':>8}")
    for m, r in f["methods"].items():
        d = r.get("diff")
        diff = f"{d['value']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]" if d else "–"
        of = d["over_folds"] if d else None
        folds_iv = (f"[{of['low']:+.3f}, {of['high']:+.3f}] [{of['nb_low']:+.3f}, "
                    f"{of['nb_high']:+.3f}]" if of else "–")
        ahead = f"{d['folds_ahead']}/{len(r['folds'])}" if d else "–"
        r1, r2 = (f"{r['rates'][k]:.0f}" if k in r["rates"] else "–" for k in ("1", "2"))
        print(f"{NAMES[m]:<30} {r['macro_f1']:.3f} [{r['low']:.3f}, {r['high']:.3f}] "
              f"{diff:<27} {folds_iv:<40} {ahead:>6} {r1:>8} {r2:>8} {r['train_s']:>8.0f}")
    for m, r in f["methods"].items():
        print(f"  {m}: {r['config']}; folds {r['folds']}: "
              + ", ".join(f"{x:.3f}" for x in r["per_fold"]))
    if "ours" in f["methods"]:
        ours = f["methods"]["ours"]["rates"]
        for m, r in f["methods"].items():
            if m != "ours" and r["rates"] and ours:
                print(f"  rate ratio ours/{m} (same run): "
                      + ", ".join(f"{ours[k] / r['rates'][k]:.2f}× at {k} thread(s)"
                                  for k in ("1", "2") if k in r["rates"]))
    if results.get("setfit_skipped"):
        print(f"  setfit: skipped ({results['setfit_skipped']})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--fold-seed", type=int, default=0)
    ap.add_argument("--only", type=int, nargs="+", help="Run only these folds.")
    ap.add_argument("--train-threads", type=int, default=1)
    ap.add_argument("--rates-fold", type=int,
                    help="The fold whose models' prediction rates are measured (default: the "
                         "last fold this run trains).")
    ap.add_argument("--rate-rounds", type=int, default=3,
                    help="Rounds of the interleaved rate measurement (the median is kept).")
    ap.add_argument("--setfit-iterations", type=int, default=2)
    ap.add_argument("--no-setfit", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("runs/feedback_bench.json"))
    ap.add_argument("--resume", action="store_true", help="Keep the folds already in --out.")
    ap.add_argument("--report", type=Path, nargs="+",
                    help="Reprint the table of saved runs (their folds pooled).")
    ap.add_argument("--rates-only", type=Path, metavar="MODEL",
                    help="Only measure prediction rates of this checkpoint beside TF-IDF + LR.")
    a = ap.parse_args()
    if a.rates_only:
        import torch

        torch.set_num_threads(1)
        rates_only(a.rates_only, a.rate_rounds)
        return
    if a.report:
        runs = [json.loads(p.read_text()) for p in a.report]
        print_table({**runs[0], "folds_done": [f for r in runs for f in r["folds_done"]]})
        return
    import torch

    torch.set_num_threads(a.train_threads)
    examples = load_examples(bundled_dataset())
    rate_texts = [examples[i % len(examples)].text for i in range(RATE_TEXTS)]
    results: dict[str, Any] = {"folds": a.folds, "fold_seed": a.fold_seed,
                               "train_threads": a.train_threads, "folds_done": []}
    if a.resume and a.out.is_file():
        results = json.loads(a.out.read_text())
    setfit_ok = not a.no_setfit
    if setfit_ok:
        try:
            import setfit  # noqa: F401
        except ImportError as exc:
            setfit_ok = False
            results["setfit_skipped"] = f"not installed: {exc}"
    done = {f["fold"] for f in results["folds_done"]}
    todo = [k for k in (a.only if a.only is not None else range(a.folds)) if k not in done]
    rates_fold = a.rates_fold if a.rates_fold is not None else (todo[-1] if todo else -1)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    for k in todo:
        s = fold_examples(examples, fold=k, folds=a.folds, seed=a.fold_seed)
        row: dict[str, Any] = {"fold": k, "truth": _idx([e.label for e in s.test]),
                               "sizes": [len(s.train), len(s.val), len(s.test)]}
        live: dict[str, dict[str, Any]] = {}
        _log(f"fold {k}: TF-IDF + LR")
        live["tfidf"] = run_tfidf(s.train, s.val, s.test)
        _log(f"fold {k}: ours")
        live["ours"], live["ours_int8"] = run_ours(s.train, s.val, s.test, k, a.train_threads)
        if setfit_ok:
            _log(f"fold {k}: SetFit")
            live["setfit"] = run_setfit(s.train, s.test, k, a.setfit_iterations)
        if k == rates_fold:
            _log(f"fold {k}: prediction rates")
            measure_rates(live, rate_texts, a.rate_rounds)
            torch.set_num_threads(a.train_threads)
        row.update({m: {k2: v for k2, v in r.items() if k2 != "predict"}
                    for m, r in live.items()})
        results["folds_done"].append(row)
        a.out.write_text(json.dumps(results))
        _log(f"fold {k}: " + ", ".join(
            f"{m} {macro_f1(np.asarray(row['truth']), np.asarray(row[m]['pred']), 6):.3f}"
            for m in live))
    print_table(results)


if __name__ == "__main__":
    main()
