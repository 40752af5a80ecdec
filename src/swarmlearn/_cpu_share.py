"""The learning daemon's CPU share: its level runs use at most ``cpu_share`` of one core.

Niceness decides who waits for a CPU; it does not stop a trainer on an "idle"
vCPU from slowing the swarm where the vCPUs share one core's throughput. So the
daemon bounds what it spends: after a level run that used ``C`` CPU-seconds —
the daemon's own (every thread: the gate's evaluations run there) plus its
children's (the trainer child) — it starts no further level run until ``C /
cpu_share`` of wall time has passed since that run began. On average its level
runs then use at most ``cpu_share`` of one core. ``cpu_share = 1.0`` (the
default) turns the bound off: the daemon learns as fast as its triggers ask.

The children's CPU comes from ``getrusage(RUSAGE_CHILDREN)``: the kernel adds
a child's whole user and system time to it when the child is reaped, so a
delta taken after ``produce_in_child`` has joined its trainer is exact — from
the interpreter's start-up to its exit, a killed trainer included. Reading
``/proc/<pid>/stat`` instead would miss what the child spends after the last
read, and the read races with its exit. What ``RUSAGE_CHILDREN`` does not see:
a child not yet reaped (the trainer is killed and joined before the run ends),
and grandchildren that the trainer left unreaped.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Iterable
from dataclasses import dataclass

from swarmlearn.store import LogRecord

__all__ = ["ShareWait", "cpu_seconds", "share_wait_from_log"]


def cpu_seconds() -> float:
    """CPU-seconds (user + system) of this process, every thread, and of its reaped children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass(frozen=True, slots=True)
class ShareWait:
    """The wait a finished level run imposes on the next one."""

    level: str  # the level whose run spent the CPU
    started: float  # wall time the run began
    cpu_s: float  # CPU-seconds it used (the daemon's and its children's)
    share: float  # the daemon's cpu_share

    @property
    def wait_s(self) -> float:
        """The wall time the run buys: ``cpu_s / share`` from its start."""
        return self.cpu_s / self.share

    @property
    def until(self) -> float:
        return self.started + self.wait_s

    def left(self, now: float) -> float:
        """Seconds until the next run may start (0: now). Never more than ``wait_s``,
        so a wall clock set back does not stretch the wait."""
        return max(0.0, min(self.until - now, self.wait_s))

    def describe(self) -> str:
        at = time.strftime("%H:%M:%S", time.localtime(self.until))
        return (f"cpu share {self.share:g}: the last level run ({self.level}) used "
                f"{self.cpu_s:.1f} CPU-s, so no level run before {at} "
                f"({self.wait_s:.1f} s after it began)")


def share_wait_from_log(records: Iterable[LogRecord | None], share: float) -> ShareWait | None:
    """The binding wait among the levels' last finished runs (``run-done``/``run-failed``
    records with ``started`` and ``cpu_s``); None when the share is 1 (no bound)."""
    if share >= 1.0:
        return None
    waits = [ShareWait(str(r.data.get("level", r.scope)), float(r.data["started"]),
                       float(r.data["cpu_s"]), share)
             for r in records if r is not None and "cpu_s" in r.data and "started" in r.data]
    return max(waits, key=lambda w: w.until, default=None)
