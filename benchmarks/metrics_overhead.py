"""What the Prometheus metrics cost the swarm: ``benchmarks/engine.py``'s end-to-end run
(troubleshooting, store on) with and without them, interleaved, in one process.

    python benchmarks/metrics_overhead.py [--episodes 3000] [--repeat 5] [--policy random adaptive]

"With" is what ``swarmlearn run --metrics-port`` attaches with a store: the
store's writes timed and their events counted in the recorder's thread
(``Metrics.timed_store(count=True)``), on a private registry. Each repeat runs both
sides, alternating which goes first; the figure is the median of the
per-repeat ratios of actions per wall second and per CPU second (this
process, every thread: the metrics subscriber's work is counted). On a
shared machine the CPU figure is the steadier one.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from prometheus_client import CollectorRegistry

from swarmlearn.core.scenario import load_scenario
from swarmlearn.ops.metrics import Metrics
from swarmlearn.session import run_session
from swarmlearn.store import SqlStore


def _rate(episodes: int, url: str, policy: str, metrics: Metrics | None
          ) -> tuple[float, float]:
    """Actions per wall second and per CPU second of this process (all its threads)."""
    sc = load_scenario("troubleshooting").override(workers={"policy": policy})
    store = SqlStore(url)
    t0, c0 = time.perf_counter(), time.process_time()
    if metrics is None:
        result = run_session(sc, episodes=episodes, store=store, seed=1000)
    else:
        counted = metrics.timed_store(store, count=True)
        result = run_session(sc, episodes=episodes, store=counted, seed=1000,
                             subscribers=[lambda bus: Metrics.bind(counted, bus)])
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert store.count_events(result.session) == result.actions
    store.close()
    return result.actions / elapsed, result.actions / cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--episodes", type=int, default=3000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--policy", nargs="+", default=["random", "adaptive"])
    args = p.parse_args()
    metrics = Metrics(CollectorRegistry())
    with tempfile.TemporaryDirectory() as tmp:
        for policy in args.policy:
            plain: list[tuple[float, float]] = []
            counted: list[tuple[float, float]] = []
            for k in range(args.repeat):
                for side in (("plain", "metrics") if k % 2 == 0 else ("metrics", "plain")):
                    url = f"sqlite:///{Path(tmp) / f'{policy}-{k}-{side}.db'}"
                    if side == "plain":
                        plain.append(_rate(args.episodes, url, policy, None))
                    else:
                        counted.append(_rate(args.episodes, url, policy, metrics))
            med = statistics.median
            for i, what in ((0, "wall"), (1, "cpu")):
                ratios = [c[i] / a[i] for a, c in zip(plain, counted, strict=True)]
                print(f"{policy:9s} actions/{what}-s median: without metrics "
                      f"{med(a[i] for a in plain):9,.0f}, with {med(c[i] for c in counted):9,.0f}"
                      f"; per-repeat ratio median {med(ratios):.3f} (cost "
                      f"{100 * (1 - med(ratios)):+.1f}%), ratios "
                      + " ".join(f"{r:.3f}" for r in ratios))

if __name__ == "__main__":
    main()
