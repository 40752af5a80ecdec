"""The edit budget per step: the textual learning rate (constant, linear or cosine decay)."""

from __future__ import annotations

import enum
import math

from swarmlearn.errors import ConfigError

__all__ = ["Schedule", "edit_budget"]


class Schedule(enum.StrEnum):
    CONSTANT = "constant"
    LINEAR = "linear"
    COSINE = "cosine"


def edit_budget(schedule: Schedule, step: int, total_steps: int, *, high: int, low: int) -> int:
    """Edits allowed at ``step`` (1-based) of ``total_steps``: from ``high`` down to ``low``.

    A pure function of the step, so a resumed run gets the very budget the
    uninterrupted run had (no scheduler state to restore).
    """
    if not 1 <= low <= high:
        raise ConfigError(f"edit budget: need 1 <= low <= high, got low={low}, high={high}",
                          field="edit_budget")
    if step < 1:
        raise ConfigError(f"step must be >= 1, got {step}", field="step")
    if schedule is Schedule.CONSTANT or total_steps <= 1:
        return high
    t = (min(step, total_steps) - 1) / (total_steps - 1)
    if schedule is Schedule.LINEAR:
        value = high + (low - high) * t
    else:
        value = low + 0.5 * (high - low) * (1.0 + math.cos(math.pi * t))
    return max(low, min(high, round(value)))
