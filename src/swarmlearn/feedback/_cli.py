"""``swarmlearn feedback``: train, evaluate and use the feedback classifier.

    swarmlearn feedback train [--data FILE] [--encoder DIR] [--mode full|frozen] [--out DIR]
    swarmlearn feedback eval [--model DIR] [--data FILE] [--split test] [--report out.html]
    swarmlearn feedback predict "great, that fixed it" "no, still down"
    swarmlearn feedback attach SESSION TASK "took forever, but it works" [--rewards r.toml]
    swarmlearn feedback list [--session N]
    swarmlearn feedback hidden SCENARIO [--runs 5]     # the outcome hidden: learning from words

Mounted by :mod:`swarmlearn.cli` as ``feedback``. Nothing heavy is imported
until a command runs. Errors are :class:`~swarmlearn.errors.SwarmlearnError`\\ s;
the main entry point prints one line and exits with the error's code.
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from swarmlearn._config import check_output_path
from swarmlearn.errors import ConfigError
from swarmlearn.feedback._data import (
    Example,
    bundled_dataset,
    file_digest,
    load_examples,
    split_examples,
)
from swarmlearn.feedback._encoder import check_checkpoint_target
from swarmlearn.ops.progress import CliProgress
from swarmlearn.ops.report import print_rows, terminal_console

if TYPE_CHECKING:
    from swarmlearn.feedback._classifier import FeedbackClassifier
    from swarmlearn.feedback._metrics import Evaluation
    from swarmlearn.feedback._trainer import TrainProgress

__all__ = ["DEFAULT_MODEL_DIR", "feedback_app"]

DEFAULT_MODEL_DIR = Path(".swarmlearn/feedback/model")

feedback_app = typer.Typer(no_args_is_help=True,
                           help="Feedback → reward: train, evaluate and apply the emotion "
                                "classifier that turns people's words into episode outcomes.")
console = terminal_console()
err_console = terminal_console(stderr=True)

ModelOpt = Annotated[Path, typer.Option("--model", help="Checkpoint directory.")]
DataOpt = Annotated[Path | None, typer.Option(
    "--data", help="CSV or JSONL with text and label (default: the bundled set).")]
ThreadsOpt = Annotated[int, typer.Option("--threads", min=1, help="torch threads.")]
#: 1 for training: on this shared 2-core machine a training step took 0.8 s on one thread and
#: 5.8 s on two (the threads wait for each other whenever another process holds a core)
TRAIN_THREADS = 1
StoreOpt = Annotated[str | None, typer.Option(
    "--store", help="Store URL or path (default: $SWARMLEARN_STORE or .swarmlearn/swarmlearn.db).")]


def _threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def _load(model: Path, threads: int) -> FeedbackClassifier:
    if not (model / "feedback.json").is_file():
        raise ConfigError(f"--model: no feedback classifier at {model} (feedback.json missing); "
                          "train one with `swarmlearn feedback train`", field="model",
                          value=str(model))
    _threads(threads)
    from swarmlearn.feedback._classifier import FeedbackClassifier

    return FeedbackClassifier.load(model)


def _progress_bar(*, stages: bool) -> CliProgress:
    """Steps or sessions on stderr; ``stages``: a new info is a new stage (a line at once),
    else live figures (a loss) shown at the interval."""
    return CliProgress(err_console, rate=False, stages=stages)


def _figures_line(name: str, ev: Evaluation) -> str:
    return (f"{name}: macro-F1 {ev.macro_f1} · accuracy {ev.accuracy} · {ev.n} examples "
            "(95% bootstrap intervals)")


@feedback_app.command("train")
def train_cmd(
    data: DataOpt = None,
    encoder: Annotated[Path | None, typer.Option(
        "--encoder", help="HF encoder directory (default: bundled all-MiniLM-L6-v2).")] = None,
    out: Annotated[Path, typer.Option("--out", help="Checkpoint directory.")] = DEFAULT_MODEL_DIR,
    mode: Annotated[str, typer.Option(
        help="full (encoder and head) | frozen (head only)")] = "full",
    epochs: Annotated[int, typer.Option(min=1)] = 12,
    batch_size: Annotated[int, typer.Option(min=1)] = 16,
    lr: Annotated[float, typer.Option(help="Encoder learning rate (full mode).")] = 8e-5,
    head_lr: Annotated[float, typer.Option(help="Head learning rate.")] = 3e-3,
    patience: Annotated[int, typer.Option(min=1, help="Early stopping patience (epochs).")] = 3,
    seed: Annotated[int, typer.Option(help="Training and split seed.")] = 0,
    val: Annotated[float, typer.Option(help="Validation share.")] = 0.2,
    test: Annotated[float, typer.Option(help="Held-out test share.")] = 0.2,
    threads: ThreadsOpt = TRAIN_THREADS,
) -> None:
    """Fine-tune the classifier (AdamW, linear warmup, early stopping on validation)."""
    from swarmlearn._config import from_mapping

    data_path = data or bundled_dataset()
    examples = load_examples(data_path)
    splits = split_examples(examples, seed=seed, val=val, test=test)
    check_checkpoint_target(out, field="--out")
    from swarmlearn.feedback._trainer import FeedbackTrainer, TrainConfig

    cfg = from_mapping(TrainConfig, {
        "encoder": str(encoder) if encoder else "", "mode": mode, "epochs": epochs,
        "batch_size": batch_size, "lr": lr, "head_lr": head_lr, "patience": patience,
        "seed": seed, "threads": threads})
    err_console.print(f"training on {len(splits.train)} examples, validating on "
                      f"{len(splits.val)}, holding out {len(splits.test)} "
                      f"({escape(str(data_path))}, split seed {seed}, mode {cfg.mode})")
    with _progress_bar(stages=False) as bar:
        task = bar.add("training")
        best = [float("nan")]

        def show(p: TrainProgress) -> None:
            if p.val_macro_f1 is not None:
                best[0] = p.val_macro_f1 if math.isnan(best[0]) else max(best[0], p.val_macro_f1)
            info = f"epoch {p.epoch}/{p.epochs} · loss {p.loss:.3f}"
            if not math.isnan(best[0]):
                info += f" · best val macro-F1 {best[0]:.3f}"
            bar.update(task, completed=p.step, total=p.total_steps, info=info)

        result = FeedbackTrainer(cfg).train(splits.train, splits.val, progress=show)
    clf = result.classifier
    test_ev = clf.evaluate(splits.test) if splits.test else None
    clf.meta["data"] = {"path": str(data_path), "sha256": file_digest(Path(data_path)),
                        "split_seed": seed, "val": val, "test": test,
                        "sizes": [len(splits.train), len(splits.val), len(splits.test)]}
    clf.meta["metrics"] = {"test": test_ev.to_dict() if test_ev else None}
    path = clf.save(out)
    stop = " (stopped early)" if result.stopped_early else ""
    console.print(f"best epoch {result.best_epoch} of {len(result.history)}{stop}, "
                  f"{result.seconds:.0f} s; saved {escape(str(path))} version {clf.version}")
    if test_ev is not None:
        console.print(_figures_line("held-out test", test_ev))


def _eval_examples(clf: FeedbackClassifier, data: Path | None,
                   split: str) -> tuple[list[Example], str]:
    trained_on: dict[str, Any] = clf.meta.get("data") or {}
    path = data or (Path(trained_on["path"]) if trained_on.get("path")
                    and Path(trained_on["path"]).is_file() else bundled_dataset())
    examples = load_examples(path, labels=clf.labels)
    if split == "all":
        return examples, f"{path} (all)"
    if split not in ("train", "val", "test"):
        raise ConfigError(f"--split: expected train, val, test or all, got {split!r}",
                          field="split", value=split)
    same = trained_on.get("sha256") == file_digest(path)
    if not same:
        err_console.print(f"[yellow]{escape(str(path))} is not the data this model was trained "
                          "on: its split may overlap the training examples (use --split all)")
    parts = split_examples(examples, seed=int(trained_on.get("split_seed", 0)),
                           val=float(trained_on.get("val", 0.2)),
                           test=float(trained_on.get("test", 0.2)))
    return list(getattr(parts, split)), f"{path} ({split} split, seed " \
                                         f"{trained_on.get('split_seed', 0)})"


@feedback_app.command("eval")
def eval_cmd(
    model: ModelOpt = DEFAULT_MODEL_DIR,
    data: DataOpt = None,
    split: Annotated[str, typer.Option(help="train | val | test | all")] = "test",
    report: Annotated[Path | None, typer.Option("--report", help="Write an HTML report.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    threads: ThreadsOpt = 2,
) -> None:
    """Accuracy, macro-F1 (bootstrap intervals), per-label F1 and the confusion matrix."""
    if report is not None:
        check_output_path(str(report), field="--report")
    clf = _load(model, threads)
    examples, what = _eval_examples(clf, data, split)
    ev = clf.evaluate(examples)
    if as_json:
        typer.echo(json.dumps({"model": str(model), "version": clf.version, "data": what,
                               **ev.to_dict()}))
    else:
        headers = ["true \\ predicted", *ev.labels, "F1"]
        print_rows(console, _figures_line(what, ev), headers,
                   [[label, *map(str, row), f"{f1:.3f}"]
                    for label, row, f1 in zip(ev.labels, ev.confusion, ev.f1, strict=True)],
                   keep=headers, right=headers[1:])
    if report is not None:
        from swarmlearn.feedback._report import evaluation_html

        about = {"model": str(model), "version": clf.version, "data": what,
                 "encoder": (clf.meta.get("encoder") or {}).get("source", ""),
                 "history": clf.meta.get("history") or []}
        page = evaluation_html(ev, title="Feedback classifier", about=about)
        console.print(f"report: {escape(str(page.write(report)))}")


@feedback_app.command("predict")
def predict_cmd(
    texts: Annotated[list[str] | None, typer.Argument(help="Texts to classify.")] = None,
    file: Annotated[Path | None, typer.Option(
        "--file", help="CSV or JSONL with a text column (labels optional).")] = None,
    model: ModelOpt = DEFAULT_MODEL_DIR,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
    int8: Annotated[bool, typer.Option(
        "--int8", help="int8 Linear layers: about 2-3× as fast (docs/feedback.md: its cost).")
    ] = False,
    threads: ThreadsOpt = 2,
) -> None:
    """Label and confidence of each text."""
    items = list(texts or [])
    if file is not None:
        items += [e.text for e in load_examples(file, require_label=False)]
    if not items or not all(t.strip() for t in items):
        raise ConfigError("predict: give one or more non-empty texts (or --file)", field="texts")
    clf = _load(model, threads)
    if int8:
        clf = clf.to_int8()
    preds = clf.predict(items)
    if as_json:
        for text, p in zip(items, preds, strict=True):
            typer.echo(json.dumps({"text": text, "label": p.label,
                                   "confidence": round(p.confidence, 4)}, ensure_ascii=False))
        return
    print_rows(console, None, ["text", "label", "confidence"],
               [[text, p.label, f"{p.confidence:.2f}"]
                for text, p in zip(items, preds, strict=True)],
               keep=["label", "confidence"], right=["confidence"])


@feedback_app.command("attach")
def attach_cmd(
    session: Annotated[int, typer.Argument(help="Session id.")],
    task: Annotated[str, typer.Argument(help="Task name (e.g. troubleshooting:17) or episode.")],
    text: Annotated[str, typer.Argument(help="What the person said about the task.")],
    model: ModelOpt = DEFAULT_MODEL_DIR,
    rewards: Annotated[Path | None, typer.Option(
        "--rewards", help="Emotion → reward TOML (default: the bundled rewards.toml).")] = None,
    store: StoreOpt = None,
    threads: ThreadsOpt = 2,
) -> None:
    """Classify TEXT about TASK of SESSION and record it as a feedback event."""
    from swarmlearn.feedback._attach import attach_feedback
    from swarmlearn.feedback._reward import load_reward_mapping
    from swarmlearn.store import open_store

    mapping = load_reward_mapping(rewards)
    clf = _load(model, threads)
    mapping.check_covers(clf.labels)
    with contextlib.closing(open_store(store)) as st:
        ev = attach_feedback(st, session, task, text, classifier=clf, mapping=mapping)
    verdict = "applied" if ev.applied else "recorded, not applied"
    if not ev.applied and ev.confidence < mapping.min_confidence:
        verdict += f" (confidence below {mapping.min_confidence:.2f})"
    console.print(f"session {session} {escape(ev.task)}: {ev.label} ({ev.confidence:.2f}) → "
                  f"{ev.outcome.kind.value} {ev.reward:.2f}, {verdict}; classifier {ev.classifier}")


@feedback_app.command("list")
def list_cmd(
    session: Annotated[int | None, typer.Option(help="Only this session.")] = None,
    store: StoreOpt = None,
) -> None:
    """The recorded feedback events, oldest first."""
    from swarmlearn.store import SqlStore

    with contextlib.closing(SqlStore(store, read_only=True)) as st:
        if not st.exists:
            console.print("no feedback yet: no store")
            return
        rows = st.feedback(session=session)
    if not rows:
        console.print("no feedback yet")
        return
    headers = ["session", "task", "label", "conf.", "outcome", "reward", "applied", "text"]
    print_rows(console, None, headers,
               [[str(f.session), f.task, f.label, f"{f.confidence:.2f}", f.outcome.kind.value,
                 f"{f.reward:.2f}", "yes" if f.applied else "no", f.text] for f in rows],
               keep=headers[:7], right=["session", "conf.", "reward"])


@feedback_app.command("hidden")
def hidden_cmd(
    scenario: Annotated[str, typer.Argument(help="Scenario file or built-in name.")],
    variant: Annotated[str, typer.Option(help="Scenario variant.")] = "heldout",
    runs: Annotated[int, typer.Option("-n", "--runs", min=2,
                                      help="Independent learning runs per condition.")] = 5,
    sessions: Annotated[int, typer.Option(min=1, help="Sessions per run.")] = 20,
    episodes: Annotated[int, typer.Option(min=1, help="Tasks per session.")] = 10,
    model: ModelOpt = DEFAULT_MODEL_DIR,
    rewards: Annotated[Path | None, typer.Option(
        "--rewards", help="Emotion → reward TOML (default: the bundled rewards.toml).")] = None,
    int8: Annotated[bool, typer.Option("--int8", help="Classify with int8 Linear layers.")] = False,
    silence: Annotated[float, typer.Option(
        help="Share of episodes the simulated person says nothing about.")] = 0.0,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write JSON.")] = None,
    threads: ThreadsOpt = 1,
) -> None:
    """The environment's outcome hidden: the swarm learns only from classified feedback.

    Three conditions, each a learning proof (on vs off, same tasks): the
    environment's outcome; hidden, with a simulated person's words about each
    task (held-out texts of the matching emotion) classified and mapped to an
    outcome; hidden with no words at all (the control). Success and actions
    are measured on the environment's outcome.
    """
    from swarmlearn.core.scenario import load_scenario
    from swarmlearn.feedback._reward import load_reward_mapping
    from swarmlearn.feedback._simulate import CONDITIONS, SimulatedPerson, hidden_signal_study
    from swarmlearn.learn.loop import LearningRunConfig

    if output is not None:
        check_output_path(str(output), field="--output")
    cfg = LearningRunConfig(sessions=sessions, episodes=episodes, runs=runs, trials=0,
                            last=min(5, sessions))
    person = _person(silence)
    sc = load_scenario(scenario, variant="" if variant == "base" else variant)
    mapping = load_reward_mapping(rewards)
    clf = _load(model, threads)
    mapping.check_covers(clf.labels)
    texts, what = _eval_examples(clf, None, "test")
    SimulatedPerson(texts, person)  # the words cover every emotion, or one line now
    if int8:
        clf = clf.to_int8()
    err_console.print(f"{escape(sc.label)}: {runs} runs × {sessions} sessions × {episodes} "
                      f"tasks a side per condition; the person's words: {len(texts)} texts of "
                      f"{escape(what)}; classifier {clf.version}")
    with _progress_bar(stages=True) as bar:
        task = bar.add("hidden signal", total=len(CONDITIONS) * runs * 2 * sessions)

        def tick(name: str, run: int, mode: str, i: int, point: Any) -> None:
            bar.update(task, advance=1, info=f"{name} · run {run + 1} {mode}")

        study = hidden_signal_study(sc, clf, texts, mapping, cfg, person=person, progress=tick)
    _print_study(study)
    if output is not None:
        output.write_text(json.dumps(study.to_dict(), indent=2, default=str) + "\n",
                          encoding="utf-8")
        console.print(f"JSON: {escape(str(output))}")


def _person(silence: float) -> Any:
    from swarmlearn._config import from_mapping
    from swarmlearn.feedback._simulate import PersonConfig

    return from_mapping(PersonConfig, {"silence": silence}, where="--silence")


def _iv(iv: Any, fmt: str) -> str:
    return f"{fmt.format(iv.mean)} [{fmt.format(iv.low)}, {fmt.format(iv.high)}]"


def _print_study(study: Any) -> None:
    from swarmlearn.feedback._simulate import CONDITIONS

    headers = ["condition", "success on", "success off", "on - off [95% t]", "actions/solve on",
               "actions/solve off",
               "off - on [95% t]", "verdict"]
    rows = []
    for name, proof in study.conditions.items():
        s = proof.summary()
        rows.append([name, f"{s.success_on.mean:.0%}", f"{s.success_off.mean:.0%}",
                     _iv(s.success_gain, "{:+.2f}"), f"{s.actions_per_solve_on.mean:.1f}",
                     f"{s.actions_per_solve_off.mean:.1f}", _iv(s.actions_saved, "{:+.1f}"),
                     str(s.verdict)])
    print_rows(console, f"{study.scenario}: learning on vs off, {len(rows)} conditions "
                        "(intervals over independent runs; success counted on the "
                        "environment's outcome)", headers, rows, keep=headers,
               right=headers[1:7])
    for name, about in CONDITIONS.items():
        console.print(f"  {name}: {about}")
    t = study.tallies.get("feedback")
    if t is not None:
        d = t.to_dict()
        console.print(f"  feedback: {t.said} texts classified, {d['applied_share']:.0%} applied "
                      f"(confidence ≥ floor), {d['agreement']:.1%} of those agree with the "
                      f"environment on success; the label was the person's emotion in "
                      f"{d['classifier_accuracy']:.1%}")
