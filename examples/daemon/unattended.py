"""Unattended improvement: the learning daemon makes a swarm better with no command.

    .venv/bin/python examples/daemon/unattended.py [--sessions 30] [--episodes 10]

1. starts ``swarmlearn daemon run --config examples/daemon/daemon.toml`` as a separate
   process on an empty store (a temporary folder, or ``--store``);
2. in this process, runs swarm sessions of the held-out troubleshooting variant
   one after another (new task seeds each session, from 10,000, as
   ``eval --learning`` does), each starting from the current champions and
   picking up new ones at episode ends (``LiveChampions``), with ``--pause``
   seconds between sessions — and never tells the daemon anything;
3. prints the curve (success and actions per solved task per session, and the
   champion versions each session ran with), compares the first and the last
   ``--last`` sessions with the measure of ``eval --learning`` (success, Wilson
   95%; actions per solved task, delta-method 95%; "clearly better" = both
   intervals apart), writes ``daemon_curve.png`` and ``daemon_curve.json``, and
   stops the daemon.
"""

from __future__ import annotations

import argparse
import json
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


def _plot(points: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [p["index"] + 1 for p in points]
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
    a1.plot(xs, [p["success_rate"] for p in points], marker="o")
    a1.set_ylabel("success")
    a1.set_ylim(0, 1.05)
    a2.plot(xs, [p["actions_per_solve"] for p in points], marker="o", color="tab:orange")
    a2.set_ylabel("actions per solved task")
    a2.set_xlabel("session (the daemon promotes between them, unattended)")
    for p in points:
        if p["new_champions"]:
            for ax in (a1, a2):
                ax.axvline(p["index"] + 1, color="grey", alpha=0.3)
    fig.suptitle("troubleshooting[heldout]: sessions with the learning daemon")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=30)
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--last", type=int, default=5)
    ap.add_argument("--pause", type=float, default=2.0, help="seconds between sessions")
    ap.add_argument("--store", default=None, help="store URL (default: a new temporary one)")
    ap.add_argument("--out", type=Path, default=Path("."))
    args = ap.parse_args()
    os.chdir(ROOT)

    from swarmlearn.core.events import EpisodeEnded
    from swarmlearn.core.scenario import load_scenario
    from swarmlearn.learn.kinds import LiveChampions, champion_policies, champions
    from swarmlearn.session import run_session
    from swarmlearn.store import SqlStore
    from swarmlearn.types import OutcomeKind

    work = Path(tempfile.mkdtemp(prefix="swarmlearn-daemon-"))
    url = args.store or f"sqlite:///{work}/store.db"
    store = SqlStore(url)  # creates the empty store before the daemon follows it
    daemon = subprocess.Popen(
        [sys.executable, "-c", "from swarmlearn.cli import main; main()", "daemon", "run",
         "--config", "examples/daemon/daemon.toml", "--store", url,
         "--run-dir", str(work / "daemon")],
        stdout=(work / "daemon.log").open("wb"), stderr=subprocess.STDOUT)
    print(f"store {url}; daemon pid {daemon.pid}, log {work / 'daemon.log'}")
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
            first = 10_000 + i * args.episodes
            run = run_session(sc, store=store, seeds=list(range(first, first + args.episodes)),
                              policies=policies, subscribers=[watcher], group="unattended")
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
            print(f"session {i + 1:2d}: success {point['success_rate']:.0%}, "
                  f"{point['actions_per_solve']:.1f} actions/solve, champions (artifact ids) "
                  f"snapshot {versions[0]} offline {versions[1]}, picked up live "
                  f"{watcher.applied}", flush=True)
            time.sleep(args.pause)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(60)
    k = args.last
    first_k, last_k = _side(points[:k]), _side(points[-k:])
    apart = (last_k["success_ci"][0] > first_k["success_ci"][1],
             last_k["actions_per_solve_ci"][1] < first_k["actions_per_solve_ci"][0])
    log = [{"kind": r.kind, "step": r.step, "reason": r.reason, "version": r.data.get("version")}
           for r in store.learning_log(steps=["promote", "reject", "rollback", "fail",
                                              "run-failed"])]
    summary = {"first": first_k, "last": last_k, "success_clearly_better": apart[0],
               "actions_clearly_fewer": apart[1], "clearly_better": all(apart),
               "points": points, "lifecycle": log, "store": url}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "daemon_curve.json").write_text(json.dumps(summary, indent=1))
    _plot(points, args.out / "daemon_curve.png")
    for name, side in (("first", first_k), ("last", last_k)):
        lo, hi = side["success_ci"]
        alo, ahi = side["actions_per_solve_ci"]
        print(f"{name} {k} sessions: success {side['success_rate']:.0%} ({lo:.0%}–{hi:.0%}), "
              f"actions per solved task {side['actions_per_solve']:.1f} ({alo:.1f}–{ahi:.1f})")
    print("daemon decisions: " + "; ".join(f"{e['kind']} {e['step']} v{e['version']}"
                                           for e in log))
    print(f"clearly better: {summary['clearly_better']} (success {apart[0]}, actions {apart[1]})"
          f"; wrote {args.out / 'daemon_curve.png'} and {args.out / 'daemon_curve.json'}")
    store.close()


if __name__ == "__main__":
    main()
