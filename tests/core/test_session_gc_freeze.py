"""The first session of a process moves the start-up heap out of the collector's way."""

from __future__ import annotations

import gc

import pytest

from swarmlearn import session
from swarmlearn.core.scenario import load_scenario


@pytest.fixture
def fresh_process(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """As if no session had run in this process yet; the freeze is undone afterwards."""
    gc.unfreeze()
    monkeypatch.setattr(session, "_frozen", False)
    yield
    gc.unfreeze()


def test_first_session_freezes_the_startup_heap_once(fresh_process: None) -> None:
    assert gc.get_freeze_count() == 0
    session.run_session(load_scenario("troubleshooting"), episodes=1, seed=0)
    frozen = gc.get_freeze_count()
    assert frozen > 1000  # modules, classes, the libraries' objects
    session.run_session(load_scenario("troubleshooting"), episodes=1, seed=0)
    assert gc.get_freeze_count() == frozen  # once per process: later sessions collect as usual


def test_freeze_can_be_turned_off(fresh_process: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWARMLEARN_GC_FREEZE", "0")
    session.run_session(load_scenario("troubleshooting"), episodes=1, seed=0)
    assert gc.get_freeze_count() == 0
