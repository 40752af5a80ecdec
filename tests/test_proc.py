"""A child in a session of its own keeps its parent's autogroup nice (Linux autogroup)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/autogroup").exists(),
                                reason="no Linux autogroup on this machine")

SCRIPT = textwrap.dedent("""
    import subprocess, sys
    from pathlib import Path
    from swarmlearn._proc import inherit_priority
    Path("/proc/self/autogroup").write_text("3\\n")
    child = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        before = Path(f"/proc/{child.pid}/autogroup").read_text().split()[-1]
        if sys.argv[1] == "inherit":
            inherit_priority(child.pid)
        print(before, Path(f"/proc/{child.pid}/autogroup").read_text().split()[-1])
    finally:
        child.kill()
        child.wait()
""")


@pytest.mark.parametrize(("mode", "expected"), [("inherit", "0 3"), ("plain", "0 0")])
def test_a_new_session_child_gets_the_parents_autogroup_nice(mode: str, expected: str) -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True,
                          text=True, timeout=60, start_new_session=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected
