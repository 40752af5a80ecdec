"""Listing artifacts or the learning log creates no store; a lookup says there is none."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from swarmlearn.cli import app
from swarmlearn.errors import StoreError


@pytest.mark.parametrize("args", [["artifacts", "list"], ["daemon", "log"],
                                  ["daemon", "artifacts", "list"]])
def test_listings_on_a_missing_store_create_nothing(tmp_path: Path, args: list[str]) -> None:
    db = tmp_path / "none.db"
    res = CliRunner().invoke(app, [*args, "--store", f"sqlite:///{db}"])
    assert res.exit_code == 0 and "no store at" in res.output
    assert list(tmp_path.iterdir()) == []


def test_a_lookup_on_a_missing_store_is_one_line(tmp_path: Path) -> None:
    db = tmp_path / "none.db"
    res = CliRunner().invoke(app, ["artifacts", "show", "snapshot", "x", "--store",
                                   f"sqlite:///{db}"])
    assert isinstance(res.exception, StoreError) and "no store at" in str(res.exception)
    assert list(tmp_path.iterdir()) == []  # main() prints it as one line, exit code 5


@pytest.mark.parametrize("args", [["sessions"], ["events", "tail", "-n", "3"],
                                  ["artifacts", "list"], ["daemon", "log"]])
def test_reading_a_closed_store_leaves_no_file_behind(tmp_path: Path, args: list[str]) -> None:
    """A WAL store opened read-only would get -wal/-shm files it cannot remove."""
    db = tmp_path / "s.db"
    url = f"sqlite:///{db}"
    assert CliRunner().invoke(app, ["run", "troubleshooting", "-n", "2",
                                    "--store", url]).exit_code == 0
    before = (sorted(p.name for p in tmp_path.iterdir()), db.read_bytes())
    assert before[0] == ["s.db"]
    res = CliRunner().invoke(app, [*args, "--store", url])
    assert res.exit_code == 0, res.output
    assert (sorted(p.name for p in tmp_path.iterdir()), db.read_bytes()) == before


def test_a_reader_beside_a_live_writer_sees_what_it_committed(tmp_path: Path) -> None:
    from swarmlearn.store import SqlStore

    url = f"sqlite:///{tmp_path / 's.db'}"
    with SqlStore(url) as writer:
        sid = writer.open_session(scenario="s")
        assert (tmp_path / "s.db-wal").exists()  # a writer has the store open
        with SqlStore(url, read_only=True) as reader:
            assert [s.id for s in reader.sessions()] == [sid]
            second = writer.open_session(scenario="s")  # after the reader opened
            assert sorted(s.id for s in reader.sessions()) == [sid, second]
