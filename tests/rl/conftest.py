"""Optional peers as fixtures: a test that compares with PyTorch or SB3 asks for it.

Only the tests that take ``torch`` or ``sb3`` skip when it is missing; the
pure tests in the same modules still run.
"""

from __future__ import annotations

from types import ModuleType

import pytest


@pytest.fixture(scope="session")
def torch() -> ModuleType:
    """PyTorch (the reference for the MLP, Huber, clipping and Adam)."""
    return pytest.importorskip("torch")


@pytest.fixture(scope="session")
def sb3() -> ModuleType:
    """Stable-Baselines3 (the reference for schedules and counting); needs torch and gymnasium."""
    pytest.importorskip("torch")
    pytest.importorskip("gymnasium")
    return pytest.importorskip("stable_baselines3")


@pytest.fixture(scope="session")
def gym() -> ModuleType:
    """gymnasium (the rl extra): for tests that make or step gymnasium environments."""
    return pytest.importorskip("gymnasium")
