"""The evaluation report: figures, per-label F1, the confusion matrix plotted, training curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from swarmlearn.feedback._metrics import Evaluation
from swarmlearn.ops.report import HtmlReport, new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["confusion_figure", "evaluation_html"]


def confusion_figure(ev: Evaluation) -> Figure:
    """The confusion matrix as a heat map, counts written in each cell."""
    n = len(ev.labels)
    fig = new_figure(1.1 * n + 2.5, 0.9 * n + 1.8)
    ax = fig.add_subplot()
    im = ax.imshow(ev.confusion, cmap="Blues")
    top = max((max(r) for r in ev.confusion), default=0)
    for i, row in enumerate(ev.confusion):
        for j, count in enumerate(row):
            ax.text(j, i, str(count), ha="center", va="center",
                    color="white" if count > top / 2 else "black", fontsize=9)
    ax.set_xticks(range(n), ev.labels, rotation=35, ha="right")
    ax.set_yticks(range(n), ev.labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


def _curve_figure(history: Sequence[Mapping[str, float]]) -> Figure:
    fig = new_figure(7.5, 3.2)
    ax = fig.add_subplot()
    epochs = [int(r["epoch"]) for r in history]
    ax.plot(epochs, [r["train_loss"] for r in history], marker="o", label="train loss")
    ax.plot(epochs, [r["val_loss"] for r in history], marker="o", label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy")
    ax2 = ax.twinx()
    ax2.plot(epochs, [r["val_macro_f1"] for r in history], color="tab:green", marker="s",
             label="validation macro-F1")
    ax2.set_ylabel("macro-F1")
    ax2.set_ylim(0, 1)
    fig.legend(loc="outside right upper", fontsize=8)
    return fig


def evaluation_html(ev: Evaluation, *, title: str, about: Mapping[str, Any]) -> HtmlReport:
    """A page: what was evaluated, the figures with intervals, per label, the matrix."""
    page = HtmlReport(title)
    page.table(["", ""], [[k, str(v)] for k, v in about.items()])
    page.heading("Figures")
    page.table(["metric", "value", "95% interval (bootstrap over examples)"], [
        ["accuracy", f"{ev.accuracy.value:.3f}", f"{ev.accuracy.low:.3f} – {ev.accuracy.high:.3f}"],
        ["macro-F1", f"{ev.macro_f1.value:.3f}", f"{ev.macro_f1.low:.3f} – {ev.macro_f1.high:.3f}"],
        ["examples", str(ev.n), ""],
    ])
    page.heading("Per label")
    support = [sum(r) for r in ev.confusion]
    predicted = [sum(col) for col in zip(*ev.confusion, strict=True)]
    page.table(["label", "F1", "support", "predicted"],
               [[x, f"{f:.3f}", str(s), str(p)]
                for x, f, s, p in zip(ev.labels, ev.f1, support, predicted, strict=True)])
    page.heading("Confusion matrix")
    page.figure(confusion_figure(ev), "rows: true label; columns: predicted label")
    history = about.get("history")
    if isinstance(history, list) and history:
        page.heading("Training")
        page.figure(_curve_figure(history), "losses and validation macro-F1 per epoch")
    return page
