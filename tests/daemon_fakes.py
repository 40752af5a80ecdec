"""Scripted artifact kinds for the daemon's tests (importable by the daemon's child processes).

Levels use them as ``kind = "daemon_fakes:build"`` with options:
``quality`` (the solve rate its versions show on held-out tasks), ``mode``
(``ok`` | ``raise`` | ``exit`` | ``hang``), ``eval_sleep`` (seconds per evaluation),
``burn`` (CPU-seconds its ``produce`` spends, in the trainer child, before it returns).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from swarmlearn.lifecycle import (
    ArtifactVersion,
    HeldOutTasks,
    Lineage,
    ProduceContext,
    Produced,
    TaskResult,
)

BASELINE_QUALITY = 0.3


def _solves(seed: int, quality: float) -> bool:
    return (seed * 2654435761 % 1000) / 1000 < quality


class ScriptedKind:
    name = "fake_kind"

    def __init__(self, scenario: Any, store: Any, *, quality: float = 0.9, mode: str = "ok",
                 eval_sleep: float = 0.0, burn: float = 0.0, strategy: str = "",
                 name: str = "fake_kind") -> None:
        self.name, self.scope = name, scenario.label
        self.quality, self.mode, self.eval_sleep, self.burn = quality, mode, eval_sleep, burn
        self.applied: list[int | None] = []

    def produce(self, ctx: ProduceContext) -> Produced:
        if self.mode == "raise":
            raise RuntimeError("the trainer exploded")
        if self.mode == "exit":
            os._exit(3)
        if self.mode == "hang":
            Path = __import__("pathlib").Path
            Path(os.environ["FAKE_TRAINER_PIDFILE"]).write_text(str(os.getpid()))
            time.sleep(3600)
        end = time.process_time() + self.burn
        while time.process_time() < end:
            pass
        return Produced(payload=json.dumps({"quality": self.quality}).encode(),
                        summary={"quality": self.quality},
                        lineage=Lineage(inputs={"since": ctx.since_episode}))

    def evaluate(self, version: ArtifactVersion | None, tasks: HeldOutTasks) -> list[TaskResult]:
        time.sleep(self.eval_sleep)
        q = json.loads(version.payload)["quality"] if version is not None else BASELINE_QUALITY
        return [TaskResult(s, _solves(s, q), 10.0) for s in tasks.seeds]

    def apply(self, version: ArtifactVersion | None) -> None:
        self.applied.append(version.id if version else None)

    def revert(self, to: ArtifactVersion | None) -> None:
        self.applied.append(to.id if to else None)


def build(scenario: Any, store: Any, **options: Any) -> ScriptedKind:
    return ScriptedKind(scenario, store, **options)
