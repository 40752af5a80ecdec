"""A sum tree (with a min tree beside it) for prioritized replay, vectorised in NumPy.

Leaves hold priorities; every inner node holds the sum (and the min) of its
children, so the root is the total priority and sampling proportional to
priority is a descent from the root: ``O(log N)`` per sample, done for a whole
batch at once with one NumPy operation per tree level.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from swarmlearn.errors import ArtifactError, ConfigError

__all__ = ["SumTree"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


class SumTree:
    """Priorities of ``capacity`` slots; ``find_prefix`` maps prefix sums to slots."""

    __slots__ = ("_depth", "_leaves", "capacity", "mins", "sums")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ConfigError(
                f"capacity: expected >= 1, got {capacity}", field="capacity", value=capacity
            )
        self.capacity = capacity
        leaves, depth = 1, 0
        while leaves < capacity:
            leaves *= 2
            depth += 1
        self._leaves = leaves
        self._depth = depth
        # Node 1 is the root; node k has children 2k and 2k+1; leaves are [leaves, 2*leaves).
        self.sums: F64 = np.zeros(2 * leaves, np.float64)
        self.mins: F64 = np.full(2 * leaves, np.inf, np.float64)

    @property
    def total(self) -> float:
        """Sum of all priorities."""
        return float(self.sums[1])

    @property
    def min(self) -> float:
        """Smallest priority among slots that were ever set (``inf`` when none)."""
        return float(self.mins[1])

    def get(self, slots: I64) -> F64:
        """The priorities of ``slots``."""
        return self.sums[np.asarray(slots, np.int64) + self._leaves]

    def update(self, slots: I64, priorities: F64) -> None:
        """Set the priorities of ``slots`` and recompute their ancestors.

        Duplicate slots are allowed; one of their values is kept and the tree
        stays consistent because parents are always recomputed from children.
        """
        nodes = np.asarray(slots, np.int64) + self._leaves
        if nodes.size == 0:
            return
        if np.any(nodes < self._leaves) or np.any(nodes >= self._leaves + self.capacity):
            raise IndexError(f"slot out of range [0, {self.capacity})")
        values = np.asarray(priorities, np.float64)
        if np.any(~np.isfinite(values)) or np.any(values <= 0):
            raise ValueError("priorities must be finite and > 0")
        self.sums[nodes] = values
        self.mins[nodes] = values
        for _ in range(self._depth):
            nodes = nodes // 2
            left = 2 * nodes
            self.sums[nodes] = self.sums[left] + self.sums[left + 1]
            self.mins[nodes] = np.minimum(self.mins[left], self.mins[left + 1])

    def find_prefix(self, prefix: F64, filled: int) -> I64:
        """The slot whose cumulative priority range holds each ``u`` of ``prefix`` (0 <= u < total).

        ``filled`` is how many slots hold data; float rounding at the right edge
        can never pick an empty slot beyond it.
        """
        u = np.array(prefix, np.float64, copy=True)
        nodes = np.ones(len(u), np.int64)
        for _ in range(self._depth):
            left = 2 * nodes
            left_sum = self.sums[left]
            go_right = u >= left_sum
            u -= np.where(go_right, left_sum, 0.0)
            nodes = left + go_right
        slots: I64 = nodes - self._leaves
        return np.minimum(slots, filled - 1)

    def state_dict(self) -> dict[str, Any]:
        """The leaf priorities (inner nodes are derived)."""
        return {"capacity": self.capacity, "leaves": self.sums[self._leaves :].copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`; ArtifactError when it does not fit."""
        leaves = np.asarray(state["leaves"], np.float64)
        if int(state["capacity"]) != self.capacity or leaves.shape != (self._leaves,):
            raise ArtifactError(
                f"sum tree of capacity {state['capacity']} does not fit capacity {self.capacity}"
            )
        self.sums[self._leaves :] = leaves
        self.mins[self._leaves :] = np.where(leaves > 0, leaves, np.inf)
        for level in range(self._depth - 1, -1, -1):
            lo, hi = 1 << level, 1 << (level + 1)
            self.sums[lo:hi] = self.sums[2 * lo : 2 * hi : 2] + self.sums[2 * lo + 1 : 2 * hi : 2]
            self.mins[lo:hi] = np.minimum(
                self.mins[2 * lo : 2 * hi : 2], self.mins[2 * lo + 1 : 2 * hi : 2]
            )
