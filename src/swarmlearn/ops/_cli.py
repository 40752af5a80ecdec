"""The command line's side of ops: ``--track`` / ``--tracking-uri`` / ``--metrics-port``,
what a session command attaches, and ``swarmlearn report``.

Nothing here imports MLflow or prometheus_client unless asked for.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from swarmlearn.errors import ConfigError
from swarmlearn.ops.tracking import TRACKING_ENV, TrackedRun, TrackingConfig, track

if TYPE_CHECKING:
    from swarmlearn.core.bus import EventBus
    from swarmlearn.core.events import EpisodeEnded, Event
    from swarmlearn.ops.metrics import Metrics
    from swarmlearn.store import Store

__all__ = ["SessionOps", "configure", "ensure_metrics", "session_ops"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _State:
    metrics: Metrics | None = None
    url: str = ""
    mirror: bool = False
    closers: list[Callable[[], None]] = field(default_factory=list)


_state = _State()  # this process's CLI: one metrics server, one registry mirror


def configure(*, track_runs: bool, tracking_uri: str | None, metrics_port: int | None,
              metrics_dir: str | None) -> None:
    """The root options: tracking on (children inherit it through the environment),
    the registry mirror as a lifecycle observer, the metrics server."""
    if tracking_uri:
        os.environ[TRACKING_ENV] = tracking_uri
    elif track_runs:
        os.environ[TRACKING_ENV] = os.environ.get(TRACKING_ENV) or "1"
    cfg = TrackingConfig.from_env()
    if cfg is not None and not _state.mirror:
        from swarmlearn.lifecycle import add_observer
        from swarmlearn.ops.hooks import LevelRunTracker
        from swarmlearn.ops.registry import MirrorObserver

        observer = MirrorObserver(tracking_uri=cfg.resolved_uri,
                                  artifact_location=cfg.artifact_location)
        levels = LevelRunTracker(cfg)  # the daemon's level runs
        add_observer(observer)
        add_observer(levels)
        atexit.register(observer.close)
        atexit.register(levels.close)
        _state.mirror = True
    ensure_metrics(metrics_port, metrics_dir)


def ensure_metrics(port: int | None, metrics_dir: str | None = None) -> Metrics | None:
    """This process's metrics (made once): served on 127.0.0.1:``port`` when given, and
    written to the multi-process directory when there is one (a process of a deployment
    that another one serves). None when neither is asked for."""
    from swarmlearn.ops.metrics import MULTIPROC_ENV, MetricsServer, process_metrics

    if port is not None and _state.url:
        raise ConfigError("--metrics-port: give it once (before or after the command)",
                          field="--metrics-port")
    if _state.metrics is None:
        if port is None and not (metrics_dir or os.environ.get(MULTIPROC_ENV)):
            return None
        if metrics_dir:  # before prometheus_client is imported: it reads this once
            os.makedirs(metrics_dir, exist_ok=True)
            os.environ[MULTIPROC_ENV] = metrics_dir
        from swarmlearn.lifecycle import add_observer

        _state.metrics = process_metrics()
        add_observer(_state.metrics.observe_lifecycle)
    if port is not None:
        from swarmlearn._config import check_range

        check_range("--metrics-port", port, lo=0, hi=65_535)
        server = MetricsServer(port)
        atexit.register(server.close)
        _state.url = server.url
        sys.stderr.write(f"metrics: {server.url}\n")  # port 0 picks one: say which
    return _state.metrics


@dataclass(slots=True)
class SessionOps:
    """What a session command hands to ``run_session`` / ``evaluate``."""

    run: TrackedRun
    metrics: Metrics | None
    _episodes: Callable[[EpisodeEnded], None] | None = None
    _counting: Store | None = None

    @property
    def subscribers(self) -> Sequence[Callable[[EventBus[Event]], object]]:
        return [self._bind] if self.metrics is not None else []

    def _bind(self, bus: EventBus[Event]) -> None:
        """Counted in the store's writes when there is a store, else by a bus subscriber."""
        from swarmlearn.ops.metrics import Metrics

        if self._counting is None or not Metrics.bind(self._counting, bus):
            assert self.metrics is not None
            self.metrics.attach(bus)

    def store(self, store: Store | None) -> Store | None:
        if store is None or self.metrics is None:
            return store
        self._counting = self.metrics.timed_store(store, count=True)
        return self._counting

    def on_episode(self, show: Callable[[EpisodeEnded], None] | None
                   ) -> Callable[[EpisodeEnded], None] | None:
        log = self._episodes
        if log is None:
            return show
        if show is None:
            return log

        def both(e: EpisodeEnded) -> None:
            show(e)
            log(e)
        return both


@contextlib.contextmanager
def session_ops(command: str, *, metrics_port: int | None = None,
                params: Mapping[str, Any] | None = None,
                tags: Mapping[str, Any] | None = None) -> Iterator[SessionOps]:
    """Metrics (``--metrics-port``) and a tracked run (with tracking on) for a command
    that runs sessions; the per-episode metrics go to MLflow in batches."""
    from swarmlearn.ops.hooks import episode_logger

    metrics = ensure_metrics(metrics_port)
    with track(command, params=params, tags=tags) as run:
        logger_ = episode_logger(run) if run.run_id is not None or _tracking_on() else None
        yield SessionOps(run, metrics, logger_)


def _tracking_on() -> bool:
    return TrackingConfig.from_env() is not None


def log_files(run: TrackedRun, paths: Sequence[Path | None]) -> None:
    for p in paths:
        if p is not None and Path(p).exists():
            run.log_artifact(p)


def log_eval(run: TrackedRun, report: Any, files: Sequence[Path | None]) -> None:
    """An evaluation's figures per variant (``<variant>/success_rate`` …), its session
    ids as a tag, and its report files."""
    metrics: dict[str, float] = {}
    sessions: list[int] = []
    for v in report.variants:
        name = v.variant or "base"
        metrics[f"{name}/success_rate"] = v.success_rate
        metrics[f"{name}/success_ci_low"], metrics[f"{name}/success_ci_high"] = v.success_ci
        for k, p in v.pass_at.items():
            metrics[f"{name}/pass_at_{k}"] = p
        for field_name in ("ticks", "actions", "actions_to_solve", "duration"):
            metrics[f"{name}/{field_name}_mean"] = getattr(v, field_name).mean
        sessions += v.sessions
    run.log_metrics(metrics)
    run.set_tags({"swarmlearn.sessions": ",".join(map(str, sessions))})
    log_files(run, files)


def report_command(
    output: Annotated[Path, typer.Option("-o", "--output", help="The HTML file to write.")
                      ] = Path("swarmlearn-report.html"),
    sessions: Annotated[int, typer.Option(help="Newest sessions to read.")] = 500,
    runs_dir: Annotated[Path, typer.Option(
        help="DQN run directories to plot the training curves of.")] = Path("runs"),
    tracking_uri: Annotated[str | None, typer.Option(
        "--tracking-uri", help="MLflow to read loss curves from (default: the tracking "
        "config, if tracking is on).")] = None,
    store: Annotated[str | None, typer.Option(
        "--store", help="Store URL or path (default: $SWARMLEARN_STORE or "
        ".swarmlearn/swarmlearn.db).")] = None,
) -> None:
    """One self-contained HTML dashboard: sessions and success over time, learning curves,
    LLM latency and tokens, training loss curves, the artifact history with gates and
    rollbacks. Reads the store (never writes it)."""
    from swarmlearn._config import check_output_path, check_range
    from swarmlearn.ops.dashboard import DashboardConfig, build_dashboard
    from swarmlearn.store import SqlStore

    check_range("--sessions", sessions, lo=1)
    check_output_path(output, "-o/--output")
    st = SqlStore(store, read_only=True)
    if not st.exists:
        raise ConfigError(f"--store: no store at {st.url}", field="--store")
    uri = tracking_uri
    if uri is None:
        cfg = TrackingConfig.from_env()
        uri = cfg.resolved_uri if cfg is not None else None
    with _progress_line("reading the store"):
        board = build_dashboard(st, DashboardConfig(sessions=sessions, runs_dir=str(runs_dir),
                                                    tracking_uri=uri))
    path = board.write(output)
    points = sum(len(s) for p in board.plots for s in p["series"].values())
    typer.echo(f"dashboard: {path} ({len(board.plots)} plots, {points:,} points, "
               f"{len(board.tables)} tables)")


@contextlib.contextmanager
def _progress_line(what: str) -> Iterator[None]:
    from rich.console import Console

    console = Console(stderr=True)
    with console.status(what):
        yield


def learning_logger(run: TrackedRun) -> Callable[[int, str, int, Any], None]:
    """``run_proof``'s progress callback: each session's success rate and actions per
    solved task, per learning run and side (``learning/on/run0/success_rate`` …)."""
    def observe(r: int, mode: str, i: int, point: Any) -> None:
        solved = point.successes
        metrics = {f"learning/{mode}/run{r}/success_rate": point.success_rate}
        if solved:
            metrics[f"learning/{mode}/run{r}/actions_per_solve"] = sum(point.actions) / solved
        run.log_metrics(metrics, i)
    return observe
