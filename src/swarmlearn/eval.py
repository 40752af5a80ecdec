"""Evaluation: N tasks × attempts per variant, with confidence intervals.

For each variant the scenario runs ``runs`` tasks (task seeds ``seed …
seed + runs - 1``), each ``attempts`` times with different worker seeds.
The report gives the success rate (Wilson 95% interval), pass@k per task
(the unbiased estimator, for k ≤ attempts), and mean / std / Student-t 95%
interval of ticks, actions, actions-to-solve, score and duration; variants
are compared with the first one (difference and its interval).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swarmlearn._stats import Summary, pass_at_k, summarize, welch_ci, wilson
from swarmlearn.core.bus import EventBus
from swarmlearn.core.events import EpisodeEnded, Event
from swarmlearn.core.scenario import Scenario
from swarmlearn.errors import ConfigError
from swarmlearn.session import PolicyFactory, run_session
from swarmlearn.store import Store
from swarmlearn.types import OutcomeKind

__all__ = ["EvalReport", "VariantReport", "evaluate", "variant_report"]

FORMAT_VERSION = 1
PASS_KS = (1, 3, 5, 10)


@dataclass(slots=True)
class VariantReport:
    scenario: str
    variant: str
    runs: int
    attempts: int
    successes: int
    success_rate: float
    success_ci: tuple[float, float]
    pass_at: dict[int, float]
    ticks: Summary
    actions: Summary
    actions_to_solve: Summary
    score: Summary
    duration: Summary
    outcomes: dict[str, int]
    sessions: list[int]
    episodes: list[dict[str, Any]] = field(repr=False, default_factory=list)
    extras: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.scenario}[{self.variant}]" if self.variant else self.scenario

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "variant": self.variant,
            "runs": self.runs,
            "attempts": self.attempts,
            "successes": self.successes,
            "success_rate": self.success_rate,
            "success_ci": list(self.success_ci),
            "pass_at_k": {str(k): v for k, v in self.pass_at.items()},
            "ticks": self.ticks.to_dict(),
            "actions": self.actions.to_dict(),
            "actions_to_solve": self.actions_to_solve.to_dict(),
            "score": self.score.to_dict(),
            "duration": self.duration.to_dict(),
            "outcomes": self.outcomes,
            "sessions": self.sessions,
            "extras": self.extras,
            "episodes": self.episodes,
        }


@dataclass(slots=True)
class EvalReport:
    scenario: str
    path: str
    seed: int
    created: float
    variants: list[VariantReport]
    comparisons: list[dict[str, Any]]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "scenario": self.scenario,
            "path": self.path,
            "seed": self.seed,
            "created": self.created,
            "variants": [v.to_dict() for v in self.variants],
            "comparisons": self.comparisons,
            "extra": self.extra,
        }

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, default=str), encoding="utf-8")


def _episode_dict(e: EpisodeEnded, attempt: int) -> dict[str, Any]:
    return {
        "task_seed": e.seed,
        "attempt": attempt,
        "outcome": e.outcome.kind.value,
        "score": e.outcome.value,
        "ticks": e.ticks,
        "actions": e.actions,
        "duration": e.duration,
        "session": e.session,
        **dict(e.stats),
    }


def variant_report(
    scenario: Scenario, by_attempt: Sequence[Sequence[EpisodeEnded]], sessions: list[int]
) -> VariantReport:
    """Summarise the episodes of one variant (``by_attempt[j][i]``: task i, attempt j)."""
    flat = [e for eps in by_attempt for e in eps]
    ok = [e for e in flat if e.outcome.kind is OutcomeKind.SUCCESS]
    attempts, runs = len(by_attempt), len(by_attempt[0]) if by_attempt else 0
    per_task = [
        sum(1 for j in range(attempts) if by_attempt[j][i].outcome.kind is OutcomeKind.SUCCESS)
        for i in range(runs)
    ]
    pass_at = {
        k: sum(pass_at_k(attempts, c, k) for c in per_task) / max(1, runs)
        for k in PASS_KS
        if k <= attempts
    }
    extras = _extras(flat)
    return VariantReport(
        scenario=scenario.name,
        variant=scenario.variant,
        runs=runs,
        attempts=attempts,
        successes=len(ok),
        success_rate=len(ok) / len(flat) if flat else 0.0,
        success_ci=wilson(len(ok), len(flat)),
        pass_at=pass_at,
        ticks=summarize([e.ticks for e in flat]),
        actions=summarize([e.actions for e in flat]),
        actions_to_solve=summarize([e.actions for e in ok]),
        score=summarize([e.outcome.value for e in flat]),
        duration=summarize([e.duration for e in flat]),
        outcomes=dict(Counter(e.outcome.kind.value for e in flat)),
        sessions=sessions,
        episodes=[_episode_dict(e, j) for j, eps in enumerate(by_attempt) for e in eps],
        extras=extras,
    )


def _extras(episodes: Sequence[EpisodeEnded]) -> dict[str, float]:
    """Every per-episode counter summed, plus the rates people ask for.

    With LLM workers: calls, tokens, latency per decision and tokens/s, and
    the valid-action rate (actions the environment knew, out of all).
    """
    totals: dict[str, float] = {"invalid_actions": 0.0, "worker_errors": 0.0,
                                "dropped_events": 0.0}
    for e in episodes:
        for key, value in e.stats.items():
            if key != "timed_out":
                totals[key] = totals.get(key, 0.0) + float(value)
    actions = float(sum(e.actions for e in episodes))
    totals["invalid_action_rate"] = totals["invalid_actions"] / actions if actions else 0.0
    totals["valid_action_rate"] = 1.0 - totals["invalid_action_rate"]
    calls = totals.get("llm_calls", 0.0)
    if calls:
        totals["latency_per_call"] = totals["llm_latency"] / calls
        totals["prompt_tokens_per_call"] = totals["prompt_tokens"] / calls
        totals["completion_tokens_per_call"] = totals["completion_tokens"] / calls
        if totals["llm_latency"] > 0:
            totals["completion_tokens_per_s"] = totals["completion_tokens"] / totals["llm_latency"]
    return totals


def _compare(base: VariantReport, other: VariantReport) -> dict[str, Any]:
    def values(rep: VariantReport, key: str) -> list[float]:
        return [float(e[key]) for e in rep.episodes]

    def success(rep: VariantReport) -> list[float]:
        return [1.0 if e["outcome"] == "success" else 0.0 for e in rep.episodes]

    out: dict[str, Any] = {"baseline": base.label, "variant": other.label}
    for name, a, b in (
        ("success_rate", success(base), success(other)),
        ("actions", values(base, "actions"), values(other, "actions")),
        ("ticks", values(base, "ticks"), values(other, "ticks")),
        ("score", values(base, "score"), values(other, "score")),
    ):
        diff, lo, hi = welch_ci(a, b)
        out[name] = {"diff": diff, "ci_low": lo, "ci_high": hi}
    return out


def evaluate(
    scenario: Scenario,
    *,
    runs: int = 30,
    seed: int = 42,
    attempts: int = 1,
    variants: Sequence[str] = ("",),
    store: Store | None = None,
    policies: PolicyFactory | None = None,
    on_episode: Callable[[EpisodeEnded], None] | None = None,
    group: str = "",
    subscribers: Sequence[Callable[[EventBus[Event]], object]] = (),
) -> EvalReport:
    """Evaluate ``scenario`` (and its ``variants``; "" is the base) — see module docstring."""
    if runs < 1 or attempts < 1:
        raise ConfigError(f"runs and attempts must be >= 1 (got {runs}, {attempts})", field="runs")
    group = group or f"eval-{int(time.time())}"
    reports: list[VariantReport] = []
    for name in variants or ("",):
        sc = scenario.with_variant(name) if name else scenario
        by_attempt: list[list[EpisodeEnded]] = []
        sessions: list[int] = []
        for attempt in range(attempts):
            result = run_session(
                sc,
                episodes=runs,
                store=store,
                seed=seed,
                worker_seed=sc.seeds.workers + attempt,
                group=group,
                kind="eval",
                policies=policies,
                on_episode=on_episode,
                subscribers=subscribers,
            )
            by_attempt.append(result.episodes)
            sessions.append(result.session)
        reports.append(variant_report(sc, by_attempt, sessions))
    comparisons = [_compare(reports[0], r) for r in reports[1:]]
    return EvalReport(
        scenario.name, scenario.path, seed, time.time(), reports, comparisons, {"group": group}
    )
