"""Watching a champion after its promotion: a sequential test on the live success rate.

The champion was gated with a success rate ``p0`` on held-out tasks. After the
promotion every live episode (success or not) is fed, in order, to Wald's
sequential probability ratio test of ``H0: p = p0`` against ``H1: p = p0 -
drop``::

    llr += log(p1 / p0)             for a success
    llr += log((1 - p1) / (1 - p0)) for a failure

* ``llr >= log((1 - beta) / alpha)`` — a significant drop: **roll back**;
* ``llr <= log(beta / (1 - alpha))`` — the champion holds: the test restarts
  from 0 (so a later drop is still caught);
* otherwise keep watching.

``alpha`` bounds the chance that one test run rolls back a champion that is
as good as its gate said; ``beta`` the chance it misses a drop of ``drop``.
``p0`` is clamped to [0.02, 0.98] (a gate at 100% does not make one failure
fatal). :func:`watch` is pure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from swarmlearn._config import check_range

__all__ = ["WatchConfig", "WatchVerdict", "watch"]


@dataclass(frozen=True, kw_only=True, slots=True)
class WatchConfig:
    alpha: float = 0.01
    beta: float = 0.1
    drop: float = 0.2  # the fall of the success rate (absolute) the test looks for
    min_episodes: int = 10  # never roll back on fewer live episodes

    def __post_init__(self) -> None:
        check_range("alpha", self.alpha, lo=1e-6, hi=0.5)
        check_range("beta", self.beta, lo=1e-6, hi=0.5)
        check_range("drop", self.drop, lo=0.01, hi=0.9)
        check_range("min_episodes", self.min_episodes, lo=1)


@dataclass(frozen=True, slots=True)
class WatchVerdict:
    drop: bool  # roll back
    episodes: int  # live episodes seen
    successes: int
    llr: float  # the current test statistic (after any restarts)
    restarts: int  # times the champion was confirmed and the test restarted
    p0: float
    p1: float
    reason: str

    @property
    def live_rate(self) -> float:
        return self.successes / self.episodes if self.episodes else math.nan


def watch(outcomes: Iterable[bool], gated_rate: float,
          config: WatchConfig | None = None) -> WatchVerdict:
    """Run the sequential test over live ``outcomes`` (True = solved), oldest first."""
    cfg = config or WatchConfig()
    p0 = min(0.98, max(0.02, gated_rate))
    p1 = max(0.01, p0 - cfg.drop)
    up, down = math.log((1 - cfg.beta) / cfg.alpha), math.log(cfg.beta / (1 - cfg.alpha))
    win, lose = math.log(p1 / p0), math.log((1 - p1) / (1 - p0))
    llr, n, ok, restarts = 0.0, 0, 0, 0
    for solved in outcomes:
        n += 1
        ok += bool(solved)
        llr += win if solved else lose
        if llr >= up and n >= cfg.min_episodes:
            return WatchVerdict(True, n, ok, llr, restarts, p0, p1,
                                f"live success {ok}/{n} ({ok / n:.0%}) fell below the gated "
                                f"{p0:.0%} (sequential test: drop to {p1:.0%} accepted, "
                                f"alpha={cfg.alpha})")
        if llr <= down:
            llr, restarts = 0.0, restarts + 1
    rate = f"{ok}/{n}" if n else "no live episodes yet"
    return WatchVerdict(False, n, ok, llr, restarts, p0, p1,
                        f"holding: live success {rate} against the gated {p0:.0%}")
