"""Engine throughput: end-to-end actions/s, per-action overhead, batch ingestion events/s.

    .venv/bin/python benchmarks/engine.py [--episodes 3000] [--events 200000] [--pg URL]
    .venv/bin/python benchmarks/engine.py --breakdown     # where a task's time goes, per policy

Targets on a 2-core machine: >= 20,000 actions/s end to end with the store on
for every swarm, the learning ones (ucb1, thompson, adaptive) included, and
each learning swarm >= 0.7x the random swarm in the same run; >= 100,000
events/s batch ingestion. Note that a learning swarm solves its tasks in
fewer actions, so the per-task costs (reset, episode events and rows, the
episode-end crediting) weigh more per action than for the random swarm. Beside
our ingestion figure: the same rows written through Python's sqlite3
``executemany`` into the same schema, with the same pragmas and batches (our C
writer, store/_sqlite_batch.c, can beat it: it is a reference, not a bound).
Each figure is the median of ``--repeat`` runs. Beside each store-on figure:
actions per CPU-second of this process (the swarm's and the recorder's threads),
which other jobs on a shared machine distort less than wall time (the targets
are on wall time).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from swarmlearn.core.actions import Action
from swarmlearn.core.events import ActionEvent, EventIds
from swarmlearn.core.scenario import load_scenario
from swarmlearn.session import build_env, run_session
from swarmlearn.store import SqlStore
from swarmlearn.store._codec import event_row


def warm_up() -> None:
    """One untimed task first: imports, and the process's one-off start-up of sessions
    (the collector's freeze of the start-up heap, session.py) are paid before any timing,
    as a user pays them once per process, not per task."""
    run_session(load_scenario("troubleshooting"), episodes=1, seed=0)


def end_to_end(episodes: int, store_url: str | None, policy: str) -> tuple[float, int, float]:
    """Actions per second of wall time, the actions, and actions per second of this
    process's CPU time (all its threads: the swarm's and the recorder's)."""
    sc = load_scenario("troubleshooting").override(workers={"policy": policy})
    store = SqlStore(store_url) if store_url else None
    t0, c0 = time.perf_counter(), time.process_time()
    result = run_session(sc, episodes=episodes, store=store, seed=1000)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    if store is not None:
        assert store.count_events(result.session) == result.actions  # nothing lost
        store.close()
    return result.actions / elapsed, result.actions, result.actions / cpu


class _Timed:
    """Wraps a method of a class with a timer (and a call counter), undone on exit."""

    def __init__(self, cls: type, name: str) -> None:
        self.cls, self.name, self.orig = cls, name, getattr(cls, name)
        self.seconds, self.calls = 0.0, 0

    def __enter__(self) -> _Timed:
        orig, clock, me = self.orig, time.perf_counter, self

        def timed(obj, *args, **kwargs):  # type: ignore[no-untyped-def]
            t0 = clock()
            try:
                return orig(obj, *args, **kwargs)
            finally:
                me.seconds += clock() - t0
                me.calls += 1

        setattr(self.cls, self.name, timed)
        return self

    def __exit__(self, *exc: object) -> None:
        setattr(self.cls, self.name, self.orig)


def breakdown(episodes: int, tmp: str, repeat: int) -> None:
    """Per task, store on: the time of env.reset, of the workers' decisions (narrowing and
    the policy's choice), of the cyclic garbage collector and of everything else, for
    each policy, from instrumented runs (each timer adds ~0.1 µs to its call), the median
    of ``repeat``. Then counterfactual ratios to random, computed from these figures: the
    learning swarm's with reset and the collector free for both, with its decisions at
    what the random swarm's cost, and with both."""
    import gc

    from swarmlearn.core.environment import BaseEnvironment
    from swarmlearn.core.workers import RuleWorker

    gc_time = [0.0, 0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_time[1] = time.perf_counter()
        else:
            gc_time[0] += time.perf_counter() - gc_time[1]

    gc.callbacks.append(on_gc)
    policies = ("random", "ucb1", "thompson", "adaptive")
    runs: dict[str, list[dict[str, float]]] = {p: [] for p in policies}
    try:
        for r in range(repeat):
            for policy in policies:
                gc_time[0] = 0.0
                with _Timed(BaseEnvironment, "reset") as reset, \
                        _Timed(RuleWorker, "decide") as decide:
                    sc = load_scenario("troubleshooting").override(workers={"policy": policy})
                    store = SqlStore(f"sqlite:///{tmp}/breakdown-{policy}-{r}.db")
                    t0 = time.perf_counter()
                    result = run_session(sc, episodes=episodes, store=store, seed=1000)
                    wall = time.perf_counter() - t0
                    store.close()
                n = len(result.episodes)
                runs[policy].append({
                    "task": wall / n, "reset": reset.seconds / n, "decide": decide.seconds / n,
                    "gc": gc_time[0] / n, "actions": result.actions / n,
                    "decisions": decide.calls / n})
    finally:
        gc.callbacks.remove(on_gc)
    med = {p: {k: statistics.median(run[k] for run in runs[p]) for k in runs[p][0]}
           for p in policies}
    print(f"\nwhere a task's time goes (store on, {episodes} tasks, median of {repeat}; "
          "µs per task)\n")
    print(f"{'policy':<10} {'task':>7} {'reset':>7} {'decide':>7} {'gc':>6} {'rest':>7} "
          f"{'actions':>8} {'decisions':>9} {'µs/decision':>11} {'actions/s':>10}")
    for p in policies:
        m = med[p]
        rest = m["task"] - m["reset"] - m["decide"] - m["gc"]
        print(f"{p:<10} {m['task'] * 1e6:7.1f} {m['reset'] * 1e6:7.1f} {m['decide'] * 1e6:7.1f} "
              f"{m['gc'] * 1e6:6.1f} {rest * 1e6:7.1f} {m['actions']:8.2f} {m['decisions']:9.2f} "
              f"{m['decide'] / m['decisions'] * 1e6:11.2f} {m['actions'] / m['task']:10,.0f}")
    r = med["random"]
    rate_r = r["actions"] / r["task"]
    d_r = r["decide"] / r["decisions"]
    rate_free_r = r["actions"] / (r["task"] - r["reset"] - r["gc"])
    print("\ncounterfactual ratios to random (from the figures above, not measured runs):")
    for p in policies[1:]:
        m = med[p]
        same_decision = m["task"] - m["decisions"] * (m["decide"] / m["decisions"] - d_r)
        free_alone = m["task"] - m["reset"] - m["gc"]
        free = same_decision - m["reset"] - m["gc"]
        print(f"  {p:<9} measured {m['actions'] / m['task'] / rate_r:.2f}x; reset + gc free for "
              f"both {m['actions'] / free_alone / rate_free_r:.2f}x; decisions at random's cost "
              f"{m['actions'] / same_decision / rate_r:.2f}x; both "
              f"{m['actions'] / free / rate_free_r:.2f}x")


def env_only(actions: int) -> float:
    """Seconds per action of the environment alone (same scenario, random actions)."""
    import random

    env = build_env(load_scenario("troubleshooting"))
    rng = random.Random(0)
    done, seed = 0, 0
    t0 = time.perf_counter()
    while done < actions:
        obs = env.reset(seed)
        seed += 1
        cands: list[Action] = [c.action for c in obs.candidates]
        while not env.done and done < actions:
            env.step(rng.choice(cands))
            done += 1
    return (time.perf_counter() - t0) / actions


def make_events(n: int) -> list[ActionEvent]:
    sc = load_scenario("troubleshooting").override(workers={"policy": "random"})
    events: list[ActionEvent] = []
    episodes = 200
    while len(events) < n:
        from swarmlearn.core.bus import EventBus

        def grab(bus: EventBus) -> None:  # type: ignore[type-arg]
            bus.subscribe(
                lambda b: events.extend(e for e in b if isinstance(e, ActionEvent)), inline=True
            )

        run_session(sc, episodes=episodes, seed=len(events), subscribers=[grab])
    # give them unique ids in one session
    ids = EventIds(1)
    return [e._replace(id=ids.next(), session=1) for e in events[:n]]


def ingest(events: list[ActionEvent], url: str, batch: int) -> float:
    store = SqlStore(url)
    t0 = time.perf_counter()
    for i in range(0, len(events), batch):
        store.write(events[i : i + batch])
    elapsed = time.perf_counter() - t0
    assert store.count_events() == len(events)
    store.close()
    return len(events) / elapsed


def ingest_executemany(events: list[ActionEvent], path: Path, batch: int) -> float:
    SqlStore(f"sqlite:///{path}").close()  # same schema, same pragmas
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    sql = f"INSERT INTO events VALUES ({', '.join('?' * 18)})"
    t0 = time.perf_counter()
    for i in range(0, len(events), batch):
        rows = [event_row(e) for e in events[i : i + batch]]
        con.execute("BEGIN IMMEDIATE")
        con.executemany(sql, rows)
        con.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    con.close()
    return len(events) / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=3000)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pg", default="", help="also measure ingestion into this PostgreSQL URL")
    ap.add_argument("--breakdown", action="store_true",
                    help="only the per-task breakdown of each policy (instrumented runs)")
    args = ap.parse_args()
    import swarmlearn.learn.policies  # noqa: F401  (imported before any timing)

    warm_up()
    if args.breakdown:
        with tempfile.TemporaryDirectory() as tmp:
            breakdown(args.episodes, tmp, args.repeat)
        return

    with tempfile.TemporaryDirectory() as tmp:
        rows: list[tuple[str, str, str]] = []
        policies = ("random", "fifo", "ucb1", "thompson", "adaptive")
        with_store: dict[str, list[float]] = {p: [] for p in policies}
        without: dict[str, list[float]] = {p: [] for p in policies}
        cpu_on: dict[str, list[float]] = {p: [] for p in policies}
        n_random = 0
        for r in range(args.repeat):  # interleaved: load on the machine hits every policy alike
            for policy in policies:
                rate, n, per_cpu = end_to_end(args.episodes, f"sqlite:///{tmp}/e2e-{policy}-{r}.db",
                                              policy)
                with_store[policy].append(rate)
                cpu_on[policy].append(per_cpu)
                without[policy].append(end_to_end(args.episodes, None, policy)[0])
                n_random = n if policy == "random" else n_random
        base, base_free, base_cpu = (statistics.median(with_store["random"]),
                                     statistics.median(without["random"]),
                                     statistics.median(cpu_on["random"]))
        for policy in policies:
            kind = "learning" if policy in ("ucb1", "thompson", "adaptive") else "rule"
            on, off = statistics.median(with_store[policy]), statistics.median(without[policy])
            target = "target >= 20,000 and >= 0.7x random" if kind == "learning" else ""
            rows.append((f"end to end, {policy} ({kind}) workers, store on",
                         f"{on:,.0f} actions/s", f"{on / base:.2f}x random  {target}"))
            rows.append((f"end to end, {policy} ({kind}) workers, no store",
                         f"{off:,.0f} actions/s", f"{off / base_free:.2f}x random"))
            # on a shared machine wall time is other jobs' too: the process's CPU time beside it
            per_cpu = statistics.median(cpu_on[policy])
            rows.append(("  the same, store on, per CPU-second of this process",
                         f"{per_cpu:,.0f} actions/s", f"{per_cpu / base_cpu:.2f}x random"))
        per_env = env_only(n_random)
        per_action = 1 / base
        rows.append(
            (
                "per-action overhead, random (swarm + events + store, minus env.step)",
                f"{(per_action - per_env) * 1e6:.1f} µs",
                f"env.step alone {per_env * 1e6:.1f} µs",
            )
        )

        events = make_events(args.events)
        ours = [
            ingest(events, f"sqlite:///{tmp}/ing-{r}.db", args.batch) for r in range(args.repeat)
        ]
        raw = [
            ingest_executemany(events, Path(tmp) / f"executemany-{r}.db", args.batch)
            for r in range(args.repeat)
        ]
        o, w = statistics.median(ours), statistics.median(raw)
        rows.append(
            (
                f"ingestion, SQLite, batches of {args.batch}",
                f"{o:,.0f} events/s",
                "target >= 100,000",
            )
        )
        rows.append(
            (
                "  the same rows through sqlite3's executemany",
                f"{w:,.0f} events/s",
                f"ours/executemany = {o / w:.2f}",
            )
        )
        if args.pg:
            pg = statistics.median(_pg_runs(events, args.pg, args.batch, args.repeat))
            rows.append(
                (
                    f"ingestion, PostgreSQL (COPY), batches of {args.batch}",
                    f"{pg:,.0f} events/s",
                    "",
                )
            )

    width = max(len(r[0]) for r in rows)
    print(
        f"\nswarmlearn engine benchmark (median of {args.repeat}; {args.episodes} episodes, "
        f"{args.events:,} events)\n"
    )
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>20}  {note}")


def _pg_runs(events: list[ActionEvent], url: str, batch: int, repeat: int) -> list[float]:
    import psycopg

    out = []
    for _ in range(repeat):
        with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(
                "DROP TABLE IF EXISTS events, episodes, llm_calls, sessions, artifacts, meta"
            )
        out.append(ingest(events, url, batch))
    return out


if __name__ == "__main__":
    main()
