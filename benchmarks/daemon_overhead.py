"""What the learning daemon costs the swarm: actions/s with and without a daemon
following the same store, in the same run.

    .venv/bin/python benchmarks/daemon_overhead.py [--episodes 3000] [--repeat 5]

The swarm is ``benchmarks/engine.py``'s end-to-end run (the troubleshooting
scenario, store on). The daemon is a separate ``swarmlearn daemon run`` process
on the same SQLite store with the default offline levels for that scenario
(snapshot every 20 episodes, offline model every 50): it follows the store
and, as the benchmark records thousands of episodes, trains, gates and
promotes while the swarm runs. Runs alternate between the two conditions; the
figures are medians. Target: the daemon costs < 5% of the swarm's actions/s.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from swarmlearn.core.scenario import load_scenario
from swarmlearn.session import run_session
from swarmlearn.store import SqlStore


def swarm(url: str, episodes: int, policy: str, seed: int) -> tuple[float, float]:
    """(actions per wall second, actions per CPU second of this process)."""
    sc = load_scenario("troubleshooting").override(workers={"policy": policy})
    with SqlStore(url) as store:
        t0, c0 = time.perf_counter(), time.process_time()
        result = run_session(sc, episodes=episodes, store=store, seed=seed)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        return result.actions / wall, result.actions / cpu


def start_daemon(url: str, folder: Path) -> subprocess.Popen[bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-c", "from swarmlearn.cli import main; main()", "daemon", "run",
         "--scenario", "troubleshooting", "--mode", "offline-only", "--store", url,
         "--run-dir", str(folder)], start_new_session=True,
        stdout=(folder / "daemon.log").open("ab"), stderr=subprocess.STDOUT)
    status = folder / "status.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if status.exists() and json.loads(status.read_text()).get("state") == "running":
            return proc
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"the daemon did not start; see {folder / 'daemon.log'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--policy", default="adaptive")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="swarmlearn-bench-"))
    url = f"sqlite:///{work}/store.db"
    SqlStore(url).close()
    runs: dict[str, list[tuple[float, float]]] = {"without": [], "with": []}
    daemon = start_daemon(url, work / "daemon")
    group = os.getpgid(daemon.pid)  # the daemon and its trainers
    try:
        for i in range(args.repeat):
            for cond in ("without", "with") if i % 2 == 0 else ("with", "without"):
                # "without": the daemon (and any trainer) is stopped, not gone
                os.killpg(group, signal.SIGCONT if cond == "with" else signal.SIGSTOP)
                runs[cond].append(swarm(url, args.episodes, args.policy, seed=1000 + 7 * i))
    finally:
        os.killpg(group, signal.SIGCONT)
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(120)
    with SqlStore(url) as st:
        log = st.learning_log(steps=["run-done", "run-failed"])
        promoted = sum(1 for r in log if r.data.get("promoted"))
    print(f"swarm ({args.policy}, {args.episodes} episodes, store on), {args.repeat} runs each, "
          f"alternating; {os.cpu_count()} cores")
    for k, what in ((0, "actions/s (wall)"), (1, "actions per CPU second of the swarm")):
        base = statistics.median(r[k] for r in runs["without"])
        with_d = statistics.median(r[k] for r in runs["with"])
        pairs = [w[k] / b[k] for w, b in zip(runs["with"], runs["without"], strict=True)]
        print(f"  {what}: without the daemon {base:,.0f}, with it following the store "
              f"{with_d:,.0f}: ratio {with_d / base:.3f} (median paired ratio "
              f"{statistics.median(pairs):.3f}; target >= 0.95)")
    print(f"  the daemon ran {len(log)} level runs meanwhile ({promoted} promotions)")


if __name__ == "__main__":
    main()
