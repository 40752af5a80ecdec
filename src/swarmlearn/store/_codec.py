"""Rows ↔ records: how events, episodes, sessions and artifacts sit in tables."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from typing import Any

from sqlalchemy import Select, select

from swarmlearn.core.actions import ActionResult
from swarmlearn.core.events import (
    ActionEvent,
    EpisodeEnded,
    FeedbackEvent,
    LLMCallEvent,
    NoteEvent,
)
from swarmlearn.store import _schema as schema
from swarmlearn.store._protocol import ArtifactRecord, EventQuery, SessionRecord
from swarmlearn.types import Outcome, OutcomeKind, outcome_from_dict

__all__ = [
    "EVENT_SPEC",
    "artifact_from_row",
    "episode_from_row",
    "episode_row",
    "event_from_row",
    "event_row",
    "event_select",
    "feedback_from_row",
    "feedback_row",
    "llm_from_row",
    "note_from_row",
    "note_row",
    "session_record",
]

_dumps = json.dumps


@functools.lru_cache(maxsize=4096)
def _list_json(items: tuple[str, ...]) -> str:
    return _dumps(items)  # a tuple is written as a JSON list; the same few recur all run long


def event_row(e: ActionEvent) -> tuple[Any, ...]:
    # unpacked, not read field by field: this runs for every event the recorder writes
    (id_, session, task, group, episode, tick, worker, action, target, args, result, duration,
     context, ts) = e
    success, output, error, discoveries, invalid = result
    return (
        id_,
        session,
        task,
        group,
        episode,
        tick,
        worker,
        action,
        target,
        _args_json(args) if args else "",
        success,
        output,
        error,
        _list_json(discoveries) if discoveries else "",
        invalid,
        duration,
        context,
        ts,
    )


def _args_json(args: tuple[tuple[str, str], ...]) -> str:
    return _dumps(dict(args))


#: event_row for the C writer (store/_sqlite_batch.c), one (i, j, conv) per column: the
#: value is event[i] (j == -1) or event[i][j], and with a conv "" if empty, else conv(value)
EVENT_SPEC: tuple[tuple[int, int, Callable[[Any], str] | None], ...] = (
    *((i, -1, None) for i in range(9)),  # id … target
    (9, -1, _args_json),
    (10, 0, None), (10, 1, None), (10, 2, None),  # result: success, output, error
    (10, 3, _list_json),  # discoveries
    (10, 4, None),  # invalid
    (11, -1, None), (12, -1, None), (13, -1, None),  # duration, context, ts
)


def event_from_row(row: Any) -> ActionEvent:
    (
        id_,
        session,
        task,
        grp,
        episode,
        tick,
        worker,
        action,
        target,
        args,
        success,
        output,
        error,
        discoveries,
        invalid,
        duration,
        context,
        ts,
    ) = row
    return ActionEvent(
        int(id_),
        int(session),
        task,
        grp,
        int(episode),
        int(tick),
        int(worker),
        action,
        target,
        tuple(json.loads(args).items()) if args else (),
        ActionResult(
            bool(success),
            output,
            error,
            tuple(json.loads(discoveries)) if discoveries else (),
            bool(invalid),
        ),
        float(duration),
        context,
        float(ts),
    )


def _outcome_parts(outcome: Outcome) -> tuple[str, float, str]:
    reason = getattr(outcome, "reason", "")
    return outcome.kind.value, float(outcome.value), reason


def _outcome_from_parts(kind: str, score: float, reason: str) -> Outcome:
    data: dict[str, Any] = {"kind": kind}
    if kind == OutcomeKind.SUCCESS:
        data["score"] = score
    elif kind == OutcomeKind.TIMEOUT:
        data["partial_score"] = score
    elif kind == OutcomeKind.FAILURE:
        data["reason"] = reason
    return outcome_from_dict(data)


def episode_row(e: EpisodeEnded) -> tuple[Any, ...]:
    kind, score, reason = _outcome_parts(e.outcome)
    return (
        e.id,
        e.session,
        e.task,
        e.group,
        e.episode,
        e.seed,
        kind,
        score,
        reason,
        e.ticks,
        e.actions,
        e.duration,
        e.first_event,
        e.last_event,
        _dumps(dict(e.stats)),
        e.ts,
    )


def episode_from_row(row: Any) -> EpisodeEnded:
    (
        id_,
        session,
        task,
        grp,
        episode,
        seed,
        kind,
        score,
        reason,
        ticks,
        actions,
        duration,
        first,
        last,
        stats,
        ts,
    ) = row
    return EpisodeEnded(
        int(id_),
        int(session),
        task,
        grp,
        int(episode),
        int(seed),
        _outcome_from_parts(kind, score, reason),
        int(ticks),
        int(actions),
        float(duration),
        int(first),
        int(last),
        json.loads(stats),
        float(ts),
    )


def note_row(e: NoteEvent) -> dict[str, Any]:
    return {"session": e.session, "task": e.task, "worker": e.worker, "tick": e.tick,
            "kind": e.kind, "message": e.message, "data": _dumps(dict(e.data)), "ts": e.ts}


def note_from_row(row: Any) -> NoteEvent:
    m = row._mapping
    return NoteEvent(int(m["session"]), m["task"], int(m["worker"]), int(m["tick"]), m["kind"],
                     m["message"], json.loads(m["data"]), float(m["ts"]))


def feedback_row(e: FeedbackEvent) -> dict[str, Any]:
    kind, score, reason = _outcome_parts(e.outcome)
    return {"session": e.session, "task": e.task, "episode": e.episode, "text": e.text,
            "label": e.label, "confidence": e.confidence, "classifier": e.classifier,
            "applied": e.applied, "outcome": kind, "score": score, "reason": reason,
            "reward": e.reward, "ts": e.ts}


def feedback_from_row(row: Any) -> FeedbackEvent:
    m = row._mapping
    return FeedbackEvent(int(m["session"]), m["task"], int(m["episode"]), m["text"], m["label"],
                         float(m["confidence"]), m["classifier"], bool(m["applied"]),
                         _outcome_from_parts(m["outcome"], float(m["score"]), m["reason"]),
                         float(m["reward"]), float(m["ts"]))


def llm_from_row(row: Any) -> LLMCallEvent:
    values = list(row)
    values[11] = bool(values[11])
    return LLMCallEvent(*values)


def artifact_from_row(row: Any) -> ArtifactRecord:
    m = row._mapping
    return ArtifactRecord(
        id=int(m["id"]),
        kind=m["kind"],
        name=m["name"],
        version=int(m["version"]),
        format_version=int(m["format_version"]),
        status=m["status"],
        created=float(m["created"]),
        meta=json.loads(m["meta"] or "{}"),
        payload=bytes(m["payload"]) if m.get("payload") is not None else None,
        sha256=m["sha256"],
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def session_record(row: Any, host: str) -> SessionRecord:
    m = row._mapping
    status = m["status"]
    if status == "running" and m["host"] == host and not _alive(int(m["pid"])):
        status = "interrupted"  # its process is gone without closing it
    return SessionRecord(
        id=int(m["id"]),
        scenario=m["scenario"],
        variant=m["variant"],
        group=m["grp"],
        kind=m["kind"],
        status=status,
        started=float(m["started"]),
        ended=float(m["ended"]) if m["ended"] is not None else None,
        host=m["host"],
        pid=int(m["pid"]),
        config=json.loads(m["config"] or "{}"),
        summary=json.loads(m["summary"] or "{}"),
    )


def event_select(q: EventQuery) -> Select[Any]:
    t, s = schema.events, schema.sessions
    stmt = select(t)
    if q.session is not None:
        stmt = stmt.where(t.c.session == q.session)
    if q.sessions is not None:
        stmt = stmt.where(t.c.session.in_(list(q.sessions)))
    if q.scenario is not None:
        stmt = stmt.where(t.c.session.in_(select(s.c.id).where(s.c.scenario == q.scenario)))
    for column, value in (
        (t.c.task, q.task),
        (t.c.action, q.action),
        (t.c.worker, q.worker),
        (t.c.success, q.success),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if q.after_id is not None:
        stmt = stmt.where(t.c.id > q.after_id)
    if q.before_id is not None:
        stmt = stmt.where(t.c.id < q.before_id)
    if q.since is not None:
        stmt = stmt.where(t.c.ts >= q.since)
    stmt = stmt.order_by(t.c.id.desc() if q.newest_first else t.c.id)
    if q.limit is not None:
        stmt = stmt.limit(q.limit)
    return stmt
