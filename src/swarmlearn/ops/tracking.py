"""MLflow tracking that never stops training.

A :class:`Tracker` talks to one MLflow tracking server (or the embedded
default, ``sqlite:///.swarmlearn/mlflow.db`` with artifacts under
``.swarmlearn/mlruns``); each tracked command is a :class:`TrackedRun`.
Logging never waits for MLflow: ``log_metrics`` appends to the run's buffer
(a list append under a lock) and one writer thread sends the buffers with
``MlflowClient.log_batch`` (up to 1,000 values a request) every
``flush_interval`` seconds, or less often when a send costs more CPU than
``cpu_budget`` allows (MLflow's embedded sqlite store does its database work in
this process, holding the GIL), so tracking costs the trainer next to nothing
however slow the store.

When MLflow cannot be reached (a dead server, a bad URI, a full disk) the
writer keeps everything buffered, retries with a growing pause, and reports
the outage **once**: one warning when it starts, and one line when it ends
(or when the tracker closes with the server still away) saying how long it
lasted and how many values were sent late or could not be sent. The
trainer's own outputs (run directories, the store) are never affected. A
buffer holds at most ``max_buffered`` values; past that the oldest are
dropped and counted in the gap.

Tracking is off unless asked for: ``swarmlearn --track`` (or
``--tracking-uri URI``), ``SWARMLEARN_TRACKING=1|URI``, or
``MLFLOW_TRACKING_URI`` in the environment (``SWARMLEARN_TRACKING=0`` turns it
off again). :func:`track` is what the commands use::

    with track("rl.train", params=config, tags={"swarmlearn.run_dir": path}) as run:
        trainer.run(on_progress=run.callback(step="steps"))
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from swarmlearn._config import check_range
from swarmlearn._extras import require

__all__ = [
    "DEFAULT_ARTIFACTS",
    "DEFAULT_URI",
    "TRACKING_ENV",
    "Gap",
    "TrackedRun",
    "Tracker",
    "TrackingConfig",
    "cpu_spacing",
    "current_run",
    "flatten",
    "require_mlflow",
    "track",
]

logger = logging.getLogger(__name__)

DEFAULT_URI = "sqlite:///.swarmlearn/mlflow.db"
DEFAULT_ARTIFACTS = ".swarmlearn/mlruns"
TRACKING_ENV = "SWARMLEARN_TRACKING"
_OFF = {"", "0", "off", "false", "no"}
_ON = {"1", "on", "true", "yes"}
_BATCH = 1_000  # MLflow's log_batch limit for metrics
_PARAM_BATCH = 100  # … and for params and tags
_PARAM_LEN = 6_000


@dataclass(frozen=True, kw_only=True, slots=True)
class TrackingConfig:
    """Where and how to track.

    ``uri`` "" means ``$MLFLOW_TRACKING_URI``, else :data:`DEFAULT_URI`;
    ``artifacts`` (the artifact root of experiments this tracker creates) ""
    means :data:`DEFAULT_ARTIFACTS` for a local sqlite URI and the server's
    default otherwise.
    """

    uri: str = ""
    artifacts: str = ""
    experiment: str = "swarmlearn"
    flush_interval: float = 5.0
    cpu_budget: float = 0.005
    """The share of this process's CPU time the writer may spend sending: after a send
    that cost it ``c`` seconds of CPU, the next periodic one waits ``flush_interval`` and
    until the process has used ``c / cpu_budget`` more seconds of CPU (at most
    ``max_flush_interval`` in all); 0 turns the budget off."""
    max_flush_interval: float = 60.0
    retry_min: float = 1.0
    retry_max: float = 30.0
    max_buffered: int = 500_000
    request_timeout: int = 10
    close_timeout: float = 15.0

    def __post_init__(self) -> None:
        check_range("flush_interval", self.flush_interval, lo=0.01)
        check_range("cpu_budget", self.cpu_budget, lo=0.0, hi=1.0)
        check_range("max_flush_interval", self.max_flush_interval, lo=self.flush_interval)
        check_range("retry_min", self.retry_min, lo=0.01)
        check_range("retry_max", self.retry_max, lo=self.retry_min)
        check_range("max_buffered", self.max_buffered, lo=1)
        check_range("request_timeout", self.request_timeout, lo=1)
        check_range("close_timeout", self.close_timeout, lo=0.0)

    @property
    def resolved_uri(self) -> str:
        return self.uri or os.environ.get("MLFLOW_TRACKING_URI", "") or DEFAULT_URI

    @property
    def artifact_location(self) -> str | None:
        if self.artifacts:
            return _as_uri(self.artifacts)
        if self.resolved_uri.startswith("sqlite:///"):
            return _as_uri(DEFAULT_ARTIFACTS)
        return None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TrackingConfig | None:
        """The config the environment asks for, or None when tracking is off."""
        env = os.environ if env is None else env
        value = env.get(TRACKING_ENV, "").strip()
        if value.lower() in _OFF:
            if value == "" and env.get("MLFLOW_TRACKING_URI"):
                return cls()
            return None
        return cls() if value.lower() in _ON else cls(uri=value)


def cpu_spacing(config: TrackingConfig, send_cpu: float) -> float:
    """Seconds of this process's CPU time to let pass after a send that cost the writer
    ``send_cpu`` seconds of CPU, so the writer's share of the process's CPU stays within
    ``config.cpu_budget`` however slow the store and however loaded the machine (MLflow's
    embedded sqlite store costs ~10 ms a request, several times that on a loaded machine;
    a server costs the client a few ms)."""
    return send_cpu / config.cpu_budget if config.cpu_budget > 0 else 0.0


def require_mlflow() -> Any:
    """Import MLflow with its usage telemetry off (unless the environment says otherwise):
    swarmlearn does not send usage data to a server on the internet on anyone's behalf."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    return require("mlflow", "ops")


def _as_uri(path: str) -> str:
    return path if "://" in path else Path(path).expanduser().resolve().as_uri()


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config → ``{"dqn.lr": "0.001", …}`` as MLflow params (values cut at 6,000)."""
    out: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = str(value)[:_PARAM_LEN]
    return out


def _numbers(record: Any) -> dict[str, float]:
    """The finite numeric fields of a NamedTuple, dataclass or mapping."""
    if isinstance(record, Mapping):
        items = list(record.items())
    elif hasattr(record, "_asdict"):
        items = list(record._asdict().items())
    elif is_dataclass(record) and not isinstance(record, type):
        items = [(f.name, getattr(record, f.name)) for f in fields(record)]
    else:
        raise TypeError(f"cannot read metrics from {type(record).__name__}")
    return {str(k): float(v) for k, v in items
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)}


_REFUSED = {"INVALID_PARAMETER_VALUE", "BAD_REQUEST", "RESOURCE_ALREADY_EXISTS",
            "INVALID_STATE", "PERMISSION_DENIED", "RESOURCE_DOES_NOT_EXIST"}


def _refused(exc: BaseException) -> bool:
    """MLflow answered and said no (a changed param, a bad value): retrying cannot help.
    Anything else (no answer, a server error) is an outage."""
    return getattr(exc, "error_code", None) in _REFUSED


def _unless_refused(send: Callable[[], Any], what: str) -> None:
    """``send()``; a refusal is logged and dropped, an outage raised (kept and retried)."""
    try:
        send()
    except Exception as exc:
        if not _refused(exc):
            raise
        logger.warning("MLflow refused %s (%s); left out", what,
                       str(exc).splitlines()[0][:300])


@dataclass(slots=True)
class Gap:
    """One stretch of time MLflow could not be reached."""

    started: float
    error: str
    ended: float | None = None
    delayed: int = 0  # values buffered during the gap and sent after it
    dropped: int = 0  # values the buffer could not hold (oldest first)
    unsent: int = 0  # values still buffered when the tracker closed

    @property
    def seconds(self) -> float:
        return (self.ended or time.time()) - self.started

    def describe(self, uri: str) -> str:
        lost = self.dropped + self.unsent
        if self.ended is not None:
            head = f"MLflow tracking at {uri} was unreachable for {self.seconds:.1f}s"
            tail = f"{self.delayed} value(s) were buffered and sent late"
        else:
            head = f"MLflow tracking at {uri} unreachable since {self.seconds:.1f}s ago"
            tail = "the tracker closed before it came back"
        loss = (f"; {lost} metric value(s) not tracked (the run directory and the store "
                f"have everything)") if lost else "; nothing lost"
        return f"{head} ({self.error}): {tail}{loss}"


@dataclass(slots=True)
class _Run:
    """Buffered state of one run, shared by the caller's thread and the writer."""

    name: str
    tags: dict[str, str]
    params: dict[str, str]
    start_ms: int
    run_id: str | None = None
    points: deque[tuple[str, float, int, int]] = field(default_factory=deque)
    ops: deque[tuple[str, Any]] = field(default_factory=deque)
    ended: bool = False
    sent_end: bool = False


class TrackedRun:
    """One MLflow run. Every method returns at once; the writer sends later."""

    def __init__(self, tracker: Tracker, state: _Run) -> None:
        self._tracker = tracker
        self._state = state
        self.versions: set[int] = set()  # artifact ids already logged (ops.hooks.log_version)

    @property
    def run_id(self) -> str | None:
        """MLflow's run id, once the writer has created the run (None before, or if down)."""
        return self._state.run_id

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0,
                    ts: float | None = None) -> None:
        ms = int((time.time() if ts is None else ts) * 1000)
        pts = [(k, float(v), ms, step) for k, v in metrics.items()
               if v is not None and math.isfinite(v)]
        self._tracker._add_points(self._state, pts)

    def log_metric(self, key: str, value: float, step: int = 0) -> None:
        self.log_metrics({key: value}, step)

    def log_series(self, key: str, values: list[tuple[int, float]], ts: float | None = None
                   ) -> None:
        """Many (step, value) points of one metric at once (a curve known at the end)."""
        ms = int((time.time() if ts is None else ts) * 1000)
        self._tracker._add_points(self._state, [(key, float(v), ms, s) for s, v in values
                                                if math.isfinite(v)])

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._tracker._add_op(self._state, "params", flatten(params))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self._tracker._add_op(self._state, "tags", {k: str(v) for k, v in tags.items()})

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """A file or directory, sent as it is when the writer gets to it."""
        self._tracker._add_op(self._state, "artifact", (str(path), artifact_path))

    def log_text(self, text: str, artifact_file: str) -> None:
        self._tracker._add_op(self._state, "text", (text, artifact_file))

    def wait_sent(self, timeout: float) -> bool:
        """Wait until MLflow has this run and everything logged to it so far (trainers
        call it before training, so creating the run and sending its params is not done
        on the training's time); gives up at once when MLflow is unreachable, else after
        ``timeout``. True if all was sent."""
        return self._tracker._wait_sent(self._state, timeout)

    def callback(self, *, step: str = "step", prefix: str = "") -> Callable[[Any], None]:
        """A progress callback for any trainer: logs the record's numeric fields at
        ``record.<step>`` (NamedTuples, dataclasses and mappings)."""
        def observe(record: Any) -> None:
            values = _numbers(record)
            at = int(values.pop(step, 0))
            self.log_metrics({f"{prefix}{k}": v for k, v in values.items()}, at)
        return observe

    def end(self, status: str = "FINISHED") -> None:
        if not self._state.ended:
            self._state.ended = True
            self._tracker._add_op(self._state, "end", status)


class Tracker:
    """The MLflow client of this process, with its buffering writer thread."""

    def __init__(self, config: TrackingConfig | None = None) -> None:
        self.config = config or TrackingConfig()
        self.uri = self.config.resolved_uri
        self.gaps: list[Gap] = []
        self.writer_cpu_seconds = 0.0  # CPU the writer thread spent sending (benchmarks)
        self._runs: list[_Run] = []
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._buffered = 0
        self._closed = False
        self._busy = False
        self._paused = False
        self._urgent = False  # something to send now, whatever the interval and budget
        self._unpaused = threading.Condition(self._lock)  # not _wake: no early send
        self._client: Any = None
        self._experiment_id: str | None = None
        self._ready = threading.Event()
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # the writer retries
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(self.config.request_timeout))
        require_mlflow()  # import here (seconds), not in the writer during training
        self._thread = threading.Thread(target=self._loop, name="mlflow-writer", daemon=True)
        self._thread.start()

    # -- the caller's side -----------------------------------------------------------------
    def start_run(self, name: str, *, params: Mapping[str, Any] | None = None,
                  tags: Mapping[str, Any] | None = None) -> TrackedRun:
        state = _Run(name, {k: str(v) for k, v in (tags or {}).items()},
                     flatten(params or {}), int(time.time() * 1000))
        with self._lock:
            self._runs.append(state)
            self._urge()
        return TrackedRun(self, state)

    def _add_points(self, run: _Run, pts: list[tuple[str, float, int, int]]) -> None:
        if not pts:
            return
        with self._lock:
            run.points.extend(pts)
            self._buffered += len(pts)
            if self._buffered > self.config.max_buffered:
                self._shed()

    def _shed(self) -> None:
        """Drop the oldest buffered values beyond ``max_buffered`` (lock held)."""
        excess = self._buffered - self.config.max_buffered
        for run in self._runs:
            while excess > 0 and run.points:
                run.points.popleft()
                excess -= 1
                self._buffered -= 1
                if self.gaps and self.gaps[-1].ended is None:
                    self.gaps[-1].dropped += 1

    def _add_op(self, run: _Run, kind: str, payload: Any) -> None:
        with self._lock:
            run.ops.append((kind, payload))
            self._urge()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until MLflow answered once (the experiment exists); False on timeout."""
        return self._ready.wait(timeout)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything logged so far is sent; False if it could not be in time."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._urge()
            while self._pending() or self._busy:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._wake.wait(0.05 if left is None else min(left, 0.05))
        return True

    @property
    def sending(self) -> bool:
        """Whether the writer is sending right now."""
        return self._busy

    def _wait_sent(self, run: _Run, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            self._urge()
            while run.run_id is None or run.points or run.ops:
                left = deadline - time.monotonic()
                if left <= 0 or (self.gaps and self.gaps[-1].ended is None):
                    return False
                self._wake.wait(min(left, 0.05))
        return True

    def pause(self) -> None:
        """Hold the writer: it finishes a send in progress (this waits for it) and sends
        nothing more until :meth:`resume`. Logging goes on into the buffers. Benchmarks
        use it to keep tracking's work inside the time they measure as tracked."""
        with self._lock:
            self._paused = True
            while self._busy:
                self._wake.wait()

    def resume(self) -> None:
        with self._lock:
            self._paused = False
            self._unpaused.notify_all()

    def _urge(self) -> None:
        """Wake the writer to send now (lock held)."""
        self._urgent = True
        self._wake.notify_all()

    def _pending(self) -> bool:
        return any(r.run_id is None or r.points or r.ops for r in self._runs)

    def close(self, timeout: float | None = None) -> None:
        """Send what is buffered (waiting at most ``close_timeout``), then report a gap
        that is still open, once."""
        self.resume()
        wait = self.config.close_timeout if timeout is None else timeout
        if self.gaps and self.gaps[-1].ended is None:  # away now: one more try, not a long wait
            wait = min(wait, 3.0)
        self.flush(wait)
        with self._lock:
            self._closed = True
            self._wake.notify_all()
            unsent = self._buffered
            open_gap = self.gaps[-1] if self.gaps and self.gaps[-1].ended is None else None
            if open_gap is None and self._pending():
                open_gap = Gap(time.time(), "MLflow did not answer before the tracker closed")
                self.gaps.append(open_gap)
        self._thread.join(1.0)  # a request in flight may outlive this; the thread is a daemon
        if open_gap is not None:
            open_gap.unsent = unsent
            logger.warning("%s", open_gap.describe(self.uri))

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the writer's side -----------------------------------------------------------------
    def _wait(self, delay: float, cpu_due: float) -> None:
        """Wait (lock held) ``delay`` seconds and until this process's CPU time reaches
        ``cpu_due`` (the budget; at most ``max_flush_interval``), or until urged."""
        now = time.monotonic()
        deadline, cap = now + delay, now + self.config.max_flush_interval
        while not (self._closed or self._urgent):
            if now >= deadline and (time.process_time() >= cpu_due or now >= cap):
                break
            # no polling: each wake-up of this thread takes the GIL from the trainer, and on
            # a loaded machine the trainer then waits for the OS to schedule this thread.
            # The process's CPU time grows at most about a second a second (one busy
            # thread), so the budget cannot be met sooner than its remainder in seconds.
            self._wake.wait(deadline - now if now < deadline else
                            min(cap - now, max(cpu_due - time.process_time(), 0.05)))
            now = time.monotonic()
        self._urgent = False

    def _loop(self) -> None:
        delay, cpu_due = 0.0, 0.0  # connect at once
        while True:
            with self._lock:
                if delay > 0:
                    self._wait(delay, cpu_due)
                while self._paused and not self._closed:
                    self._unpaused.wait()
                if self._closed:
                    return
                self._busy = True
            cpu0 = time.thread_time()
            try:
                self._send_all()
            except Exception as exc:  # MLflow's errors have no common base: any is an outage
                self._outage(exc)
                delay = min(max(delay * 2, self.config.retry_min), self.config.retry_max)
                cpu_due = 0.0
            else:
                self._recovered()
                delay = self.config.flush_interval
                cpu_due = time.process_time() + cpu_spacing(self.config,
                                                             time.thread_time() - cpu0)
            finally:
                with self._lock:
                    self.writer_cpu_seconds += time.thread_time() - cpu0
                    self._busy = False
                    self._wake.notify_all()

    def _connect(self) -> Any:
        if self._client is None:
            from mlflow.tracking import MlflowClient

            uri = self.uri
            if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
                Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            self._client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        if self._experiment_id is None:
            client, name = self._client, self.config.experiment
            found = client.get_experiment_by_name(name)
            self._experiment_id = (found.experiment_id if found is not None else
                                   client.create_experiment(
                                       name, artifact_location=self.config.artifact_location))
            self._ready.set()
        return self._client

    def _send_all(self) -> None:
        client = self._connect()
        with self._lock:
            runs = list(self._runs)
        for run in runs:
            self._send(client, run)
        with self._lock:  # forget runs that ended and have nothing left to send
            self._runs = [r for r in self._runs if not r.sent_end or r.points or r.ops]

    def _send(self, client: Any, run: _Run) -> None:
        from mlflow.entities import Metric, Param, RunTag

        if run.run_id is None:
            created = client.create_run(self._experiment_id, start_time=run.start_ms,
                                        tags=run.tags, run_name=run.name)
            with self._lock:
                run.run_id = created.info.run_id
                if run.params:
                    run.ops.appendleft(("params", run.params))
        while True:
            with self._lock:
                chunk = [run.points[i] for i in range(min(_BATCH, len(run.points)))]
            if not chunk:
                break
            _unless_refused(functools.partial(client.log_batch, run.run_id,
                                              metrics=[Metric(*p) for p in chunk]),
                            f"{len(chunk)} metric value(s) of run {run.name}")
            with self._lock:
                for _ in chunk:
                    run.points.popleft()
                self._buffered -= len(chunk)
                if self.gaps and self.gaps[-1].ended is None:
                    self.gaps[-1].delayed += len(chunk)
        while run.ops and not run.points:
            kind, payload = run.ops[0]
            _unless_refused(functools.partial(self._apply, client, run, kind, payload,
                                              Param, RunTag), f"{kind} of run {run.name}")
            with self._lock:
                run.ops.popleft()
            if run.points:  # logged while this op was sent: metrics first, in order
                break

    def _apply(self, client: Any, run: _Run, kind: str, payload: Any,
               param: Any, tag: Any) -> None:
        rid = run.run_id
        if kind == "params":
            items = list(payload.items())
            for i in range(0, len(items), _PARAM_BATCH):
                client.log_batch(rid, params=[param(k, v) for k, v in items[i:i + _PARAM_BATCH]])
        elif kind == "tags":
            items = list(payload.items())
            for i in range(0, len(items), _PARAM_BATCH):
                client.log_batch(rid, tags=[tag(k, v) for k, v in items[i:i + _PARAM_BATCH]])
        elif kind == "artifact":
            path, where = payload
            if Path(path).is_dir():
                client.log_artifacts(rid, path, where)
            elif Path(path).exists():
                client.log_artifact(rid, path, where)
            else:
                logger.warning("MLflow run %s: artifact %s is gone; not logged", run.name, path)
        elif kind == "text":
            client.log_text(rid, *payload)
        elif kind == "end":
            client.set_terminated(rid, status=payload)
            run.sent_end = True

    def _outage(self, exc: BaseException) -> None:
        with self._lock:
            if self.gaps and self.gaps[-1].ended is None:
                return
            error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
            self.gaps.append(Gap(time.time(), error.rstrip(": ")))
            buffered = self._buffered
        logger.warning("MLflow tracking at %s is unreachable (%s); %d value(s) buffered, "
                       "retried every %g-%gs; training goes on", self.uri, error, buffered,
                       self.config.retry_min, self.config.retry_max)

    def _recovered(self) -> None:
        with self._lock:
            gap = self.gaps[-1] if self.gaps and self.gaps[-1].ended is None else None
            if gap is not None:
                gap.ended = time.time()
        if gap is not None:
            logger.warning("%s", gap.describe(self.uri))


class _NullRun(TrackedRun):
    """What :func:`track` yields with tracking off: every call does nothing."""

    def __init__(self) -> None:
        self.versions = set()

    @property
    def run_id(self) -> str | None:
        return None

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0,
                    ts: float | None = None) -> None:
        return None

    def log_series(self, key: str, values: list[tuple[int, float]], ts: float | None = None
                   ) -> None:
        return None

    def log_params(self, params: Mapping[str, Any]) -> None:
        return None

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        return None

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        return None

    def log_text(self, text: str, artifact_file: str) -> None:
        return None

    def wait_sent(self, timeout: float) -> bool:
        return True

    def callback(self, *, step: str = "step", prefix: str = "") -> Callable[[Any], None]:
        return lambda record: None

    def end(self, status: str = "FINISHED") -> None:
        return None


_CURRENT: contextvars.ContextVar[TrackedRun | None] = contextvars.ContextVar(
    "swarmlearn_tracked_run", default=None)


def current_run() -> TrackedRun | None:
    """The run of the tracked command this code runs in (lifecycle observers link the
    versions a command produces to its run), or None."""
    return _CURRENT.get()


@contextlib.contextmanager
def track(name: str, *, params: Mapping[str, Any] | None = None,
          tags: Mapping[str, Any] | None = None,
          config: TrackingConfig | None = None,
          tracker: Tracker | None = None) -> Iterator[TrackedRun]:
    """One tracked run around a command (a do-nothing run when tracking is off).

    The run ends FINISHED, FAILED on an exception or KILLED on Ctrl-C; the
    tracker then sends what is left (at most ``close_timeout``) and reports
    an open gap once. With ``tracker`` the run goes there and that tracker is
    left open (its owner closes it).
    """
    owned = tracker is None
    if tracker is None:
        cfg = config if config is not None else TrackingConfig.from_env()
        if cfg is None:
            yield _NullRun()
            return
        tracker = Tracker(cfg)
    run = tracker.start_run(name, params=params,
                            tags={"swarmlearn.command": name, **(tags or {})})
    status = "FAILED"
    token = _CURRENT.set(run)
    try:
        yield run
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        _CURRENT.reset(token)
        run.end(status)
        if owned:
            tracker.close()
