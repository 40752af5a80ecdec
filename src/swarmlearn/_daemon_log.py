"""The learning daemon's record of its level runs, read back from the store's learning
log: what ran last, what failed since, what a person requested, the back-off."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from swarmlearn._daemon_config import DaemonConfig
from swarmlearn.core.scenario import Scenario
from swarmlearn.store import LogRecord, SqlStore

__all__ = ["DAEMON_SESSION_KIND", "RunLog", "backoff_until", "count_episodes", "runs_of"]

DAEMON_SESSION_KIND = "daemon"
_RUN_STEPS = ("run-start", "run-done", "run-failed", "request", "follow")


@dataclass(frozen=True, slots=True)
class RunLog:
    """A level's recent runs, read from the learning log (newest first)."""

    records: tuple[LogRecord, ...]

    def last(self, *steps: str) -> LogRecord | None:
        return next((r for r in self.records if r.step in steps), None)

    @property
    def done(self) -> LogRecord | None:
        return self.last("run-done")

    @property
    def failures(self) -> list[LogRecord]:
        """Failed runs since the last finished one (interruptions not counted)."""
        out = []
        for r in self.records:
            if r.step == "run-done":
                break
            if r.step == "run-failed" and not r.data.get("interrupted"):
                out.append(r)
        return out

    @property
    def pending_request(self) -> LogRecord | None:
        req, start = self.last("request"), self.last("run-start")
        return req if req is not None and (start is None or req.id > start.id) else None

    @property
    def interrupted(self) -> LogRecord | None:
        """The last run-start if no run-done/failed followed it (the daemon died)."""
        last = self.last("run-start", "run-done", "run-failed")
        return last if last is not None and last.step == "run-start" else None


def runs_of(store: SqlStore, kind: str, scope: str) -> RunLog:
    return RunLog(tuple(store.learning_log(kind=kind, scope=scope, steps=list(_RUN_STEPS),
                                            newest_first=True, limit=200)))


def count_episodes(store: SqlStore, sc: Scenario, since: float | None = None) -> int:
    return store.count_episodes(scenario=sc.name, variant=sc.variant, since=since,
                                exclude_kinds=[DAEMON_SESSION_KIND])


def backoff_until(config: DaemonConfig, failures: Sequence[LogRecord]) -> float | None:
    """When the level may run again after ``failures`` (None: now)."""
    if not failures:
        return None
    delay = min(config.backoff_s * 2 ** (len(failures) - 1), config.backoff_max_s)
    return float(failures[0].ts + delay)
