"""Oracles for the environment tests: solving sequences and irrecoverable mistakes.

They read an environment's hidden state, as only a test (or an oracle
baseline) may.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from swarmlearn.core.actions import Action
from swarmlearn.core.environment import BaseEnvironment
from swarmlearn.envs import (
    CodeExplorationEnv,
    InternalDiagnosisEnv,
    MazeEnv,
    SearchEnv,
    TroubleshootingEnv,
)
from swarmlearn.envs._maze_layout import STEPS, edge, step

Oracle = Callable[[BaseEnvironment], Sequence[Action]]

#: parameters under which ``mistakes`` can reach a Failure on every seed
FAILURE_PARAMS: dict[str, dict[str, Any]] = {
    "search": {"noise": 1.0, "depth": 1},
    "maze": {"doors": 0},
}


@pytest.fixture(scope="session")
def solution() -> Oracle:
    return solve


@pytest.fixture(scope="session")
def mistakes() -> Oracle:
    return fail


@pytest.fixture(scope="session")
def failure_params() -> dict[str, dict[str, Any]]:
    return FAILURE_PARAMS


def solve(env: BaseEnvironment) -> tuple[Action, ...]:
    """The shortest solving sequence of the current task."""
    if isinstance(env, TroubleshootingEnv):
        s = env.faulty
        evidence = [Action("ReadLogs", s), Action("AnalyzeMetrics", s)][: env.config.evidence]
        return (Action("CheckStatus", s), *evidence, Action("Diagnose", s), Action("Restart", s))
    assert isinstance(env, InternalDiagnosisEnv | CodeExplorationEnv | SearchEnv | MazeEnv)
    return env.solution()


def fail(env: BaseEnvironment) -> list[Action]:
    """A sequence that ends the current task in Failure (its irrecoverable mistake)."""
    if isinstance(env, TroubleshootingEnv):
        healthy = [s for s in env.services if s != env.faulty]
        return [Action("Restart", s) for s in healthy[: env.config.max_wrong_restarts]]
    if isinstance(env, InternalDiagnosisEnv):
        surface = env.chain[0]
        fixes = [Action("ApplyFix", env.code)] * env.config.max_wrong_fixes
        return [Action("ParseConfig", surface), Action("AnalyzeLog", surface), *fixes]
    if isinstance(env, CodeExplorationEnv):
        decoy = next(m for m in env.modules if m in env.mentions and m != env.bug)
        reports = [Action("ReportBug", decoy)] * env.config.max_wrong_reports
        return [Action("ListDir", "tests"), Action("ListDir", "src"),
                Action("RunTest", env.failing), Action("GrepSymbol", decoy), *reports]
    if isinstance(env, SearchEnv):
        return _corroborate_wrong(env)
    assert isinstance(env, MazeEnv)
    return _walk_into_pit(env)


def _corroborate_wrong(env: SearchEnv) -> list[Action]:
    for topic in env.topics:
        wrong = [d for d in env.docs[topic] if d in env.claims and env.claims[d] != env.answer]
        if len(wrong) >= env.config.corroboration:
            reads = [a for d in wrong[: env.config.corroboration]
                     for a in (Action("OpenResult", d), Action("ExtractFact", d))]
            return [Action("Query", topic), *reads, Action("Answer", "question")]
    raise LookupError("no topic with enough misleading documents")


def _walk_into_pit(env: MazeEnv) -> list[Action]:
    """Breadth-first over open passages (no doors) to a pit's neighbour, then into the pit."""
    prev: dict[tuple[int, int], tuple[tuple[int, int], str] | None] = {env.pos: None}
    queue = deque([env.pos])
    while queue:
        cell = queue.popleft()
        for d in STEPS:
            nxt, lay = step(cell, d), env.layout
            e = edge(cell, nxt)
            if e not in lay.passages or e in lay.doors or nxt == lay.exit:
                continue
            if nxt in lay.pits:
                path = [Action("Move", d)]
                back = prev[cell]
                while back is not None:
                    path.append(Action("Move", back[1]))
                    back = prev[back[0]]
                return path[::-1]
            if nxt not in prev:
                prev[nxt] = (cell, d)
                queue.append(nxt)
    raise LookupError("no reachable pit")
