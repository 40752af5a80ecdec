"""The skill document as a lifecycle artifact: :class:`SkillKind`, and :class:`LiveSkill`,
which hands the current champion to LLM workers without a restart.

:class:`SkillKind` implements :class:`swarmlearn.lifecycle.ArtifactKind`
(kind ``skill``, scope: the environment's name, the scenario label for a swarm):

* ``produce`` runs the skill optimizer from the champion's skill (or the
  initial one) in a run directory named after that champion, so a produce that
  was killed is resumed exactly by the next one; the payload is JSON — the
  best skill and every skill the run accepted, each with its parent and
  validation numbers — and the lineage names the splits, the config, the calls
  and tokens spent and the final test;
* ``evaluate`` runs a version's skill (``None``: the empty skill) on the
  held-out task seeds with the target client (an environment that has only its
  own tasks, a QA set, on its test split); an outage raises, it is never a
  failed task;
* ``apply`` / ``revert`` have nothing to do: workers read the champion alias.

:func:`skill_kind` builds one for the learning daemon from a scenario
(``[levels.skill] kind = "swarmlearn.skills:skill_kind"``, ``url = …``).

:class:`LiveSkill` is that reader: a callable an
:class:`~swarmlearn.llm.worker.LLMWorker` takes as ``skill_source`` (the workers of a
session with a store get one), asking the store at most every ``poll_s``
seconds which version is champion. Workers read it at the start of each
episode, so a promotion reaches a running swarm at its next episode.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from swarmlearn._config import to_mapping
from swarmlearn.core.scenario import Scenario
from swarmlearn.errors import ArtifactError, ConfigError, StoreError, TrainingError
from swarmlearn.lifecycle import (
    Alias,
    ArtifactVersion,
    HeldOutTasks,
    Lineage,
    ProduceContext,
    Produced,
    TaskResult,
)
from swarmlearn.llm import LLMClient
from swarmlearn.skills._edits import skill_hash
from swarmlearn.skills._env import SkillEnv, Split
from swarmlearn.skills._optimizer import SkillOptConfig, SkillOptimizer, SkillRun
from swarmlearn.skills._rollout import rollout
from swarmlearn.store import Store

__all__ = ["FORMAT_VERSION", "SKILL_KIND", "LiveSkill", "SkillKind", "decode_skill",
           "encode_skill", "skill_kind"]

logger = logging.getLogger(__name__)

SKILL_KIND = "skill"
FORMAT_VERSION = 1


def encode_skill(skill: str, run: SkillRun | None = None) -> bytes:
    """The payload of a skill version: the text, and the accepted versions of its run."""
    body: dict[str, Any] = {"format_version": FORMAT_VERSION, "skill": skill,
                            "hash": skill_hash(skill)}
    if run is not None:
        body["versions"] = run.versions
    return json.dumps(body, sort_keys=True).encode("utf-8")


def decode_skill(version: ArtifactVersion | None) -> str:
    """The skill text of ``version`` (``None``: the empty skill); ArtifactError if malformed."""
    if version is None:
        return ""
    try:
        body = json.loads(version.payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ArtifactError(f"{version.label}: the payload is not JSON ({exc})") from exc
    if not isinstance(body, Mapping) or body.get("format_version") != FORMAT_VERSION \
            or not isinstance(body.get("skill"), str):
        raise ArtifactError(f"{version.label}: not a skill payload of format {FORMAT_VERSION}")
    return str(body["skill"])


class SkillKind:
    """Skill documents in the artifact lifecycle (module docstring)."""

    name = SKILL_KIND

    def __init__(self, env: SkillEnv, *, target: LLMClient, optimizer: LLMClient,
                 run_root: str | Path, config: SkillOptConfig | None = None,
                 scope: str = "", initial_skill: str = "") -> None:
        self.env = env
        self.scope = scope or env.name
        self.target, self.optimizer = target, optimizer
        self.run_root = Path(run_root)
        self.config = config or SkillOptConfig()
        self.initial_skill = initial_skill

    def __repr__(self) -> str:
        return f"SkillKind({self.scope!r})"

    def produce(self, ctx: ProduceContext) -> Produced:
        start = decode_skill(ctx.champion) if ctx.champion is not None else self.initial_skill
        parent = ctx.champion.id if ctx.champion is not None else None
        run_dir = self.run_root / f"from-{parent or 0}-{skill_hash(start)}"
        run = SkillOptimizer(self.env, target=self.target, optimizer=self.optimizer,
                             run_dir=run_dir, config=self.config, initial_skill=start).train()
        if run.status != "done":
            raise TrainingError(f"skill run {run_dir} stopped ({run.status}): "
                                f"{run.failures[-1]['detail'] if run.failures else ''}")
        val = run.versions[-1] if run.versions else {}
        summary = {"hash": skill_hash(run.best), "chars": len(run.best),
                   "best_step": run.best_step, "accepted": len(run.versions) - 1,
                   "val_score": val.get("val_score")}
        lineage = Lineage(
            parent=parent,
            inputs={"env": self.env.name, "run_dir": str(run_dir),
                    **{s.value: list(self.env.tasks(s)) for s in (Split.TRAIN, Split.VAL)}},
            config=to_mapping(self.config),
            metrics={"calls": run.usage.calls, "tokens": run.usage.tokens,
                     "steps": run.step, "test": run.test})
        return Produced(payload=encode_skill(run.best, run), format_version=FORMAT_VERSION,
                        summary=summary, lineage=lineage)

    def evaluate(self, version: ArtifactVersion | None,
                 tasks: HeldOutTasks) -> Sequence[TaskResult]:
        trajectories = rollout(self.env, self._seeds(tasks), decode_skill(version), self.target,
                               concurrency=self.config.concurrency,
                               retries=self.config.retries, pause_s=self.config.retry_pause_s)
        return [t.result() for t in trajectories]

    def _seeds(self, tasks: HeldOutTasks) -> Sequence[int]:
        """The gate's fresh seeds where the environment runs any seed (a swarm); else its
        test split (a QA set has only its items)."""
        if getattr(self.env, "open_tasks", False):
            return tasks.seeds
        test = self.env.tasks(Split.TEST)
        if not test:
            raise ConfigError(f"{self.env.name}: the test split is empty; a gate needs "
                              "held-out tasks", field="test_fraction")
        return test

    def apply(self, version: ArtifactVersion | None) -> None:
        logger.info("skill %s: in use at the workers' next episode (LiveSkill)",
                    version.label if version is not None else "(empty)")

    def revert(self, to: ArtifactVersion | None) -> None:
        self.apply(to)


def skill_kind(scenario: Scenario, store: Store, *, url: str = "http://127.0.0.1:8080",
               optimizer_url: str = "", run_root: str = ".swarmlearn/skill-runs",
               first_seed: int = 50_000, train: int = 8, val: int = 8, workers: int = 0,
               max_ticks: int = 0, **optimize: Any) -> SkillKind:
    """The daemon's builder (``[levels.skill] kind = "swarmlearn.skills:skill_kind"``):
    the LLM workers' skill of ``scenario`` (scope: its label, which the workers'
    :class:`LiveSkill` reads), optimized on ``train``/``val`` seeds from ``first_seed``
    with the target at ``url`` and the optimizer at ``optimizer_url`` (default: the
    same); other options are :class:`SkillOptConfig` fields. ``store`` is unused: the
    tasks are played, not read from the record."""
    from swarmlearn.llm import HttpLLMClient, LLMClientConfig
    from swarmlearn.skills._swarm import SwarmSkillEnv, SwarmTasksConfig

    del store
    env = SwarmSkillEnv(SwarmTasksConfig(scenario=scenario.name, first_seed=first_seed,
                                         train=train, val=val, test=0, workers=workers,
                                         max_ticks=max_ticks), scenario=scenario)
    target = HttpLLMClient(LLMClientConfig(base_url=url))
    opt = HttpLLMClient(LLMClientConfig(base_url=optimizer_url)) if optimizer_url else target
    return SkillKind(env, target=target, optimizer=opt, run_root=run_root,
                     config=SkillOptConfig.from_mapping(optimize))


class LiveSkill:
    """The champion skill of ``scope``, for ``LLMWorker(skill_source=...)`` (module docstring).

    ``default`` is used while there is no champion. A store that cannot be read
    keeps the last skill read (logged), so a database hiccup does not stop the
    workers.
    """

    def __init__(self, store: Store, scope: str, *, poll_s: float = 1.0,
                 default: str = "") -> None:
        self.store, self.scope, self.poll_s = store, scope, poll_s
        self._lock = threading.Lock()
        self._checked = -float("inf")
        self._id: int | None = None
        self._skill = default
        self.default = default
        self.version: int | None = None  # the champion's version number, if any

    def __call__(self) -> str:
        with self._lock:
            now = time.monotonic()
            if now - self._checked >= self.poll_s:
                self._checked = now
                self._refresh()
            return self._skill

    def _refresh(self) -> None:
        try:
            champ = next((a for a in self.store.aliases(SKILL_KIND, self.scope)
                          if a.alias == Alias.CHAMPION), None)
            if champ is None:
                self._id, self._skill, self.version = None, self.default, None
            elif champ.artifact_id != self._id:
                version = ArtifactVersion(self.store.get_artifact_by_id(champ.artifact_id))
                self._skill = decode_skill(version)
                self._id, self.version = champ.artifact_id, version.version
                logger.info("skill %s: now in use", version.label)
        except (StoreError, ArtifactError) as exc:
            logger.warning("skill champion of %s not read (%s); keeping the last one",
                           self.scope, exc)
