"""Running statistics of a stream of numbers: overall and over a rolling window."""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from swarmlearn.errors import ConfigError

__all__ = ["RollingStats"]


class RollingStats:
    """count, mean, std, min, max and last of everything seen; mean and std of the last ``window``.

    The overall mean and variance use Welford's update, so they stay exact
    over millions of values.
    """

    __slots__ = ("_m2", "_window", "count", "last", "max", "mean", "min")

    def __init__(self, window: int = 100) -> None:
        if window < 1:
            raise ConfigError(f"window: expected >= 1, got {window}", field="window", value=window)
        self._window: deque[float] = deque(maxlen=window)
        self.count = 0
        self.mean = 0.0
        self._m2 = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.last = math.nan

    def add(self, value: float) -> None:
        value = float(value)
        self.count += 1
        delta = value - self.mean
        self.mean += delta / self.count
        self._m2 += delta * (value - self.mean)
        self.min = min(self.min, value)
        self.max = max(self.max, value)
        self.last = value
        self._window.append(value)

    @property
    def std(self) -> float:
        """Population standard deviation of everything seen (nan when empty)."""
        return math.sqrt(self._m2 / self.count) if self.count else math.nan

    @property
    def rolling_mean(self) -> float:
        """Mean of the last ``window`` values (nan when empty)."""
        return sum(self._window) / len(self._window) if self._window else math.nan

    @property
    def rolling_std(self) -> float:
        """Population standard deviation of the last ``window`` values (nan when empty)."""
        n = len(self._window)
        if not n:
            return math.nan
        mu = sum(self._window) / n
        return math.sqrt(sum((v - mu) ** 2 for v in self._window) / n)

    def summary(self) -> dict[str, float]:
        """All figures at once (for logs and reports)."""
        return {
            "count": float(self.count),
            "mean": self.mean if self.count else math.nan,
            "std": self.std,
            "min": self.min if self.count else math.nan,
            "max": self.max if self.count else math.nan,
            "last": self.last,
            "rolling_mean": self.rolling_mean,
            "rolling_std": self.rolling_std,
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "window": self._window.maxlen,
            "values": list(self._window),
            "count": self.count,
            "mean": self.mean,
            "m2": self._m2,
            "min": None if self.count == 0 else self.min,
            "max": None if self.count == 0 else self.max,
            "last": None if self.count == 0 else self.last,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._window = deque((float(v) for v in state["values"]), maxlen=int(state["window"]))
        self.count = int(state["count"])
        self.mean = float(state["mean"])
        self._m2 = float(state["m2"])
        self.min = math.inf if state["min"] is None else float(state["min"])
        self.max = -math.inf if state["max"] is None else float(state["max"])
        self.last = math.nan if state["last"] is None else float(state["last"])
