"""Curtailed validation never decides otherwise than the full gate; the memory's credit
assignment for rejected bundles."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from swarmlearn.lifecycle import GateConfig, TaskResult, gate
from swarmlearn.skills import Edit, EditOp, Source
from swarmlearn.skills import _memory as memory
from swarmlearn.skills._curtail import Verdict, unbeatable, validation_order, verdict


def _case(rng: random.Random) -> tuple[list[TaskResult], list[TaskResult], int, int,
                                        GateConfig]:
    n = rng.randint(1, 14)
    p_champ, p_chal = rng.random(), rng.random()
    a = [TaskResult(i, rng.random() < p_champ, rng.choice([0.0, 0.5, 1.0])) for i in range(n)]
    b = [TaskResult(i, rng.random() < p_chal, rng.choice([0.0, 0.5, 1.0])) for i in range(n)]
    cut = rng.randint(0, n)
    return a, b, cut, rng.randint(0, n - cut), GateConfig(alpha=rng.choice([0.05, 0.25]),
                                                          min_tasks=rng.randint(1, 8))


@pytest.mark.parametrize("floor", [None, 0.0])  # every cost drawn is >= 0.0: a true floor
def test_a_curtailed_verdict_is_the_full_decision(floor: float | None) -> None:
    rng = random.Random(0)
    seen: Counter[tuple[Verdict, bool]] = Counter()
    sooner = 0  # early rejections only the floor allowed
    for _ in range(4000):
        a, b, cut, known, cfg = _case(rng)
        full = gate(a, b, cfg).promote
        ran, rest = list(range(cut)), list(range(cut, len(a)))
        champion = {t: a[t] for t in ran + rest[:known]}  # the champion may not have run all
        v, why = verdict(champion, {t: b[t] for t in ran}, rest, cfg, floor)
        sooner += v is Verdict.REJECT and verdict(
            champion, {t: b[t] for t in ran}, rest, cfg)[0] is Verdict.OPEN
        seen[v, bool(rest)] += 1
        if v is Verdict.PROMOTE:
            assert full, why
        elif v is Verdict.REJECT:
            assert not full, why
        if not rest:  # everything run: the verdict is the decision
            assert v is (Verdict.PROMOTE if full else Verdict.REJECT)
    # early verdicts of both kinds happened (the property is not vacuous)
    assert seen[Verdict.PROMOTE, True] > 50 and seen[Verdict.REJECT, True] > 50
    assert (sooner > 50) if floor is not None else sooner == 0


def test_a_task_solved_at_the_floor_cannot_be_won() -> None:
    champion = {t: TaskResult(t, True, 0.0) for t in range(6)} | {6: TaskResult(6, False, 1.0)}
    cfg = GateConfig(alpha=0.25, min_tasks=1)
    lost = {0: TaskResult(0, False, 1.0)}
    # without the floor, winning all six left would still pass; with it only task 6 is left
    assert verdict(champion, lost, list(range(1, 7)), cfg)[0] is Verdict.OPEN
    v, why = verdict(champion, lost, list(range(1, 7)), cfg, floor=0.0)
    assert v is Verdict.REJECT and "at best 1 wins against 1 losses" in why
    assert unbeatable(champion[0], 0.0) and not unbeatable(champion[0], None)
    assert not unbeatable(champion[6], 0.0)
    assert not unbeatable(TaskResult(7, True, 0.5), 0.0)


def test_order_puts_the_champions_solved_tasks_first() -> None:
    champion = {1: TaskResult(1, False, 1.0), 2: TaskResult(2, True, 0.0)}
    assert validation_order(champion, [1, 2, 3]) == [2, 1, 3]


def _e(text: str, source: Source = Source.FAILURE) -> Edit:
    return Edit(op=EditOp.APPEND, content=text, source=source)


def test_a_rejected_bundle_makes_suspects_tried_alone_later() -> None:
    good, bad, new = _e("good"), _e("bad", Source.SUCCESS), _e("new")
    mem: list[dict[str, Any]] = []
    memory.record_rejection(mem, [good, bad], step=1)
    assert memory.rejected_keys(mem) == set()  # nobody is blamed yet
    assert memory.suspect_keys(mem) == {good.key, bad.key}
    assert memory.isolate([good, new, bad], mem, "") == ([new], [good, bad])
    assert memory.isolate([bad, good], mem, "") == ([good], [bad])  # failure-driven first
    # not proposed again, a suspect is still tried alone when nothing unsuspected is
    assert memory.isolate([bad], mem, "") == ([good], [bad])
    assert memory.isolate([], mem, "") == ([good], [])
    assert memory.isolate([], mem, "good\n") == ([bad], [])  # good no longer applies
    memory.clear(mem, [good])  # accepted alone: innocent
    assert memory.suspect_keys(mem) == {bad.key}
    memory.record_rejection(mem, [bad], step=3)
    assert memory.rejected_keys(mem) == {bad.key} and not memory.suspect_keys(mem)
    assert "together" not in memory.shown(mem, 5)[0]
