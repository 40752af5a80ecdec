"""Prometheus metrics (``prometheus_client``), served on 127.0.0.1.

Named by Prometheus' conventions: base units (seconds, not ms), counters end
in ``_total``, durations are ``_seconds`` histograms, and every label has a
bounded set of values — scenario labels, action names (an action the
environment does not know is counted as ``<invalid>``), outcome kinds, LLM
purposes, subscriber names, artifact kinds; never task, session or event ids.
:data:`METRICS` lists every family with its labels and meaning (also in
``docs/ops.md``).

The swarm's hot path is untouched. With a store, the events are counted in
the recorder's thread right after each batch is committed
(:meth:`Metrics.timed_store` with ``count=True``, which also times the
writes); without one, :meth:`Metrics.attach` adds a *queued* subscriber (its
own thread, ``Overflow.DROP``). Either way a batch is counted at once, with
``map``/``Counter`` and one update per label set. The lifecycle (promotions,
rollbacks, gates, the live version) comes from a lifecycle observer
(:meth:`Metrics.observe_lifecycle`).

Several processes of one deployment (the daemon, its trainer children,
``serve``, runs) share their metrics in multi-process mode: give each the
same empty directory in ``PROMETHEUS_MULTIPROC_DIR`` (or ``--metrics-dir``)
*before* it starts; every process's ``/metrics`` then shows the sum.
"""

from __future__ import annotations

import bisect
import operator
import os
import threading
import time
from collections import Counter as Tally
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from swarmlearn._extras import require
from swarmlearn.core.actions import ActionResult
from swarmlearn.core.bus import EventBus, Overflow, Subscription
from swarmlearn.core.events import ActionEvent, EpisodeEnded, Event, LLMCallEvent

if TYPE_CHECKING:
    from swarmlearn.lifecycle import Lifecycle
    from swarmlearn.store import LogRecord, Store

__all__ = ["METRICS", "MULTIPROC_ENV", "MetricSpec", "Metrics", "MetricsServer", "process_metrics"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
INVALID_ACTION = "<invalid>"
LLM_PURPOSES = ("decide", "guide", "plan", "reflect", "other")
OUTCOMES = ("success", "failure", "timeout", "unknown")


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str  # as exposed (counters with their _total)
    kind: str  # counter | histogram | gauge
    labels: tuple[str, ...]
    help: str


_SECONDS_FAST = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0)
_SECONDS_LLM = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_SECONDS_LONG = (1.0, 10.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0)
_SECONDS_EPISODE = (0.001, 0.01, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0)

METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("swarmlearn_actions_total", "counter", ("scenario", "action", "result"),
               "Actions taken, by scenario, action name and result (success|failure|invalid)."),
    MetricSpec("swarmlearn_episodes_total", "counter", ("scenario", "outcome"),
               "Tasks (episodes) finished, by outcome."),
    MetricSpec("swarmlearn_episode_duration_seconds", "histogram", ("scenario",),
               "Wall time of one task, by the swarm's clock."),
    MetricSpec("swarmlearn_episode_actions", "histogram", ("scenario",),
               "Actions spent on one task."),
    MetricSpec("swarmlearn_tick_seconds", "histogram", ("scenario",),
               "Decision latency of the swarm: the mean wall time of one tick (the manager's "
               "guidance, every worker's decision, their actions), one value per task."),
    MetricSpec("swarmlearn_llm_calls_total", "counter", ("purpose", "result"),
               "Language-model calls, by purpose (decide|guide|plan|reflect|other) and "
               "result (ok|error)."),
    MetricSpec("swarmlearn_llm_tokens_total", "counter", ("purpose", "direction"),
               "Tokens of language-model calls, prompt or completion."),
    MetricSpec("swarmlearn_llm_latency_seconds", "histogram", ("purpose",),
               "Latency of one language-model call."),
    MetricSpec("swarmlearn_bus_dropped_events_total", "counter", ("subscriber",),
               "Events a too-slow queued bus subscriber dropped."),
    MetricSpec("swarmlearn_bus_blocked_seconds_total", "counter", ("subscriber",),
               "Seconds publishers waited for a full must-not-lose subscriber (the recorder)."),
    MetricSpec("swarmlearn_store_write_seconds", "histogram", (),
               "Time to write (commit) one batch of events to the store."),
    MetricSpec("swarmlearn_store_written_events_total", "counter", (),
               "Events written to the store."),
    MetricSpec("swarmlearn_training_runs_total", "counter", ("kind", "result"),
               "Trainings of a lifecycle kind, by result (produced|failed)."),
    MetricSpec("swarmlearn_training_duration_seconds", "histogram", ("kind",),
               "Wall time of one training, when the producer reported it."),
    MetricSpec("swarmlearn_gate_decisions_total", "counter", ("kind", "decision"),
               "Gate decisions on challengers (promote|reject)."),
    MetricSpec("swarmlearn_promotions_total", "counter", ("kind",),
               "Versions made champion (by a gate or by hand)."),
    MetricSpec("swarmlearn_rollbacks_total", "counter", ("kind", "trigger"),
               "Champions rolled back (automatic|manual)."),
    MetricSpec("swarmlearn_artifact_live_version", "gauge", ("kind", "scope"),
               "The champion's version number of each lineage (0: the baseline is live)."),
    MetricSpec("swarmlearn_build_info", "gauge", ("version",), "Always 1; the version."),
)


class Metrics:
    """The metric families of :data:`METRICS` on one registry (default: the process's)."""

    def __init__(self, registry: Any = None) -> None:
        pc = require("prometheus_client", "ops")
        from swarmlearn import __version__

        self.registry = pc.REGISTRY if registry is None else registry
        made: dict[str, Any] = {}
        for spec in METRICS:
            base = spec.name.removesuffix("_total") if spec.kind == "counter" else spec.name
            kw: dict[str, Any] = {"registry": self.registry}
            if spec.kind == "histogram":
                kw["buckets"] = _buckets(spec.name)
            if spec.kind == "gauge":
                kw["multiprocess_mode"] = "mostrecent"
            cls = {"counter": pc.Counter, "histogram": pc.Histogram, "gauge": pc.Gauge}[spec.kind]
            made[spec.name] = cls(base, spec.help, spec.labels, **kw)
        self._m = made
        self._lock = threading.Lock()
        self._bus_seen: dict[tuple[int, str], tuple[int, float]] = {}
        made["swarmlearn_build_info"].labels(__version__).set(1)
        for purpose in LLM_PURPOSES:  # known label values start at 0 (no missing series)
            for result in ("ok", "error"):
                made["swarmlearn_llm_calls_total"].labels(purpose, result)
            for direction in ("prompt", "completion"):
                made["swarmlearn_llm_tokens_total"].labels(purpose, direction)
            made["swarmlearn_llm_latency_seconds"].labels(purpose)
        for name in ("recorder",):
            made["swarmlearn_bus_dropped_events_total"].labels(name)
            made["swarmlearn_bus_blocked_seconds_total"].labels(name)

    def __getitem__(self, name: str) -> Any:
        return self._m[name]

    # -- the event bus -------------------------------------------------------------------
    def attach(self, bus: EventBus[Event]) -> Subscription[Event]:
        """Count ``bus``'s events on a queued subscriber (``run_session(subscribers=…)``)."""
        counter = _BusCounter(self, bus)
        return bus.subscribe(counter, name="metrics", maxsize=65_536, overflow=Overflow.DROP,
                             batch_size=4_096, max_delay=0.2)

    def bus_stats(self, bus_id: int, stats: Sequence[Any]) -> None:
        """Add what the bus' subscribers dropped and waited since the last call."""
        dropped, blocked = (self._m["swarmlearn_bus_dropped_events_total"],
                            self._m["swarmlearn_bus_blocked_seconds_total"])
        with self._lock:
            for s in stats:
                key = (bus_id, s.name)
                d0, b0 = self._bus_seen.get(key, (0, 0.0))
                if s.dropped > d0:
                    dropped.labels(s.name).inc(s.dropped - d0)
                if s.blocked_seconds > b0:
                    blocked.labels(s.name).inc(s.blocked_seconds - b0)
                self._bus_seen[key] = (max(d0, s.dropped), max(b0, s.blocked_seconds))

    # -- the store -----------------------------------------------------------------------
    def timed_store(self, store: Store, *, count: bool = False) -> Store:
        """``store`` with its event writes timed (pass it to ``run_session``); with
        ``count`` the events are also counted there, in the recorder's thread, after
        each write (then no bus subscriber is needed: :meth:`bind` gives it the bus)."""
        counter = _BusCounter(self, None) if count else None
        return cast("Store", _TimedStore(store, self._m["swarmlearn_store_write_seconds"],
                                         self._m["swarmlearn_store_written_events_total"],
                                         counter))

    @staticmethod
    def bind(store: Store, bus: EventBus[Event]) -> bool:
        """Tell a counting :meth:`timed_store` which bus it counts for (its drop and wait
        stats); False if ``store`` does not count."""
        counter = getattr(store, "counter", None)
        if not isinstance(counter, _BusCounter):
            return False
        counter.bus = bus
        return True

    # -- the lifecycle -------------------------------------------------------------------
    def observe_lifecycle(self, life: Lifecycle, record: LogRecord) -> None:
        """A :class:`~swarmlearn.lifecycle.LifecycleObserver`: one lifecycle step."""
        kind, data, m = record.kind, record.data, self._m
        if record.step == "produce":
            m["swarmlearn_training_runs_total"].labels(kind, "produced").inc()
            seconds = _training_seconds(life, record)
            if seconds is not None:
                m["swarmlearn_training_duration_seconds"].labels(kind).observe(seconds)
        elif record.step in ("fail", "run-failed"):  # evaluating failed / the daemon's trainer
            m["swarmlearn_training_runs_total"].labels(kind, "failed").inc()
        elif record.step == "reject":
            m["swarmlearn_gate_decisions_total"].labels(kind, "reject").inc()
        elif record.step == "promote":
            m["swarmlearn_promotions_total"].labels(kind).inc()
            if data.get("gated"):
                m["swarmlearn_gate_decisions_total"].labels(kind, "promote").inc()
        elif record.step == "rollback":
            trigger = "automatic" if data.get("automatic") else "manual"
            m["swarmlearn_rollbacks_total"].labels(kind, trigger).inc()
        if record.step in ("promote", "rollback"):
            live = life.champion(payload=False)
            m["swarmlearn_artifact_live_version"].labels(kind, record.scope).set(
                live.version if live is not None else 0)


def _meta(life: Lifecycle, record: LogRecord) -> Mapping[str, Any]:
    if not record.artifact_id:
        return {}
    return life.store.get_artifact_by_id(record.artifact_id, payload=False).meta


def _training_seconds(life: Lifecycle, record: LogRecord) -> float | None:
    metrics = _meta(life, record).get("lineage", {}).get("metrics", {})
    for key in ("wall_seconds", "train_seconds", "seconds", "wall"):
        value = metrics.get(key) if isinstance(metrics, Mapping) else None
        if isinstance(value, int | float) and value >= 0:
            return float(value)
    return None


def _buckets(name: str) -> tuple[float, ...]:
    if name == "swarmlearn_llm_latency_seconds":
        return _SECONDS_LLM
    if name == "swarmlearn_training_duration_seconds":
        return _SECONDS_LONG
    if name == "swarmlearn_episode_duration_seconds":
        return _SECONDS_EPISODE
    if name == "swarmlearn_episode_actions":
        return (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
    return _SECONDS_FAST


def _scenario(task: str) -> str:
    return task.rpartition(":")[0] or task


# NamedTuple fields by position: itemgetter is the cheapest read there is
_task = operator.itemgetter(ActionEvent._fields.index("task"))
_action = operator.itemgetter(ActionEvent._fields.index("action"))
_result = operator.itemgetter(ActionEvent._fields.index("result"))
_success = operator.itemgetter(ActionResult._fields.index("success"))
_invalid = operator.itemgetter(ActionResult._fields.index("invalid"))


class _BusCounter:
    """Counts a batch of events with C-level iteration (``map``, ``Counter``), then makes
    one update per label set. Runs as a queued bus subscriber, or inside the recorder's
    store writes (:meth:`Metrics.timed_store`)."""

    def __init__(self, metrics: Metrics, bus: EventBus[Event] | None) -> None:
        self.metrics = metrics
        self.bus = bus
        self._scenarios: dict[str, str] = {}

    def _scenarios_of(self, tasks: list[str]) -> list[str]:
        cache = self._scenarios
        for task in set(tasks).difference(cache):
            cache[task] = _scenario(task)
        return list(map(cache.__getitem__, tasks))

    def __call__(self, batch: Sequence[Event]) -> None:
        acts = [e for e in batch if type(e) is ActionEvent]
        if acts:
            self._actions(acts)
        if len(acts) == len(batch):
            return
        others = [e for e in batch if type(e) is not ActionEvent]
        ended = [e for e in others if type(e) is EpisodeEnded]
        if ended:
            self._episodes(ended)
        for e in others:
            if type(e) is LLMCallEvent:
                self._llm(e)
        if ended and self.bus is not None:
            self.metrics.bus_stats(id(self.bus), self.bus.stats())
        if len(self._scenarios) > 100_000:
            self._scenarios.clear()

    def _actions(self, acts: list[ActionEvent]) -> None:
        results = list(map(_result, acts))
        scenarios = self._scenarios_of(list(map(_task, acts)))
        counted = Tally(zip(scenarios, map(_action, acts), map(_success, results),
                            strict=True))
        by_label: Tally[tuple[str, str, str]] = Tally()
        for (sc, action, success), n in counted.items():
            by_label[(sc, action, "success" if success else "failure")] += n
        if any(map(_invalid, results)):  # rare: an action the environment does not know
            for e, sc in zip(acts, scenarios, strict=True):
                if e.result.invalid:
                    was = "success" if e.result.success else "failure"
                    by_label[(sc, e.action, was)] -= 1
                    by_label[(sc, INVALID_ACTION, "invalid")] += 1
        counter = self.metrics["swarmlearn_actions_total"]
        for labels, n in by_label.items():
            if n:
                counter.labels(*labels).inc(n)

    def _episodes(self, ended: list[EpisodeEnded]) -> None:
        m = self.metrics
        scenarios = self._scenarios_of([e.task for e in ended])
        outcomes: Tally[tuple[str, str]] = Tally()
        series: dict[str, dict[str, list[float]]] = {}
        for e, sc in zip(ended, scenarios, strict=True):
            outcomes[(sc, e.outcome.kind.value)] += 1
            got = series.get(sc)
            if got is None:
                got = series[sc] = {"swarmlearn_episode_duration_seconds": [],
                                    "swarmlearn_episode_actions": [],
                                    "swarmlearn_tick_seconds": []}
            got["swarmlearn_episode_duration_seconds"].append(e.duration)
            got["swarmlearn_episode_actions"].append(float(e.actions))
            if e.ticks > 0:
                got["swarmlearn_tick_seconds"].append(e.duration / e.ticks)
        for labels, n in outcomes.items():
            m["swarmlearn_episodes_total"].labels(*labels).inc(n)
        for sc, by_name in series.items():
            for name, values in by_name.items():
                if values:
                    _observe_many(m[name].labels(sc), values)

    def _llm(self, e: LLMCallEvent) -> None:
        m = self.metrics
        purpose = e.purpose if e.purpose in LLM_PURPOSES else "other"
        m["swarmlearn_llm_calls_total"].labels(purpose, "ok" if e.ok else "error").inc()
        tokens = m["swarmlearn_llm_tokens_total"]
        tokens.labels(purpose, "prompt").inc(e.prompt_tokens)
        tokens.labels(purpose, "completion").inc(e.completion_tokens)
        m["swarmlearn_llm_latency_seconds"].labels(purpose).observe(e.latency)


def _observe_many(child: Any, values: list[float]) -> None:
    """``child.observe(v)`` for every value, with one update per bucket (filled as
    ``Histogram.observe`` fills them; checked against it in the tests)."""
    bounds = getattr(child, "_upper_bounds", None)
    buckets = getattr(child, "_buckets", None)
    total = getattr(child, "_sum", None)
    if bounds is None or buckets is None or total is None:  # another prometheus_client
        for v in values:
            child.observe(v)
        return
    counts = [0] * len(bounds)
    for v in values:
        counts[bisect.bisect_left(bounds, v)] += 1
    total.inc(sum(values))
    for i, n in enumerate(counts):
        if n:
            buckets[i].inc(n)


class _TimedStore:
    """A store whose ``write`` is timed (and its events counted, with a counter);
    everything else goes to the store as it is."""

    def __init__(self, store: Store, hist: Any, written: Any,
                 counter: _BusCounter | None) -> None:
        self._store = store
        self._hist = hist
        self._written = written
        self.counter = counter

    def write(self, batch: Sequence[Event]) -> None:
        t0 = time.perf_counter()
        self._store.write(batch)
        self._hist.observe(time.perf_counter() - t0)
        self._written.inc(len(batch))
        if self.counter is not None:
            self.counter(batch)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class MetricsServer:
    """``/metrics`` on ``host:port`` in a daemon thread (multi-process aware)."""

    def __init__(self, port: int, host: str = "127.0.0.1", registry: Any = None) -> None:
        pc = require("prometheus_client", "ops")
        if registry is None and os.environ.get(MULTIPROC_ENV):
            registry = pc.CollectorRegistry()
            require("prometheus_client.multiprocess", "ops").MultiProcessCollector(registry)
        self.server, self.thread = pc.start_http_server(
            port, addr=host, registry=pc.REGISTRY if registry is None else registry)
        self.host = host
        self.port = int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


_process: list[Metrics] = []


def process_metrics() -> Metrics:
    """The metrics of this process on prometheus_client's default registry (made once:
    a family can be registered only once per registry)."""
    if not _process:
        _process.append(Metrics())
    return _process[0]
