"""Snapshots: validation, serialization, the store on SQLite and PostgreSQL, files."""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path
from typing import Any

import pytest
from _snapshot_strategies import snapshot_st
from hypothesis import HealthCheck, given, settings

from swarmlearn.core.events import EpisodeEnded
from swarmlearn.core.scenario import load_scenario
from swarmlearn.errors import ArtifactError, ConfigError, StoreError
from swarmlearn.learn.snapshot import (
    SNAPSHOT_KIND,
    LearningSnapshot,
    SnapshotScope,
    SnapshotStore,
)
from swarmlearn.learn.stats import LearnedStats
from swarmlearn.session import run_session
from swarmlearn.store import SqlStore


def _snap(key: str = "troubleshooting", **kw: Any) -> LearningSnapshot:
    base: dict[str, Any] = {"scope": SnapshotScope.SCENARIO, "key": key, "stats": LearnedStats()}
    return LearningSnapshot(**(base | kw))


def _learned(episodes: int = 4) -> tuple[LearnedStats, list[EpisodeEnded]]:
    stats = LearnedStats()
    result = run_session(
        load_scenario("troubleshooting"),
        episodes=episodes,
        subscribers=[lambda bus: bus.subscribe(stats.observe, inline=True)],
    )
    return stats, result.episodes


# -- the record ---------------------------------------------------------------------------
def test_from_episodes_summarises_what_happened() -> None:
    stats, episodes = _learned(6)
    snap = LearningSnapshot.from_episodes(
        episodes,
        scope="session",
        key="7",
        stats=stats,
        scenario="troubleshooting",
        session_ids=[7],
    )
    won = [e for e in episodes if e.outcome.kind == "success"]
    assert (snap.scope, snap.name, snap.sessions, snap.session_ids) == (
        "session",
        "session:7",
        1,
        (7,),
    )
    assert (snap.episodes, snap.successes) == (6, len(won))
    assert snap.actions == sum(e.actions for e in episodes)
    assert snap.actions_to_solve == pytest.approx(sum(e.actions for e in won) / len(won))
    assert snap.stats.size()["actions"] > 0
    assert math.isnan(_snap().actions_to_solve) and _snap().success_rate == 0.0


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"key": " "}, "key"),
        ({"scope": "planet"}, "scope"),
        ({"episodes": -1}, "episodes"),
        ({"episodes": 2, "successes": 3}, "successes"),
        ({"actions": 2, "solved_actions": 3}, "solved_actions"),
        ({"sessions": 1, "session_ids": (3, 4)}, "sessions"),
        ({"sessions": 2, "session_ids": (3, 3)}, "session_ids"),
        ({"sessions": 1, "session_ids": (0,)}, "session_ids"),
        ({"offline": {"x": math.nan}}, "offline"),
        ({"created": math.inf}, "created"),
    ],
)
def test_invalid_snapshots_are_config_errors(kw: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        _snap(**kw)
    assert info.value.field == field


@settings(max_examples=40, deadline=None)
@given(snapshot_st())
def test_dict_round_trip_is_idempotent(snap: LearningSnapshot) -> None:
    once = LearningSnapshot.from_dict(json.loads(json.dumps(snap.to_dict())))
    assert once.to_dict() == snap.to_dict()
    assert LearningSnapshot.from_dict(once.to_dict()).to_dict() == snap.to_dict()


def _bad(**changes: Any) -> dict[str, Any]:
    data = _snap(episodes=3, successes=1).to_dict()
    for k, v in changes.items():
        if v is None:
            del data[k]
        else:
            data[k] = v
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1, 2], "expected a JSON object, got list"),
        (_bad(format_version=2), "format_version 2 is not supported (expected 1)"),
        (_bad(format_version=None), "missing field 'format_version'"),
        (_bad(stats=None), "missing field 'stats'"),
        (_bad(key=None), "missing field 'key'"),
        (_bad(episodes=-3), "negative count in field 'episodes': -3"),
        (_bad(successes=9), "successes: 9 exceeds episodes (3)"),
        (_bad(scope="planet"), "field 'scope' should be one of global, scenario, session"),
        (_bad(created="yesterday"), "field 'created' should be a finite number"),
        (
            _bad(stats={"format_version": 1, "episodes": [0, 0], "actions": [["a", -1, 0]]}),
            "stats: malformed statistics: negative or non-finite count",
        ),
    ],
)
def test_malformed_dicts_are_artifact_errors(data: Any, message: str) -> None:
    with pytest.raises(ArtifactError) as info:
        LearningSnapshot.from_dict(data, where="x.json")
    assert str(info.value).startswith("x.json: ") and message in str(info.value)
    assert "\n" not in str(info.value)


# -- in the store (SQLite and PostgreSQL) -----------------------------------------------------
@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(snap=snapshot_st())
def test_save_load_round_trip(store: SqlStore, snap: LearningSnapshot) -> None:
    snaps = SnapshotStore(store)
    saved = snaps.save(snap)
    loaded = snaps.load(snap.scope, snap.key, saved.version)
    assert loaded.version == saved.version and loaded.snapshot.to_dict() == snap.to_dict()
    again = snaps.load(snap.scope, snap.key, snaps.save(loaded.snapshot).version)
    assert again.snapshot.to_dict() == snap.to_dict()


def test_queries_latest_n_and_time_range(store: SqlStore) -> None:
    snaps = SnapshotStore(store)
    assert snaps.latest("scenario", "troubleshooting") is None
    saved = [snaps.save(_snap(episodes=i, created=1000.0 + i)) for i in range(5)]
    snaps.save(_snap("maze"))
    snaps.save(_snap("1", scope=SnapshotScope.SESSION, scenario="troubleshooting"))
    latest = snaps.latest("scenario", "troubleshooting")
    assert latest is not None and (latest.version, latest.snapshot.episodes) == (5, 4)
    assert [s.version for s in snaps.latest_n("scenario", "troubleshooting", 3)] == [5, 4, 3]
    stored = [s.stored for s in saved]
    window = snaps.between("scenario", "troubleshooting", since=stored[1], until=stored[3])
    assert [s.version for s in window] == [4, 3, 2]
    assert len(snaps.between("scenario", "troubleshooting")) == 5
    assert snaps.load("scenario", "troubleshooting", 2).snapshot.episodes == 1
    assert {r.name for r in snaps.records("scenario")} == {
        "scenario:troubleshooting",
        "scenario:maze",
    }
    assert snaps.records(latest=1)[0].name == "session:1"
    assert [s.snapshot.key for s in snaps.sessions_of("troubleshooting")] == ["1"]
    assert snaps.sessions_of("maze") == []
    with pytest.raises(StoreError, match="no artifact snapshot/scenario:troubleshooting v"):
        snaps.load("scenario", "troubleshooting", 99)
    with pytest.raises(ConfigError, match="n: expected >= 1"):
        snaps.latest_n("scenario", "troubleshooting", 0)


MALFORMED_ARTIFACTS: list[tuple[bytes | None, int, str]] = [
    (b"not zlib at all", 1, "payload is not zlib-compressed UTF-8 JSON"),
    (zlib.compress(b"{not json"), 1, "not valid JSON (line 1, column 2"),
    (None, 1, "has no payload"),
    (zlib.compress(b"{}"), 2, "format_version 2 is not supported"),
    (
        zlib.compress(json.dumps(_bad(episodes=-1, key="bad0")).encode()),
        1,
        "negative count in field 'episodes'",
    ),
    (
        zlib.compress(json.dumps(_bad(key="other")).encode()),
        1,
        "payload is for 'scenario:other', not 'scenario:bad5'",
    ),
]


def test_malformed_artifacts_name_the_artifact(store: SqlStore) -> None:
    for i, (payload, fv, message) in enumerate(MALFORMED_ARTIFACTS):
        name = f"scenario:bad{i}"
        store.put_artifact(SNAPSHOT_KIND, name, payload, format_version=fv)
        with pytest.raises(ArtifactError) as info:
            SnapshotStore(store).latest("scenario", f"bad{i}")
        assert str(info.value).startswith(f"snapshot {name} v1: "), info.value
        assert message in str(info.value)


def test_export_import_files(store: SqlStore, tmp_path: Path) -> None:
    stats, episodes = _learned(3)
    snaps = SnapshotStore(store)
    snap = LearningSnapshot.from_episodes(
        episodes, scope="global", key="all", stats=stats, offline={"ucb1_c": 1.2}
    )
    snaps.save(snap)
    out = tmp_path / "snap.json"
    assert snaps.export(out, "global", "all").version == 1
    assert json.loads(out.read_text())["format_version"] == 1
    imported = snaps.import_(out)
    assert imported.version == 2 and imported.meta["imported_from"] == str(out)
    assert snaps.load("global", "all", 2).snapshot.to_dict() == snap.to_dict()


BAD_FILES = [
    ("{oops", "not valid JSON (line 1, column 2"),
    ("[]", "expected a JSON object, got list"),
    (json.dumps(_bad(format_version=7)), "format_version 7 is not supported"),
    (json.dumps(_bad(stats=None)), "missing field 'stats'"),
    (json.dumps(_bad(actions=-5)), "negative count in field 'actions': -5"),
]


def test_bad_files_get_one_clear_line(sqlite_url: str, tmp_path: Path) -> None:
    with SqlStore(sqlite_url) as st:
        for i, (text, message) in enumerate(BAD_FILES):
            path = tmp_path / f"in{i}.json"
            path.write_text(text)
            with pytest.raises(ArtifactError) as info:
                SnapshotStore(st).import_(path)
            assert str(info.value).startswith(f"{path}: ") and message in str(info.value)
        with pytest.raises(ArtifactError, match=r"nope\.json: no such file"):
            SnapshotStore(st).import_(tmp_path / "nope.json")
        assert st.artifacts(SNAPSHOT_KIND) == []  # nothing stored
