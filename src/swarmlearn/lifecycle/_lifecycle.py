"""The lifecycle of one artifact lineage — a (kind, scope) — in the store.

:class:`Lifecycle` is the only writer of lifecycle state. Every move is one
store transaction (:meth:`~swarmlearn.store.SqlStore.record_lifecycle`): the
status change (compare-and-set on the current status), the alias change and
the log entry commit together or not at all, so a ``kill -9`` at any point
leaves the table consistent. The versions, their states and the
``champion`` / ``challenger`` aliases live in the store's ``artifacts`` and
``artifact_aliases`` tables; the ``learning_log`` table says who did what
and why.

Typical use (what the daemon does)::

    life = Lifecycle(store, kind.name, kind.scope)
    v = life.register(kind.produce(ctx))                 # candidate
    v = life.start_evaluation(v)                         # evaluating, alias challenger
    tasks = life.held_out_tasks(n=40)
    base = kind.evaluate(life.champion(), tasks)
    chal = kind.evaluate(v, tasks)
    v = life.decide(v, gate(base, chal))                 # promoted (champion) | rejected
    if v.state is ArtifactState.PROMOTED:
        kind.apply(v)

The **history** is the previous champions still in state ``promoted``, newest
promotion first; a promotion retires those beyond ``history`` (default 5).
:meth:`rollback` retires the champion and puts the previous one back (or
none: the baseline), with the reason recorded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from swarmlearn._config import check_range
from swarmlearn.errors import ArtifactError, ConfigError
from swarmlearn.lifecycle._gate import GateConfig, GateDecision
from swarmlearn.lifecycle._protocol import HeldOutTasks
from swarmlearn.lifecycle._records import (
    Alias,
    ArtifactState,
    ArtifactVersion,
    Produced,
    check_move,
)
from swarmlearn.store import LogEntry, LogRecord, StatusUpdate, Store

__all__ = ["Lifecycle", "LifecycleConfig", "LifecycleObserver", "add_observer"]

logger = logging.getLogger(__name__)

_S = ArtifactState

LifecycleObserver = Callable[["Lifecycle", LogRecord], None]
"""Called after every committed lifecycle step (MLflow's registry mirror, metrics).

An observer must be quick or hand the work to its own thread; one that raises
is logged and never undoes or stops the step (the store is the truth)."""

_observers: tuple[LifecycleObserver, ...] = ()
_observers_lock = threading.Lock()


def add_observer(observer: LifecycleObserver) -> Callable[[], None]:
    """Observe every lifecycle of this process (as ``logging`` handlers do); returns
    the function that removes it."""
    global _observers
    with _observers_lock:
        _observers = (*_observers, observer)

    def remove() -> None:
        global _observers
        with _observers_lock:
            _observers = tuple(o for o in _observers if o is not observer)
    return remove


@dataclass(frozen=True, kw_only=True, slots=True)
class LifecycleConfig:
    """``history``: previous champions kept for rollback; ``held_out_base``: the first
    task seed of the gates (each gate draws fresh seeds above it)."""

    history: int = 5
    gate: GateConfig = field(default_factory=GateConfig)
    held_out_base: int = 900_000

    def __post_init__(self) -> None:
        check_range("history", self.history, lo=1)
        check_range("held_out_base", self.held_out_base, lo=0)


class Lifecycle:
    """Versions, states, aliases and history of the artifacts of one (kind, scope)."""

    def __init__(self, store: Store, kind: str, scope: str,
                 config: LifecycleConfig | None = None) -> None:
        if not kind or not scope:
            raise ConfigError(f"kind/scope: expected names, got {kind!r}, {scope!r}")
        self.store = store
        self.kind = kind
        self.scope = scope
        self.config = config or LifecycleConfig()

    def __repr__(self) -> str:
        return f"Lifecycle({self.kind}/{self.scope})"

    # -- reading -------------------------------------------------------------------------
    def _alias(self, alias: Alias, payload: bool) -> ArtifactVersion | None:
        for a in self.store.aliases(self.kind, self.scope):
            if a.alias == alias:
                return ArtifactVersion(self.store.get_artifact_by_id(a.artifact_id,
                                                                     payload=payload))
        return None

    def champion(self, *, payload: bool = True) -> ArtifactVersion | None:
        """The live version (None: no champion yet, the baseline is live)."""
        return self._alias(Alias.CHAMPION, payload)

    def challenger(self, *, payload: bool = True) -> ArtifactVersion | None:
        """The version being (or last) evaluated against the champion."""
        return self._alias(Alias.CHALLENGER, payload)

    def get(self, version: int) -> ArtifactVersion:
        return ArtifactVersion(self.store.get_artifact(self.kind, self.scope, version))

    def versions(self, *, payload: bool = False) -> list[ArtifactVersion]:
        """Every version, newest first."""
        return [ArtifactVersion(r)
                for r in self.store.artifacts(self.kind, self.scope, payload=payload)]

    def history(self) -> list[ArtifactVersion]:
        """Previous champions available for rollback, newest promotion first."""
        current = self.champion(payload=False)
        kept = [v for v in self.versions() if v.state is _S.PROMOTED
                and (current is None or v.id != current.id)]
        return sorted(kept, key=lambda v: float(v.meta.get("promoted_at", 0.0)), reverse=True)

    def log(self, *, limit: int | None = None) -> list[LogRecord]:
        """This lineage's log, newest first."""
        return self.store.learning_log(kind=self.kind, scope=self.scope, limit=limit,
                                       newest_first=True)

    def held_out_tasks(self, n: int, *, worker_seed: int = 0) -> HeldOutTasks:
        """Fresh held-out task seeds for the next gate: each gate of this lineage gets
        its own block above ``held_out_base`` (so a champion is never re-judged on the
        seeds it was selected on)."""
        check_range("n", n, lo=1)
        gates = len(self.store.learning_log(kind=self.kind, scope=self.scope,
                                            steps=["evaluate"]))
        start = self.config.held_out_base + gates * n
        return HeldOutTasks(scope=self.scope, seeds=tuple(range(start, start + n)),
                            worker_seed=worker_seed)

    # -- moves -----------------------------------------------------------------------------
    def _record(self, step: str, reason: str, version: ArtifactVersion | None = None, *,
                status: ArtifactState | None = None, expect: Sequence[ArtifactState] = (),
                meta: Mapping[str, Any] | None = None,
                aliases: Mapping[str, int | None] | None = None,
                extra: Sequence[StatusUpdate] = (),
                data: Mapping[str, Any] | None = None) -> LogRecord:
        updates = list(extra)
        if version is not None and status is not None:
            updates.insert(0, StatusUpdate(artifact_id=version.id, status=status.value,
                                           expect=tuple(s.value for s in expect), meta=meta))
        entry = LogEntry(kind=self.kind, scope=self.scope, step=step, reason=reason,
                         artifact_id=version.id if version is not None else 0,
                         status=status.value if status is not None else "",
                         data={"version": version.version if version else None,
                               **(data or {})})
        rec = self.store.record_lifecycle(entry, updates=updates, aliases=aliases)
        logger.info("%s/%s %s%s: %s", self.kind, self.scope, step,
                    f" v{version.version}" if version else "", reason)
        for observe in _observers:
            try:
                observe(self, rec)
            except Exception:
                logger.exception("lifecycle observer %r failed on %s", observe, step)
        return rec

    def _reload(self, version: ArtifactVersion) -> ArtifactVersion:
        return ArtifactVersion(self.store.get_artifact_by_id(version.id))

    def register(self, produced: Produced, *, reason: str = "produced") -> ArtifactVersion:
        """Store a produced artifact as a new candidate version (with its lineage)."""
        meta = {**produced.summary, "lineage": produced.lineage.to_dict()}
        record = self.store.put_artifact(self.kind, self.scope, produced.payload, meta=meta,
                                         format_version=produced.format_version,
                                         status=_S.CANDIDATE.value)
        version = ArtifactVersion(record)
        self._record("produce", reason, version, data={"bytes": len(produced.payload)})
        return version

    def start_evaluation(self, version: ArtifactVersion) -> ArtifactVersion:
        """candidate → evaluating; it becomes the ``challenger``."""
        before = check_move(version.state, _S.EVALUATING)
        self._record("evaluate", "gate started", version, status=_S.EVALUATING, expect=[before],
                     aliases={Alias.CHALLENGER: version.id})
        return self._reload(version)

    def decide(self, version: ArtifactVersion, decision: GateDecision, *,
               results: Mapping[str, Any] | None = None) -> ArtifactVersion:
        """evaluating → promoted (and champion) or rejected, with the gate's numbers
        (and the per-task ``results`` of both sides, when given)."""
        meta: dict[str, Any] = {"gate": decision.to_dict()}
        if results is not None:
            meta["gate_results"] = dict(results)
        if decision.promote:
            return self._promote(version, decision.reason, meta, step="promote", gated=True)
        check_move(version.state, _S.REJECTED)
        self._record("reject", decision.reason, version, status=_S.REJECTED,
                     expect=[_S.EVALUATING], meta=meta)
        return self._reload(version)

    def fail(self, version: ArtifactVersion, reason: str) -> ArtifactVersion:
        """candidate or evaluating → rejected because producing or evaluating failed."""
        before = check_move(version.state, _S.REJECTED)
        self._record("fail", reason, version, status=_S.REJECTED, expect=[before],
                     meta={"failure": reason})
        return self._reload(version)

    def promote(self, version: ArtifactVersion, *, reason: str = "promoted by hand"
                ) -> ArtifactVersion:
        """Make ``version`` the champion without a gate (a person's decision; logged).

        A candidate or evaluating version is promoted; a previous champion still in
        the history is made champion again.
        """
        if version.state is _S.CANDIDATE:
            version = self.start_evaluation(version)
        if version.state not in (_S.EVALUATING, _S.PROMOTED):
            raise ArtifactError(f"{version.label} is {version.state}: only a candidate, "
                                f"an evaluating version or a previous champion can be promoted")
        return self._promote(version, reason, {}, step="promote")

    def _promote(self, version: ArtifactVersion, reason: str, meta: Mapping[str, Any], *,
                 step: str, gated: bool = False) -> ArtifactVersion:
        previous = self.champion(payload=False)
        if previous is not None and previous.id == version.id:
            return version
        expect = [version.state] if version.state in (_S.EVALUATING, _S.PROMOTED) else []
        if not expect:
            check_move(version.state, _S.PROMOTED)
        now = time.time()
        history = [v for v in self.history() if v.id != version.id]
        if previous is not None:
            history.insert(0, previous)
        retire = [StatusUpdate(artifact_id=v.id, status=_S.RETIRED.value,
                               expect=(_S.PROMOTED.value,),
                               meta={"retired_at": now, "retired": "left the rollback history"})
                  for v in history[self.config.history:]]
        aliases: dict[str, int | None] = {Alias.CHAMPION: version.id}
        challenger = self.challenger(payload=False)
        if challenger is not None and challenger.id == version.id:
            aliases[Alias.CHALLENGER] = None
        self._record(step, reason, version, status=_S.PROMOTED, expect=expect,
                     meta={**meta, "promoted_at": now}, aliases=aliases, extra=retire,
                     data={"previous": previous.version if previous else None, "gated": gated,
                           "retired": [v.version for v in history[self.config.history:]]})
        return self._reload(version)

    def rollback(self, reason: str, *, to: ArtifactVersion | None = None,
                 automatic: bool = False) -> ArtifactVersion | None:
        """Retire the champion and make ``to`` (default: the previous champion; None if
        the history is empty — the baseline) the champion again. Returns the new champion."""
        current = self.champion(payload=False)
        if current is None:
            raise ArtifactError(f"{self.kind}/{self.scope}: there is no champion to roll back")
        if to is None:
            history = self.history()
            to = history[0] if history else None
        elif to.state is not _S.PROMOTED or to.id == current.id:
            raise ArtifactError(f"{to.label} is not a previous champion (it is {to.state})")
        now = time.time()
        extra = []
        if to is not None:  # becomes champion again: a new promotion time orders the history
            extra.append(StatusUpdate(artifact_id=to.id, status=_S.PROMOTED.value,
                                      expect=(_S.PROMOTED.value,), meta={"promoted_at": now}))
        self._record("rollback", reason, current, status=_S.RETIRED, expect=[_S.PROMOTED],
                     meta={"retired_at": now, "retired": f"rolled back: {reason}"},
                     aliases={Alias.CHAMPION: to.id if to is not None else None}, extra=extra,
                     data={"automatic": automatic, "to": to.version if to else None})
        return self._reload(to) if to is not None else None

    def recover(self, reason: str = "interrupted: evaluation did not finish") -> list[int]:
        """Reject versions left ``evaluating`` by a process that died; their versions."""
        stuck = [v for v in self.versions() if v.state is _S.EVALUATING]
        for v in stuck:
            aliases: dict[str, int | None] = {Alias.CHALLENGER: None}
            self._record("fail", reason, v, status=_S.REJECTED, expect=[_S.EVALUATING],
                         meta={"failure": reason}, aliases=aliases)
        return [v.version for v in stuck]

    def note(self, step: str, reason: str, data: Mapping[str, Any] | None = None,
             version: ArtifactVersion | None = None) -> LogRecord:
        """Append a step to this lineage's log without changing any state."""
        return self._record(step, reason, version, data=data)
