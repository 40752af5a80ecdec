"""The store protocol and the records it returns."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

from swarmlearn.core.events import (
    ActionEvent,
    EpisodeEnded,
    Event,
    FeedbackEvent,
    LLMCallEvent,
    NoteEvent,
)
from swarmlearn.types import OutcomeKind, SessionId

__all__ = [
    "AliasRecord",
    "ArtifactRecord",
    "EpisodeBrief",
    "EpisodeCursor",
    "EventQuery",
    "LogEntry",
    "LogRecord",
    "SessionRecord",
    "StatusUpdate",
    "Store",
]


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: SessionId
    scenario: str
    variant: str
    group: str
    kind: str
    status: str
    started: float
    ended: float | None
    host: str
    pid: int
    config: Mapping[str, Any] = field(default_factory=dict)
    summary: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ArtifactRecord:
    """One version of a learned artifact (snapshot, profile, skill, adapter, policy)."""

    id: int
    kind: str
    name: str
    version: int
    format_version: int
    status: str
    created: float
    meta: Mapping[str, Any]
    payload: bytes | None
    sha256: str


@dataclass(frozen=True, slots=True)
class AliasRecord:
    """A named pointer (``champion``, ``challenger``) to one artifact of a (kind, scope)."""

    kind: str
    scope: str
    alias: str
    artifact_id: int
    version: int
    updated: float


@dataclass(frozen=True, kw_only=True, slots=True)
class StatusUpdate:
    """Move one artifact to ``status``; ``expect``: it must be in one of these now
    (compare-and-set, else StoreError); ``meta`` is merged into its meta (top-level keys)."""

    artifact_id: int
    status: str
    expect: tuple[str, ...] = ()
    meta: Mapping[str, Any] | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class LogEntry:
    """One step of the learning lifecycle or the daemon, as written."""

    kind: str
    scope: str
    step: str
    reason: str = ""
    artifact_id: int = 0
    status: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One step of the learning log, as stored (``id`` orders the log)."""

    id: int
    ts: float
    kind: str
    scope: str
    step: str
    reason: str
    artifact_id: int
    status: str
    data: Mapping[str, Any]
    host: str
    pid: int


class EpisodeBrief(NamedTuple):
    """What a follower of the store needs of an episode end (``follow_episodes``)."""

    id: int
    session: SessionId
    ts: float
    outcome: OutcomeKind  # with applied feedback's outcome in place of the recorded one

    @property
    def solved(self) -> bool:
        return self.outcome is OutcomeKind.SUCCESS


@dataclass(frozen=True, slots=True)
class EpisodeCursor:
    """Where a follower of the store's episodes stands: an id watermark per session.

    Event ids are ``session << 32 | seq``, so within a session a larger id is a later
    episode, but sessions write side by side: one watermark per session that may still
    write (``poll``), and ``top``, the newest session known at the last look (every
    session above it is read whole). A session leaves ``poll`` once a look began after
    it had ended — everything it wrote was committed before it ended, so that look read
    it all. ``marks`` keeps the last id read of every session seen (a resumed session,
    running again, continues above it)."""

    marks: Mapping[int, int] = field(default_factory=dict)
    poll: frozenset[int] = frozenset()
    top: int = 0

    def covers(self, episode: int, session: int) -> bool:
        """Whether the looks up to here returned this episode (a later one will not)."""
        return episode <= self.marks.get(session, -1)


@dataclass(frozen=True, kw_only=True, slots=True)
class EventQuery:
    """Filters for reading action events; all optional, combined with AND."""

    session: SessionId | None = None
    sessions: Sequence[SessionId] | None = None
    scenario: str | None = None
    task: str | None = None
    action: str | None = None
    worker: int | None = None
    success: bool | None = None
    after_id: int | None = None
    before_id: int | None = None
    since: float | None = None
    limit: int | None = None
    newest_first: bool = False


@runtime_checkable
class Store(Protocol):
    """Persistence for sessions, events, episodes and versioned artifacts."""

    url: str

    def open_session(
        self,
        *,
        scenario: str,
        variant: str = "",
        group: str = "",
        kind: str = "run",
        config: Mapping[str, Any] | None = None,
    ) -> SessionId: ...

    def close_session(
        self,
        session: SessionId,
        *,
        status: str = "completed",
        summary: Mapping[str, Any] | None = None,
    ) -> None: ...

    def write(self, batch: Sequence[Event]) -> None: ...

    def events(self, query: EventQuery | None = None) -> Iterator[ActionEvent]: ...

    def llm_calls(self, session: SessionId) -> list[LLMCallEvent]: ...

    def notes(self, session: SessionId | None = None, kind: str | None = None) -> list[NoteEvent]:
        ...

    def episodes(
        self,
        *,
        session: SessionId | None = None,
        scenario: str | None = None,
        limit: int | None = None,
        variant: str | None = None,
        since: float | None = None,
        exclude_kinds: Sequence[str] = (),
        corrected: bool = True,
    ) -> list[EpisodeEnded]: ...

    def feedback(
        self, *, session: SessionId | None = None, episode: int | None = None,
    ) -> list[FeedbackEvent]: ...

    def sessions(
        self, *, scenario: str | None = None, kind: str | None = None, limit: int | None = None
    ) -> list[SessionRecord]: ...

    def reopen_session(self, session: SessionId) -> None: ...

    def session(self, session: SessionId) -> SessionRecord: ...

    def next_seq(self, session: SessionId) -> int: ...

    def count_events(self, session: SessionId | None = None) -> int: ...

    def put_artifact(
        self,
        kind: str,
        name: str,
        payload: bytes | None,
        *,
        meta: Mapping[str, Any] | None = None,
        format_version: int = 1,
        status: str = "candidate",
    ) -> ArtifactRecord: ...

    def get_artifact(self, kind: str, name: str, version: int | None = None) -> ArtifactRecord: ...

    def artifacts(
        self,
        kind: str | None = None,
        name: str | None = None,
        *,
        latest: int | None = None,
        since: float | None = None,
        until: float | None = None,
        payload: bool = True,
    ) -> list[ArtifactRecord]: ...

    def set_artifact_status(self, artifact_id: int, status: str) -> None: ...

    def get_artifact_by_id(self, artifact_id: int, *, payload: bool = True) -> ArtifactRecord: ...

    def record_lifecycle(
        self,
        entry: LogEntry,
        *,
        updates: Sequence[StatusUpdate] = (),
        aliases: Mapping[str, int | None] | None = None,
    ) -> LogRecord: ...

    def aliases(self, kind: str | None = None, scope: str | None = None) -> list[AliasRecord]: ...

    def learning_log(
        self,
        *,
        kind: str | None = None,
        scope: str | None = None,
        artifact_id: int | None = None,
        steps: Sequence[str] | None = None,
        after_id: int | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[LogRecord]: ...

    def count_episodes(
        self, *, scenario: str | None = None, variant: str | None = None,
        since: float | None = None, exclude_kinds: Sequence[str] = (),
    ) -> int: ...

    def follow_episodes(
        self, cursor: EpisodeCursor | None = None, *, scenario: str | None = None,
        variant: str | None = None, exclude_kinds: Sequence[str] = (),
        from_end: bool = False,
    ) -> tuple[list[EpisodeBrief], EpisodeCursor]: ...

    def wait_for_episodes(self, timeout: float) -> bool: ...

    def close(self) -> None: ...
