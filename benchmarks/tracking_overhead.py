"""What MLflow tracking costs a DQN training: the same run with and without it, in one process.

    python benchmarks/tracking_overhead.py                    # 3 pairs, 20,000 steps each
    python benchmarks/tracking_overhead.py --pairs 5 --steps 50000
    python benchmarks/tracking_overhead.py --uri http://127.0.0.1:5000   # a running mlflow server

Each pair trains ``swarmlearn rl train CartPole-v1``'s DQN (the default
``RunConfig``/``DQNConfig``: rl-zoo's CartPole hyperparameters, 3-step
returns) twice with the same seed: once plain, once with the tracking the
CLI attaches (``ops.hooks.track_dqn``: metrics every progress call, the eval
reports, then the per-episode curves and the run's files). The sides
alternate which goes first, so the neighbours' load hits both.

Timed: ``Trainer.run`` — the training (wall and this process's CPU time,
which includes the MLflow writer thread) — and, directly, tracking's own work
during it: the time spent in the tracking callbacks plus the writer thread's
CPU time. On a shared machine the same run's CPU time varies by several
percent from run to run, more than tracking costs; the direct figure does not.
Not in the training figure, and printed apart: opening the tracker (importing
MLflow, creating the sqlite database on first use) and the final flush after
training. The default
target is the embedded store, ``sqlite:///…/mlflow.db`` in a temp dir.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarmlearn.ops.hooks import track_dqn
from swarmlearn.ops.tracking import Tracker, TrackingConfig
from swarmlearn.rl import RunConfig, Trainer


@dataclass
class Side:
    wall: float
    cpu: float
    work: float = 0.0  # tracking's own work: the callbacks + the writer thread's CPU


class _Timed:
    """The tracking callbacks, with the time spent in them summed."""

    def __init__(self, fn: Callable[[Any], None]) -> None:
        self.fn, self.seconds = fn, 0.0

    def __call__(self, record: Any) -> None:
        t0 = time.perf_counter()
        self.fn(record)
        self.seconds += time.perf_counter() - t0


def _train(root: Path, steps: int, seed: int, tracker: Tracker | None) -> Side:
    config = RunConfig(env_id="CartPole-v1", steps=steps, seed=seed, runs_dir=str(root),
                       eval_every=max(1, steps // 4), checkpoint_every=0)
    trainer = Trainer.start(config)
    try:
        if tracker is None:
            w0, c0 = time.perf_counter(), time.process_time()
            trainer.run()
            return Side(time.perf_counter() - w0, time.process_time() - c0)
        with track_dqn(trainer, "bench.rl.train", tracker=tracker) as tracked:
            progress, evals = _Timed(tracked.on_progress), _Timed(tracked.on_eval)
            writer0 = tracker.writer_cpu_seconds
            w0, c0 = time.perf_counter(), time.process_time()
            trainer.run(on_progress=progress, on_eval=evals)
            side = Side(time.perf_counter() - w0, time.process_time() - c0)
            side.work = (progress.seconds + evals.seconds
                         + tracker.writer_cpu_seconds - writer0)
        return side
    finally:
        trainer.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--steps", type=int, default=20_000)
    p.add_argument("--uri", default="", help="tracking URI (default: sqlite in a temp dir)")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        uri = args.uri or f"sqlite:///{root / 'mlflow.db'}"
        t0 = time.perf_counter()
        tracker = Tracker(TrackingConfig(uri=uri, artifacts=str(root / "mlruns"),
                                         experiment="tracking-overhead"))
        if not tracker.wait_ready(120):
            raise SystemExit(f"MLflow at {uri} did not answer within 120 s")
        setup = time.perf_counter() - t0
        print(f"tracker ready in {setup:.1f}s (MLflow import + store at {uri}); "
              f"DQN CartPole-v1, {args.steps:,} steps a run, {args.pairs} pairs")
        plain: list[Side] = []
        tracked: list[Side] = []
        flushes: list[float] = []
        for k in range(args.pairs):
            order = ("plain", "tracked") if k % 2 == 0 else ("tracked", "plain")
            for side in order:
                if side == "plain":
                    plain.append(_train(root / f"plain{k}", args.steps, k, None))
                else:
                    tracked.append(_train(root / f"tracked{k}", args.steps, k, tracker))
                    f0 = time.perf_counter()
                    if not tracker.flush(60):
                        print("  warning: the tracker did not flush within 60 s")
                    flushes.append(time.perf_counter() - f0)
            a, b = plain[-1], tracked[-1]
            print(f"pair {k}: plain {a.wall:6.2f}s wall {a.cpu:6.2f}s cpu | tracked "
                  f"{b.wall:6.2f}s wall {b.cpu:6.2f}s cpu | ratio wall {b.wall / a.wall:.3f} "
                  f"cpu {b.cpu / a.cpu:.3f} | tracking's own work {b.work * 1000:.0f} ms = "
                  f"{100 * b.work / b.cpu:.2f}% of the tracked run's cpu   "
                  f"(final flush {flushes[-1]:.2f}s)")
        tracker.close()
        if tracker.gaps:
            print(f"  warning: {len(tracker.gaps)} tracking gap(s): {tracker.gaps[0]}")
    ratios_w = [b.wall / a.wall for a, b in zip(plain, tracked, strict=True)]
    ratios_c = [b.cpu / a.cpu for a, b in zip(plain, tracked, strict=True)]
    med = statistics.median
    print(f"\ntraining wall, median: plain {med(s.wall for s in plain):.2f}s, tracked "
          f"{med(s.wall for s in tracked):.2f}s; per-pair ratio median {med(ratios_w):.3f} "
          f"(overhead {100 * (med(ratios_w) - 1):+.1f}%)")
    print(f"training cpu,  median: plain {med(s.cpu for s in plain):.2f}s, tracked "
          f"{med(s.cpu for s in tracked):.2f}s; per-pair ratio median {med(ratios_c):.3f} "
          f"(overhead {100 * (med(ratios_c) - 1):+.1f}%)")
    print(f"tracking's own work during training (callbacks + writer thread cpu), median "
          f"{1000 * med(s.work for s in tracked):.0f} ms = "
          f"{100 * med(s.work / s.cpu for s in tracked):.2f}% of the run's cpu")
    print(f"outside training: tracker setup {setup:.1f}s once, final flush median "
          f"{med(flushes):.2f}s a run")


if __name__ == "__main__":
    main()
