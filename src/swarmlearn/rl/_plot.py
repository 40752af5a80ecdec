"""The learning-curve plot of a run (matplotlib's Agg canvas; no pyplot, no global state)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from swarmlearn.errors import TrainingError
from swarmlearn.rl._records import EpisodeRecord

__all__ = ["plot_learning_curve"]


def _rolling_mean(values: Sequence[float], window: int) -> list[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot_learning_curve(
    train: Sequence[EpisodeRecord],
    evals: Sequence[EpisodeRecord],
    path: Path,
    *,
    title: str = "",
    window: int = 20,
) -> Path:
    """Training returns (and their rolling mean) and evaluation means ± std against steps."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if train:
        steps = [r.step for r in train]
        returns = [r.total_reward for r in train]
        ax.plot(steps, returns, color="tab:blue", alpha=0.25, linewidth=0.8, label="train episode")
        ax.plot(
            steps,
            _rolling_mean(returns, window),
            color="tab:blue",
            label=f"train, rolling mean of {window}",
        )
    if evals:
        by_step: dict[int, list[float]] = defaultdict(list)
        for r in evals:
            by_step[r.step].append(r.total_reward)
        xs = sorted(by_step)
        means = [sum(by_step[x]) / len(by_step[x]) for x in xs]
        stds = [
            (sum((v - m) ** 2 for v in by_step[x]) / len(by_step[x])) ** 0.5
            for x, m in zip(xs, means, strict=True)
        ]
        ax.errorbar(
            xs,
            means,
            yerr=stds,
            color="tab:orange",
            marker="o",
            markersize=3,
            capsize=2,
            label="greedy evaluation (mean ± std)",
        )
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if train or evals:
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    try:
        fig.savefig(path)
    except OSError as exc:
        raise TrainingError(f"cannot write {path}: {exc}") from exc
    return path
