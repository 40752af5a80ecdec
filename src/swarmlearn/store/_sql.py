"""The SQL store: SQLite by default (WAL), PostgreSQL by URL, through SQLAlchemy Core.

Writes come in batches, each batch one transaction (all or nothing). On
SQLite every write transaction starts with ``BEGIN IMMEDIATE`` so that two
processes writing one file queue up on the lock (``busy_timeout``) instead
of failing on a read→write upgrade; WAL keeps readers unblocked and makes a
``kill -9`` lose at most the transaction in flight. Bulk inserts use the
fastest path: on SQLite a C writer that runs the whole transaction with the
GIL released (store/_batch.py; ``executemany`` without the extension or in
memory), ``COPY`` on PostgreSQL.

``SqlStore(url, read_only=True)`` (the CLI's listing and export commands)
creates and changes nothing: SQLite opens the file with ``mode=ro`` (and
``immutable`` when no writer has it open, so that no ``-wal``/``-shm`` file is
left behind), the schema is read, never migrated. Where nothing was ever recorded (no file, or
no swarmlearn tables) ``exists`` is False and every read is a StoreError that
says so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    create_engine,
    event,
    func,
    inspect,
    or_,
    select,
    update,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from swarmlearn.core.events import (
    SEQ_BITS,
    ActionEvent,
    EpisodeEnded,
    Event,
    FeedbackEvent,
    LLMCallEvent,
    NoteEvent,
)
from swarmlearn.errors import SchemaError, StoreError
from swarmlearn.store import _codec as codec
from swarmlearn.store import _schema as schema
from swarmlearn.store._batch import AVAILABLE as _C_WRITER
from swarmlearn.store._batch import BatchWriter, Part, insert_sql
from swarmlearn.store._protocol import (
    AliasRecord,
    ArtifactRecord,
    EpisodeBrief,
    EpisodeCursor,
    EventQuery,
    LogEntry,
    LogRecord,
    SessionRecord,
    StatusUpdate,
)
from swarmlearn.types import Outcome, OutcomeKind, SessionId

__all__ = ["DEFAULT_URL", "SqlStore", "resolve_url"]

logger = logging.getLogger(__name__)

DEFAULT_URL = "sqlite:///.swarmlearn/swarmlearn.db"
#: PostgreSQL: every write with episodes sends ``NOTIFY`` on this channel
EPISODES_CHANNEL = "swarmlearn_episodes"
_HINT = "expected sqlite:///PATH, a file path, or postgresql://USER@HOST:PORT/DB"


#: events whose table numbers its own rows: the table and the row builder
_KEYED_ROWS: dict[type, tuple[Table, Callable[[Any], dict[str, Any]]]] = {
    NoteEvent: (schema.notes, codec.note_row),
    FeedbackEvent: (schema.feedback, codec.feedback_row),
}


#: the bulk-written tables' INSERT, every column in table order
_INSERT = {t.name: insert_sql(t.name, tuple(c.name for c in t.columns))
           for t in (schema.events, schema.llm_calls, schema.episodes)}


def _rows(
    batch: Sequence[Event], *, raw_events: bool = False,
) -> tuple[list[tuple[Table, list[tuple[Any, ...]]]], dict[Table, list[dict[str, Any]]]]:
    """A batch's rows: (table, tuples) of the bulk-written tables in the order events,
    LLM calls, episodes (non-empty ones only), and dict rows of the own-keyed tables.
    ``raw_events``: the action events themselves, not their rows (codec.EVENT_SPEC)."""
    ev_rows: list[tuple[Any, ...]] = []
    llm_rows: list[tuple[Any, ...]] = []
    ep_rows: list[tuple[Any, ...]] = []
    keyed: dict[Table, list[dict[str, Any]]] = {}  # notes, feedback: they number their rows
    for e in batch:
        t = type(e)
        if t is ActionEvent:
            ev_rows.append(e if raw_events else codec.event_row(e))  # type: ignore[arg-type]
        elif t is EpisodeEnded:
            ep_rows.append(codec.episode_row(e))  # type: ignore[arg-type]
        elif t is LLMCallEvent:
            llm_rows.append(tuple(e))
        elif (own := _KEYED_ROWS.get(t)) is not None:
            keyed.setdefault(own[0], []).append(own[1](e))
    bulk = [(table, rows) for table, rows in (
        (schema.events, ev_rows), (schema.llm_calls, llm_rows), (schema.episodes, ep_rows),
    ) if rows]
    return bulk, keyed


def resolve_url(url: str | None) -> URL:
    """Turn a store URL (or a plain path) into a SQLAlchemy URL with our drivers."""
    raw = url or os.environ.get("SWARMLEARN_STORE") or DEFAULT_URL
    if "://" not in raw:
        if raw.strip() in ("", ":memory:"):
            raw = "sqlite://"
        else:
            raw = f"sqlite:///{raw}"
    try:
        parsed = make_url(raw)
        parsed.port  # noqa: B018 - a bad port raises here, not later
    except (ArgumentError, ValueError) as exc:
        raise StoreError(f"bad store URL {raw!r}: {exc}; {_HINT}") from exc
    backend = parsed.drivername.split("+", 1)[0]
    if backend in ("postgres", "postgresql"):
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return parsed.set(drivername="sqlite")
    raise StoreError(f"bad store URL {raw!r}: unsupported scheme {parsed.drivername!r}; {_HINT}")


def _sqlite_file(path: str, *, read_only: bool) -> Path:
    """The database file of a SQLite store, checked; its folder made unless ``read_only``."""
    if "\x00" in path:
        raise StoreError(f"bad store path {path!r}: it contains a NUL byte")
    try:
        p = Path(path)
        if p.is_dir():
            raise StoreError(f"store path {path!r} is a directory, not a database file")
        if read_only:
            return p
        if not p.parent.is_dir():
            logger.info("creating the store's folder %s", p.parent)
            try:
                p.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the store's folder {str(p.parent)!r}: {exc}"
                ) from exc
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise StoreError(f"cannot open the store at {path!r}: {exc}") from exc
    return p


def _read_only_connect(p: Path) -> sqlite3.Connection:
    """A read-only connection that leaves no file behind. A WAL database opened
    ``mode=ro`` makes SQLite create the ``-wal`` and ``-shm`` files if they are not
    there, and a read-only connection cannot remove them. They are there while a writer
    has the store open; when they are not, nobody is writing, and the file is opened
    ``immutable`` (no locks, no side files). A writer that starts meanwhile is not seen
    by this connection; its pages reach the main file only at a checkpoint (after about
    4 MB of its log), which could make a long read fail with a one-line StoreError, never
    change what is stored. Each connection decides anew."""
    wal = p.with_name(p.name + "-wal")
    flags = "mode=ro" if wal.exists() else "mode=ro&immutable=1"
    return sqlite3.connect(f"{p.resolve().as_uri()}?{flags}", uri=True,
                           check_same_thread=False, timeout=30)


def _sqlite_engine(url: URL, *, read_only: bool = False) -> Engine:
    path = url.database or ""
    if path and path != ":memory:":
        p = _sqlite_file(path, read_only=read_only)
        if read_only:
            engine = create_engine(url, creator=functools.partial(_read_only_connect, p))
        else:
            engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        memory = False
    else:
        engine = create_engine(
            "sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool
        )
        memory = True

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        if not memory and not read_only:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = "IMMEDIATE" if conn.get_execution_options().get("write") else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


class SqlStore:
    """The store, over SQLite or PostgreSQL. See the module docstring."""

    def __init__(self, url: str | None = None, *, read_only: bool = False) -> None:
        self._url = resolve_url(url)
        self.url = self._url.render_as_string(hide_password=True)
        self.dialect = self._url.get_backend_name()
        self._lock = threading.RLock()  # serialises use of an in-memory database
        self._memory = self.dialect == "sqlite" and self._url.database in (None, "", ":memory:")
        self.read_only = read_only and not self._memory  # an empty memory store has nothing to keep
        self.exists = True  # False: nothing was ever recorded here (read-only stores only)
        try:
            if self.dialect == "sqlite":
                self.engine = _sqlite_engine(self._url, read_only=self.read_only)
            elif self.read_only:
                self.engine = create_engine(
                    self._url, pool_pre_ping=True,
                    connect_args={"options": "-c default_transaction_read_only=on"},
                )
            else:
                self.engine = create_engine(self._url, pool_pre_ping=True)
        except (NoSuchModuleError, ImportError) as exc:
            raise StoreError(
                f"cannot open {self.url}: driver missing ({exc}); run `scripts/install.sh pg`"
            ) from exc
        self._dbapi_error: type[Exception] = self.engine.dialect.loaded_dbapi.Error
        self._host = socket.gethostname()
        if self.read_only:
            self.exists = self._check_readable()
        else:
            self._migrate()
        #: writes of event batches without the GIL (store/_batch.py); None: through sqlite3
        self._batch: BatchWriter | None = None
        if _C_WRITER and self.dialect == "sqlite" and not self._memory and not self.read_only:
            path = str(Path(self._url.database or "").resolve())
            self._batch = BatchWriter(path, self.url)
        logger.info("opened store %s%s", self.url, " (read-only)" if self.read_only else "")

    # -- connections ------------------------------------------------------------
    @contextlib.contextmanager
    def _tx(self, *, write: bool, what: str) -> Iterator[Connection]:
        if not self.exists:
            raise StoreError(f"no store at {self.url}: nothing has been recorded there yet "
                             "(a command that records, such as `swarmlearn run`, creates it)")
        try:
            with self._lock if self._memory else contextlib.nullcontext():
                with self.engine.connect() as conn:
                    if write and self.dialect == "sqlite":
                        conn = conn.execution_options(write=True)
                    with conn.begin():
                        yield conn
        except StoreError:
            raise
        except (SQLAlchemyError, self._dbapi_error, OverflowError) as exc:  # int > 64 bits
            detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise StoreError(f"{what} in {self.url} failed: {detail}") from exc

    def _migrate(self) -> None:
        with self._tx(write=True, what="opening the store") as conn:
            if self.dialect == "postgresql":
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7242071)")
            version = schema.read_version(conn)
            if version > schema.SCHEMA_VERSION:
                raise SchemaError(
                    f"{self.url} has schema version {version}, newer than this swarmlearn "
                    f"supports ({schema.SCHEMA_VERSION}); upgrade swarmlearn"
                )
            for step in range(version + 1, schema.SCHEMA_VERSION + 1):
                schema.MIGRATIONS[step](conn)
            if version != schema.SCHEMA_VERSION:
                table = schema.meta
                conn.execute(table.delete().where(table.c.key == "schema_version"))
                conn.execute(
                    table.insert().values(key="schema_version", value=str(schema.SCHEMA_VERSION))
                )

    def _check_readable(self) -> bool:
        """Whether there is a store to read; SchemaError unless it has this schema version."""
        if self.dialect == "sqlite" and not Path(self._url.database or "").exists():
            return False
        with self._tx(write=False, what="opening the store") as conn:
            if not inspect(conn).has_table(schema.meta.name):
                return False
            row = conn.execute(
                select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")
            ).first()
        try:
            version = int(row[0]) if row else 0
        except ValueError:
            version = -1
        if version == schema.SCHEMA_VERSION:
            return True
        if version > schema.SCHEMA_VERSION:
            raise SchemaError(f"{self.url} has schema version {version}, newer than this "
                              f"swarmlearn supports ({schema.SCHEMA_VERSION}); upgrade swarmlearn")
        raise SchemaError(f"{self.url} has schema version {row[0] if row else 'none'!s}, not "
                          f"{schema.SCHEMA_VERSION}; a command that records (e.g. `swarmlearn "
                          "run`) migrates it, a read-only one does not")

    def schema_version(self) -> int:
        with self._tx(write=False, what="reading the schema version") as conn:
            return schema.read_version(conn)

    def close(self) -> None:
        if self._batch is not None:
            self._batch.close()
        listener: Any = getattr(self, "_listener", None)
        if listener is not None:
            self._listener = None
            with contextlib.suppress(Exception):
                listener.close()
        self.engine.dispose()

    def wait_for_episodes(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for new episodes; True if some were written.

        PostgreSQL: ``LISTEN`` on the channel every episode write notifies (on a
        connection of its own), so a follower wakes at once. SQLite has no such
        signal: this sleeps and returns False, and the follower polls.
        """
        if self.dialect != "postgresql":
            time.sleep(max(0.0, timeout))
            return False
        try:
            listener: Any = getattr(self, "_listener", None)
            if listener is None:
                import psycopg

                conninfo = self._url.set(drivername="postgresql").render_as_string(
                    hide_password=False)
                listener = psycopg.connect(conninfo, autocommit=True)
                listener.execute(f"LISTEN {EPISODES_CHANNEL}")
                self._listener = listener
            got = list(listener.notifies(timeout=max(0.0, timeout), stop_after=1))
        except self._dbapi_error as exc:
            self._listener = None
            raise StoreError(f"listening for episodes in {self.url} failed: {exc}") from exc
        return bool(got)

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sessions ---------------------------------------------------------------
    def open_session(
        self,
        *,
        scenario: str,
        variant: str = "",
        group: str = "",
        kind: str = "run",
        config: Mapping[str, Any] | None = None,
    ) -> SessionId:
        row = dict(
            scenario=scenario,
            variant=variant,
            grp=group,
            kind=kind,
            status="running",
            started=time.time(),
            host=self._host,
            pid=os.getpid(),
            config=json.dumps(config or {}, default=str),
            summary="{}",
        )
        with self._tx(write=True, what="opening a session") as conn:
            result = conn.execute(schema.sessions.insert().values(**row))
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def close_session(
        self,
        session: SessionId,
        *,
        status: str = "completed",
        summary: Mapping[str, Any] | None = None,
    ) -> None:
        t = schema.sessions
        with self._tx(write=True, what=f"closing session {session}") as conn:
            conn.execute(
                update(t)
                .where(t.c.id == session)
                .values(
                    status=status, ended=time.time(), summary=json.dumps(summary or {}, default=str)
                )
            )

    def reopen_session(self, session: SessionId) -> None:
        """A resumed session is running again (followers poll it: ``follow_episodes``)."""
        t = schema.sessions
        with self._tx(write=True, what=f"reopening session {session}") as conn:
            done = conn.execute(update(t).where(t.c.id == session)
                                .values(status="running", ended=None)).rowcount
        if not done:
            raise StoreError(f"no session {session} in {self.url}")

    def session(self, session: SessionId) -> SessionRecord:
        found = self._sessions(select(schema.sessions).where(schema.sessions.c.id == session))
        if not found:
            raise StoreError(f"no session {session} in {self.url}")
        return found[0]

    def sessions(
        self, *, scenario: str | None = None, kind: str | None = None, limit: int | None = None
    ) -> list[SessionRecord]:
        t = schema.sessions
        q = select(t).order_by(t.c.id.desc())
        if scenario is not None:
            q = q.where(t.c.scenario == scenario)
        if kind is not None:
            q = q.where(t.c.kind == kind)
        if limit is not None:
            q = q.limit(limit)
        return self._sessions(q)

    def _sessions(self, q: Any) -> list[SessionRecord]:
        with self._tx(write=False, what="reading sessions") as conn:
            rows = conn.execute(q).all()
        return [codec.session_record(r, self._host) for r in rows]

    def next_seq(self, session: SessionId) -> int:
        """The next free event sequence number of ``session`` (to continue it)."""
        lo, hi = session << SEQ_BITS, (session + 1) << SEQ_BITS
        best = -1
        with self._tx(write=False, what=f"reading session {session}") as conn:
            for t in (schema.events, schema.llm_calls, schema.episodes):
                m = conn.execute(select(func.max(t.c.id)).where(t.c.id >= lo, t.c.id < hi)).scalar()
                if m is not None:
                    best = max(best, int(m) - lo)
        return best + 1

    # -- events -----------------------------------------------------------------
    def write(self, batch: Sequence[Event]) -> None:
        """Write a batch of events in one transaction (episode starts are not stored)."""
        bulk, keyed = _rows(batch, raw_events=self._batch is not None)
        if not (bulk or keyed):
            return
        what = f"writing {len(batch)} events"
        if self._batch is not None:  # the whole transaction in one call without the GIL
            parts: list[Part] = [(_INSERT[table.name], rows, codec.EVENT_SPEC)
                                 if table is schema.events else (_INSERT[table.name], rows)
                                 for table, rows in bulk]
            for table, dicts in keyed.items():
                cols = tuple(dicts[0])
                parts.append((insert_sql(table.name, cols),
                              [tuple(d[c] for c in cols) for d in dicts]))
            self._batch.write(parts, what=what)
            return
        with self._tx(write=True, what=what) as conn:
            for table, rows in bulk:
                self._bulk_insert(conn, table, rows)
            for table, dicts in keyed.items():
                conn.execute(table.insert(), dicts)
            if any(t is schema.episodes for t, _ in bulk) and self.dialect == "postgresql":
                conn.exec_driver_sql(f"NOTIFY {EPISODES_CHANNEL}")  # delivered at commit

    def _bulk_insert(self, conn: Connection, table: Table, rows: list[tuple[Any, ...]]) -> None:
        cols = [c.name for c in table.columns]
        if self.dialect == "postgresql":
            raw = conn.connection.driver_connection
            assert raw is not None
            with (
                raw.cursor() as cur,
                cur.copy(f"COPY {table.name} ({', '.join(cols)}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
            return
        marks = ", ".join("?" * len(cols))
        sql = f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({marks})"
        conn.exec_driver_sql(sql, rows)

    def events(
        self, query: EventQuery | None = None, *, page: int = 10_000
    ) -> Iterator[ActionEvent]:
        """Action events matching ``query``, streamed in pages by id (keyset pagination)."""
        q = query or EventQuery()
        remaining = q.limit
        while remaining is None or remaining > 0:
            size = page if remaining is None else min(page, remaining)
            with self._tx(write=False, what="reading events") as conn:
                rows = conn.execute(codec.event_select(dataclasses.replace(q, limit=size))).all()
            for row in rows:
                yield codec.event_from_row(row)
            if len(rows) < size:
                return
            last = int(rows[-1][0])
            q = (
                dataclasses.replace(q, before_id=last)
                if q.newest_first
                else dataclasses.replace(q, after_id=last)
            )
            if remaining is not None:
                remaining -= len(rows)

    def count_events(self, session: SessionId | None = None) -> int:
        t = schema.events
        q = select(func.count()).select_from(t)
        if session is not None:
            q = q.where(t.c.session == session)
        with self._tx(write=False, what="counting events") as conn:
            return int(conn.execute(q).scalar() or 0)

    def notes(self, session: SessionId | None = None, kind: str | None = None) -> list[NoteEvent]:
        t = schema.notes
        q = select(t).order_by(t.c.id)
        if session is not None:
            q = q.where(t.c.session == session)
        if kind is not None:
            q = q.where(t.c.kind == kind)
        with self._tx(write=False, what="reading notes") as conn:
            rows = conn.execute(q).all()
        return [codec.note_from_row(r) for r in rows]

    def llm_calls(self, session: SessionId) -> list[LLMCallEvent]:
        t = schema.llm_calls
        with self._tx(write=False, what="reading LLM calls") as conn:
            rows = conn.execute(select(t).where(t.c.session == session).order_by(t.c.id)).all()
        return [codec.llm_from_row(r) for r in rows]

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
    ) -> list[EpisodeEnded]:
        """Episodes by id; ``scenario``/``variant``/``exclude_kinds`` filter by their
        session, ``since`` by the episode's end time. ``corrected``: an episode with
        applied feedback has the latest such feedback's outcome in place of the
        recorded one (which stays as written; ``corrected=False`` reads it)."""
        t = schema.episodes
        q = self._episode_filter(select(t).order_by(t.c.id), session=session, scenario=scenario,
                                 variant=variant, since=since, exclude_kinds=exclude_kinds)
        if limit is not None:
            q = q.limit(limit)
        with self._tx(write=False, what="reading episodes") as conn:
            rows = conn.execute(q).all()
            episodes = [codec.episode_from_row(r) for r in rows]
            if not (corrected and episodes):
                return episodes
            latest = self._corrections(conn, episodes[0].id, episodes[-1].id)
        if not latest:
            return episodes
        return [e._replace(outcome=latest[e.id]) if e.id in latest else e for e in episodes]

    @staticmethod
    def _corrections(conn: Connection, first: int, last: int) -> dict[int, Outcome]:
        """The outcome of the latest applied feedback on each episode id in [first, last]."""
        f = schema.feedback
        fixes = conn.execute(select(f).where(f.c.applied, f.c.episode >= first,
                                             f.c.episode <= last).order_by(f.c.id)).all()
        return {fb.episode: fb.outcome for fb in map(codec.feedback_from_row, fixes)}

    def feedback(
        self, *, session: SessionId | None = None, episode: int | None = None,
    ) -> list[FeedbackEvent]:
        """Feedback events in the order they were recorded, applied or not."""
        f = schema.feedback
        q = select(f).order_by(f.c.id)
        if session is not None:
            q = q.where(f.c.session == session)
        if episode is not None:
            q = q.where(f.c.episode == episode)
        with self._tx(write=False, what="reading feedback") as conn:
            rows = conn.execute(q).all()
        return [codec.feedback_from_row(r) for r in rows]

    def count_episodes(
        self, *, scenario: str | None = None, variant: str | None = None,
        since: float | None = None, exclude_kinds: Sequence[str] = (),
    ) -> int:
        t = schema.episodes
        q = self._episode_filter(select(func.count()).select_from(t), session=None,
                                 scenario=scenario, variant=variant, since=since,
                                 exclude_kinds=exclude_kinds)
        with self._tx(write=False, what="counting episodes") as conn:
            return int(conn.execute(q).scalar() or 0)

    def follow_episodes(
        self, cursor: EpisodeCursor | None = None, *, scenario: str | None = None,
        variant: str | None = None, exclude_kinds: Sequence[str] = (),
        from_end: bool = False,
    ) -> tuple[list[EpisodeBrief], EpisodeCursor]:
        """The episodes recorded since ``cursor`` (None: all of them; with ``from_end``
        none, only a cursor at the end), oldest first per session, and the next cursor.

        What a follower polls with: each look costs an index seek per session that may
        still write plus the new rows (id, session, end time, outcome), however large
        the store; feedback applied to a returned episode replaces its outcome, as in
        :meth:`episodes`. Filters as :meth:`episodes`; see :class:`EpisodeCursor`."""
        t, s = schema.episodes, schema.sessions
        cur = cursor or EpisodeCursor()
        owners = self._owners(scenario=scenario, variant=variant, exclude_kinds=exclude_kinds)
        with self._tx(write=False, what="following episodes") as conn:
            newest = int(conn.execute(select(func.max(s.c.id))).scalar() or 0)
            live = select(s.c.id).where(s.c.status == "running", s.c.id <= newest)
            if owners is not None:
                live = live.where(s.c.id.in_(owners))
            running = {int(i) for i in conn.execute(live).scalars()}
            if cursor is None and from_end:  # every session's last id: one may be resumed
                last = select(t.c.session, func.max(t.c.id)).group_by(t.c.session)
                if owners is not None:
                    last = last.where(t.c.session.in_(owners))
                marks = {int(sid): int(i) for sid, i in conn.execute(last).all()}
                return [], EpisodeCursor(marks, frozenset(running), newest)
            polled = sorted(cur.poll | {r for r in running if r <= cur.top})
            above = [sid for sid in polled if sid > cur.top]
            new = t.c.session > cur.top
            if above:
                new = new & t.c.session.not_in(above)
            wanted = or_(new, *((t.c.session == sid)
                                & (t.c.id > cur.marks.get(sid, (sid << 32) - 1))
                                for sid in polled))
            q = select(t.c.id, t.c.session, t.c.ts, t.c.outcome).where(wanted)
            if owners is not None:
                q = q.where(t.c.session.in_(owners))
            rows = conn.execute(q.order_by(t.c.id)).all()
            latest = self._corrections(conn, rows[0][0], rows[-1][0]) if rows else {}
        briefs = [EpisodeBrief(int(i), int(sid), float(ts),
                               latest[i].kind if i in latest else OutcomeKind(o))
                  for i, sid, ts, o in rows]
        marks = dict(cur.marks)
        for b in briefs:
            marks[b.session] = b.id
        # may still write: running at this look's start, or begun after it
        poll = {sid for sid in (*polled, *(b.session for b in briefs), *running)
                if sid in running or sid > newest}
        return briefs, EpisodeCursor(marks, frozenset(poll), max(newest, cur.top))

    @staticmethod
    def _owners(*, scenario: str | None, variant: str | None,
                exclude_kinds: Sequence[str]) -> Any:
        """The ids of the sessions these filters keep (None: no filter)."""
        if scenario is None and variant is None and not exclude_kinds:
            return None
        s = schema.sessions
        owners = select(s.c.id)
        if scenario is not None:
            owners = owners.where(s.c.scenario == scenario)
        if variant is not None:
            owners = owners.where(s.c.variant == variant)
        if exclude_kinds:
            owners = owners.where(s.c.kind.not_in(list(exclude_kinds)))
        return owners

    @classmethod
    def _episode_filter(
        cls, q: Any, *, session: SessionId | None, scenario: str | None, variant: str | None,
        since: float | None, exclude_kinds: Sequence[str],
    ) -> Any:
        t = schema.episodes
        if session is not None:
            q = q.where(t.c.session == session)
        owners = cls._owners(scenario=scenario, variant=variant, exclude_kinds=exclude_kinds)
        if owners is not None:
            q = q.where(t.c.session.in_(owners))
        if since is not None:
            q = q.where(t.c.ts >= since)
        return q

    # -- artifacts --------------------------------------------------------------
    def put_artifact(
        self,
        kind: str,
        name: str,
        payload: bytes | None,
        *,
        meta: Mapping[str, Any] | None = None,
        format_version: int = 1,
        status: str = "candidate",
    ) -> ArtifactRecord:
        """Store a new version of artifact (kind, name); versions count up from 1."""
        t = schema.artifacts
        meta_json = json.dumps(dict(meta or {}), default=str, sort_keys=True)
        digest = hashlib.sha256(payload).hexdigest() if payload is not None else ""
        for attempt in range(5):
            try:
                with self._tx(write=True, what=f"storing artifact {kind}/{name}") as conn:
                    latest = conn.execute(
                        select(func.max(t.c.version)).where(t.c.kind == kind, t.c.name == name)
                    ).scalar()
                    version = int(latest or 0) + 1
                    conn.execute(
                        t.insert().values(
                            kind=kind,
                            name=name,
                            version=version,
                            format_version=format_version,
                            status=status,
                            created=time.time(),
                            meta=meta_json,
                            payload=payload,
                            sha256=digest,
                        )
                    )
                return self.get_artifact(kind, name, version)
            except StoreError as exc:
                if not isinstance(exc.__cause__, IntegrityError) or attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def get_artifact(self, kind: str, name: str, version: int | None = None) -> ArtifactRecord:
        t = schema.artifacts
        q = select(t).where(t.c.kind == kind, t.c.name == name)
        q = (
            q.where(t.c.version == version)
            if version is not None
            else q.order_by(t.c.version.desc()).limit(1)
        )
        with self._tx(write=False, what=f"reading artifact {kind}/{name}") as conn:
            row = conn.execute(q).first()
        if row is None:
            which = f" version {version}" if version is not None else ""
            raise StoreError(f"no artifact {kind}/{name}{which} in {self.url}")
        return codec.artifact_from_row(row)

    def artifacts(
        self,
        kind: str | None = None,
        name: str | None = None,
        *,
        latest: int | None = None,
        since: float | None = None,
        until: float | None = None,
        payload: bool = True,
    ) -> list[ArtifactRecord]:
        """Artifacts newest first, filtered by kind, name and creation time.

        ``payload=False`` lists metadata only (``payload`` is None): listings of
        large stores then read no payload bytes.
        """
        t = schema.artifacts
        cols = list(t.c) if payload else [c for c in t.c if c.name != "payload"]
        q = select(*cols).order_by(t.c.created.desc(), t.c.id.desc())
        if kind is not None:
            q = q.where(t.c.kind == kind)
        if name is not None:
            q = q.where(t.c.name == name)
        if since is not None:
            q = q.where(t.c.created >= since)
        if until is not None:
            q = q.where(t.c.created <= until)
        if latest is not None:
            q = q.limit(latest)
        with self._tx(write=False, what="listing artifacts") as conn:
            rows = conn.execute(q).all()
        return [codec.artifact_from_row(r) for r in rows]

    def set_artifact_status(self, artifact_id: int, status: str) -> None:
        t = schema.artifacts
        with self._tx(write=True, what=f"updating artifact {artifact_id}") as conn:
            n = conn.execute(update(t).where(t.c.id == artifact_id).values(status=status)).rowcount
        if n == 0:
            raise StoreError(f"no artifact with id {artifact_id} in {self.url}")

    def get_artifact_by_id(self, artifact_id: int, *, payload: bool = True) -> ArtifactRecord:
        t = schema.artifacts
        cols = list(t.c) if payload else [c for c in t.c if c.name != "payload"]
        with self._tx(write=False, what=f"reading artifact {artifact_id}") as conn:
            row = conn.execute(select(*cols).where(t.c.id == artifact_id)).first()
        if row is None:
            raise StoreError(f"no artifact with id {artifact_id} in {self.url}")
        return codec.artifact_from_row(row)

    # -- the learning lifecycle ---------------------------------------------------------
    def record_lifecycle(
        self,
        entry: LogEntry,
        *,
        updates: Sequence[StatusUpdate] = (),
        aliases: Mapping[str, int | None] | None = None,
    ) -> LogRecord:
        """In one transaction: apply the status ``updates`` (compare-and-set), point
        ``aliases`` of (entry.kind, entry.scope) at artifacts (None removes one) and
        append ``entry`` to the learning log. All or nothing."""
        t, a, log = schema.artifacts, schema.artifact_aliases, schema.learning_log
        now = time.time()
        what = f"recording {entry.step} of {entry.kind}/{entry.scope}"
        with self._tx(write=True, what=what) as conn:
            if self.dialect == "postgresql":
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7242072)")
            for u in updates:
                row = conn.execute(select(t.c.status, t.c.meta).where(t.c.id == u.artifact_id)
                                   ).first()
                if row is None:
                    raise StoreError(f"{what}: no artifact with id {u.artifact_id}")
                if u.expect and row[0] not in u.expect:
                    raise StoreError(f"{what}: artifact {u.artifact_id} is {row[0]!r}, "
                                     f"expected {' or '.join(u.expect)}")
                values: dict[str, Any] = {"status": u.status}
                if u.meta:
                    merged = {**json.loads(row[1] or "{}"), **u.meta}
                    values["meta"] = json.dumps(merged, default=str, sort_keys=True)
                conn.execute(update(t).where(t.c.id == u.artifact_id).values(**values))
            for alias, target in (aliases or {}).items():
                conn.execute(a.delete().where(a.c.kind == entry.kind, a.c.scope == entry.scope,
                                              a.c.alias == alias))
                if target is not None:
                    conn.execute(a.insert().values(kind=entry.kind, scope=entry.scope,
                                                   alias=alias, artifact_id=target, updated=now))
            row_values = dict(ts=now, kind=entry.kind, scope=entry.scope, step=entry.step,
                              reason=entry.reason, artifact_id=entry.artifact_id,
                              status=entry.status,
                              data=json.dumps(dict(entry.data), default=str, sort_keys=True),
                              host=self._host, pid=os.getpid())
            pk = conn.execute(log.insert().values(**row_values)).inserted_primary_key
            assert pk is not None
        return LogRecord(int(pk[0]), now, entry.kind, entry.scope, entry.step, entry.reason,
                         entry.artifact_id, entry.status, dict(entry.data), self._host,
                         os.getpid())

    def aliases(self, kind: str | None = None, scope: str | None = None) -> list[AliasRecord]:
        a, t = schema.artifact_aliases, schema.artifacts
        q = (select(a.c.kind, a.c.scope, a.c.alias, a.c.artifact_id, t.c.version, a.c.updated)
             .join(t, t.c.id == a.c.artifact_id).order_by(a.c.kind, a.c.scope, a.c.alias))
        if kind is not None:
            q = q.where(a.c.kind == kind)
        if scope is not None:
            q = q.where(a.c.scope == scope)
        with self._tx(write=False, what="reading artifact aliases") as conn:
            rows = conn.execute(q).all()
        return [AliasRecord(r[0], r[1], r[2], int(r[3]), int(r[4]), float(r[5])) for r in rows]

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
    ) -> list[LogRecord]:
        log = schema.learning_log
        q = select(log).order_by(log.c.id.desc() if newest_first else log.c.id)
        if kind is not None:
            q = q.where(log.c.kind == kind)
        if scope is not None:
            q = q.where(log.c.scope == scope)
        if artifact_id is not None:
            q = q.where(log.c.artifact_id == artifact_id)
        if steps is not None:
            q = q.where(log.c.step.in_(list(steps)))
        if after_id is not None:
            q = q.where(log.c.id > after_id)
        if limit is not None:
            q = q.limit(limit)
        with self._tx(write=False, what="reading the learning log") as conn:
            rows = conn.execute(q).all()
        return [LogRecord(int(r.id), float(r.ts), r.kind, r.scope, r.step, r.reason,
                          int(r.artifact_id), r.status, json.loads(r.data or "{}"), r.host,
                          int(r.pid)) for r in rows]
