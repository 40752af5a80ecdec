"""ops.progress additions: ``advance``, a new description, live figures (``stages=False``),
a resumed count (``add(completed=)``) and the last figures printed when the context ends."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from swarmlearn.ops import progress as progress_module
from swarmlearn.ops.progress import CliProgress


class FakeClock:
    """``time`` for ops.progress: each reading is ``step`` seconds after the one before."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 1000.0, step

    def monotonic(self) -> float:
        self.now += self.step
        return self.now


def _piped() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=100_000), out


def test_advance_counts_on_and_a_new_description_is_a_line_at_once() -> None:
    console, out = _piped()
    with CliProgress(console, interval=3600) as bar:
        task = bar.add("learning x", total=4, info="success –")
        bar.update(task, advance=1, info="success 100%", description="learning run 1/1 on x")
        bar.update(task, advance=1, description="learning run 1/1 on x")  # same text: no line
        bar.update(task, advance=2, description="learning run 1/1 off x", done=True)
    heads = [line.split(" · ")[:2] for line in out.getvalue().splitlines()]
    assert heads == [["learning x: 0/4 (0%)", "success –"],
                     ["learning run 1/1 on x: 1/4 (25%)", "success 100%"],
                     ["learning run 1/1 off x: 4/4 (100%)", "success 100%"]]


def test_live_figures_wait_for_the_interval_and_the_end_prints_the_last() -> None:
    console, out = _piped()
    with CliProgress(console, interval=3600, stages=False) as bar:
        task = bar.add("training", total=10)
        for step in range(1, 8):
            bar.update(task, completed=step, info=f"loss {1 / step:.3f}")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines  # the start, then the figures at the end of the context
    assert lines[0].startswith("training: 0/10 (0%) · ")
    assert lines[1].startswith("training: 7/10 (70%) · loss 0.143 · ")
    assert lines[1].endswith(" left")


def test_no_time_left_once_all_is_done_even_if_not_ended() -> None:
    console, out = _piped()
    with CliProgress(console, interval=3600, stages=False) as bar:
        task = bar.add("eval x", total=3)
        bar.update(task, completed=3)
    last = out.getvalue().splitlines()[-1]
    assert last.startswith("eval x: 3/3 (100%) · ") and " left" not in last, last


def test_nothing_more_at_the_end_when_the_last_figures_are_out() -> None:
    console, out = _piped()
    with CliProgress(console, interval=0, stages=False) as bar:
        task = bar.add("x", total=2)
        bar.update(task, completed=1, info="a")
        bar.update(task, completed=2, info="b")
    assert [line.split(" · ")[0] for line in out.getvalue().splitlines()] == [
        "x: 0/2 (0%)", "x: 1/2 (50%)", "x: 2/2 (100%)"]


def test_a_resumed_count_rates_only_the_work_done_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_module, "time", FakeClock(5.0))
    console, out = _piped()
    with CliProgress(console, unit="steps", interval=0, stages=False) as bar:
        task = bar.add("CartPole-v1", total=2000, completed=1000)
        bar.update(task, completed=1100)
    last = out.getvalue().splitlines()[-1]
    # each reading 5 s on: started at 1005 s, printed at 1020 s; 100 steps in 15 s
    # (not 1100), 900 left → 135 s
    assert last == ("CartPole-v1: 1100/2000 steps (55%) · 6.67/s · 0:00:15 elapsed · "
                    "0:02:15 left"), last


def test_terminal_bar_follows_advance_and_description() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    with CliProgress(console, stages=False) as bar:
        task = bar.add("eval x", total=3, info="success –")
        bar.update(task, advance=3, description="eval y", info="success 67%")
    text = out.getvalue()
    assert "\x1b[" in text and "3/3" in text and "eval y" in text and "success 67%" in text
