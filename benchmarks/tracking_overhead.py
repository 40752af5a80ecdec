"""What MLflow tracking costs a DQN training: the same training with and without it,
interleaved in one process.

    python benchmarks/tracking_overhead.py                       # 5 repeats of 20,000 steps
    python benchmarks/tracking_overhead.py --repeats 9 --steps 50000
    python benchmarks/tracking_overhead.py --uri http://127.0.0.1:5000   # a running mlflow server

This is the measure issue 15 asks of "``benchmarks/dqn_cartpole.py``": the DQN
of ``swarmlearn rl train CartPole-v1`` (the default ``RunConfig``/``DQNConfig``:
rl-zoo's CartPole hyperparameters, 3-step returns), with and without the
tracking the CLI attaches (``ops.hooks.track_dqn``: progress at most every 2 s,
the evaluations, the params and tags; the per-episode curves and the run's
files at the end).

Each repeat builds two trainers with the same seed (their trainings are
identical, step for step), one plain and one tracked, and advances them in
turns of ``--slice`` steps (ABBA: the side that goes first alternates), so both
see the same load from the rest of the machine; timing two whole trainings one
after the other on a shared 2-core machine gave per-pair ratios from 0.36 to
2.12, far more than tracking costs. Timed per side: the training loop's wall
time and this process's CPU time (the training, and the MLflow writer thread).
The writer is paused while the plain side runs (``Tracker.pause``), so all it
does during training — every flush and its contention for the GIL — lands in
the tracked side's time; a send still in progress when a tracked turn ends is
counted in that turn, the tracked side training on in steps of 10 while it
lasts (the plain side catches up in its next turn). Tracking's own work is
also measured directly: the callbacks plus the writer thread's CPU.

Printed apart, not in the training figures: opening the tracker (importing
MLflow, creating the sqlite database on first use), the run's start (``track_dqn``
waits until MLflow has the run and its params before the training begins) and
its end (the per-episode curves and files, the final flush).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarmlearn.ops.hooks import DqnTracking, track_dqn
from swarmlearn.ops.tracking import Tracker, TrackingConfig
from swarmlearn.rl import RunConfig, Trainer


@dataclass
class Side:
    wall: float = 0.0
    cpu: float = 0.0
    work: float = 0.0  # tracking's own work: the callbacks + the writer thread's CPU


class _Timed:
    """A tracking callback, with the CPU time spent in it summed (not wall time: on a
    loaded machine that counts the waits for a core)."""

    def __init__(self, fn: Callable[[Any], None]) -> None:
        self.fn, self.seconds = fn, 0.0

    def __call__(self, record: Any) -> None:
        t0 = time.thread_time()
        self.fn(record)
        self.seconds += time.thread_time() - t0


def _trainer(root: Path, steps: int, seed: int) -> Trainer:
    return Trainer.start(RunConfig(env_id="CartPole-v1", steps=steps, seed=seed,
                                   runs_dir=str(root), eval_every=max(1, steps // 4),
                                   checkpoint_every=0))


def _turn(trainer: Trainer, until: int, side: Side, tracked: DqnTracking | None,
          tracker: Tracker, callbacks: tuple[_Timed, _Timed] | None) -> None:
    """Advance ``trainer`` to step ``until``, adding its wall and CPU time to ``side``."""
    w0, c0, writer0 = time.perf_counter(), time.process_time(), tracker.writer_cpu_seconds
    if tracked is None or callbacks is None:
        trainer.loop.run(until=until)
    else:
        tracker.resume()
        trainer.loop.run(until=until, on_progress=callbacks[0], on_eval=callbacks[1])
        while tracker.sending and not trainer.session.is_done:  # a send overlaps training
            until = trainer.session.steps + 10                  # (the plain side catches up)
            trainer.loop.run(until=until, on_progress=callbacks[0], on_eval=callbacks[1])
        tracker.pause()  # at the very end, waits for a send in progress: counted here
    side.wall += time.perf_counter() - w0
    side.cpu += time.process_time() - c0
    side.work += tracker.writer_cpu_seconds - writer0


def _repeat(root: Path, steps: int, chunk: int, seed: int, tracker: Tracker
            ) -> tuple[Side, Side, float, float]:
    """One plain and one tracked training of ``seed``, in turns; returns both sides and
    the seconds the tracked run's start (its creation and params, before training) and
    end (curves, files, final flush) took."""
    plain, tracked = Side(), Side()
    a = _trainer(root / f"plain{seed}", steps, seed)
    b = _trainer(root / f"tracked{seed}", steps, seed)
    try:
        t0 = time.perf_counter()
        tracker.resume()
        with track_dqn(b, "bench.rl.train", tracker=tracker) as tracking:
            tracker.pause()
            start = time.perf_counter() - t0
            callbacks = (_Timed(tracking.on_progress), _Timed(tracking.on_eval))
            k = 0
            while not (a.session.is_done and b.session.is_done):
                until = min(steps, (k // 2 + 1) * chunk)
                first_plain = (k // 2) % 2 == 0
                if (k % 2 == 0) == first_plain:
                    _turn(a, until, plain, None, tracker, None)
                else:
                    _turn(b, until, tracked, tracking, tracker, callbacks)
                k += 1
            tracked.work += callbacks[0].seconds + callbacks[1].seconds
            a.run()  # closes the session, writes the curve: the same for both, untimed
            b.run()
            t0 = time.perf_counter()
            tracker.resume()
        # leaving track_dqn logs the curves and files and ends the run
        if not tracker.flush(60):
            print("  warning: the tracker did not flush within 60 s")
        end = time.perf_counter() - t0
        tracker.pause()
    finally:
        a.close()
        b.close()
    return plain, tracked, start, end


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--steps", type=int, default=20_000)
    p.add_argument("--slice", type=int, default=100, help="steps a turn")
    p.add_argument("--uri", default="", help="tracking URI (default: sqlite in a temp dir)")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        uri = args.uri or f"sqlite:///{root / 'mlflow.db'}"
        t0 = time.perf_counter()
        tracker = Tracker(TrackingConfig(uri=uri, artifacts=str(root / "mlruns"),
                                         experiment="tracking-overhead"))
        if not tracker.wait_ready(120):
            raise SystemExit(f"MLflow at {uri} did not answer within 120 s")
        setup = time.perf_counter() - t0
        print(f"tracker ready in {setup:.1f}s (MLflow import + store at {uri}); DQN "
              f"CartPole-v1, {args.steps:,} steps a training, turns of {args.slice} steps, "
              f"{args.repeats} repeats; load average {load0[0]:.2f} {load0[1]:.2f} "
              f"{load0[2]:.2f} ({os.cpu_count()} cores)")
        _repeat(root / "warmup", 2 * args.slice, args.slice, 999, tracker)  # first-use costs
        tracker.pause()
        plain: list[Side] = []
        tracked: list[Side] = []
        starts: list[float] = []
        ends: list[float] = []
        for k in range(args.repeats):
            a, b, start, end = _repeat(root, args.steps, args.slice, k, tracker)
            plain.append(a)
            tracked.append(b)
            starts.append(start)
            ends.append(end)
            print(f"repeat {k}: plain {a.wall:6.2f}s wall {a.cpu:6.2f}s cpu | tracked "
                  f"{b.wall:6.2f}s wall {b.cpu:6.2f}s cpu | ratio wall {b.wall / a.wall:.4f} "
                  f"cpu {b.cpu / a.cpu:.4f} | tracking's own work {b.work * 1000:.0f} ms = "
                  f"{100 * b.work / b.cpu:.2f}% of the tracked cpu   (run start {start:.2f}s, "
                  f"end {end:.2f}s)",
                  flush=True)
        tracker.close()
        if tracker.gaps:
            print(f"  warning: {len(tracker.gaps)} tracking gap(s): {tracker.gaps[0]}")
    load1 = os.getloadavg()
    med = statistics.median
    for what in ("wall", "cpu"):
        xs = [getattr(s, what) for s in plain]
        ys = [getattr(s, what) for s in tracked]
        ratios = sorted(y / x for x, y in zip(xs, ys, strict=True))
        print(f"training {what:4}: plain median {med(xs):.2f}s, tracked median {med(ys):.2f}s;"
              f" ratio median {med(ratios):.4f} (overhead {100 * (med(ratios) - 1):+.2f}%), "
              f"pooled {sum(ys) / sum(xs):.4f}, per repeat {', '.join(f'{r:.3f}' for r in ratios)}")
    print(f"tracking's own work during training (callbacks + writer thread cpu): median "
          f"{1000 * med(s.work for s in tracked):.0f} ms = "
          f"{100 * med(s.work / s.cpu for s in tracked):.2f}% of the tracked cpu")
    print(f"outside training: tracker setup {setup:.1f}s once; a tracked run's start (the "
          f"run and its params) median {med(starts):.2f}s, its end (curves, files, final "
          f"flush) median {med(ends):.2f}s; load average at the end "
          f"{load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")


if __name__ == "__main__":
    main()
