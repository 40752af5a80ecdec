"""Lifecycle observers: told of every committed step, in order; a failing one changes nothing."""

from __future__ import annotations

import logging

import pytest

from swarmlearn.lifecycle import Lifecycle, Lineage, Produced, TaskResult, add_observer, gate
from swarmlearn.store import LogRecord, SqlStore


def _won() -> tuple[list[TaskResult], list[TaskResult]]:
    return [TaskResult(i, False, 0.0) for i in range(30)], [TaskResult(i, True, 5.0)
                                                             for i in range(30)]


def test_observers_see_every_step_and_a_failing_one_is_logged(
        tmp_path: object, caplog: pytest.LogCaptureFixture) -> None:
    store = SqlStore(f"sqlite:///{tmp_path}/s.db")
    seen: list[tuple[str, str, bool]] = []

    def observe(life: Lifecycle, rec: LogRecord) -> None:
        champion = life.champion(payload=False)  # the step is committed when we are told
        seen.append((rec.step, rec.status, champion is not None))

    def broken(life: Lifecycle, rec: LogRecord) -> None:
        raise RuntimeError("observer down")

    remove = add_observer(observe)
    remove_broken = add_observer(broken)
    try:
        life = Lifecycle(store, "snapshot", "t")
        v = life.start_evaluation(life.register(Produced(payload=b"{}", lineage=Lineage())))
        v = life.decide(v, gate(*_won()))
        life.rollback("fell")
    finally:
        remove()
        remove_broken()
    assert seen == [("produce", "", False), ("evaluate", "evaluating", False),
                    ("promote", "promoted", True), ("rollback", "retired", False)]
    assert life.log(limit=1)[0].data["to"] is None
    assert sum("observer down" in (r.exc_text or "") or "failed on" in r.getMessage()
               for r in caplog.records if r.levelno == logging.ERROR) == 4
    life.register(Produced(payload=b"{}"))  # removed: not told any more
    assert len(seen) == 4
    store.close()
