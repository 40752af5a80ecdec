"""One life for every learned artifact: produce → evaluate on held-out tasks → gate →
promote or reject → apply → watch → roll back.

* :class:`ArtifactKind` — the protocol a kind implements (``produce``,
  ``evaluate``, ``apply``, ``revert``); see :mod:`swarmlearn.lifecycle._protocol`.
* :class:`Lifecycle` — versions, states, the ``champion`` / ``challenger``
  aliases and the rollback history of one (kind, scope), in the store.
* :func:`gate` — the one paired, noise-aware promotion rule (a pure function).
* :func:`run_gate` — gating a registered version: evaluate both sides on fresh
  held-out seeds, decide, apply.
* :func:`watch` — the sequential test on live success after a promotion.
* :func:`add_observer` — be told of every committed step (the MLflow registry
  mirror and the Prometheus metrics of :mod:`swarmlearn.ops` use it).

``docs/lifecycle.md`` explains the rule, its measured false-promotion rate and
how to add a kind.
"""

from __future__ import annotations

from swarmlearn.lifecycle._gate import (
    GATE_RULE,
    GateConfig,
    GateDecision,
    SideSummary,
    SimulationResult,
    TaskResult,
    gate,
    sign_test_p,
    simulate_false_promotion,
)
from swarmlearn.lifecycle._lifecycle import (
    Lifecycle,
    LifecycleConfig,
    LifecycleObserver,
    add_observer,
)
from swarmlearn.lifecycle._protocol import ArtifactKind, HeldOutTasks, ProduceContext
from swarmlearn.lifecycle._records import (
    TRANSITIONS,
    Alias,
    ArtifactState,
    ArtifactVersion,
    Lineage,
    Produced,
    check_move,
)
from swarmlearn.lifecycle._run import GateRun, run_gate
from swarmlearn.lifecycle._watch import LiveWatch, WatchConfig, WatchVerdict, watch

__all__ = [
    "GATE_RULE",
    "TRANSITIONS",
    "Alias",
    "ArtifactKind",
    "ArtifactState",
    "ArtifactVersion",
    "GateConfig",
    "GateDecision",
    "GateRun",
    "HeldOutTasks",
    "Lifecycle",
    "LifecycleConfig",
    "LifecycleObserver",
    "Lineage",
    "LiveWatch",
    "ProduceContext",
    "Produced",
    "SideSummary",
    "SimulationResult",
    "TaskResult",
    "WatchConfig",
    "WatchVerdict",
    "add_observer",
    "check_move",
    "gate",
    "run_gate",
    "sign_test_p",
    "simulate_false_promotion",
    "watch",
]
