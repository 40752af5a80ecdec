"""Stage 1, rollout: run a batch of tasks with one skill, in parallel, bounded.

At most ``concurrency`` tasks run at once. A task whose target call fails
(:class:`~swarmlearn.errors.BackendError`: the server is down, timed out or
answered nonsense) is retried ``retries`` times with a growing pause; if it
still fails the whole batch raises :class:`RolloutOutage` naming the tasks.
An outage is never scored as a failed task: a score of 0.0 from a dead server
would teach the optimizer to "fix" a skill that was not at fault.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from swarmlearn.errors import BackendError
from swarmlearn.llm import LLMClient
from swarmlearn.skills._env import SkillEnv, Trajectory

__all__ = ["RolloutOutage", "rollout"]

logger = logging.getLogger(__name__)


class RolloutOutage(BackendError):
    """Target calls kept failing during a rollout; ``tasks`` are the ones that failed."""

    def __init__(self, message: str, tasks: Sequence[int]) -> None:
        super().__init__(message)
        self.tasks = tuple(tasks)


def _run_one(env: SkillEnv, task: int, skill: str, client: LLMClient, retries: int,
             pause_s: float) -> Trajectory | BackendError:
    for attempt in range(retries + 1):
        try:
            return env.run(task, skill, client)
        except BackendError as exc:
            if attempt == retries:
                return exc
            logger.warning("task %d: %s; retry %d/%d", task, exc, attempt + 1, retries)
            time.sleep(pause_s * (2**attempt))
    raise AssertionError("unreachable")


def rollout(env: SkillEnv, tasks: Sequence[int], skill: str, client: LLMClient, *,
            concurrency: int = 4, retries: int = 2, pause_s: float = 0.5) -> list[Trajectory]:
    """One trajectory per task, in the order of ``tasks``; RolloutOutage if any call failed."""
    if not tasks:
        return []
    workers = max(1, min(concurrency, len(tasks)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="skill-rollout") as pool:
        results = list(pool.map(lambda t: _run_one(env, t, skill, client, retries, pause_s),
                                tasks))
    failed = [(t, r) for t, r in zip(tasks, results, strict=True)
              if isinstance(r, BackendError)]
    if failed:
        first = failed[0][1]
        raise RolloutOutage(f"{len(failed)} of {len(tasks)} tasks failed after {retries} "
                            f"retries: {type(first).__name__}: {first}",
                            [t for t, _ in failed]) from first
    return [r for r in results if isinstance(r, Trajectory)]
