"""Progress of a long command on stderr, readable on a terminal and in a file.

On a terminal it is a rich progress bar (done/total, rate, elapsed, time left).
Piped to a file, where a live bar would be one line rewritten with control
codes, it is plain lines: one when a task starts, changes stage or ends, and at
most one every ``interval`` seconds in between::

    learn analyze troubleshooting: 12/24 trials (50%) · 1.31/s · 0:00:09 elapsed · 0:00:09 left
    daemon snapshot troubleshooting: 2/4 · gating v3 · 0:00:05 elapsed

Only the CLI uses it (the library never prints).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

__all__ = ["CliProgress", "DaemonProgress"]


class _Rate(ProgressColumn):
    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("–/s" if speed is None else f"{speed:.2f} {self.unit}/s".replace(" /", "/"))


@dataclass(slots=True)
class _Line:
    description: str
    total: int | None
    start: float
    completed: int = 0
    info: str = ""
    printed: float = 0.0
    finished: bool = False
    first: int = 0  # completed when the task started (a resumed run): the rate counts from here
    shown: bool = True  # the last printed line has the current figures


def _clock(seconds: float) -> str:
    return str(timedelta(seconds=int(seconds)))


class CliProgress:
    """Tasks with a description, an optional total and a free ``info`` text.

    ``rate`` adds the rate and the time left (when the total is known) — for
    counted work (trials, tasks), not for stages. A new ``info`` or description
    is a new stage and prints a line at once; with ``stages=False`` the info is
    live figures (a loss, a success rate) that change on every update and are
    printed only at the ``interval``. Piped, leaving the context prints the last
    figures of each task not ended with ``done``.
    """

    def __init__(self, console: Console, *, unit: str = "", rate: bool = True,
                 interval: float = 10.0, stages: bool = True) -> None:
        self.console, self.unit, self.rate, self.interval = console, unit, rate, interval
        self.stages = stages
        self._lines: dict[int, _Line] = {}
        self._bar: Progress | None = None
        if console.is_terminal:
            columns: list[ProgressColumn | str] = [
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn()]
            if unit:
                columns.append(TextColumn(unit))
            if rate:
                columns += [_Rate(unit), TimeElapsedColumn(), TimeRemainingColumn()]
            else:
                columns.append(TimeElapsedColumn())
            columns.append(TextColumn("{task.fields[info]}"))
            self._bar = Progress(*columns, console=console, transient=False)

    def __enter__(self) -> CliProgress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()
            return
        for line in self._lines.values():
            if not line.finished and not line.shown:
                self._print(line)

    def add(self, description: str, total: int | None = None, info: str = "",
            completed: int = 0) -> int:
        key = len(self._lines)
        self._lines[key] = _Line(description, total, time.monotonic(), completed=completed,
                                 info=info, first=completed)
        if self._bar is not None:
            self._bar.add_task(escape(description), total=total, completed=completed,
                               info=escape(info))
        else:
            self._print(self._lines[key])
        return key

    def update(self, key: int, *, completed: int | None = None, total: int | None = None,
               info: str | None = None, done: bool = False, advance: int = 0,
               description: str | None = None) -> None:
        """New figures for task ``key`` (``advance``: that many more done); ``done`` ends it
        (its last line)."""
        line = self._lines[key]
        changed = (done or (description is not None and description != line.description)
                   or (self.stages and info is not None and info != line.info))
        if completed is not None:
            line.completed = completed
        line.completed += advance
        if total is not None:
            line.total = total
        if info is not None:
            line.info = info
        if description is not None:
            line.description = description
        line.finished = line.finished or done
        line.shown = False
        if self._bar is not None:
            self._bar.update(TaskID(key), completed=line.completed, total=line.total,
                             info=escape(line.info), description=escape(line.description))
            if done:
                self._bar.stop_task(TaskID(key))
        elif changed or time.monotonic() - line.printed >= self.interval:
            self._print(line)

    def _print(self, line: _Line) -> None:
        now = time.monotonic()
        line.printed, line.shown = now, True
        elapsed = now - line.start
        parts = []
        if line.total is not None:
            head = f"{line.completed}/{line.total}"
            if self.unit:
                head += f" {self.unit}"
            if self.rate and line.total:
                head += f" ({100 * line.completed / line.total:.0f}%)"
            parts.append(head)
        if line.info:
            parts.append(line.info)
        done = line.completed - line.first
        if self.rate and done > 0 and elapsed > 0:
            parts.append(f"{done / elapsed:.2f}/s")
        parts.append(f"{_clock(elapsed)} elapsed")
        if (self.rate and not line.finished and line.total and done > 0 and elapsed > 0
                and line.completed < line.total):
            parts.append(f"{_clock((line.total - line.completed) * elapsed / done)} left")
        self.console.print(f"{line.description}: " + " · ".join(parts), markup=False,
                           highlight=False, soft_wrap=True)


#: a daemon level run's stages, as the lifecycle records them: step → (stages done, what now)
_STAGES = {"run-start": (0, "training"), "produce": (1, "v{v} trained"),
           "evaluate": (2, "gating v{v}"), "promote": (3, "v{v} promoted"),
           "reject": (3, "v{v} rejected"), "fail": (3, "v{v} failed")}
_RUN_STAGES = 4


class DaemonProgress:
    """A lifecycle observer (``lifecycle.add_observer``) that shows each daemon level run
    as a task of four stages: trained, gate started, decided, done (or failed)."""

    def __init__(self, progress: CliProgress) -> None:
        self.progress = progress
        self._tasks: dict[tuple[str, str], int] = {}

    def __call__(self, life: object, record: Any) -> None:
        key = (record.kind, record.scope)
        version = record.data.get("version")
        if record.step == "run-start":
            self._tasks[key] = self.progress.add(f"daemon {record.kind} {record.scope}",
                                                 total=_RUN_STAGES,
                                                 info=f"training ({record.reason})")
            return
        task = self._tasks.get(key)
        if task is None:
            return
        if record.step in _STAGES:
            done, what = _STAGES[record.step]
            text = what.format(v=version)
            if record.step in ("promote", "reject", "fail") and record.reason:
                text += f": {record.reason}"
            self.progress.update(task, completed=done, info=text)
        elif record.step in ("run-done", "run-failed"):
            seconds = record.data.get("seconds")
            took = f" in {seconds:.1f} s" if isinstance(seconds, int | float) else ""
            text = (f"done{took}" if record.step == "run-done"
                    else f"failed{took}: {record.reason}")
            self.progress.update(task, completed=_RUN_STAGES, info=text, done=True)
            del self._tasks[key]
