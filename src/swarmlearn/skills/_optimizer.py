"""The skill optimizer: rollout → reflect → merge → select → apply → gate, step by step,
with a checkpoint after every step.

Everything a step does is a pure function of the step number, the seed and the
checkpointed state (the batch, the minibatches, the edit budget, the pool's
parent), so a run killed at any moment and resumed from its run directory
ends with the same skill, history and counters as a run never interrupted —
given the same (deterministic) clients.

What a run does not spend: every trajectory is cached by (skill hash, task) in
the checkpoint, so no skill runs the same task twice (the champion is never
re-validated, an unchanged skill's training tasks are not rerun); a candidate's
validation stops as soon as the gate's decision is fixed
(:mod:`swarmlearn.skills._curtail`; a task the champion solved at the
environment's lowest cost is one it cannot lose to a win); the rejected-edit
memory drops repeated edits before they cost a validation
(:mod:`swarmlearn.skills._memory`); and once the champion solves every
validation task at that lowest cost, no candidate can pass the gate, so the
steps left are recorded ``converged`` and spend nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swarmlearn._config import check_range, from_mapping, to_mapping
from swarmlearn.errors import BackendError, ConfigError
from swarmlearn.lifecycle import GateConfig, GateDecision, gate
from swarmlearn.llm import LLMClient
from swarmlearn.skills import _memory as memory
from swarmlearn.skills._checkpoint import read_state, write_state
from swarmlearn.skills._curtail import Verdict, unbeatable, validation_order, verdict
from swarmlearn.skills._edits import EditStatus, apply_edits, skill_hash
from swarmlearn.skills._env import SkillEnv, Split, Trajectory
from swarmlearn.skills._merge import merge
from swarmlearn.skills._meter import Budget, BudgetExhausted, Meter, StageUsage, Usage
from swarmlearn.skills._pool import on_front, pick_parent
from swarmlearn.skills._records import Failure, FailureKind
from swarmlearn.skills._reflect import reflect
from swarmlearn.skills._rollout import rollout
from swarmlearn.skills._schedule import Schedule, edit_budget
from swarmlearn.skills._select import select

__all__ = ["SkillOptConfig", "SkillOptimizer", "SkillRun"]

logger = logging.getLogger(__name__)

_NONE = StageUsage()
_RESUMABLE = ("max_calls", "max_tokens", "concurrency", "retries", "retry_pause_s")


@dataclass(frozen=True, kw_only=True, slots=True)
class SkillOptConfig:
    """How a skill is optimized. ``edit_budget`` decays to ``min_edit_budget`` by
    ``schedule``; the gate is the lifecycle's paired rule (``gate_alpha``,
    ``gate_min_tasks``); ``pool`` keeps a Pareto pool of candidates; ``pack_reflections``
    asks for all of a step's minibatches in one optimizer call. ``curtail`` stops a
    candidate's validation once it cannot be promoted (not with ``pool``, which needs
    every score); ``reuse_rollouts`` reuses a training trajectory of the same skill on
    the same task (with a sampling target, a re-run would be a new sample)."""

    epochs: int = 2
    batch_size: int = 8
    minibatch_size: int = 4
    merge_fan_in: int = 4
    edit_budget: int = 4
    min_edit_budget: int = 1
    schedule: Schedule = Schedule.COSINE
    include_successes: bool = True
    concurrency: int = 4
    retries: int = 2
    retry_pause_s: float = 0.5
    seed: int = 0
    gate_alpha: float = 0.05
    gate_min_tasks: int = 10
    pool: bool = False
    curtail: bool = True
    pack_reflections: bool = True
    reuse_rollouts: bool = True
    memory_shown: int = 20
    max_calls: int = 0
    max_tokens: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "minibatch_size", "edit_budget",
                     "min_edit_budget", "concurrency", "gate_min_tasks"):
            check_range(name, getattr(self, name), lo=1)
        check_range("merge_fan_in", self.merge_fan_in, lo=2)
        if self.min_edit_budget > self.edit_budget:
            raise ConfigError(f"min_edit_budget ({self.min_edit_budget}) > edit_budget "
                              f"({self.edit_budget})", field="min_edit_budget")
        check_range("retries", self.retries, lo=0)
        check_range("retry_pause_s", self.retry_pause_s, lo=0.0)
        check_range("memory_shown", self.memory_shown, lo=0)
        Budget(max_calls=self.max_calls, max_tokens=self.max_tokens)
        GateConfig(alpha=self.gate_alpha, min_tasks=self.gate_min_tasks)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SkillOptConfig:
        return from_mapping(cls, data, where="optimize")


def _version(step: int, skill: str, parent: str | None, gated: Mapping[str, Any]
             ) -> dict[str, Any]:
    """One accepted skill: its text, lineage (parent hash) and validation numbers."""
    return {"step": step, "hash": skill_hash(skill), "skill": skill,
            "parent": None if parent is None else skill_hash(parent),
            "val_score": gated.get("val_score"), "val_tasks": gated.get("val_tasks"),
            "gate": gated.get("gate", {}).get("reason")}


def _results(val: Sequence[Trajectory]) -> dict[int, float]:
    return {t.task: t.score for t in val}


def _mean(val: Sequence[Trajectory]) -> float:
    return sum(t.score for t in val) / len(val) if val else 0.0


@dataclass(slots=True)
class SkillRun:
    """The checkpointed state of a run (``state.json``)."""

    config: SkillOptConfig
    initial: str
    current: str
    best: str
    best_step: int = 0
    step: int = 0  # steps completed
    total_steps: int = 0
    status: str = "running"  # running | done | budget | outage
    history: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)  # the memory (_memory)
    scores: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # hash→task
    pool: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    failures: list[dict[str, Any]] = field(default_factory=list)  # run-level stops
    test: dict[str, Any] = field(default_factory=dict)
    versions: list[dict[str, Any]] = field(default_factory=list)  # every accepted skill
    splits: dict[str, list[int]] = field(default_factory=dict)  # the task ids of each split

    def to_dict(self) -> dict[str, Any]:
        return {"config": to_mapping(self.config), "initial": self.initial,
                "current": self.current, "best": self.best, "best_step": self.best_step,
                "step": self.step, "total_steps": self.total_steps, "status": self.status,
                "history": self.history, "rejected": self.rejected,
                "scores": self.scores, "pool": self.pool,
                "usage": self.usage.to_dict(), "failures": self.failures, "test": self.test,
                "versions": self.versions, "splits": self.splits}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SkillRun:
        return cls(SkillOptConfig.from_mapping(d["config"]), d["initial"], d["current"],
                   d["best"], int(d["best_step"]), int(d["step"]), int(d["total_steps"]),
                   str(d["status"]), list(d["history"]), list(d["rejected"]),
                   dict(d["scores"]), list(d["pool"]), Usage.from_dict(d["usage"]),
                   list(d["failures"]), dict(d["test"]), list(d["versions"]),
                   {k: list(v) for k, v in d["splits"].items()})


class SkillOptimizer:
    """Optimize the skill document of ``env`` with a frozen ``target`` and ``optimizer``.

    ``run_dir`` holds ``state.json``; :meth:`train` starts a run or, when the
    directory has one, resumes it. ``on_step`` is called after each checkpoint
    with the run (a progress bar, or a test that stops the run); ``on_stage`` with the
    step and the stage starting (``rollout``, ``reflect``, ``select``, ``validate``,
    ``test``).
    """

    def __init__(self, env: SkillEnv, *, target: LLMClient, optimizer: LLMClient,
                 run_dir: str | Path, config: SkillOptConfig | None = None,
                 initial_skill: str = "",
                 on_step: Callable[[SkillRun], None] | None = None,
                 on_stage: Callable[[int, str], None] | None = None) -> None:
        self.env = env
        self.run_dir = Path(run_dir)
        self._target, self._optimizer = target, optimizer
        self._on_step, self._on_stage = on_step, on_stage
        self._saved = (self.run_dir / "state.json").exists()
        if self._saved:
            self.run = self._resume(config)
        else:
            cfg = config or SkillOptConfig()
            self.run = SkillRun(cfg, initial_skill, initial_skill, initial_skill,
                                pool=[initial_skill],
                                versions=[_version(0, initial_skill, None, {})])
        cfg = self.run.config
        self.meter = Meter.over(target, Budget(max_calls=cfg.max_calls,
                                               max_tokens=cfg.max_tokens), self.run.usage)
        self._opt_meter = Meter(optimizer, self.meter.usage, self.meter.budget,
                                self.meter._lock)
        train = list(env.tasks(Split.TRAIN))
        self._steps_per_epoch = max(1, math.ceil(len(train) / cfg.batch_size))
        self.run.total_steps = self._steps_per_epoch * cfg.epochs
        splits = {s.value: list(env.tasks(s)) for s in Split}
        if self.run.splits and self.run.splits != splits:
            changed = [k for k in splits if splits[k] != self.run.splits.get(k)]
            raise ConfigError(f"{self.run_dir}: the {', '.join(changed)} tasks of "
                              f"{env.name} are not the run's; cannot resume on other tasks",
                              field="tasks")
        self.run.splits = splits

    def _resume(self, config: SkillOptConfig | None) -> SkillRun:
        run = SkillRun.from_dict(read_state(self.run_dir))
        if config is not None:
            old, new = to_mapping(run.config), to_mapping(config)
            changed = [k for k in new if new[k] != old[k] and k not in _RESUMABLE]
            if changed:
                raise ConfigError(f"{self.run_dir}: cannot resume with a different "
                                  f"{', '.join(changed)} (only {', '.join(_RESUMABLE)} may "
                                  "change)", field=changed[0])
            run.config = config
        if run.status in ("budget", "outage"):
            run.status = "running"
        return run

    # -- the stages, each with its own counters ----------------------------------------
    def _target_for(self, stage: str) -> Meter:
        return self.meter.for_stage(stage)

    def _rollout(self, tasks: Sequence[int], skill: str, stage: str,
                 reuse: bool = True) -> list[Trajectory]:
        """The trajectories of ``tasks`` with ``skill``; only those not cached are run."""
        cfg = self.run.config
        have = self.run.scores.setdefault(skill_hash(skill), {})
        todo = [t for t in tasks if not reuse or str(t) not in have]
        fresh = rollout(self.env, todo, skill, self._target_for(stage),
                        concurrency=cfg.concurrency, retries=cfg.retries,
                        pause_s=cfg.retry_pause_s)
        for t in fresh:
            have[str(t.task)] = t.to_dict()
        return [Trajectory.from_dict(have[str(t)]) for t in tasks]

    def _validate(self, skill: str) -> list[Trajectory]:
        return self._rollout(self.env.tasks(Split.VAL), skill, "validate")

    def _batch(self, step: int) -> list[int]:
        cfg = self.run.config
        epoch, k = divmod(step - 1, self._steps_per_epoch)
        train = list(self.env.tasks(Split.TRAIN))
        random.Random(cfg.seed * 7919 + epoch).shuffle(train)
        return train[k * cfg.batch_size:(k + 1) * cfg.batch_size] or train[:cfg.batch_size]

    def _parent(self, step: int) -> str:
        run = self.run
        if not run.config.pool or len(run.pool) == 1:
            return run.current
        scores = [_results(self._validate(s)) for s in run.pool]
        return run.pool[pick_parent(scores, run.config.seed * 104729 + step)]

    # -- one step -----------------------------------------------------------------------
    def _step(self, step: int) -> dict[str, Any]:
        run, cfg = self.run, self.run.config
        parent = self._parent(step)
        rec: dict[str, Any] = {"step": step, "parent": skill_hash(parent)}
        budget = edit_budget(cfg.schedule, step, run.total_steps, high=cfg.edit_budget,
                             low=cfg.min_edit_budget)
        if not cfg.pool and self._unbeatable(step, parent):
            return self._record(rec, action="converged", rollout={"tasks": 0, "solved": 0},
                                proposed=0, merged=0, deferred=0, budget=budget, apply=[],
                                candidate=skill_hash(parent), failures=[],
                                reason="the champion solves every validation task at the "
                                "lowest cost there is: no candidate can pass the gate")
        self._stage(step, "rollout")
        batch = self._rollout(self._batch(step), parent, "rollout", cfg.reuse_rollouts)
        rec["rollout"] = {"tasks": len(batch), "solved": sum(t.solved for t in batch)}
        shown = memory.shown(run.rejected, cfg.memory_shown)
        self._stage(step, "reflect")
        refl = reflect(self._opt_meter.for_stage("reflect"), parent, batch,
                       minibatch_size=cfg.minibatch_size, budget=cfg.edit_budget,
                       seed=cfg.seed * 31 + step, rejected=shown, concurrency=cfg.concurrency,
                       include_successes=cfg.include_successes,
                       packed=cfg.pack_reflections)
        failures = list(refl.failures)
        known = memory.rejected_keys(run.rejected)
        proposals = []
        for p in refl.proposals:
            again = [e for e in p if e.key in known]
            failures += [Failure(FailureKind.REPEATED_REJECTED, "reflect",
                                 f"{e.op.value} {e.anchor[:60]!r} {e.content[:80]!r}")
                         for e in again]
            proposals.append([e for e in p if e.key not in known])
        merged = merge(proposals, fan_in=cfg.merge_fan_in)
        kept, deferred = memory.isolate(merged, run.rejected, parent)
        proposed_now = {e.key for e in merged}
        retried = [e.key for e in kept if e.key not in proposed_now]
        self._stage(step, "select")
        chosen = select(self._opt_meter.for_stage("rank"), parent, kept, budget)
        failures += chosen.failures
        candidate, report = apply_edits(parent, chosen.edits)
        failures += [Failure(FailureKind.MISSING_ANCHOR, "apply",
                             f"edit {o.index}: {o.edit.op.value} anchor "
                             f"{o.edit.anchor[:80]!r} not in the skill")
                     for o in report if o.status is EditStatus.MISSING_ANCHOR]
        rec.update(proposed=len(refl.edits), merged=len(merged), deferred=len(deferred),
                   retried=retried, budget=budget,
                   ranked_by=chosen.ranked_by, apply=[o.to_dict() for o in report],
                   candidate=skill_hash(candidate))
        if candidate == parent:
            rec["action"] = "no_change"
        else:
            self._stage(step, "validate")
            rec.update(self._gate(step, parent, candidate, report))
        return self._record(rec, failures=[f.to_dict() for f in failures])

    def _record(self, rec: dict[str, Any], **fields: Any) -> dict[str, Any]:
        """The step's record with ``fields`` and the counters so far, into the history."""
        usage = self.run.usage
        rec.update(fields, usage={"calls": usage.calls, "tokens": usage.tokens,
                                  "validate_calls": usage.stages.get("validate", _NONE).calls})
        self.run.history.append(rec)
        return rec

    def _unbeatable(self, step: int, champion: str) -> bool:
        """Whether ``champion`` solves every validation task at the environment's lowest
        cost, so that no candidate can win a task and the gate can promote none: the steps
        left would spend calls for nothing. A champion that solved every validation task it
        ran so is run on the rest first — calls the next gate would spend anyway, since it
        validates the champion in full."""
        floor = self.env.min_cost
        if floor is None:
            return False
        have = self.run.scores.get(skill_hash(champion), {})
        tasks = self.env.tasks(Split.VAL)
        known = [Trajectory.from_dict(have[str(t)]) for t in tasks if str(t) in have]
        if not all(unbeatable(t.result(), floor) for t in known):
            return False
        if len(known) < len(tasks):
            self._stage(step, "validate")
            known = self._validate(champion)
        return all(unbeatable(t.result(), floor) for t in known)

    def _paired(self, parent: str, candidate: str) -> tuple[list[Trajectory],
                                                           list[Trajectory], GateDecision]:
        """Both sides on the validation split, curtailed (``_curtail``), and the decision."""
        cfg = self.run.config
        gcfg = GateConfig(alpha=cfg.gate_alpha, min_tasks=cfg.gate_min_tasks)
        tasks = list(self.env.tasks(Split.VAL))
        if not cfg.curtail or cfg.pool:
            whole = self._validate(parent)
            every = self._rollout(tasks, candidate, "validate")
            return whole, every, gate([t.result() for t in whole],
                                      [t.result() for t in every], gcfg)
        full = {t.task: t for t in self._validate(parent)}
        champion = {k: t.result() for k, t in full.items()}
        order = validation_order(champion, tasks)
        cand: list[Trajectory] = []
        why, v = "", Verdict.OPEN
        # run ``concurrency`` tasks at a time, but judge after each one in order: the
        # decision and the tasks it counts do not depend on the concurrency (a task run
        # past the verdict stays in the cache, outside the decision)
        for i in range(0, len(order), cfg.concurrency):
            for t in self._rollout(order[i:i + cfg.concurrency], candidate, "validate"):
                cand.append(t)
                rest = order[len(cand):]
                if rest:
                    v, why = verdict(champion, {t.task: t.result() for t in cand}, rest,
                                     gcfg, self.env.min_cost)
                if not rest or v is not Verdict.OPEN:
                    break
            if len(cand) == len(order) or v is not Verdict.OPEN:
                break
        base = [full[t.task] for t in cand]
        d = gate([t.result() for t in base], [t.result() for t in cand],
                 GateConfig(alpha=cfg.gate_alpha, min_tasks=1))
        if v is Verdict.OPEN:
            d = gate([t.result() for t in base], [t.result() for t in cand], gcfg)
        else:
            d = dataclasses.replace(d, promote=v is Verdict.PROMOTE,
                                    reason=f"curtailed after {len(cand)} of {len(order)} "
                                    f"tasks, {v.value} whatever is left ({why}); {d.reason}")
        return base, cand, d

    def _gate(self, step: int, parent: str, candidate: str,
              report: Sequence[Any]) -> dict[str, Any]:
        run, cfg = self.run, self.run.config
        base, cand, decision = self._paired(parent, candidate)
        out: dict[str, Any] = {"gate": decision.to_dict(), "val_score": _mean(cand),
                               "parent_val_score": _mean(base), "val_tasks": len(cand)}
        added = cfg.pool and on_front(_results(cand), [_results(self._validate(s))
                                                       for s in run.pool])
        applied = [o.edit for o in report if o.status is EditStatus.APPLIED]
        if decision.promote:
            run.current = candidate
            out["action"] = "accept"
            memory.clear(run.rejected, applied)
            run.versions.append(_version(step, candidate, parent, out))
        else:
            out["action"] = "pool" if added else "reject"
            memory.record_rejection(run.rejected, applied, step)
        if (decision.promote or added) and candidate not in run.pool:
            run.pool.append(candidate)
        if decision.promote and (parent == run.best if not cfg.pool
                                 else _mean(cand) > _mean(self._validate(run.best))):
            # without the pool, the parent is the best and the candidate just beat it
            run.best, run.best_step = candidate, step
            out["new_best"] = True
        return out

    def _stage(self, step: int, stage: str) -> None:
        if self._on_stage is not None:
            self._on_stage(step, stage)

    def _save(self) -> None:
        write_state(self.run_dir, self.run.to_dict())
        self._saved = True

    def _final_test(self) -> None:
        run = self.run
        tasks = self.env.tasks(Split.TEST)
        if not tasks:
            run.test = {"skipped": "the test split is empty"}
            return
        init = self._rollout(tasks, run.initial, "test")
        best = self._rollout(tasks, run.best, "test")
        d = gate([t.result() for t in init], [t.result() for t in best],
                 GateConfig(alpha=run.config.gate_alpha, min_tasks=1))
        run.test = {"initial": {"exact": sum(t.solved for t in init) / len(init),
                                "f1": _mean(init)},
                    "best": {"exact": sum(t.solved for t in best) / len(best),
                             "f1": _mean(best)},
                    "tasks": len(tasks), "paired": d.to_dict()}

    def train(self) -> SkillRun:
        """Run (or resume) to the end; the run. BackendError after an outage (checkpointed)."""
        run = self.run
        try:
            if run.step == 0 and not run.history:
                self._stage(0, "validate")
                self._validate(run.initial)
                self._save()
            while run.step < run.total_steps:
                why = self.meter.exhausted()
                if why:
                    raise BudgetExhausted(why)
                self._step(run.step + 1)
                run.step += 1
                self._save()
                if self._on_step is not None:
                    self._on_step(run)
            if not run.test:
                self._stage(run.step, "test")
                self._final_test()
            run.status = "done"
        except BudgetExhausted as exc:
            self._stop("budget", FailureKind.BUDGET, exc)
            return self.run
        except BackendError as exc:
            self._stop("outage", FailureKind.OUTAGE, exc)
            raise
        self._save()
        return run

    def _stop(self, status: str, kind: FailureKind, exc: Exception) -> None:
        """Record a run-level stop. The step in progress is dropped — the state goes back
        to the last checkpoint (what it cached would change the order a resumed step
        validates in) — but its calls were spent and stay counted."""
        if self._saved:
            saved = SkillRun.from_dict(read_state(self.run_dir))
            saved.config, saved.usage = self.run.config, self.run.usage
            self.run = saved
        run = self.run
        run.status = status
        run.failures.append({"at_step": run.step + 1,
                             **Failure(kind, "run", f"{type(exc).__name__}: {exc}").to_dict()})
        logger.warning("skill run stopped at step %d: %s", run.step + 1, exc)
        self._save()
