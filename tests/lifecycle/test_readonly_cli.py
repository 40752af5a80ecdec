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
