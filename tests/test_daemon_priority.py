"""The daemon's background priority stays the daemon's: a daemon run inside a terminal's
session, or as a library call, never lowers the session (and the swarm in it) with it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from swarmlearn._proc import _autogroup_nice

AUTOGROUP = Path("/proc/self/autogroup")
# CI's sandbox has the file but reads it empty: only a group that says its nice counts
needs_autogroup = pytest.mark.skipif(
    _autogroup_nice(AUTOGROUP) is None,
    reason="/proc/self/autogroup is missing or says no nice (not Linux, no autogroup, a sandbox)")

CHILD = ("import os; from pathlib import Path; from swarmlearn.daemon import lower_priority; "
         "from swarmlearn._proc import _autogroup_nice; lower_priority(7); "
         "print(os.nice(0), _autogroup_nice(Path('/proc/self/autogroup')))")


def _nice_of_group() -> int:
    nice = _autogroup_nice(AUTOGROUP)
    assert nice is not None, f"/proc/self/autogroup reads {AUTOGROUP.read_text()!r}"
    return nice


@needs_autogroup
def test_a_daemon_in_the_callers_session_leaves_the_session_group_alone() -> None:
    before = _nice_of_group()
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                         check=True).stdout.split()
    assert int(out[0]) == min(19, os.nice(0) + 7)  # the process itself is niced
    assert _nice_of_group() == before  # this session's group is not
    assert int(out[1]) == before


@needs_autogroup
def test_a_daemon_leading_its_own_session_nices_its_group() -> None:
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                         check=True, start_new_session=True).stdout.split()
    assert int(out[1]) == 7


def test_running_the_daemon_as_a_library_keeps_the_callers_priority(tmp_path: Path) -> None:
    from swarmlearn._daemon_config import daemon_config_from_mapping
    from swarmlearn.daemon import LearningDaemon

    cfg = daemon_config_from_mapping({"daemon": {
        "scenario": "troubleshooting", "mode": "offline-only", "run_dir": str(tmp_path / "run"),
        "poll_s": 0.1, "nice": 19}})
    group = AUTOGROUP.read_text() if AUTOGROUP.exists() else None
    nice = os.nice(0)
    daemon = LearningDaemon(cfg, f"sqlite:///{tmp_path / 'store.db'}")
    try:
        daemon.run(passes=1)
    finally:
        daemon.close()
    assert os.nice(0) == nice
    assert (AUTOGROUP.read_text() if AUTOGROUP.exists() else None) == group
