"""Parameter search for the offline model: Optuna TPE over short evaluation trials.

Each trial replays the given task seeds with a copy of the learned
statistics and the trial's parameters; the objective is the mean episode
value (a success's graded score, a timeout's partial score, 0 for a failure).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from swarmlearn.core.scenario import Scenario
from swarmlearn.learn.policies import LearningPolicies, LearningState, PolicyConfig
from swarmlearn.learn.stats import LearnedStats

__all__ = ["evaluate_params", "search_params"]

logger = logging.getLogger(__name__)

SPACE: dict[str, tuple[float, float, bool]] = {  # name → (low, high, log scale)
    "ucb1_c": (0.02, 2.0, True),
    "learning_weight": (0.0, 1.5, False),
    "ngram_weight": (0.0, 2.0, False),
    "maturity": (0.0, 600.0, False),
}


def _config(params: dict[str, float]) -> PolicyConfig:
    clean: dict[str, Any] = {k: v for k, v in params.items() if k in SPACE}
    if "maturity" in clean:
        clean["maturity"] = round(clean["maturity"])
    return replace(PolicyConfig(), **clean)


def evaluate_params(
    scenario: Scenario, stats: LearnedStats | None, strategy: str, order: Sequence[str],
    seeds: Sequence[int], params: dict[str, float],
) -> float:
    """Mean episode value of ``params`` on the tasks ``seeds`` (no store, no side effects)."""
    from swarmlearn.session import run_session

    state = LearningState(stats.copy() if stats is not None else None, _config(params),
                          action_order=order)
    sc = scenario.override(workers={"policy": strategy, "policy_params": {}})
    result = run_session(sc, seeds=list(seeds), policies=LearningPolicies(strategy, state))
    return sum(e.outcome.value for e in result.episodes) / len(result.episodes)


def search_params(
    scenario: Scenario,
    stats: LearnedStats | None,
    strategy: str,
    order: Sequence[str],
    seeds: Sequence[int],
    *,
    trials: int,
    seed: int,
    warm: Sequence[dict[str, float]] = (),
    progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, float], dict[str, Any]]:
    """Best parameters by TPE, and a record of the search."""
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed))
    for params in warm:
        study.enqueue_trial({k: _clip(k, v) for k, v in params.items() if k in SPACE},
                            skip_if_exists=True)

    def objective(trial: Any) -> float:
        params = {name: trial.suggest_float(name, lo, hi, log=log)
                  for name, (lo, hi, log) in SPACE.items()}
        value = evaluate_params(scenario, stats, strategy, order, seeds, params)
        if progress is not None:
            progress(trial.number + 1, trials)
        return value

    study.optimize(objective, n_trials=trials)
    best = {k: float(v) for k, v in study.best_params.items()}
    first = study.trials[0].value if study.trials else None
    record = {
        "method": "optuna-tpe", "trials": len(study.trials), "best_value": study.best_value,
        "default_value": first, "seeds": list(seeds), "strategy": strategy,
    }
    logger.info("parameter search: best %.3f (defaults %.3f) with %s", study.best_value,
                first or math.nan, best)
    return best, record


def _clip(name: str, value: float) -> float:
    lo, hi, _ = SPACE[name]
    return min(hi, max(lo, float(value)))
