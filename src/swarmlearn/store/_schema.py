"""Tables of the store, the schema version, and migrations between versions.

The schema version lives in the ``meta`` table. Opening a store brings an
older database up to :data:`SCHEMA_VERSION` by running each migration in
order inside one transaction (all or nothing); a newer database is refused.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    select,
)

__all__ = [
    "EVENT_COLUMNS",
    "LLM_COLUMNS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "artifact_aliases",
    "artifacts",
    "episodes",
    "events",
    "feedback",
    "learning_log",
    "llm_calls",
    "meta",
    "metadata",
    "notes",
    "sessions",
]

SCHEMA_VERSION = 4

metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scenario", String(200), nullable=False, default=""),
    Column("variant", String(200), nullable=False, default=""),
    Column("grp", String(200), nullable=False, default=""),
    Column("kind", String(32), nullable=False, default="run"),
    Column("status", String(32), nullable=False, default="running"),
    Column("started", Float, nullable=False),
    Column("ended", Float, nullable=True),
    Column("host", String(200), nullable=False, default=""),
    Column("pid", Integer, nullable=False, default=0),
    Column("config", Text, nullable=False, default="{}"),
    Column("summary", Text, nullable=False, default="{}"),
    sqlite_autoincrement=True,  # never reuse a session id, so event ids never collide
)

events = Table(
    "events",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("session", Integer, nullable=False),
    Column("task", String(200), nullable=False),
    Column("grp", String(200), nullable=False),
    Column("episode", Integer, nullable=False),
    Column("tick", Integer, nullable=False),
    Column("worker", Integer, nullable=False),
    Column("action", String(200), nullable=False),
    Column("target", String(200), nullable=False),
    Column("args", Text, nullable=False),
    Column("success", Boolean, nullable=False),
    Column("output", Text, nullable=False),
    Column("error", Text, nullable=False),
    Column("discoveries", Text, nullable=False),
    Column("invalid", Boolean, nullable=False),
    Column("duration", Float, nullable=False),
    Column("context", String(200), nullable=False),
    Column("ts", Float, nullable=False),
    Index("ix_events_session", "session"),
)
EVENT_COLUMNS = tuple(c.name for c in events.columns)

llm_calls = Table(
    "llm_calls",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("session", Integer, nullable=False),
    Column("task", String(200), nullable=False),
    Column("worker", Integer, nullable=False),
    Column("tick", Integer, nullable=False),
    Column("purpose", String(64), nullable=False),
    Column("model", String(200), nullable=False),
    Column("adapter", String(200), nullable=False),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("latency", Float, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("error", Text, nullable=False),
    Column("ts", Float, nullable=False),
    Index("ix_llm_calls_session", "session"),
)
LLM_COLUMNS = tuple(c.name for c in llm_calls.columns)

episodes = Table(
    "episodes",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("session", Integer, nullable=False),
    Column("task", String(200), nullable=False),
    Column("grp", String(200), nullable=False),
    Column("episode", Integer, nullable=False),
    Column("seed", BigInteger, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("score", Float, nullable=False),
    Column("reason", Text, nullable=False),
    Column("ticks", Integer, nullable=False),
    Column("actions", Integer, nullable=False),
    Column("duration", Float, nullable=False),
    Column("first_event", BigInteger, nullable=False),
    Column("last_event", BigInteger, nullable=False),
    Column("stats", Text, nullable=False),
    Column("ts", Float, nullable=False),
    Index("ix_episodes_session", "session"),
)

notes = Table(
    "notes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session", Integer, nullable=False),
    Column("task", String(200), nullable=False),
    Column("worker", Integer, nullable=False),
    Column("tick", Integer, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("message", Text, nullable=False),
    Column("data", Text, nullable=False),
    Column("ts", Float, nullable=False),
    Index("ix_notes_session", "session"),
    sqlite_autoincrement=True,
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("format_version", Integer, nullable=False, default=1),
    Column("status", String(32), nullable=False, default="candidate"),
    Column("created", Float, nullable=False),
    Column("meta", Text, nullable=False, default="{}"),
    Column("payload", LargeBinary, nullable=True),
    Column("sha256", String(64), nullable=False, default=""),
    UniqueConstraint("kind", "name", "version", name="uq_artifact_version"),
    Index("ix_artifacts_kind_name", "kind", "name"),
    sqlite_autoincrement=True,
)

#: champion / challenger pointers per (kind, scope) — the live version of each artifact
artifact_aliases = Table(
    "artifact_aliases",
    metadata,
    Column("kind", String(64), primary_key=True),
    Column("scope", String(200), primary_key=True),
    Column("alias", String(32), primary_key=True),
    Column("artifact_id", Integer, nullable=False),
    Column("updated", Float, nullable=False),
)

#: every step of the artifact lifecycle and the learning daemon, in order
learning_log = Table(
    "learning_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", Float, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("scope", String(200), nullable=False),
    Column("step", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("artifact_id", Integer, nullable=False),
    Column("status", String(32), nullable=False),
    Column("data", Text, nullable=False),
    Column("host", String(200), nullable=False),
    Column("pid", Integer, nullable=False),
    Index("ix_learning_log_kind_scope", "kind", "scope"),
    sqlite_autoincrement=True,
)

#: people's words about finished tasks, classified; an applied row corrects its episode's outcome
feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session", Integer, nullable=False),
    Column("task", String(200), nullable=False),
    Column("episode", BigInteger, nullable=False),
    Column("text", Text, nullable=False),
    Column("label", String(64), nullable=False),
    Column("confidence", Float, nullable=False),
    Column("classifier", String(200), nullable=False),
    Column("applied", Boolean, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("score", Float, nullable=False),
    Column("reason", Text, nullable=False),
    Column("reward", Float, nullable=False),
    Column("ts", Float, nullable=False),
    Index("ix_feedback_episode", "episode"),
    sqlite_autoincrement=True,
)


_V1_TABLES = ("meta", "sessions", "events", "llm_calls", "episodes", "artifacts")


def _create_v1(conn: Connection) -> None:
    metadata.create_all(conn, tables=[metadata.tables[t] for t in _V1_TABLES], checkfirst=True)


def _add_notes_v2(conn: Connection) -> None:
    notes.create(conn, checkfirst=True)


def _add_lifecycle_v3(conn: Connection) -> None:
    artifact_aliases.create(conn, checkfirst=True)
    learning_log.create(conn, checkfirst=True)


def _add_feedback_v4(conn: Connection) -> None:
    feedback.create(conn, checkfirst=True)


#: version n → the step that brings a database from n-1 to n
MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    1: _create_v1,
    2: _add_notes_v2,
    3: _add_lifecycle_v3,
    4: _add_feedback_v4,
}


def read_version(conn: Connection) -> int:
    """The database's schema version; 0 for an empty database."""
    meta.create(conn, checkfirst=True)
    row = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).first()
    return int(row[0]) if row else 0
