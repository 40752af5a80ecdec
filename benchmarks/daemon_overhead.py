"""What the learning daemon costs the swarm: actions/s with and without a daemon
following the same store, in the same run.

    .venv/bin/python benchmarks/daemon_overhead.py [--episodes 3000] [--repeat 5] [--cpu-share X]

The swarm is ``benchmarks/engine.py``'s end-to-end run (the troubleshooting
scenario, store on). The daemon is a separate ``swarmlearn daemon run`` process
on the same SQLite store with the default offline levels for that scenario
(snapshot every 20 episodes, offline model every 50): it follows the store
and, as the benchmark records thousands of episodes, trains, gates and
promotes while the swarm runs. ``--cpu-share X`` gives the daemon a config with
``cpu_share = X`` (its level runs use at most X of one core on average; without
it the daemon's default, 0.05; ``--cpu-share 1`` is no bound). Runs alternate between the two conditions; the
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

from swarmlearn._daemon_config import DaemonConfig, load_daemon_config
from swarmlearn.core.scenario import load_scenario
from swarmlearn.errors import ConfigError
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


def start_daemon(url: str, folder: Path, config: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-c", "from swarmlearn.cli import main; main()", "daemon", "run",
         "--config", str(config), "--store", url, "--run-dir", str(folder)],
        start_new_session=True,
        stdout=(folder / "daemon.log").open("ab"), stderr=subprocess.STDOUT)
    status = folder / "status.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if status.exists() and json.loads(status.read_text()).get("state") == "running":
            return proc
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"the daemon did not start; see {folder / 'daemon.log'}")


def daemon_cpu(pid: int) -> float:
    """CPU-seconds of the daemon process and of the trainers it has reaped (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def daemon_config(folder: Path, cpu_share: float | None) -> Path:
    """The daemon's config: no [levels] (the default offline levels), the share if given."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "daemon.toml"
    path.write_text('[daemon]\nscenario = "troubleshooting"\nmode = "offline-only"\n'
                    + (f"cpu_share = {cpu_share!r}\n" if cpu_share is not None else ""))
    return path


def report(args: argparse.Namespace, share: float, url: str,
           runs: dict[str, list[tuple[float, float]]], with_s: float, total_cpu: float) -> None:
    with SqlStore(url) as st:
        log = st.learning_log(steps=["run-done", "run-failed"])
        waits = len(st.learning_log(steps=["wait"]))
    promoted = sum(1 for r in log if r.data.get("promoted"))
    done = sum(1 for r in log if r.step == "run-done")
    cpu = sum(float(r.data.get("cpu_s", 0.0)) for r in log)
    print(f"swarm ({args.policy}, {args.episodes} episodes, store on), {args.repeat} runs each, "
          f"alternating; {os.cpu_count()} cores")
    for k, what in ((0, "actions/s (wall)"), (1, "actions per CPU second of the swarm")):
        base = statistics.median(r[k] for r in runs["without"])
        with_d = statistics.median(r[k] for r in runs["with"])
        pairs = [w[k] / b[k] for w, b in zip(runs["with"], runs["without"], strict=True)]
        print(f"  {what}: without the daemon {base:,.0f}, with it following the store "
              f"{with_d:,.0f}: ratio {with_d / base:.3f} (median paired ratio "
              f"{statistics.median(pairs):.3f}; target >= 0.95)")
    print(f"  the daemon, cpu_share {share:g}: {done} level runs completed "
          f"({promoted} promotions), {len(log) - done} failed or interrupted; its level runs "
          f"used {cpu:.1f} CPU-s (its own and its trainers'), {cpu / with_s:.2f} of a core over "
          f"the {with_s:.1f} s of swarm runs it ran beside; due levels waited for the share "
          f"{waits} times; the daemon process in all (following the store too): "
          f"{total_cpu:.1f} CPU-s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--policy", default="adaptive")
    ap.add_argument("--cpu-share", type=float, default=None,
                    help="the daemon's cpu_share (default: the daemon's, 0.05; 1 = no bound)")
    args = ap.parse_args()
    if args.cpu_share is not None:
        try:
            DaemonConfig(scenario="troubleshooting", cpu_share=args.cpu_share)
        except ConfigError as exc:
            ap.error(f"--cpu-share: {exc}")
    work = Path(tempfile.mkdtemp(prefix="swarmlearn-bench-"))
    config = daemon_config(work / "daemon", args.cpu_share)
    url = f"sqlite:///{work}/store.db"
    SqlStore(url).close()
    runs: dict[str, list[tuple[float, float]]] = {"without": [], "with": []}
    with_s = 0.0  # wall time of the swarm runs beside the daemon
    daemon = start_daemon(url, work / "daemon", config)
    group = os.getpgid(daemon.pid)  # the daemon and its trainers
    try:
        for i in range(args.repeat):
            for cond in ("without", "with") if i % 2 == 0 else ("with", "without"):
                # "without": the daemon (and any trainer) is stopped, not gone
                os.killpg(group, signal.SIGCONT if cond == "with" else signal.SIGSTOP)
                t0 = time.perf_counter()
                runs[cond].append(swarm(url, args.episodes, args.policy, seed=1000 + 7 * i))
                with_s += time.perf_counter() - t0 if cond == "with" else 0.0
    finally:
        os.killpg(group, signal.SIGCONT)
        total_cpu = daemon_cpu(daemon.pid)
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(120)
    report(args, load_daemon_config(config).cpu_share, url, runs, with_s, total_cpu)


if __name__ == "__main__":
    main()
