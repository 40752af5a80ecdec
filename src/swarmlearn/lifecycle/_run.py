"""Gating one registered version: evaluate both sides on fresh held-out tasks, decide, apply.

:func:`run_gate` is the step every kind shares (the daemon and ``swarmlearn
daemon artifacts gate`` call it). A failure while evaluating marks the version
rejected with the reason and re-raises; a failure while applying a promoted
version rolls the promotion back (the previous champion is reverted to) and
re-raises, so what is live always matches the ``champion`` alias.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from swarmlearn.lifecycle._gate import GateDecision, gate
from swarmlearn.lifecycle._lifecycle import Lifecycle
from swarmlearn.lifecycle._protocol import ArtifactKind
from swarmlearn.lifecycle._records import ArtifactVersion

__all__ = ["GateRun", "run_gate"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GateRun:
    version: ArtifactVersion  # the challenger, as it ended (promoted or rejected)
    decision: GateDecision
    champion: ArtifactVersion | None  # the champion it was compared with (None: baseline)


def run_gate(life: Lifecycle, kind: ArtifactKind, version: ArtifactVersion, *,
             tasks: int = 40, worker_seed: int = 0) -> GateRun:
    """Gate ``version`` against the champion of ``life`` on ``tasks`` fresh held-out seeds."""
    version = life.start_evaluation(version)
    held = life.held_out_tasks(tasks, worker_seed=worker_seed)
    champion = life.champion()
    pair = getattr(kind, "evaluate_pair", None)  # a kind that can run both sides at once
    try:
        if pair is not None:
            base_seq, chal_seq = pair(champion, version, held)
            base, chal = list(base_seq), list(chal_seq)
        else:
            base = list(kind.evaluate(champion, held))
            chal = list(kind.evaluate(version, held))
    except BaseException as exc:
        life.fail(version, f"evaluation failed: {type(exc).__name__}: {exc}")
        raise
    decision = gate(base, chal, life.config.gate)
    results = {"champion": [list(r) for r in base], "challenger": [list(r) for r in chal],
               "champion_version": champion.version if champion else None,
               "seeds": [held.seeds[0], held.seeds[-1]], "worker_seed": worker_seed}
    version = life.decide(version, decision, results=results)
    if decision.promote:
        try:
            kind.apply(version)
        except BaseException as exc:
            back = life.rollback(f"apply failed: {type(exc).__name__}: {exc}", automatic=True)
            kind.revert(back)
            raise
    return GateRun(version, decision, champion)
