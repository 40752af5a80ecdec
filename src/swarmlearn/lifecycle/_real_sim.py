"""The gate's false-promotion rate on the real swarm: one artifact gated against itself.

A learning swarm runs ``learn_sessions`` recorded sessions of the scenario (an
in-memory store) and its statistics become the artifact. Each trial evaluates
that same artifact twice on a fresh block of held-out seeds — champion and
challenger differ only in their worker seed — and runs the gate. What the gate
promotes is a false promotion by construction.
"""

from __future__ import annotations

from swarmlearn.lifecycle._gate import GateConfig, gate
from swarmlearn.lifecycle._protocol import HeldOutTasks

__all__ = ["real_false_promotion"]


def real_false_promotion(scenario: str, variant: str, config: GateConfig, *, tasks: int = 40,
                         trials: int = 200, seed: int = 0, learn_sessions: int = 1,
                         strategy: str = "adaptive") -> tuple[int, int]:
    """(promotions, trials) of the gate on two equal artifacts of the real swarm."""
    from swarmlearn.core.scenario import load_scenario
    from swarmlearn.learn.kinds import evaluate_swarm, replay_stats
    from swarmlearn.learn.offline import policies_from
    from swarmlearn.session import run_session
    from swarmlearn.store import open_store

    sc = load_scenario(scenario, variant=variant).override(workers={"policy": strategy})
    with open_store(":memory:") as store:
        ids = [run_session(sc, store=store, seeds=list(range(10_000 + 10 * i, 10_010 + 10 * i)),
                           policies=policies_from(None, None, strategy)).session
               for i in range(learn_sessions)]
        stats, _, _ = replay_stats(store, ids)
    promoted = 0
    for t in range(trials):
        first = 900_000 + (seed * trials + t) * tasks
        seeds = tuple(range(first, first + tasks))
        a = evaluate_swarm(sc, HeldOutTasks(scope=sc.label, seeds=seeds, worker_seed=2 * t),
                           stats, None, strategy)
        b = evaluate_swarm(sc, HeldOutTasks(scope=sc.label, seeds=seeds, worker_seed=2 * t + 1),
                           stats, None, strategy)
        promoted += gate(a, b, config).promote
    return promoted, trials
