"""DQN policies as a lifecycle kind (``dqn_policy``): RL workers for a scenario.

``produce`` trains a DQN on the gymnasium form of the scenario's environment
(``swarmlearn/<Kind>-v0`` with the scenario's ``[environment]`` parameters,
:mod:`swarmlearn.rl`) in a run directory under ``runs_dir``, stopping at
``steps`` or at the context's deadline. The payload is a small JSON record
that points at the run directory and holds the sha256 of every file of its
best checkpoint (safetensors + JSON), so a version whose files changed or
vanished is refused instead of silently run. ``evaluate`` runs the scenario
with ``rl`` workers acting greedily from that checkpoint on the held-out
seeds; the baseline (``None``) is the scenario's own workers. Consumers read
the champion with :func:`champion_policy_path` (a session then runs with
``workers.kind = "rl"`` and ``workers.policy_path`` = that directory), so
``apply`` and ``revert`` have nothing more to do.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from swarmlearn._config import check_range, from_mapping
from swarmlearn.core.scenario import Scenario, WorkerKind
from swarmlearn.errors import ArtifactError
from swarmlearn.lifecycle._gate import TaskResult
from swarmlearn.lifecycle._lifecycle import Lifecycle
from swarmlearn.lifecycle._protocol import HeldOutTasks, ProduceContext
from swarmlearn.lifecycle._records import ArtifactVersion, Lineage, Produced
from swarmlearn.store import Store
from swarmlearn.types import OutcomeKind

__all__ = ["DQN_KIND", "DQNPolicyKind", "champion_policy_path"]

DQN_KIND = "dqn_policy"
FORMAT_VERSION = 1

#: what worked on troubleshooting (docs/rl.md): a short horizon, 3-step returns
DEFAULT_DQN: Mapping[str, Any] = {
    "hidden": [64, 64], "learning_starts": 500, "train_freq": 4, "gradient_steps": 1,
    "target_update_interval": 250, "exploration_fraction": 0.4, "learning_rate": 1e-3,
    "exploration_final_eps": 0.05, "n_step": 3, "buffer_size": 20_000, "gamma": 0.9,
}


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file()}


def _run_dir(version: ArtifactVersion) -> Path:
    """The run directory of a version, checked against the digests it was stored with."""
    try:
        data = json.loads(version.payload.decode("utf-8"))
        path, digests = Path(data["run_dir"]), dict(data["best"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{version.label}: not a DQN policy record ({exc})") from exc
    best = path / "checkpoints" / "best"
    if not best.is_dir():
        raise ArtifactError(f"{version.label}: its checkpoint {best} is missing")
    if _digests(best) != digests:
        raise ArtifactError(f"{version.label}: the checkpoint files in {best} changed since "
                            f"the version was stored")
    return path


def champion_policy_path(store: Store, scenario: Scenario) -> Path | None:
    """The run directory of the scenario's champion DQN policy (None: no champion)."""
    champion = Lifecycle(store, DQN_KIND, scenario.label).champion()
    return _run_dir(champion) if champion is not None else None


class DQNPolicyKind:
    """See the module docstring."""

    name = DQN_KIND

    def __init__(self, scenario: Scenario, store: Store, *, strategy: str = "",
                 steps: int = 6000, runs_dir: str = ".swarmlearn/policies",
                 max_steps: int = 0, useless_penalty: float = 0.05,
                 dqn: Mapping[str, Any] | None = None) -> None:
        check_range("steps", steps, lo=100)
        self.scenario = scenario
        self.store = store
        self.scope = scenario.label
        self.steps = steps
        self.runs_dir = runs_dir
        self.max_steps = max_steps or scenario.limits.max_ticks
        self.useless_penalty = useless_penalty
        self.dqn = {**DEFAULT_DQN, **(dqn or {})}

    def __repr__(self) -> str:
        return f"DQNPolicyKind({self.scope})"

    def _run_config(self) -> Any:
        from swarmlearn.rl import DQNConfig, RunConfig, swarm_env_id

        return RunConfig(
            env_id=swarm_env_id(self.scenario.env_kind), steps=self.steps,
            eval_every=max(1000, self.steps // 4), eval_episodes=10, checkpoint_every=0,
            runs_dir=self.runs_dir, name=re.sub(r"[^A-Za-z0-9._\-]", "_", self.scope),
            env_kwargs={"params": dict(self.scenario.env_params), "max_steps": self.max_steps,
                        "useless_penalty": self.useless_penalty},
            dqn=from_mapping(DQNConfig, self.dqn, where="dqn"))

    def produce(self, ctx: ProduceContext) -> Produced:
        from swarmlearn.rl import Trainer

        config = self._run_config()
        trainer = Trainer.start(config)
        t0 = time.perf_counter()
        try:
            deadline = ctx.deadline
            result = trainer.run(should_stop=None if deadline is None
                                 else lambda: time.time() > deadline - 5.0)
        finally:
            trainer.close()
        run = trainer.run_dir
        best = run.best()
        if best is None:
            raise ArtifactError(f"{self.scope}: the DQN run {run.path} saved no best checkpoint")
        record = {"format_version": FORMAT_VERSION, "run_dir": str(run.path.resolve()),
                  "best": _digests(run.checkpoints_dir / "best"),
                  "best_score": best[0], "best_step": best[1]}
        return Produced(
            payload=json.dumps(record, sort_keys=True).encode("utf-8"),
            format_version=FORMAT_VERSION,
            summary={"run_dir": record["run_dir"], "best_score": best[0],
                     "steps": self.steps, "stopped": bool(result.stopped)},
            lineage=Lineage(parent=ctx.champion.id if ctx.champion else None,
                            inputs={"env_id": config.env_id,
                                    "env_params": dict(self.scenario.env_params)},
                            config={"steps": self.steps, "dqn": dict(self.dqn),
                                    "max_steps": self.max_steps},
                            metrics={"best_score": best[0], "best_step": best[1],
                                     "seconds": round(time.perf_counter() - t0, 2)}))

    def evaluate(self, version: ArtifactVersion | None, tasks: HeldOutTasks
                 ) -> list[TaskResult]:
        from swarmlearn.session import run_session

        sc = self.scenario
        if version is not None:
            sc = sc.override(workers={"kind": WorkerKind.RL.value,
                                      "policy_path": str(_run_dir(version))})
        run = run_session(sc, seeds=list(tasks.seeds), worker_seed=tasks.worker_seed,
                          store=None)
        return [TaskResult(e.seed, e.outcome.kind is OutcomeKind.SUCCESS, float(e.actions))
                for e in run.episodes]

    def apply(self, version: ArtifactVersion | None) -> None:
        """Check the champion's files (consumers read it with champion_policy_path)."""
        if version is not None:
            _run_dir(version)

    def revert(self, to: ArtifactVersion | None) -> None:
        """Nothing to undo: consumers read the champion alias."""
