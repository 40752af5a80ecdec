"""Lint is part of the test run: ruff on src and tests, mypy --strict on src.

The README's test command (and so ``.ci/run``) runs these, so a change that
breaks either fails CI like any failing test. Both tools come with
``scripts/install.sh dev``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


#: a cold mypy --strict over src (no cache: a clean checkout) took 196 s on 2 cores shared
#: with other work, so the limit leaves room; the test's own pytest timeout is above it
LIMIT_S = 900


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True,
        timeout=LIMIT_S,
    )


def test_ruff_check_passes() -> None:
    done = _run("ruff", "check", "src", "tests")
    if done.returncode != 0:
        pytest.fail(f"ruff check src tests:\n{done.stdout}{done.stderr}", pytrace=False)


@pytest.mark.timeout(LIMIT_S + 60)
def test_mypy_strict_passes() -> None:
    done = _run("mypy", "--strict")  # files and overrides from pyproject.toml
    if done.returncode != 0:
        pytest.fail(f"mypy --strict:\n{done.stdout}{done.stderr}", pytrace=False)
