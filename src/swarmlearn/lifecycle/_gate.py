"""The gate: one noise-aware, paired rule that decides whether a challenger replaces
the champion, for every kind of learned artifact.

Both sides are evaluated on the **same held-out tasks** (task seeds the
challenger never trained on); each task gives a :class:`TaskResult` per side:
``solved`` and a ``cost`` (lower is better: actions spent for a swarm, the
negated return for an RL policy). The rule, :func:`gate`:

1. Pair the results by task. Per task the challenger **wins** if it solved a
   task the champion did not, or both solved it and the challenger's cost is
   lower; it **loses** in the mirror cases; anything else (both failed, equal
   cost) is a **tie** and carries no evidence.
2. Promote only if all of these hold:

   * at least ``min_tasks`` paired tasks;
   * the challenger solved at least as many of them as the champion
     (a faster but less reliable challenger is never promoted);
   * the exact one-sided **sign test** on wins against losses rejects "no
     better" at level ``alpha``: ``P(Binomial(wins + losses, 1/2) >= wins) <=
     alpha``.

Under the null hypothesis (two equal artifacts, any noise that treats both
sides alike) every non-tied task is a fair coin, so the rule promotes an
equal challenger with probability at most ``alpha`` whatever the number of
tasks, the tie rate or the noise; :func:`simulate_false_promotion` measures
it (``swarmlearn daemon gate-sim``) and ``docs/lifecycle.md`` gives the
figures. The function is pure: the same results give the same decision.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from swarmlearn._config import check_range
from swarmlearn._stats import wilson
from swarmlearn.errors import ConfigError

__all__ = [
    "GATE_RULE",
    "GateConfig",
    "GateDecision",
    "SideSummary",
    "SimulationResult",
    "TaskResult",
    "gate",
    "sign_test_p",
    "simulate_false_promotion",
]

#: the rule's name, recorded with every decision (change it when the rule changes)
GATE_RULE = "paired-sign-test/v1"


class TaskResult(NamedTuple):
    """One side's result on one held-out task (``task`` is the task seed)."""

    task: int
    solved: bool
    cost: float  # lower is better (actions spent; -return for RL)


@dataclass(frozen=True, kw_only=True, slots=True)
class GateConfig:
    """``alpha``: the false-promotion bound; ``min_tasks``: the fewest paired tasks."""

    alpha: float = 0.05
    min_tasks: int = 20

    def __post_init__(self) -> None:
        check_range("alpha", self.alpha, lo=1e-9, hi=0.5)
        check_range("min_tasks", self.min_tasks, lo=1)


@dataclass(frozen=True, slots=True)
class SideSummary:
    """One side over the paired tasks: successes and actions (cost) per solved task."""

    tasks: int
    successes: int
    cost: float  # total cost over the paired tasks

    @property
    def success_rate(self) -> float:
        return self.successes / self.tasks if self.tasks else 0.0

    @property
    def cost_per_solve(self) -> float:
        """Total cost over tasks solved (the ``eval --learning`` measure); inf if none."""
        return self.cost / self.successes if self.successes else math.inf

    def to_dict(self) -> dict[str, Any]:
        lo, hi = wilson(self.successes, self.tasks) if self.tasks else (0.0, 1.0)
        per = self.cost_per_solve
        return {"tasks": self.tasks, "successes": self.successes, "cost": self.cost,
                "success_rate": round(self.success_rate, 6), "success_ci": [lo, hi],
                "cost_per_solve": None if math.isinf(per) else round(per, 6)}


@dataclass(frozen=True, slots=True)
class GateDecision:
    """What the gate decided and every number it decided on."""

    promote: bool
    reason: str
    wins: int
    losses: int
    ties: int
    p_value: float
    champion: SideSummary
    challenger: SideSummary
    alpha: float
    rule: str = GATE_RULE
    unpaired: int = 0  # tasks only one side ran (left out)
    tasks: tuple[int, ...] = field(default=(), repr=False)

    @property
    def paired(self) -> int:
        return self.wins + self.losses + self.ties

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "promote": self.promote, "reason": self.reason,
                "wins": self.wins, "losses": self.losses, "ties": self.ties,
                "p_value": self.p_value, "alpha": self.alpha, "unpaired": self.unpaired,
                "champion": self.champion.to_dict(), "challenger": self.challenger.to_dict(),
                "tasks": list(self.tasks)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateDecision:
        def side(d: Mapping[str, Any]) -> SideSummary:
            return SideSummary(int(d["tasks"]), int(d["successes"]), float(d["cost"]))

        return cls(bool(data["promote"]), str(data["reason"]), int(data["wins"]),
                   int(data["losses"]), int(data["ties"]), float(data["p_value"]),
                   side(data["champion"]), side(data["challenger"]), float(data["alpha"]),
                   str(data.get("rule", GATE_RULE)), int(data.get("unpaired", 0)),
                   tuple(int(t) for t in data.get("tasks", ())))


def sign_test_p(wins: int, losses: int) -> float:
    """Exact one-sided sign test: ``P(Binomial(wins + losses, 1/2) >= wins)``."""
    if wins < 0 or losses < 0:
        raise ConfigError(f"wins/losses: expected counts >= 0, got {wins}, {losses}")
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(wins, n + 1))
    return min(1.0, tail / (1 << n))


def _by_task(results: Sequence[TaskResult], side: str) -> dict[int, TaskResult]:
    out: dict[int, TaskResult] = {}
    for r in results:
        if r.task in out:
            raise ConfigError(f"{side}: task {r.task} appears twice", field=side, value=r.task)
        if not math.isfinite(r.cost):
            raise ConfigError(f"{side}: task {r.task} has a non-finite cost {r.cost}",
                              field=side, value=r.cost)
        out[r.task] = r
    return out


def _compare(b: TaskResult, c: TaskResult) -> int:
    """+1 the challenger is better on this task, -1 worse, 0 a tie."""
    if c.solved != b.solved:
        return 1 if c.solved else -1
    if c.solved and c.cost != b.cost:
        return 1 if c.cost < b.cost else -1
    return 0


def gate(
    champion: Sequence[TaskResult],
    challenger: Sequence[TaskResult],
    config: GateConfig | None = None,
) -> GateDecision:
    """Decide whether ``challenger`` replaces ``champion`` (module docstring: the rule)."""
    cfg = config or GateConfig()
    base, chal = _by_task(champion, "champion"), _by_task(challenger, "challenger")
    tasks = tuple(sorted(base.keys() & chal.keys()))
    unpaired = len(base.keys() ^ chal.keys())
    wins = losses = 0
    for t in tasks:
        d = _compare(base[t], chal[t])
        wins += d > 0
        losses += d < 0
    ties = len(tasks) - wins - losses
    sb = SideSummary(len(tasks), sum(base[t].solved for t in tasks),
                     float(sum(base[t].cost for t in tasks)))
    sc = SideSummary(len(tasks), sum(chal[t].solved for t in tasks),
                     float(sum(chal[t].cost for t in tasks)))
    p = sign_test_p(wins, losses)
    score = f"{wins} wins, {losses} losses, {ties} ties on {len(tasks)} tasks, p={p:.4g}"
    if len(tasks) < cfg.min_tasks:
        promote, why = False, f"only {len(tasks)} paired tasks (< {cfg.min_tasks})"
    elif sc.successes < sb.successes:
        promote, why = False, f"solved fewer tasks ({sc.successes} < {sb.successes})"
    elif p > cfg.alpha:
        promote, why = False, f"not better beyond noise (p={p:.4g} > {cfg.alpha})"
    else:
        promote, why = True, f"better beyond noise (p={p:.4g} <= {cfg.alpha})"
    return GateDecision(promote, f"{why}: {score}", wins, losses, ties, p, sb, sc, cfg.alpha,
                        GATE_RULE, unpaired, tasks)


# -- measuring the false-promotion rate -------------------------------------------------
@dataclass(frozen=True, slots=True)
class SimulationResult:
    trials: int
    promotions: int
    tasks: int
    effect: float

    @property
    def rate(self) -> float:
        return self.promotions / self.trials if self.trials else 0.0

    @property
    def ci(self) -> tuple[float, float]:
        return wilson(self.promotions, self.trials)


def _simulated_side(rng: random.Random, difficulty: Sequence[tuple[float, float]],
                    effect: float) -> list[TaskResult]:
    out = []
    for i, (p, mean_cost) in enumerate(difficulty):
        solved = rng.random() < min(1.0, p + effect)
        cost = max(1, round(rng.lognormvariate(math.log(mean_cost), 0.35)))
        out.append(TaskResult(i, solved, float(cost)))
    return out


def simulate_false_promotion(
    config: GateConfig | None = None,
    *,
    tasks: int = 30,
    trials: int = 10_000,
    seed: int = 0,
    effect: float = 0.0,
) -> SimulationResult:
    """Run the gate ``trials`` times on two artifacts that differ by ``effect``.

    Each trial draws ``tasks`` tasks of varied difficulty (solve probability
    from Beta(2, 1.5), a typical cost from 5 to 60 actions); each side solves
    a task with its probability (the challenger's raised by ``effect``) and
    spends a log-normal number of actions around the task's typical cost,
    independently of the other side. ``effect=0`` gives the false-promotion
    rate (two equal artifacts); ``effect>0`` the gate's power.
    """
    cfg = config or GateConfig()
    check_range("tasks", tasks, lo=1)
    check_range("trials", trials, lo=1)
    rng = random.Random(seed)
    promoted = 0
    for _ in range(trials):
        difficulty = [(rng.betavariate(2.0, 1.5), rng.uniform(5.0, 60.0)) for _ in range(tasks)]
        champion = _simulated_side(rng, difficulty, 0.0)
        challenger = _simulated_side(rng, difficulty, effect)
        promoted += gate(champion, challenger, cfg).promote
    return SimulationResult(trials, promoted, tasks, effect)
