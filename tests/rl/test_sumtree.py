"""Properties of the prioritized-replay sum tree (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlearn.errors import ArtifactError
from swarmlearn.rl import PrioritizedSampler, SumTree

priority = st.floats(min_value=1e-6, max_value=1e3, allow_nan=False)


@st.composite
def trees(draw: st.DrawFn) -> tuple[SumTree, np.ndarray]:
    capacity = draw(st.integers(1, 70))
    tree = SumTree(capacity)
    leaves = np.zeros(capacity)
    for _ in range(draw(st.integers(1, 6))):
        slots = draw(st.lists(st.integers(0, capacity - 1), min_size=1, max_size=20))
        prios = draw(st.lists(priority, min_size=len(slots), max_size=len(slots)))
        tree.update(np.array(slots), np.array(prios))
        for s in slots:
            leaves[s] = tree.get(np.array([s]))[0]
            assert leaves[s] in prios
    return tree, leaves


@given(trees())
@settings(max_examples=200, deadline=None)
def test_root_is_the_sum_and_min_of_the_leaves(case: tuple[SumTree, np.ndarray]) -> None:
    tree, leaves = case
    np.testing.assert_allclose(tree.total, leaves.sum(), rtol=1e-12)
    assert tree.min == leaves[leaves > 0].min()


@given(trees(), st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=30))
@settings(max_examples=200, deadline=None)
def test_find_prefix_lands_in_the_slot_whose_range_holds_u(
    case: tuple[SumTree, np.ndarray], fractions: list[float]
) -> None:
    tree, leaves = case
    filled = int(np.nonzero(leaves)[0].max()) + 1
    u = np.array(fractions) * tree.total
    slots = tree.find_prefix(u, filled)
    cumsum = np.cumsum(leaves)
    tol = 1e-9 * tree.total
    for value, slot in zip(u, slots, strict=True):
        assert 0 <= slot < filled
        assert leaves[slot] > 0, "a slot with zero priority can never be drawn"
        lo = cumsum[slot] - leaves[slot]
        assert lo - tol <= value <= cumsum[slot] + tol


@given(trees())
@settings(max_examples=50, deadline=None)
def test_state_round_trip_rebuilds_inner_nodes(case: tuple[SumTree, np.ndarray]) -> None:
    tree, _ = case
    copy = SumTree(tree.capacity)
    copy.load_state_dict(tree.state_dict())
    np.testing.assert_array_equal(copy.sums, tree.sums)
    np.testing.assert_array_equal(copy.mins, tree.mins)


def test_sampling_frequency_is_proportional_to_priority() -> None:
    tree = SumTree(4)
    tree.update(np.arange(4), np.array([1.0, 2.0, 3.0, 4.0]))
    rng = np.random.default_rng(0)
    u = rng.random(100_000) * tree.total
    counts = np.bincount(tree.find_prefix(u, 4), minlength=4) / 100_000
    np.testing.assert_allclose(counts, [0.1, 0.2, 0.3, 0.4], atol=0.01)


def test_bad_updates_and_states_are_refused() -> None:
    tree = SumTree(3)
    with pytest.raises(IndexError):
        tree.update(np.array([3]), np.array([1.0]))
    with pytest.raises(ValueError):
        tree.update(np.array([0]), np.array([0.0]))
    with pytest.raises(ArtifactError):
        SumTree(5).load_state_dict(tree.state_dict())


def test_prioritized_sampler_prefers_large_td_errors_and_weights_them_down() -> None:
    sampler = PrioritizedSampler(8, alpha=1.0, eps=1e-6)
    sampler.on_add(np.arange(8))
    sampler.update(np.arange(8), np.array([1.0] * 7 + [10.0], np.float32))
    slots, weights = sampler.sample(np.random.default_rng(0), 68, 8, beta=1.0)
    assert (slots == 7).mean() == pytest.approx(10 / 17, abs=0.02)  # stratified: nearly exact
    assert weights[slots == 7].max() < weights[slots != 7].min()
    assert weights.max() <= 1.0 + 1e-6
    assert sampler.max_priority == pytest.approx(10.0 + 1e-6)
