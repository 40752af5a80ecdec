"""swarmlearn.skills: optimize the natural-language skill document LLM workers read.

The target and optimizer models stay frozen; the trainable state is the skill
text (``PromptInput.skill``). One step::

    rollout (parallel, bounded) → reflect on failures and successes (minibatches,
    anchored edits with support) → merge (hierarchical, failure-driven edits win)
    → select (edit budget: constant / linear / cosine; ranked by the optimizer)
    → apply (per-edit report) → gate (the lifecycle's paired sign test on val)

The happy path::

    from swarmlearn.skills import QAConfig, QAEnv, SkillOptConfig, SkillOptimizer

    env = QAEnv.from_config(QAConfig(path="qa.jsonl"))
    run = SkillOptimizer(env, target=client, optimizer=client, run_dir="runs/qa").train()
    run.best, run.test

A run directory holds ``state.json``, written atomically after every step;
constructing the optimizer on an existing directory resumes it exactly.
``docs/skills.md`` explains the stages and the measurements.
"""

from swarmlearn.skills._edits import Edit, EditOp, EditOutcome, EditStatus, Source, apply_edits
from swarmlearn.skills._env import SkillEnv, Split, Trajectory
from swarmlearn.skills._kind import (
    SKILL_KIND,
    LiveSkill,
    SkillKind,
    decode_skill,
    encode_skill,
    skill_kind,
)
from swarmlearn.skills._merge import merge
from swarmlearn.skills._meter import Budget, BudgetExhausted, Meter, Usage
from swarmlearn.skills._optimizer import SkillOptConfig, SkillOptimizer, SkillRun
from swarmlearn.skills._qa import QAConfig, QAEnv, QAItem, exact_match, token_f1
from swarmlearn.skills._records import Failure, FailureKind
from swarmlearn.skills._rollout import RolloutOutage, rollout
from swarmlearn.skills._schedule import Schedule, edit_budget

__all__ = [
    "SKILL_KIND",
    "Budget",
    "BudgetExhausted",
    "Edit",
    "EditOp",
    "EditOutcome",
    "EditStatus",
    "Failure",
    "FailureKind",
    "LiveSkill",
    "Meter",
    "QAConfig",
    "QAEnv",
    "QAItem",
    "RolloutOutage",
    "Schedule",
    "SkillEnv",
    "SkillKind",
    "SkillOptConfig",
    "SkillOptimizer",
    "SkillRun",
    "Source",
    "Split",
    "Trajectory",
    "Usage",
    "apply_edits",
    "decode_skill",
    "edit_budget",
    "encode_skill",
    "exact_match",
    "merge",
    "rollout",
    "skill_kind",
    "token_f1",
]
