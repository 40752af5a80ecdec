"""The HTML report of a skill run: accuracy per step (plotted), calls and tokens, every step,
every accepted skill, the rejected-edit memory and the final test.

Everything comes from ``state.json``: the accuracy of a skill on a split is
read from the trajectory cache (a curtailed candidate shows the tasks it ran).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from swarmlearn.ops.report import HtmlReport, new_figure
from swarmlearn.skills._edits import skill_hash
from swarmlearn.skills._optimizer import SkillRun

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["accuracy", "run_html", "step_series", "write_report"]


def accuracy(run: SkillRun, skill_hash: str, split: str) -> tuple[float, int]:
    """Exact-match rate of a skill on the tasks of ``split`` it ran, and how many it ran."""
    got = run.scores.get(skill_hash, {})
    solved = [got[str(t)]["solved"] for t in run.splits.get(split, []) if str(t) in got]
    return (sum(solved) / len(solved) if solved else float("nan")), len(solved)


def step_series(run: SkillRun) -> list[dict[str, Any]]:
    """Per step: the batch's accuracy, the champion's validation accuracy after the step,
    the candidate's and the champion's on the candidate's paired tasks."""
    out = []
    champion = skill_hash(run.initial)
    for h in run.history:
        if h.get("action") == "accept":
            champion = h["candidate"]
        acc, n = accuracy(run, champion, "val")
        row: dict[str, Any] = {"step": h["step"], "action": h.get("action", ""),
                               "batch": (h["rollout"]["solved"] / h["rollout"]["tasks"]
                                         if h["rollout"]["tasks"] else float("nan")),
                               "champion_val": acc, "champion_val_tasks": n}
        gate = h.get("gate")
        if gate:
            row["candidate_val"] = gate["challenger"]["success_rate"]
            row["parent_val_paired"] = gate["champion"]["success_rate"]
            row["paired"] = gate["challenger"]["tasks"]
        out.append(row)
    return out


def _accuracy_figure(run: SkillRun, series: Sequence[dict[str, Any]]) -> Figure:
    fig = new_figure(8.0, 3.6)
    ax = fig.add_subplot()
    steps = [r["step"] for r in series]
    ax.plot(steps, [r["batch"] for r in series], marker=".", color="tab:gray",
            label="training batch (parent skill)")
    ax.plot(steps, [r["champion_val"] for r in series], marker="o", color="tab:blue",
            label="champion, validation")
    n_val = len(run.splits.get("val", []))
    part = [(r["step"], r["champion_val"]) for r in series if r["champion_val_tasks"] < n_val]
    if part:
        xs, ys = zip(*part, strict=True)
        ax.scatter(xs, ys, marker="o", s=60, facecolors="white",
                   edgecolors="tab:blue", zorder=3,
                   label="champion on part of validation (curtailed, never completed)")
    for action, marker, color in (("accept", "^", "tab:green"), ("reject", "v", "tab:red"),
                                  ("pool", "s", "tab:orange")):
        pts = [(r["step"], r["candidate_val"]) for r in series
               if r["action"] == action and "candidate_val" in r]
        if pts:
            ax.scatter(*zip(*pts, strict=True), marker=marker, color=color, zorder=3,
                       label=f"candidate {action}ed (its paired validation tasks)")
    if run.test.get("best"):
        end = (steps[-1] if steps else 0) + 0.6
        ax.scatter([end], [run.test["initial"]["exact"]], marker="x", color="black",
                   label="test: initial")
        ax.scatter([end], [run.test["best"]["exact"]], marker="*", s=120, color="black",
                   label="test: best")
    ax.set_xlabel("step")
    ax.set_ylabel("exact match / success rate")
    ax.set_ylim(-0.05, 1.05)
    fig.legend(loc="outside right upper", fontsize=7)
    return fig


def _usage_figure(run: SkillRun) -> Figure:
    fig = new_figure(8.0, 3.0)
    ax = fig.add_subplot()
    steps = [h["step"] for h in run.history if "usage" in h]
    ax.plot(steps, [h["usage"]["calls"] for h in run.history if "usage" in h], marker="o",
            label="LLM calls")
    ax.set_xlabel("step")
    ax.set_ylabel("calls (cumulative)")
    ax2 = ax.twinx()
    ax2.plot(steps, [h["usage"]["tokens"] for h in run.history if "usage" in h],
             color="tab:purple", marker="s", label="tokens")
    ax2.set_ylabel("tokens (cumulative)")
    fig.legend(loc="outside right upper", fontsize=8)
    return fig


def run_html(run: SkillRun, *, title: str = "Skill run") -> HtmlReport:
    page = HtmlReport(title)
    t = run.test
    page.table(["", ""], [
        ["status", run.status], ["steps", f"{run.step} of {run.total_steps}"],
        ["best from step", run.best_step], ["LLM calls", run.usage.calls],
        ["tokens", run.usage.tokens],
        ["splits (train / val / test tasks)",
         " / ".join(str(len(run.splits.get(s, []))) for s in ("train", "val", "test"))],
        ["test: initial → best (exact)",
         f"{t['initial']['exact']:.3f} → {t['best']['exact']:.3f} on {t['tasks']} tasks, "
         f"paired p={t['paired']['p_value']:.3g}" if t.get("best") else "not run"]])
    series = step_series(run)
    if series:
        page.figure(_accuracy_figure(run, series),
                    "Accuracy per step: the training batch with the step's parent skill, the "
                    "champion on the validation split after the step, each candidate on the "
                    "validation tasks it ran (curtailed ones fewer), the final test.")
        page.figure(_usage_figure(run), "LLM calls and tokens spent, cumulative.")
    page.heading("Steps")
    page.table(["step", "action", "batch solved", "edits proposed → merged → applied",
                "budget", "val tasks run", "gate", "failures"], [
        [h["step"], h.get("action", ""),
         f"{h['rollout']['solved']}/{h['rollout']['tasks']}",
         f"{h['proposed']} → {h['merged']} → {len(h['apply'])}", h["budget"],
         h.get("val_tasks", "–"), (h.get("gate") or {}).get("reason", "–"),
         ", ".join(sorted({f["kind"] for f in h["failures"]})) or "–"]
        for h in run.history])
    page.heading("Calls and tokens per stage")
    page.table(["stage", "calls", "failed", "prompt tokens", "completion tokens"],
               [[k, v.calls, v.failed, v.prompt_tokens, v.completion_tokens]
                for k, v in sorted(run.usage.stages.items())])
    page.heading("Accepted skills")
    for v in run.versions:
        page.text(f"step {v['step']} ({v['hash']}, parent {v['parent'] or '–'}): "
                  f"{v['gate'] or 'the initial skill'}", muted=True)
        page.table(["line", "text"], [[i + 1, line] for i, line in
                                      enumerate(v["skill"].splitlines() or ["(empty)"])])
    if run.rejected:
        page.heading("Rejected-edit memory")
        page.table(["step", "op", "anchor", "content", "status"], [
            [r["step"], r["op"], r["anchor"], r["content"],
             "rejected" if r.get("alone", True) else "suspect (rejected in a bundle)"]
            for r in run.rejected])
    if run.failures:
        page.heading("Run stops")
        page.table(["at step", "kind", "detail"],
                   [[f["at_step"], f["kind"], f["detail"]] for f in run.failures])
    return page


def write_report(run: SkillRun, path: str | Path, *, title: str = "Skill run") -> Path:
    return run_html(run, title=title).write(path)
