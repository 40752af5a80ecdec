"""The learning daemon: follow the store, trigger, train, gate, promote, watch, roll back.

:class:`LearningDaemon` runs with no person in the loop. Each pass, for every
level the mode runs (``[levels]`` of the config, see
:mod:`swarmlearn._daemon_config`):

1. **watch** — if the level has a champion with gated numbers, the scenario's
   live episodes since its promotion go through the sequential test
   (:func:`swarmlearn.lifecycle.watch`); a significant drop rolls back to the
   previous champion (``Lifecycle.rollback``, the reason recorded) and reverts;
2. **trigger** — the level's trigger looks at the episodes recorded since the
   level's last finished run (counted in the store, so a restart loses no
   trigger), the time since then and the live success rate; a request
   (``swarmlearn daemon trigger LEVEL``) runs it whatever the trigger;
3. **train** — ``produce`` runs in a child process with the level's time
   budget (:mod:`swarmlearn._trainer_process`); nothing is registered unless
   it returns;
4. **gate** — the new version is registered and gated against the champion
   on fresh held-out seeds (:func:`swarmlearn.lifecycle.run_gate`): promoted
   and applied, or rejected with its numbers.

A CPU share (``cpu_share`` < 1, :mod:`swarmlearn._cpu_share`) spaces the runs:
after a run that used C CPU-seconds (the daemon's and its trainer's) no level
runs until C / cpu_share has passed since it began; a level due meanwhile
waits (``wait``, recorded once per wait) and runs when the share allows.

A failure in one level (a trainer that raises, times out or dies; an
evaluation that fails) is recorded (``run-failed`` with the reason), backs
that level off (``backoff_s``, doubling) and never stops the loop. A store
that cannot be reached makes the pass wait and retry with back-off; the
status file says so. At start the daemon rejects what a killed predecessor
left half-done (versions still ``evaluating``, or produced by a run that
never finished) and re-applies every champion.

Every step is on the store's ``learning_log`` (kind, scope, step, reason,
data) and, so that ``swarmlearn events tail`` shows the daemon's work, also
an action event of the daemon's own session (scenario ``daemon``): action =
the step, target = the level.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarmlearn._cpu_share import ShareWait, cpu_seconds, share_wait_from_log
from swarmlearn._daemon_config import DaemonConfig, LevelConfig, build_kind
from swarmlearn._daemon_log import (
    DAEMON_SESSION_KIND,
    RunLog,
    backoff_until,
    count_episodes,
    runs_of,
)
from swarmlearn._daemon_status import LevelStatus, level_status
from swarmlearn.core.actions import ActionResult
from swarmlearn.core.events import ActionEvent, EventIds
from swarmlearn.core.scenario import load_scenario
from swarmlearn.errors import ConfigError, StoreError, SwarmlearnError
from swarmlearn.lifecycle import (
    ArtifactKind,
    ArtifactState,
    Lifecycle,
    LifecycleConfig,
    LiveWatch,
    run_gate,
)
from swarmlearn.lifecycle._triggers import All, AnyOf, Quality, Trigger, TriggerState
from swarmlearn.store import EpisodeBrief, EpisodeCursor, SqlStore, open_store
from swarmlearn.types import OutcomeKind

__all__ = ["DAEMON_SESSION_KIND", "LearningDaemon", "LevelStatus", "level_status", "lower_priority"]

logger = logging.getLogger(__name__)



@dataclass(slots=True)
class _Level:
    config: LevelConfig
    kind: ArtifactKind
    life: Lifecycle
    trigger: Trigger
    applied: int | None = None  # the champion id last applied (None: the baseline)
    live: LiveWatch | None = None  # the sequential test on the champion's live episodes
    live_for: int | None = None  # the champion it watches
    needs_quality: bool = False  # the trigger looks at the live success rate
    waited_for: float | None = None  # the start of the run whose CPU share it last waited for


def lower_priority(nice: int) -> None:
    """Learning is background work: the swarm goes first. ``os.nice`` alone does not
    do it where the kernel groups processes by session (autogroup: a daemon started in
    a session of its own would get a whole share), so the session's group is niced too
    — but only when this process leads that session: a daemon run in a terminal's
    session (or inside another program) would otherwise push the shell and everything
    started from it, the swarm included, down to nice 19 with it.

    The process-wide setting is the caller's to make (``swarmlearn daemon run`` does);
    :meth:`LearningDaemon.run` used as a library leaves its caller's priority alone."""
    os.nice(nice)
    if os.getsid(0) != os.getpid():
        return
    try:
        Path("/proc/self/autogroup").write_text(f"{nice}\n")
    except OSError:
        pass  # no autogroup here, or not allowed: os.nice is what there is


def _uses_quality(trigger: Trigger) -> bool:
    if isinstance(trigger, Quality):
        return True
    return isinstance(trigger, All | AnyOf) and any(_uses_quality(t) for t in trigger.parts)


class LearningDaemon:
    """See the module docstring. ``run()`` until stopped; ``run_once()`` for one pass."""

    def __init__(self, config: DaemonConfig, store_url: str | None = None) -> None:
        self.config = config
        self.store_url = store_url or os.environ.get("SWARMLEARN_STORE") or None
        self.stop_event = threading.Event()
        self.scenario = load_scenario(config.scenario, variant=config.variant)
        self.store: SqlStore | None = None
        self.levels: list[_Level] = []
        self._ids: EventIds | None = None
        self._session = 0
        self._tick = 0
        self.passes = 0
        self.run_dir = Path(config.run_dir)
        self.share_wait: ShareWait | None = None  # what the last level run's CPU imposes
        self._waiting: list[str] = []  # levels due in the last pass that wait for the share
        self._cursor: EpisodeCursor | None = None  # where following the store stands
        self._total = 0  # the scenario's episodes in the store (the daemon's own aside)
        self._recent: deque[tuple[float, bool]] = deque()  # the newest (end time, solved)

    # -- start-up -----------------------------------------------------------------------
    def _open(self) -> SqlStore:
        if self.store is not None:
            return self.store
        store = open_store(self.store_url)
        self.store_url = self.store_url or store.url
        life_cfg = LifecycleConfig(history=self.config.history, gate=self.config.gate)
        levels: list[_Level] = []
        for lv in self.config.active_levels():
            kind = build_kind(lv, self.scenario, store, self.config.strategy)
            for other in levels:
                if (other.kind.name, other.kind.scope) == (kind.name, kind.scope):
                    store.close()
                    raise ConfigError(f"levels {other.config.name} and {lv.name} both train "
                                      f"{kind.name}/{kind.scope}: one level per lineage",
                                      field=f"levels.{lv.name}")
            trigger = lv.parsed_trigger
            levels.append(_Level(lv, kind, Lifecycle(store, kind.name, kind.scope, life_cfg),
                                 trigger, needs_quality=_uses_quality(trigger)))
        self.store, self.levels = store, levels
        self._session = store.open_session(scenario="daemon", variant=self.scenario.label,
                                           kind=DAEMON_SESSION_KIND,
                                           config={"levels": [lv.name for lv in
                                                              self.config.active_levels()],
                                                   "mode": self.config.mode.value})
        self._ids = EventIds(self._session, 0)
        for level in levels:
            self._recover(level)
        self.share_wait = share_wait_from_log(
            (runs_of(store, lv.life.kind, lv.life.scope).last("run-done", "run-failed")
             for lv in levels), self.config.cpu_share)
        for level in levels:  # a wait already on the log (a predecessor's) is not noted again
            noted = store.learning_log(kind=level.life.kind, scope=level.life.scope,
                                       steps=["wait"], newest_first=True, limit=1)
            level.waited_for = noted[0].data.get("started") if noted else None
        self._start_following(store)
        return store

    # -- following the store ------------------------------------------------------------------
    def _filters(self) -> dict[str, Any]:
        return {"scenario": self.scenario.name, "variant": self.scenario.variant,
                "exclude_kinds": [DAEMON_SESSION_KIND]}

    def _start_following(self, store: SqlStore) -> None:
        """A cursor at the store's end, the count so far and, for quality triggers, the
        newest episodes; from here on each pass reads only what is new (by id watermark)."""
        _, self._cursor = store.follow_episodes(None, from_end=True, **self._filters())
        self._total = count_episodes(store, self.scenario)
        window = self.config.live_window if any(lv.needs_quality for lv in self.levels) else 0
        self._recent = deque(maxlen=window)
        if window:
            since = min(self._since(runs_of(store, lv.life.kind, lv.life.scope), time.time())
                        for lv in self.levels if lv.needs_quality)
            self._recent.extend(self._read_since(store, since))

    def _read_since(self, store: SqlStore, since: float) -> list[tuple[float, bool]]:
        """(end time, solved) of the episodes since ``since`` that the cursor has passed
        (a one-off read at start or for a new champion; the rest come with the next look)."""
        cursor = self._cursor
        assert cursor is not None
        return [(e.ts, e.outcome.kind is OutcomeKind.SUCCESS)
                for e in store.episodes(**self._filters(), since=since)
                if cursor.covers(e.id, e.session)]

    def _follow(self) -> list[EpisodeBrief]:
        """The episodes recorded since the last pass (light rows: id, session, end, outcome)."""
        new, self._cursor = self._store().follow_episodes(self._cursor, **self._filters())
        self._total += len(new)
        if self._recent.maxlen:
            self._recent.extend((b.ts, b.solved) for b in new)
        return new

    def _recover(self, level: _Level) -> None:
        """Reject what a killed predecessor left half-done; re-apply the champion."""
        store, life = self._store(), level.life
        runs = runs_of(store, life.kind, life.scope)
        if runs.last("run-start", "run-done", "run-failed", "follow") is None:
            # episodes recorded before are new to this level: it never learned from them
            life.note("follow", "the daemon follows this level",
                      {"level": level.config.name, "episodes": 0})
        stopped = runs.interrupted
        if stopped is not None:
            for v in life.versions():
                if v.state in (ArtifactState.CANDIDATE, ArtifactState.EVALUATING) \
                        and v.record.created >= stopped.ts:
                    life.fail(v, "interrupted: the daemon stopped during its run")
            life.note("run-failed", "interrupted: the daemon stopped during this run",
                      {**stopped.data, "interrupted": True, "level": level.config.name})
            self._emit("run-failed", level, False, "interrupted run rejected")
        for version in life.recover():
            self._emit("recover", level, False, f"v{version} left evaluating: rejected")
        champion = life.champion()
        level.kind.apply(champion)
        level.applied = champion.id if champion is not None else None

    def _store(self) -> SqlStore:
        assert self.store is not None, "the daemon is not open"
        return self.store

    def close(self) -> None:
        if self.store is not None:
            try:
                self.store.close_session(self._session, status="completed",
                                         summary={"passes": self.passes})
            except StoreError:
                pass
            self.store.close()
            self.store = None

    # -- the loop ---------------------------------------------------------------------------
    def run(self, *, passes: int | None = None) -> None:
        """Pass after pass every ``poll_s`` until :meth:`stop` (or ``passes`` passes)."""
        wait = self.config.poll_s
        self._write_status("starting")
        try:
            while not self.stop_event.is_set() and (passes is None or self.passes < passes):
                try:
                    self.run_once()
                    wait = self.config.poll_s
                    self._write_status("running", **self._share_status())
                except StoreError as exc:
                    wait = min(max(wait * 2, 1.0), 60.0)
                    logger.warning("store unreachable, retrying in %.0f s: %s", wait, exc)
                    self._write_status("store unreachable", error=str(exc), retry_s=wait)
                    self._drop_store()
                self._wait(wait)
        finally:
            self._write_status("stopped")
            self.close()

    def stop(self) -> None:
        self.stop_event.set()

    def _wait(self, seconds: float) -> None:
        """Until the next pass: on PostgreSQL woken by new episodes (LISTEN/NOTIFY), in
        slices so that a stop is seen within half a second."""
        end = time.monotonic() + seconds
        while not self.stop_event.is_set():
            left = end - time.monotonic()
            if left <= 0:
                return
            store = self.store
            if store is None or store.dialect != "postgresql":
                self.stop_event.wait(min(left, 0.5))
                continue
            try:
                if store.wait_for_episodes(min(left, 0.5)):
                    return
            except StoreError:
                return  # the next pass finds out and backs off

    def _drop_store(self) -> None:
        if self.store is not None:
            try:
                self.store.close()
            finally:
                self.store, self.levels, self._cursor = None, [], None

    def run_once(self, *, force: Sequence[str] = ()) -> int:
        """One pass over the levels; ``force`` names levels to run now. Returns the runs."""
        self._open()
        ran = 0
        self._waiting = []
        new = self._follow()
        for level in self.levels:
            if self.stop_event.is_set():
                break
            try:
                self._reconcile(level)
                self._watch(level, new)
                ran += self._maybe_run(level, forced=level.config.name in force)
            except StoreError:
                raise
            except SwarmlearnError as exc:  # recorded by _run; a watch failure too
                logger.warning("level %s: %s", level.config.name, exc)
        self.passes += 1
        return ran

    # -- watch ------------------------------------------------------------------------------
    def _reconcile(self, level: _Level) -> None:
        """Apply a champion changed by someone else (``daemon artifacts promote|rollback``)."""
        champion = level.life.champion(payload=False)
        now = champion.id if champion is not None else None
        if now == level.applied:
            return
        champion = level.life.champion()  # with its payload, to apply it
        if champion is None:
            level.kind.revert(None)
        else:
            level.kind.apply(champion)
        level.applied = now
        what = champion.label if champion is not None else "the baseline"
        self._emit("apply", level, True, f"{what} applied (changed outside the daemon)")

    def _watch(self, level: _Level, new: Sequence[EpisodeBrief]) -> None:
        """Feed the champion's sequential test this pass's new live episodes (after a
        promotion or a restart, first once every live episode since the promotion)."""
        store, life = self._store(), level.life
        champion = life.champion(payload=False)
        if champion is None or champion.gated_rate is None:
            level.live = level.live_for = None
            return
        since = float(champion.meta.get("promoted_at", champion.record.created))
        if level.live is None or level.live_for != champion.id:
            level.live, level.live_for = LiveWatch(champion.gated_rate, self.config.watch), \
                champion.id
            outcomes = [ok for _, ok in self._read_since(store, since)]
        else:
            outcomes = [b.solved for b in new if b.ts >= since]
        if not outcomes:
            return
        verdict = level.live.add(outcomes)
        if not verdict.drop:
            return
        back = life.rollback(verdict.reason, automatic=True)
        level.kind.revert(back)
        level.applied = back.id if back is not None else None
        level.live = level.live_for = None
        to = f"v{back.version}" if back is not None else "the baseline"
        self._emit("rollback", level, False, f"v{champion.version} → {to}: {verdict.reason}")

    # -- trigger, train, gate -------------------------------------------------------------------
    @staticmethod
    def _since(runs: RunLog, now: float) -> float:
        """When the level's trigger starts counting: its last finished run, or following."""
        base = runs.done or runs.last("follow")
        return base.ts if base is not None else now

    def _trigger_state(self, level: _Level, runs: RunLog, now: float) -> TriggerState:
        base = runs.done or runs.last("follow")
        since = self._since(runs, now)
        counted = int(base.data.get("episodes", 0)) if base is not None else 0
        rate, recent = None, []
        if level.needs_quality:
            recent = [ok for ts, ok in self._recent if ts >= since]
            rate = sum(recent) / len(recent) if recent else None
        return TriggerState(now=now, since=since, new_episodes=max(0, self._total - counted),
                            live_rate=rate, live_episodes=len(recent),
                            requested=runs.pending_request is not None)

    def _maybe_run(self, level: _Level, *, forced: bool = False) -> int:
        store, life = self._store(), level.life
        runs = runs_of(store, life.kind, life.scope)
        now = time.time()
        state = self._trigger_state(level, runs, now)
        requested = forced or state.requested
        if not requested:
            after = backoff_until(self.config, runs.failures)
            if after is not None and now < after:
                return 0
            if state.new_episodes == 0:
                return 0  # nothing new to learn from
        reason = "requested" if requested else level.trigger.due(state)
        if reason is None or (not forced and self._waits_for_share(level, reason, now)):
            return 0
        self._run(level, reason, state.new_episodes)
        return 1

    def _waits_for_share(self, level: _Level, reason: str, now: float) -> bool:
        """Whether a due run must wait for the CPU share; the wait is recorded once."""
        wait = self.share_wait
        if wait is None or wait.left(now) <= 0:
            return False
        self._waiting.append(level.config.name)
        if level.waited_for != wait.started:
            level.waited_for = wait.started
            message = f"{reason}: waits; {wait.describe()}"
            level.life.note("wait", message, {"level": level.config.name, "reason": reason,
                                              "started": wait.started, "until": wait.until,
                                              "after": wait.level,
                                              "cpu_s": wait.cpu_s, "share": wait.share})
            self._emit("wait", level, True, message)
        return True

    def _spent(self, name: str, started: float, t0: float, cpu0: float) -> dict[str, float]:
        """What the run cost (for its log entry); it sets the CPU share's next wait."""
        cpu = round(cpu_seconds() - cpu0, 3)  # the trainer child has been joined: it is in
        if self.config.cpu_share < 1.0:  # the wait as a restart reads it from the log
            self.share_wait = ShareWait(name, started, cpu, self.config.cpu_share)
        return {"seconds": time.perf_counter() - t0, "cpu_s": cpu}

    def _run(self, level: _Level, reason: str, new_episodes: int) -> None:
        life, name = level.life, level.config.name
        total = self._total
        started, t0, cpu0 = time.time(), time.perf_counter(), cpu_seconds()
        data: dict[str, Any] = {"level": name, "episodes": total, "new_episodes": new_episodes,
                                "reason": reason, "started": started}
        life.note("run-start", reason, data)
        self._emit("trigger", level, True, reason)
        try:
            from swarmlearn._trainer_process import produce_in_child

            assert self.store_url is not None
            produced = produce_in_child(self.config, name, self.store_url,
                                        timeout_s=level.config.timeout_s, stop=self.stop_event)
            train_s = time.perf_counter() - t0
            version = life.register(produced, reason=f"produced by the daemon: {reason}")
            self._emit("train", level, True, f"v{version.version} in {train_s:.1f} s")
            gated = run_gate(life, level.kind, version, tasks=level.config.gate_tasks)
        except StoreError:
            raise
        except Exception as exc:  # the daemon's boundary: one level's failure is data
            why = f"{type(exc).__name__}: {exc}" if not isinstance(exc, SwarmlearnError) \
                else str(exc)
            stopped = self.stop_event.is_set()  # the daemon stops: not the level's fault
            life.note("run-failed", why, {**data, **self._spent(name, started, t0, cpu0),
                                          **({"interrupted": True} if stopped else {})})
            self._emit("run-failed", level, False, why)
            logger.warning("level %s failed: %s", name, why)
            return
        d = gated.decision
        if d.promote:
            level.applied = gated.version.id
        step = "promote" if d.promote else "reject"
        life.note("run-done", d.reason, {**data, "version": gated.version.version,
                                         "promoted": d.promote,
                                         **self._spent(name, started, t0, cpu0),
                                         "champion_rate": d.champion.success_rate,
                                         "challenger_rate": d.challenger.success_rate})
        self._emit(step, level, d.promote, f"v{gated.version.version}: {d.reason}")

    # -- the record ---------------------------------------------------------------------------
    def _emit(self, step: str, level: _Level, ok: bool, message: str) -> None:
        """The step as an action event of the daemon's session (``events tail`` shows it)."""
        store = self.store
        if store is None or self._ids is None:
            return
        self._tick += 1
        event = ActionEvent(self._ids.next(), self._session, level.life.scope, "daemon", 0,
                            self._tick, 0, step, level.config.name, (),
                            ActionResult(ok, message if ok else "", "" if ok else message),
                            0.0, level.life.kind, time.time())
        try:
            store.write([event])
        except StoreError as exc:
            logger.warning("could not record the daemon step %s: %s", step, exc)

    def _share_status(self) -> dict[str, Any]:
        """For status.json: the share, and while it holds runs back, until when and why."""
        out: dict[str, Any] = {"cpu_share": self.config.cpu_share}
        wait = self.share_wait
        if wait is not None and wait.left(time.time()) > 0:
            out.update(next_run_at=wait.until, share_wait=wait.describe(),
                       waiting=list(self._waiting))
        return out

    def _write_status(self, state: str, **extra: Any) -> None:
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            tmp = self.run_dir / "status.json.tmp"
            tmp.write_text(json.dumps({"state": state, "pid": os.getpid(), "ts": time.time(),
                                       "passes": self.passes, "store": self.store_url,
                                       **extra}), encoding="utf-8")
            tmp.replace(self.run_dir / "status.json")
        except OSError as exc:
            logger.warning("cannot write the daemon status in %s: %s", self.run_dir, exc)
