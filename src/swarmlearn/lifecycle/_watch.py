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
fatal). :func:`watch` is pure; :class:`LiveWatch` is the same test fed piece by piece.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from swarmlearn._config import check_range

__all__ = ["LiveWatch", "WatchConfig", "WatchVerdict", "watch"]


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


class LiveWatch:
    """The sequential test fed as live episodes come in (a follower adds each look's
    new ones); :func:`watch` runs it over a whole sequence. After a drop it stays
    dropped: more episodes change nothing."""

    def __init__(self, gated_rate: float, config: WatchConfig | None = None) -> None:
        self.config = cfg = config or WatchConfig()
        self.p0 = p0 = min(0.98, max(0.02, gated_rate))
        self.p1 = p1 = max(0.01, p0 - cfg.drop)
        self._up = math.log((1 - cfg.beta) / cfg.alpha)
        self._down = math.log(cfg.beta / (1 - cfg.alpha))
        self._win, self._lose = math.log(p1 / p0), math.log((1 - p1) / (1 - p0))
        self.llr, self.episodes, self.successes, self.restarts = 0.0, 0, 0, 0
        self._dropped: WatchVerdict | None = None

    def add(self, outcomes: Iterable[bool]) -> WatchVerdict:
        """Feed ``outcomes`` (True = solved), oldest first; the verdict after them."""
        if self._dropped is not None:
            return self._dropped
        cfg, up, down = self.config, self._up, self._down
        for solved in outcomes:
            self.episodes += 1
            self.successes += bool(solved)
            self.llr += self._win if solved else self._lose
            if self.llr >= up and self.episodes >= cfg.min_episodes:
                n, ok = self.episodes, self.successes
                self._dropped = self._verdict(
                    True, f"live success {ok}/{n} ({ok / n:.0%}) fell below the gated "
                          f"{self.p0:.0%} (sequential test: drop to {self.p1:.0%} accepted, "
                          f"alpha={cfg.alpha})")
                return self._dropped
            if self.llr <= down:
                self.llr, self.restarts = 0.0, self.restarts + 1
        rate = f"{self.successes}/{self.episodes}" if self.episodes else "no live episodes yet"
        return self._verdict(False, f"holding: live success {rate} against the gated "
                                    f"{self.p0:.0%}")

    def _verdict(self, drop: bool, reason: str) -> WatchVerdict:
        return WatchVerdict(drop, self.episodes, self.successes, self.llr, self.restarts,
                            self.p0, self.p1, reason)


def watch(outcomes: Iterable[bool], gated_rate: float,
          config: WatchConfig | None = None) -> WatchVerdict:
    """Run the sequential test over live ``outcomes`` (True = solved), oldest first."""
    return LiveWatch(gated_rate, config).add(outcomes)
