"""Learning snapshots: versioned records of what was learned, kept in the store.

A :class:`LearningSnapshot` summarises some sessions (``sessions``, and the
store ids of those sessions in ``session_ids`` when known): how the episodes
went (episodes, successes, actions) and what was learned — the online
:class:`~swarmlearn.learn.stats.LearnedStats` and the offline model (an opaque
JSON object carried along as ``offline``; ``offline_created`` says when it was
made, so a merge keeps the newest model however the merge is grouped).

Scopes: ``global`` (key ``all`` by convention), ``scenario`` (key = scenario
name) and ``session`` (key = session id). In the store a snapshot is an
artifact of kind ``snapshot`` named ``"{scope}:{key}"``; each save registers
a new version through the artifact lifecycle (:mod:`swarmlearn.lifecycle`:
a ``candidate`` with its lineage and a log entry), and the version a gate
promoted is the name's ``champion`` (:meth:`SnapshotStore.champion`;
:class:`swarmlearn.learn.kinds.SnapshotKind` is the snapshot's lifecycle
kind). :class:`SnapshotStore` saves, queries (latest, latest N, time range),
exports and imports them; a malformed payload or file is an
:class:`~swarmlearn.errors.ArtifactError` naming the artifact or file and
what is wrong.

Snapshots that are merged (:mod:`swarmlearn.learn.merge`) should cover
disjoint sessions — e.g. per-session snapshots — and merging two that both
cover the same session id is refused: it would count that session twice.
"""

from __future__ import annotations

import enum
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from swarmlearn.core.events import EpisodeEnded
from swarmlearn.errors import ArtifactError, ConfigError
from swarmlearn.learn import _payload as P
from swarmlearn.learn.stats import LearnedStats
from swarmlearn.store import ArtifactRecord, Store
from swarmlearn.types import OutcomeKind

__all__ = [
    "SNAPSHOT_KIND",
    "LearningSnapshot",
    "SnapshotScope",
    "SnapshotStore",
    "StoredSnapshot",
    "snapshot_name",
]

logger = logging.getLogger(__name__)

SNAPSHOT_KIND = "snapshot"


class SnapshotScope(enum.StrEnum):
    GLOBAL = "global"
    SCENARIO = "scenario"
    SESSION = "session"


def snapshot_name(scope: SnapshotScope | str, key: str) -> str:
    """The artifact name of a snapshot: ``"{scope}:{key}"``."""
    return f"{SnapshotScope(scope).value}:{key}"


_COUNTS = ("sessions", "episodes", "successes", "actions", "solved_actions")


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class LearningSnapshot:
    """What was learned over ``sessions`` sessions. Compare snapshots by ``to_dict()``.

    ``solved_actions`` counts the actions of the successful episodes, so
    ``actions_to_solve`` is their mean. ``stats`` and ``offline`` are treated
    as immutable once in a snapshot.
    """

    FORMAT_VERSION: ClassVar[int] = 1

    scope: SnapshotScope
    key: str
    stats: LearnedStats
    created: float = field(default_factory=time.time)
    scenario: str = ""
    sessions: int = 0
    session_ids: tuple[int, ...] = ()
    episodes: int = 0
    successes: int = 0
    actions: int = 0
    solved_actions: int = 0
    offline: Mapping[str, Any] = field(default_factory=dict)
    offline_created: float | None = None  # when the offline model was made (default: created)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "scope", SnapshotScope(self.scope))
        except ValueError:
            known = ", ".join(SnapshotScope)
            raise ConfigError(
                f"scope: expected one of {known}, got {self.scope!r}", field="scope"
            ) from None
        if not isinstance(self.key, str) or not self.key.strip():
            raise ConfigError(f"key: expected a non-empty string, got {self.key!r}", field="key")
        if self.scope is SnapshotScope.SCENARIO and not self.scenario:
            object.__setattr__(self, "scenario", self.key)
        object.__setattr__(self, "session_ids", tuple(sorted(self.session_ids)))
        if self.offline_created is None:
            object.__setattr__(self, "offline_created", self.created)
        self._check_counts()
        if not isinstance(self.offline, Mapping):
            raise ConfigError("offline: expected a JSON object", field="offline")
        try:
            json.dumps(self.offline, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"offline: not JSON-serializable ({exc})", field="offline") from exc

    def _check_counts(self) -> None:
        for name in _COUNTS:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{name}: expected a count >= 0, got {value!r}", field=name)
        for name in ("created", "offline_created"):
            if not math.isfinite(getattr(self, name)):
                raise ConfigError(
                    f"{name}: expected a finite time, got {getattr(self, name)}", field=name
                )
        if self.successes > self.episodes:
            raise ConfigError(
                f"successes: {self.successes} exceeds episodes ({self.episodes})",
                field="successes",
            )
        if self.solved_actions > self.actions:
            raise ConfigError(
                f"solved_actions: {self.solved_actions} exceeds actions ({self.actions})",
                field="solved_actions",
            )
        ids = self.session_ids
        if any(not isinstance(i, int) or i < 1 for i in ids) or len(set(ids)) != len(ids):
            raise ConfigError(
                f"session_ids: expected distinct store session ids >= 1, got {list(ids)}",
                field="session_ids",
            )
        if len(ids) > self.sessions:
            raise ConfigError(
                f"sessions: {self.sessions} is fewer than the {len(ids)} session_ids",
                field="sessions",
            )

    # -- derived -------------------------------------------------------------------
    @property
    def name(self) -> str:
        return snapshot_name(self.scope, self.key)

    @property
    def success_rate(self) -> float:
        return self.successes / self.episodes if self.episodes else 0.0

    @property
    def actions_to_solve(self) -> float:
        """Mean actions of the successful episodes (NaN when none succeeded)."""
        return self.solved_actions / self.successes if self.successes else math.nan

    @classmethod
    def from_episodes(
        cls,
        episodes: Sequence[EpisodeEnded],
        *,
        scope: SnapshotScope | str,
        key: str,
        stats: LearnedStats,
        scenario: str = "",
        session_ids: Sequence[int] | None = None,
        sessions: int | None = None,
        offline: Mapping[str, Any] | None = None,
        created: float | None = None,
    ) -> LearningSnapshot:
        """A snapshot summarising ``episodes`` (session ids default to theirs)."""
        ids = sorted(
            {e.session for e in episodes if e.session > 0}
            if session_ids is None
            else set(session_ids)
        )
        won = [e for e in episodes if e.outcome.kind is OutcomeKind.SUCCESS]
        return cls(
            scope=SnapshotScope(scope),
            key=key,
            stats=stats,
            created=time.time() if created is None else created,
            scenario=scenario,
            sessions=(len(ids) or int(bool(episodes))) if sessions is None else sessions,
            session_ids=tuple(ids),
            episodes=len(episodes),
            successes=len(won),
            actions=sum(e.actions for e in episodes),
            solved_actions=sum(e.actions for e in won),
            offline=dict(offline or {}),
        )

    # -- persistence -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "format_version": self.FORMAT_VERSION,
            "scope": self.scope.value,
            "key": self.key,
            "scenario": self.scenario,
            "created": self.created,
            "session_ids": list(self.session_ids),
            "offline": dict(self.offline),
            "offline_created": self.offline_created,
            "stats": self.stats.to_dict(),
        }
        for name in _COUNTS:
            data[name] = getattr(self, name)
        return data

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "snapshot") -> LearningSnapshot:
        """Rebuild a snapshot; anything malformed is an ArtifactError naming ``where``."""
        if not isinstance(data, Mapping):
            raise ArtifactError(f"{where}: expected a JSON object, got {type(data).__name__}")
        P.expect_version(data, cls.FORMAT_VERSION, where=where)
        scope = P.get_str(data, "scope", where=where)
        if scope not in set(SnapshotScope):
            raise ArtifactError(
                f"{where}: field 'scope' should be one of {', '.join(SnapshotScope)}, got {scope!r}"
            )
        ids = P.get_list(data, "session_ids", where=where, default=[])
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise ArtifactError(f"{where}: field 'session_ids' should hold integers, got {ids!r}")
        counts = {name: P.get_int(data, name, where=where) for name in _COUNTS}
        made = None
        if data.get("offline_created") is not None:
            made = P.get_float(data, "offline_created", where=where)
        stats = LearnedStats.from_dict(
            P.get_map(data, "stats", where=where), where=f"{where}: stats"
        )
        try:
            return cls(
                scope=SnapshotScope(scope),
                key=P.get_str(data, "key", where=where),
                stats=stats,
                created=P.get_float(data, "created", where=where),
                scenario=P.get_str(data, "scenario", where=where, default=""),
                session_ids=tuple(ids),
                offline=P.get_map(data, "offline", where=where, default={}),
                offline_created=made,
                **counts,
            )
        except ConfigError as exc:
            raise ArtifactError(f"{where}: {exc}") from exc

    def summary(self) -> dict[str, Any]:
        """The small record kept in the artifact's meta (listing needs no decoding)."""
        return {
            "scope": self.scope.value,
            "key": self.key,
            "scenario": self.scenario,
            "created": self.created,
            "sessions": self.sessions,
            "episodes": self.episodes,
            "successes": self.successes,
            "actions": self.actions,
            "offline": bool(self.offline),
        }


@dataclass(frozen=True, slots=True)
class StoredSnapshot:
    """A snapshot as stored: its version, when it was stored, status and meta."""

    version: int
    stored: float
    status: str
    meta: Mapping[str, Any]
    snapshot: LearningSnapshot


def _where(record: ArtifactRecord) -> str:
    return f"snapshot {record.name} v{record.version}"


class SnapshotStore:
    """Snapshots in a :class:`~swarmlearn.store.Store` (artifacts of kind ``snapshot``)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def save(
        self,
        snapshot: LearningSnapshot,
        *,
        meta: Mapping[str, Any] | None = None,
        parent: int | None = None,
    ) -> StoredSnapshot:
        """Register ``snapshot`` as the next version of its name: a lifecycle candidate
        (:class:`~swarmlearn.lifecycle.Lifecycle`, scope = the snapshot's name) with
        its lineage (the sessions it covers, its parent artifact id)."""
        from swarmlearn.lifecycle import Lifecycle, Lineage, Produced

        payload = P.encode(snapshot.to_dict())
        full = {**snapshot.summary(), **(meta or {})}
        lineage = Lineage(
            parent=parent,
            inputs={"session_ids": list(snapshot.session_ids), "sessions": snapshot.sessions},
            metrics={"episodes": snapshot.episodes, "successes": snapshot.successes,
                     "actions": snapshot.actions, "events": snapshot.stats.events_seen},
        )
        version = Lifecycle(self.store, SNAPSHOT_KIND, snapshot.name).register(
            Produced(payload=payload, format_version=LearningSnapshot.FORMAT_VERSION,
                     summary=full, lineage=lineage))
        record = version.record
        logger.info("stored %s v%d (%d bytes)", snapshot.name, record.version, len(payload))
        return StoredSnapshot(record.version, record.created, record.status, record.meta, snapshot)

    def champion(self, scope: SnapshotScope | str, key: str) -> StoredSnapshot | None:
        """The promoted (live) version of ``scope:key``, or None if none was promoted."""
        from swarmlearn.lifecycle import Lifecycle

        found = Lifecycle(self.store, SNAPSHOT_KIND, snapshot_name(scope, key)).champion()
        return self.decode(found.record) if found is not None else None

    @staticmethod
    def decode(record: ArtifactRecord) -> StoredSnapshot:
        """The snapshot in a stored record; ArtifactError if it is malformed."""
        where = _where(record)
        if record.kind != SNAPSHOT_KIND:
            raise ArtifactError(f"{where}: artifact kind is {record.kind!r}, not a snapshot")
        if record.format_version != LearningSnapshot.FORMAT_VERSION:
            raise ArtifactError(
                f"{where}: format_version {record.format_version} is not supported "
                f"(expected {LearningSnapshot.FORMAT_VERSION})"
            )
        snap = LearningSnapshot.from_dict(P.decode(record.payload, where=where), where=where)
        if snap.name != record.name:
            raise ArtifactError(f"{where}: payload is for {snap.name!r}, not {record.name!r}")
        return StoredSnapshot(record.version, record.created, record.status, record.meta, snap)

    def load(
        self, scope: SnapshotScope | str, key: str, version: int | None = None
    ) -> StoredSnapshot:
        """One version (default: the latest); StoreError if there is none."""
        return self.decode(
            self.store.get_artifact(SNAPSHOT_KIND, snapshot_name(scope, key), version)
        )

    def latest(self, scope: SnapshotScope | str, key: str) -> StoredSnapshot | None:
        """The latest version, or None if no snapshot of that name was ever saved."""
        found = self.latest_n(scope, key, 1)
        return found[0] if found else None

    def latest_n(self, scope: SnapshotScope | str, key: str, n: int) -> list[StoredSnapshot]:
        """The latest ``n`` versions, newest first."""
        if n < 1:
            raise ConfigError(f"n: expected >= 1, got {n}", field="n", value=n)
        records = self.store.artifacts(SNAPSHOT_KIND, snapshot_name(scope, key), latest=n)
        return [self.decode(r) for r in records]

    def between(
        self,
        scope: SnapshotScope | str,
        key: str,
        since: float | None = None,
        until: float | None = None,
    ) -> list[StoredSnapshot]:
        """Versions stored in [since, until] (epoch seconds, either open), newest first."""
        records = self.store.artifacts(
            SNAPSHOT_KIND, snapshot_name(scope, key), since=since, until=until
        )
        return [self.decode(r) for r in records]

    def records(
        self,
        scope: SnapshotScope | str | None = None,
        key: str | None = None,
        *,
        latest: int | None = None,
    ) -> list[ArtifactRecord]:
        """Stored snapshot records, metadata only (``payload`` None), newest first,
        optionally filtered; :meth:`load` a version to get its snapshot."""
        if key is not None and scope is None:
            raise ConfigError("key: a key needs a scope too", field="key", value=key)
        if scope is not None and key is not None:
            return self.store.artifacts(SNAPSHOT_KIND, snapshot_name(scope, key), latest=latest,
                                        payload=False)
        records = self.store.artifacts(SNAPSHOT_KIND, payload=False)
        if scope is not None:
            prefix = f"{SnapshotScope(scope).value}:"
            records = [r for r in records if r.name.startswith(prefix)]
        return records[:latest] if latest is not None else records

    def sessions_of(self, scenario: str, *, latest: int | None = None) -> list[StoredSnapshot]:
        """The session-scope snapshots of ``scenario`` (latest version of each), newest first."""
        seen: set[str] = set()
        picked: list[ArtifactRecord] = []
        for r in self.records(SnapshotScope.SESSION):
            if r.name in seen or r.meta.get("scenario") != scenario:
                continue
            seen.add(r.name)
            picked.append(r)
            if latest is not None and len(picked) >= latest:
                break
        return [self.decode(self.store.get_artifact(SNAPSHOT_KIND, r.name, r.version))
                for r in picked]

    def export(
        self,
        path: str | Path,
        scope: SnapshotScope | str,
        key: str,
        version: int | None = None,
    ) -> StoredSnapshot:
        """Write one version (default: the latest) to a JSON file."""
        found = self.load(scope, key, version)
        P.write_json_file(path, found.snapshot.to_dict())
        return found

    def import_(self, path: str | Path) -> StoredSnapshot:
        """Store the snapshot in a JSON file as a new version (a candidate) of its name."""
        snap = LearningSnapshot.from_dict(P.read_json_file(path), where=str(path))
        return self.save(snap, meta={"imported_from": str(path)})
