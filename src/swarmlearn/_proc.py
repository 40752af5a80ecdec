"""Child processes in a session of their own keep the priority of the one that started them.

``start_new_session=True`` keeps a terminal's Ctrl-C for the parent, but where the kernel
groups CPU time by session (Linux autogroup), the child's new session starts with a group
of its own at nice 0: a server or trainer started by a niced daemon would get a whole share
of the CPU, and one started by a session that was raised would lose it. Measured here: a
llama.cpp server child of a session at autogroup nice -8 ran at 35 % of a core beside
other sessions' work, and at 100 % once its group had the parent's nice.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["inherit_priority"]


def _autogroup_nice(path: Path) -> int | None:
    try:
        text = path.read_text()  # "/autogroup-85 nice 0"
    except OSError:
        return None
    parts = text.split()
    try:
        return int(parts[parts.index("nice") + 1])
    except (ValueError, IndexError):
        return None


def inherit_priority(pid: int) -> None:
    """Give child ``pid`` (a session leader) this process's autogroup nice; best effort."""
    nice = _autogroup_nice(Path("/proc/self/autogroup"))
    if nice is None or nice == 0:
        return
    try:
        Path(f"/proc/{pid}/autogroup").write_text(f"{nice}\n")
    except OSError:
        pass  # gone already, or not allowed: the child runs at the default
