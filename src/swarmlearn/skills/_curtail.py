"""Curtailed validation: stop running a candidate on the validation split as soon as the
gate's decision can no longer change, whatever the remaining tasks give.

The gate (:func:`swarmlearn.lifecycle.gate`) promotes only if the challenger
solved at least as many paired tasks as the champion and the one-sided sign
test on wins against losses is significant. After some of the ``n`` tasks:

* **reject is certain** when even the challenger's best case on the ``r`` tasks
  left — solve and win every one it can win — would leave it solving fewer tasks
  than the champion or with ``sign_test_p(wins + winnable, losses) > alpha``. A
  task the champion solved at the environment's lowest possible cost (``floor``:
  0 for QA, where an exact match has F1 1) cannot be won, only tied or lost, so
  it is not winnable; without a known floor every task left is;
* **promotion is certain** when even its worst case — fail every task left,
  each one the champion solved (or may solve: not run yet) a loss — still
  promotes.

Both are exact: the decision is the one the full validation would reach (the
rule is monotone in wins, losses and successes), at a fraction of the calls.
The champion's results are cached and run only where needed, so a champion
promoted early is completed lazily by the next candidates, and the last one
never spends the tail of the split.

The order: tasks the champion solved first (a harmful edit shows there as
losses, soonest, and once they are done no loss is left to fear), then those it
failed, then those it has not run.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence

from swarmlearn.lifecycle import GateConfig, TaskResult, gate, sign_test_p

__all__ = ["Verdict", "unbeatable", "validation_order", "verdict"]


class Verdict(enum.StrEnum):
    OPEN = "open"
    REJECT = "reject"  # cannot be promoted whatever is left
    PROMOTE = "promote"  # promoted whatever is left


def validation_order(champion: Mapping[int, TaskResult], tasks: Sequence[int]) -> list[int]:
    """``tasks``: the champion's solved ones, its failed ones, then those it has not run."""
    return ([t for t in tasks if t in champion and champion[t].solved]
            + [t for t in tasks if t in champion and not champion[t].solved]
            + [t for t in tasks if t not in champion])


def unbeatable(result: TaskResult, floor: float | None) -> bool:
    """Whether no challenger can win the task ``result`` is the champion's on: solved at
    the lowest cost there is (the gate's win needs a solve the champion lacks, or a
    cheaper one)."""
    return floor is not None and result.solved and result.cost <= floor


def verdict(champion: Mapping[int, TaskResult], challenger: Mapping[int, TaskResult],
            remaining: Sequence[int], config: GateConfig,
            floor: float | None = None) -> tuple[Verdict, str]:
    """Whether the gate's decision is already fixed (module docstring) and why.

    ``champion`` holds its results on every task ``challenger`` has run and on
    any of ``remaining`` it has run; ``floor`` is the lowest cost a solved task
    can have (``None``: not known).
    """
    r = len(remaining)
    if len(challenger) + r < config.min_tasks:
        return Verdict.REJECT, f"{len(challenger) + r} tasks in all (< {config.min_tasks})"
    d = gate([champion[t] for t in challenger], list(challenger.values()),
             GateConfig(alpha=config.alpha, min_tasks=1))
    solved_rest = sum(champion[t].solved for t in remaining if t in champion)
    unknown_rest = sum(t not in champion for t in remaining)
    if d.challenger.successes + r < d.champion.successes + solved_rest:
        return Verdict.REJECT, (f"solves at most {d.challenger.successes + r} tasks, the "
                                f"champion at least {d.champion.successes + solved_rest}")
    winnable = sum(t not in champion or not unbeatable(champion[t], floor) for t in remaining)
    best_p = sign_test_p(d.wins + winnable, d.losses)
    if best_p > config.alpha:
        return Verdict.REJECT, (f"at best {d.wins + winnable} wins against {d.losses} "
                                f"losses, p={best_p:.4g} > {config.alpha}")
    worst_losses = d.losses + solved_rest + unknown_rest
    worst_p = sign_test_p(d.wins, worst_losses)
    if (d.challenger.successes >= d.champion.successes + solved_rest + unknown_rest
            and worst_p <= config.alpha):
        return Verdict.PROMOTE, (f"at worst {d.wins} wins against {worst_losses} losses, "
                                 f"p={worst_p:.4g} <= {config.alpha}")
    return Verdict.OPEN, ""
