"""Persistence behind one protocol: SQLite by default, PostgreSQL by URL.

``open_store(url)`` opens (and creates or migrates) a store; ``Recorder``
writes a bus's events to it in batches.
"""

from __future__ import annotations

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
    Store,
)
from swarmlearn.store._recorder import Recorder
from swarmlearn.store._schema import SCHEMA_VERSION
from swarmlearn.store._sql import DEFAULT_URL, SqlStore, resolve_url

__all__ = [
    "DEFAULT_URL",
    "SCHEMA_VERSION",
    "AliasRecord",
    "ArtifactRecord",
    "EpisodeBrief",
    "EpisodeCursor",
    "EventQuery",
    "LogEntry",
    "LogRecord",
    "Recorder",
    "SessionRecord",
    "SqlStore",
    "StatusUpdate",
    "Store",
    "open_store",
    "resolve_url",
]


def open_store(url: str | None = None) -> SqlStore:
    """Open the store at ``url`` (default: $SWARMLEARN_STORE or .swarmlearn/swarmlearn.db)."""
    return SqlStore(url)
