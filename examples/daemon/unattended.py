"""Unattended improvement: the learning daemon makes a swarm better with no command.

    .venv/bin/python examples/daemon/unattended.py [--runs 5] [--sessions 30] [--episodes 10]

Each of ``--runs`` independent runs (its own empty store, daemon, task seeds and
worker seed):

1. starts ``swarmlearn daemon run --config examples/daemon/daemon.toml`` as a separate
   process on an empty store (a temporary folder);
2. in this process, runs swarm sessions of the held-out troubleshooting variant
   one after another (new task seeds each session, from 10,000 + 100,000 × run, as
   ``eval --learning`` does), each starting from the current champions and
   picking up new ones at episode ends (``LiveChampions``), with ``--pause``
   seconds between sessions — and never tells the daemon anything;
3. prints the curve (success and actions per solved task per session, and the
   champion versions each session ran with) and stops the daemon.

Then it compares the first and the last ``--last`` sessions with the verdict of
``eval --learning`` (docs/learning.md): per run, the success rate and the actions
per solved task of each side; Student-t 95% intervals over the runs (the sessions
of one run are one learning trajectory, not independent); "clearly better" = the
interval of the per-run success gain (last - first) wholly above 0 and that of the
per-run reduction in actions per solved task (first - last) wholly above 0. It
writes ``daemon_curve.png`` (every run's curve and their mean) and
``daemon_curve.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _side(points: list[dict[str, Any]]) -> dict[str, Any]:
    from swarmlearn._stats import ratio_ci, wilson

    n = sum(p["episodes"] for p in points)
    ok = sum(p["successes"] for p in points)
    aps = ratio_ci([float(a) for p in points for a in p["actions"]],
                   [1.0 if s else 0.0 for p in points for s in p["solved"]])
    return {"episodes": n, "successes": ok, "success_rate": ok / n,
            "success_ci": list(wilson(ok, n)), "actions_per_solve": aps[0],
            "actions_per_solve_ci": [aps[1], aps[2]]}


def _plot(runs: list[list[dict[str, Any]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
    for key, ax, color in (("success_rate", a1, "tab:blue"),
                           ("actions_per_solve", a2, "tab:orange")):
        for points in runs:
            ax.plot([p["index"] + 1 for p in points], [p[key] for p in points], color=color,
                    alpha=0.25, linewidth=1)
        n = min(len(points) for points in runs)
        ax.plot(range(1, n + 1), [sum(points[i][key] for points in runs) / len(runs)
                                  for i in range(n)], color=color, marker="o",
                label=f"mean of {len(runs)} runs")
        ax.legend(loc="best")
    a1.set_ylabel("success")
    a1.set_ylim(0, 1.05)
    a2.set_ylabel("actions per solved task")
    a2.set_xlabel("session (the daemon promotes between them, unattended)")
    fig.suptitle("troubleshooting[heldout]: sessions with the learning daemon")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _run(r: int, args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One unattended run on a new store: the per-session points and the daemon's decisions."""
    from swarmlearn.core.events import EpisodeEnded
    from swarmlearn.core.scenario import load_scenario
    from swarmlearn.learn.kinds import LiveChampions, champion_policies, champions
    from swarmlearn.session import run_session
    from swarmlearn.store import SqlStore
    from swarmlearn.types import OutcomeKind

    work = Path(tempfile.mkdtemp(prefix="swarmlearn-daemon-"))
    url = f"sqlite:///{work}/store.db"
    store = SqlStore(url)  # creates the empty store before the daemon follows it
    daemon = subprocess.Popen(
        [sys.executable, "-c", "from swarmlearn.cli import main; main()", "daemon", "run",
         "--config", "examples/daemon/daemon.toml", "--store", url,
         "--run-dir", str(work / "daemon")],
        stdout=(work / "daemon.log").open("wb"), stderr=subprocess.STDOUT)
    print(f"run {r + 1}/{args.runs}: store {url}; daemon pid {daemon.pid}, "
          f"log {work / 'daemon.log'}", flush=True)
    sc = load_scenario("examples/troubleshooting.toml", variant="heldout").override(
        workers={"policy": "adaptive"})
    points: list[dict[str, Any]] = []
    seen: tuple[int | None, int | None] = (None, None)
    t0 = time.time()
    try:
        for i in range(args.sessions):
            live = champions(store, sc)
            versions = (live.snapshot_id, live.model_id)
            policies = champion_policies(store, sc)
            watcher = LiveChampions(store, sc, policies, poll_s=0.5)
            first = 10_000 + 100_000 * r + i * args.episodes
            run = run_session(sc, store=store, seeds=list(range(first, first + args.episodes)),
                              policies=policies, subscribers=[watcher], group="unattended",
                              worker_seed=7 + r)
            eps: list[EpisodeEnded] = run.episodes
            solved = [e.outcome.kind is OutcomeKind.SUCCESS for e in eps]
            acts = [e.actions for e in eps]
            point = {"index": i, "session": run.session, "episodes": len(eps),
                     "successes": sum(solved), "success_rate": sum(solved) / len(eps),
                     "actions": acts, "solved": solved,
                     "actions_per_solve": sum(acts) / max(1, sum(solved)),
                     "champions": {"snapshot": versions[0], "offline_model": versions[1]},
                     "picked_up_live": watcher.applied, "new_champions": versions != seen,
                     "t": round(time.time() - t0, 1)}
            seen = versions
            points.append(point)
            print(f"  session {i + 1:2d}: success {point['success_rate']:.0%}, "
                  f"{point['actions_per_solve']:.1f} actions/solve, champions (artifact ids) "
                  f"snapshot {versions[0]} offline {versions[1]}, picked up live "
                  f"{watcher.applied}", flush=True)
            time.sleep(args.pause)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(60)
    log = [{"kind": e.kind, "step": e.step, "reason": e.reason, "version": e.data.get("version")}
           for e in store.learning_log(steps=["promote", "reject", "rollback", "fail",
                                              "run-failed"])]
    store.close()
    print("  daemon decisions: " + "; ".join(f"{e['kind']} {e['step']} v{e['version']}"
                                             for e in log), flush=True)
    return points, log


def main() -> None:
    from swarmlearn._stats import summarize

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="independent runs (>= 2 for a verdict)")
    ap.add_argument("--sessions", type=int, default=30)
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--last", type=int, default=5)
    ap.add_argument("--pause", type=float, default=2.0, help="seconds between sessions")
    ap.add_argument("--out", type=Path, default=Path("."))
    args = ap.parse_args()
    if args.runs < 1 or args.sessions < 2 * args.last or args.last < 1:
        ap.error("need --runs >= 1 and --sessions >= 2 x --last >= 2")
    os.chdir(ROOT)
    k = args.last
    runs, logs, sides = [], [], []
    for r in range(args.runs):
        points, log = _run(r, args)
        runs.append(points)
        logs.append(log)
        first_k, last_k = _side(points[:k]), _side(points[-k:])
        sides.append({"first": first_k, "last": last_k})
        print(f"  first {k} sessions: success {first_k['success_rate']:.0%}, "
              f"{first_k['actions_per_solve']:.1f} actions per solved task; last {k}: "
              f"{last_k['success_rate']:.0%}, {last_k['actions_per_solve']:.1f}", flush=True)
    gain = summarize([s["last"]["success_rate"] - s["first"]["success_rate"] for s in sides])
    # a side that solved nothing has no actions per solved task: that run is left out
    cut = summarize([d for s in sides if math.isfinite(
        d := s["first"]["actions_per_solve"] - s["last"]["actions_per_solve"])])
    apart = (args.runs >= 2 and gain.ci_low > 0, args.runs >= 2 and cut.ci_low > 0)
    summary = {"runs": args.runs, "last": k, "sides": sides,
               "success_gain": gain.to_dict(), "actions_cut": cut.to_dict(),
               "success_clearly_better": apart[0], "actions_clearly_fewer": apart[1],
               "clearly_better": all(apart), "points": runs, "lifecycle": logs}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "daemon_curve.json").write_text(json.dumps(summary, indent=1))
    _plot(runs, args.out / "daemon_curve.png")
    for name in ("first", "last"):
        rate = summarize([s[name]["success_rate"] for s in sides])
        aps = summarize([a for s in sides if math.isfinite(a := s[name]["actions_per_solve"])])
        print(f"{name} {k} sessions over {args.runs} runs: success {rate.mean:.0%} "
              f"({rate.ci_low:.0%}–{rate.ci_high:.0%}), actions per solved task "
              f"{aps.mean:.1f} ({aps.ci_low:.1f}–{aps.ci_high:.1f})")
    print(f"per-run success gain {gain.mean:+.1%} ({gain.ci_low:+.1%} to {gain.ci_high:+.1%}); "
          f"per-run cut in actions per solved task {cut.mean:+.1f} ({cut.ci_low:+.1f} to "
          f"{cut.ci_high:+.1f})")
    verdict = ("no verdict (one run)" if args.runs < 2 else
               f"clearly better: {all(apart)} (success {apart[0]}, actions {apart[1]})")
    print(f"{verdict}; wrote {args.out / 'daemon_curve.png'} and "
          f"{args.out / 'daemon_curve.json'}")


if __name__ == "__main__":
    main()
