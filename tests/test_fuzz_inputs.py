"""Fuzzing the inputs people type and the files they hand over, through the CLI.

Scenario files, store URLs, snapshot files to import and ``events export``
paths are generated broken in many ways (hypothesis, starting from real,
valid inputs). Whatever the input, the command either works or answers with
one line and a non-zero exit code — never a traceback — and nothing already
in the store changes.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import logging
import shutil
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from swarmlearn.cli import main
from swarmlearn.core.scenario import load_scenario
from swarmlearn.errors import ScenarioError, StoreError
from swarmlearn.store import resolve_url

EXAMPLES = [  # the scenario files (examples/ also holds the daemon's config)
    p for p in sorted((Path(__file__).parents[1] / "examples").glob("*.toml"))
    if "[environment]" in p.read_text(encoding="utf-8")
]
FUZZ = settings(max_examples=50, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@contextlib.contextmanager
def _quiet_logging() -> Iterator[None]:
    root, ours = logging.getLogger(), logging.getLogger("swarmlearn")
    saved = (root.handlers[:], root.level, ours.level)
    try:
        yield
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        ours.setLevel(saved[2])


def cli(*args: str) -> tuple[int, str, str]:
    """Run the CLI in this process; (exit code, stdout, stderr). Any other exception escapes."""
    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["swarmlearn", *args]
    try:
        with _quiet_logging(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = argv
    return code, out.getvalue(), err.getvalue()


def _answered(code: int, err: str, *, ok: tuple[int, ...] = (0,)) -> bool:
    """True when the command worked; else it must have said one line and exited non-zero."""
    assert "Traceback" not in err, err
    if code in ok:
        return True
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0 and len(lines) == 1 and lines[0].startswith("error: "), (code, err)
    return False


def _dump(db: Path) -> list[str]:
    """The store's content, row by row (SQLite, read-only)."""
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A store with sessions, events, profiles and snapshots, and one snapshot exported."""
    root = tmp_path_factory.mktemp("fuzz")
    db, snap = root / "store.db", root / "snapshot.json"
    for args in (["run", "troubleshooting", "-n", "2"],
                 ["profile", "bootstrap", "troubleshooting", "-n", "2", "--episodes", "2"],
                 ["snapshot", "export", "session", "2", str(snap)]):
        assert cli(*args, "--store", str(db))[0] == 0
    return {"db": db, "snapshot": snap}


@pytest.fixture
def store(pristine: dict[str, Path], tmp_path: Path) -> Path:
    db = tmp_path / "work.db"
    _copy_db(pristine["db"], db)
    return db


def _copy_db(src: Path, dst: Path) -> None:
    """Copy through SQLite's backup API: what a -wal file holds is copied too."""
    a = sqlite3.connect(f"{src.resolve().as_uri()}?mode=ro", uri=True)
    b = sqlite3.connect(dst)
    try:
        a.backup(b)
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("args", [
    ["run", "troubleshooting", "-n", "1"],
    ["eval", "troubleshooting", "-n", "1"],
    ["eval", "troubleshooting", "--learning", "-n", "1", "--sessions", "2",
     "--episodes", "1"],
    ["learn", "analyze", "troubleshooting", "--trials", "1"],
], ids=["run", "eval", "eval-learning", "learn-analyze"])
def test_commands_release_the_store_when_they_end(
    pristine: dict[str, Path], tmp_path: Path, args: list[str],
) -> None:
    """A command run in-process (the API's way) closes its store as it returns: no
    connection is left for the garbage collector, so the WAL is checkpointed and gone."""
    db = tmp_path / "work.db"
    _copy_db(pristine["db"], db)
    gc.disable()
    try:
        code, _out, err = cli(*args, "--store", str(db))
        assert code == 0, err
        assert not db.with_name("work.db-wal").exists()
    finally:
        gc.enable()


# -- scenario files ------------------------------------------------------------------------------
VALUES = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(
        lambda x: {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(str(x), repr(x))),
    st.text(max_size=12).map(json.dumps),
    st.sampled_from(["true", "false", "[]", "{}", '["x", 1]', "{ a = 1 }", '""',
                     '"bogus"', '"llm"', '"rl"', '"ucb1"', "-1", "0", "1e400", "[[]]"]),
)


@st.composite
def broken_scenarios(draw: st.DrawFn) -> str:
    """A real scenario file with a few of its lines deleted, duplicated, re-valued or spliced."""
    lines = draw(st.sampled_from(EXAMPLES)).read_text(encoding="utf-8").splitlines()
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "value", "key", "splice", "cut"]))
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "value" and "=" in lines[i]:
            lines[i] = f"{lines[i].split('=', 1)[0]}= {draw(VALUES)}"
        elif op == "key":
            key = draw(st.sampled_from(["policy", "policy_params", "kind", "count", "model",
                                        "url", "policy_path", "max_ticks", "interval", "x.y",
                                        "workers.kind", "environment.kind", "schedule"]))
            lines.insert(i, f"{key} = {draw(VALUES)}")
        elif op == "splice":
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))] + draw(st.text(max_size=6))
        else:
            lines = lines[: i + 1]
        if not lines:
            lines = [""]
    return "\n".join(lines) + "\n"


@FUZZ
@given(text=broken_scenarios())
def test_broken_scenario_files_get_one_line(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzzed.toml"
    path.write_text(text, encoding="utf-8")
    try:
        load_scenario(path)
        valid = True
    except ScenarioError as exc:  # the loader itself: only its own error, on one line
        assert "\n" not in str(exc) and str(exc).startswith(f"{path}")
        valid = False
    code, out, err = cli("scenarios", "validate", str(path))
    assert _answered(code, err) == valid and (("ok " in out) == valid)
    if not valid:  # and run says exactly what validate said, before doing anything
        code, _, run_err = cli("run", str(path), "--no-store")
        assert code == 3 and run_err == err


# -- store URLs ----------------------------------------------------------------------------------
URL_PARTS = st.text(alphabet=st.sampled_from(list("sqlitepostgres:/@#?%&=+.-_ é:1[]\x00\\~")),
                    max_size=30)


@FUZZ
@given(raw=st.one_of(st.text(max_size=40), URL_PARTS, st.builds(
    "{}://{}".format, st.sampled_from(["sqlite", "sqlite+pysqlite", "postgresql", "postgres",
                                       "postgresql+psycopg2", "mysql", "", "foo"]), URL_PARTS)))
def test_any_store_url_parses_or_gets_one_clear_error(raw: str) -> None:
    try:
        url = resolve_url(raw)
    except StoreError as exc:
        assert "\n" not in str(exc) and "bad store URL" in str(exc)
        return
    assert url.get_backend_name() in ("sqlite", "postgresql")


@FUZZ
@given(name=st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=40),
       scheme=st.sampled_from(["", "sqlite:///", "sqlite:////", "sqlite+pysqlite:///"]),
       command=st.sampled_from([["sessions"], ["events", "tail"], ["snapshot", "list"],
                                ["profile", "list"], ["run", "troubleshooting", "-n", "1"]]))
def test_store_paths_never_crash_and_leave_the_store_alone(
    store: Path, tmp_path: Path, name: str, scheme: str, command: list[str],
) -> None:
    assume(not name.startswith(("/", "~")) and "://" not in name)
    before = _dump(store)
    where = tmp_path / "stores"  # fresh for each example
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir()
    code, _, err = cli(*command, "--store", f"{scheme}{where}/{name}")
    _answered(code, err)
    assert _dump(store) == before
    if command[0] != "run":  # a read-only command creates nothing, wherever it points
        assert not any(where.iterdir())


# -- snapshot import -----------------------------------------------------------------------------
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
              st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6,
)


def _paths(data: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield at
    items = data.items() if isinstance(data, dict) else enumerate(data) \
        if isinstance(data, list) else ()
    for key, value in items:
        yield from _paths(value, (*at, key))


@st.composite
def broken_snapshots(draw: st.DrawFn, original: str) -> bytes:
    data = json.loads(original)
    if draw(st.booleans()):  # the file itself is damaged
        raw = original.encode()
        cut = draw(st.integers(0, len(raw)))
        return raw[:cut] + draw(st.binary(max_size=8)) + raw[cut + draw(st.integers(0, 40)):]
    for _ in range(draw(st.integers(1, 3))):  # or its fields are wrong
        paths = [p for p in _paths(data) if p]
        path = draw(st.sampled_from(paths))
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(JSON)
        if not isinstance(data, dict):
            break
    return json.dumps(data).encode()


@FUZZ
@given(data=st.data())
def test_broken_snapshot_files_are_refused_and_store_nothing(
    pristine: dict[str, Path], store: Path, tmp_path: Path, data: st.DataObject,
) -> None:
    original = pristine["snapshot"].read_text(encoding="utf-8")
    path = tmp_path / "fuzzed.json"
    path.write_bytes(data.draw(broken_snapshots(original)))
    before = _dump(store)
    code, out, err = cli("snapshot", "import", str(path), "--store", str(store))
    if _answered(code, err):
        assert "imported" in out  # a change that still makes a valid snapshot: a new version
    else:
        assert _dump(store) == before


def test_the_original_snapshot_file_imports(pristine: dict[str, Path], store: Path) -> None:
    code, out, err = cli("snapshot", "import", str(pristine["snapshot"]), "--store", str(store))
    assert code == 0 and "as session:2 v2" in out, err


# -- events export -------------------------------------------------------------------------------
@FUZZ
@given(parts=st.lists(st.one_of(
    st.sampled_from(["missing", "file", "dir", ".", "..", "", "-", "x" * 300, "a\x00b", "é"]),
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="/"), max_size=12),
), min_size=1, max_size=4))
def test_events_export_paths_never_crash_and_leave_the_store_alone(
    store: Path, tmp_path: Path, parts: list[str],
) -> None:
    base = tmp_path / "out"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir()
    (base / "file").write_text("already here\n")
    (base / "dir").mkdir()
    target = "/".join([str(base), *parts])
    before = _dump(store)
    code, out, err = cli("events", "export", target, "--store", str(store), "--limit", "5")
    if _answered(code, err):
        assert "5 events →" in out
        assert len(Path(target).read_text(encoding="utf-8").splitlines()) == 5
    else:
        assert (base / "file").read_text() == "already here\n"
    assert _dump(store) == before
    assert not [p for p in base.rglob("*.tmp")]  # no half-written file left behind


def test_events_export_to_stdout(store: Path) -> None:
    code, out, err = cli("events", "export", "-", "--store", str(store), "--limit", "3")
    assert code == 0 and [json.loads(line)["id"] for line in out.splitlines()], err
