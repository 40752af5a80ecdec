"""Differential privacy for the federation: clipping, Gaussian noise, accounting.

Central DP with client-side clipping (DP-FedAvg, McMahan et al. 2018): each
node's update Δ (its new values minus the global ones it was sent) is clipped
to L2 norm ``clip`` on the node, so adding or removing one node changes the
sum of the updates by at most ``clip``. The server adds Gaussian noise of
standard deviation σ = z·C to that sum (or each node to its own update, for
local DP) and divides by a *fixed* denominator — the expected number of nodes
a round, never the number that answered, which would itself leak. A node
that crashes contributes a zero update, which the bound already covers.

The privacy spent is accounted with Google's ``dp-accounting`` (RDP):
each round composes ``PoissonSampledDpEvent(q, GaussianDpEvent(z))``
(``GaussianDpEvent(z)`` when every node takes part, q = 1). The unit of
privacy (``unit``) is by default a **node**: everything a node contributes, all
its episodes. With ``unit = "episode"`` each episode's contribution is clipped
to C instead (the node then plays every episode of a round from the released
statistics alone, so one episode cannot change the others' contributions), and
the guarantee is about one episode: weaker, for the same ε, and far less noise
relative to the signal.
:func:`noise_for_epsilon` finds the z that spends a target ε in a given
number of rounds.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

from swarmlearn._config import check_range
from swarmlearn._extras import require
from swarmlearn.errors import ConfigError

__all__ = [
    "DpConfig",
    "DpMode",
    "DpUnit",
    "PrivacyLedger",
    "PrivacySpent",
    "add_noise",
    "clip_update",
    "denoise",
    "epsilon_for",
    "l2_norm",
    "noise_for_epsilon",
]

F64 = npt.NDArray[np.float64]


class DpUnit(enum.StrEnum):
    NODE = "node"  # a node's whole update is clipped: protects everything a node has
    EPISODE = "episode"  # each episode's contribution is clipped: protects one episode


class DpMode(enum.StrEnum):
    OFF = "off"
    CENTRAL = "central"  # nodes clip, the server adds noise to the sum
    LOCAL = "local"  # nodes clip and add noise themselves (the server sees only noisy updates)


@dataclass(frozen=True, kw_only=True, slots=True)
class DpConfig:
    """``clip`` C; ``noise_multiplier`` z (σ = z·C), or ``target_epsilon`` to derive z
    for ``rounds`` rounds at sampling rate ``sample_rate``; ``budget_epsilon`` stops the
    federation before a round that would spend more."""

    mode: DpMode = DpMode.OFF
    unit: DpUnit = DpUnit.NODE
    clip: float = 1.0
    noise_multiplier: float | None = None
    target_epsilon: float | None = None
    delta: float = 1e-5
    budget_epsilon: float | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "mode", DpMode(self.mode))
        except ValueError:
            raise ConfigError(f"dp.mode: expected one of {', '.join(DpMode)}, got {self.mode!r}",
                              field="dp.mode", value=self.mode) from None
        try:
            object.__setattr__(self, "unit", DpUnit(self.unit))
        except ValueError:
            raise ConfigError(f"dp.unit: expected one of {', '.join(DpUnit)}, got {self.unit!r}",
                              field="dp.unit", value=self.unit) from None
        check_range("dp.clip", self.clip, lo=0.0, lo_open=True)
        check_range("dp.delta", self.delta, lo=0.0, hi=0.1, lo_open=True)
        if self.noise_multiplier is not None:
            check_range("dp.noise_multiplier", self.noise_multiplier, lo=0.0, lo_open=True)
        if self.target_epsilon is not None:
            check_range("dp.target_epsilon", self.target_epsilon, lo=0.0, lo_open=True)
        if self.budget_epsilon is not None:
            check_range("dp.budget_epsilon", self.budget_epsilon, lo=0.0, lo_open=True)
        if self.mode is not DpMode.OFF and (self.noise_multiplier is None) == (
            self.target_epsilon is None
        ):
            raise ConfigError("dp: give exactly one of noise_multiplier and target_epsilon",
                              field="dp.noise_multiplier")

    @property
    def enabled(self) -> bool:
        return self.mode is not DpMode.OFF

    def resolve(self, *, rounds: int, sample_rate: float) -> DpConfig:
        """This config with ``noise_multiplier`` derived from ``target_epsilon`` (which
        becomes the budget unless one is given)."""
        if not self.enabled or self.noise_multiplier is not None:
            return self
        assert self.target_epsilon is not None
        z = noise_for_epsilon(self.target_epsilon, rounds=rounds, sample_rate=sample_rate,
                              delta=self.delta)
        budget = self.budget_epsilon if self.budget_epsilon is not None else self.target_epsilon
        return DpConfig(mode=self.mode, unit=self.unit, clip=self.clip, noise_multiplier=z,
                        delta=self.delta, budget_epsilon=budget)

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode.value, "unit": self.unit.value, "clip": self.clip,
                "noise_multiplier": self.noise_multiplier,
                "target_epsilon": self.target_epsilon, "delta": self.delta,
                "budget_epsilon": self.budget_epsilon}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DpConfig:
        return cls(**{k: data[k] for k in cls.__slots__ if k in data})


# -- the mechanism: pure functions ---------------------------------------------------------
def l2_norm(arrays: Sequence[npt.NDArray[Any]]) -> float:
    """The L2 norm of all ``arrays`` taken together as one vector."""
    return math.sqrt(sum(float(np.dot(a.ravel(), a.ravel())) for a in arrays))


def clip_update(update: Sequence[npt.NDArray[Any]], clip: float) -> tuple[list[F64], float]:
    """``update`` scaled by min(1, clip / ‖update‖₂), and the norm before clipping.

    A non-finite update (NaN or ±inf anywhere) becomes zero: it cannot be scaled
    to a bounded norm, and zero is within the bound the accountant assumes.
    """
    arrays = [np.asarray(a, dtype=np.float64) for a in update]
    norm = l2_norm(arrays)
    if not math.isfinite(norm):
        return [np.zeros_like(a) for a in arrays], norm
    scale = min(1.0, clip / norm) if norm > 0 else 1.0
    return [a * scale for a in arrays], norm


def add_noise(arrays: Sequence[npt.NDArray[Any]], std: float,
              rng: np.random.Generator) -> list[F64]:
    """``arrays`` plus independent N(0, std²) noise on every coordinate."""
    return [np.asarray(a, dtype=np.float64) + rng.normal(0.0, std, np.shape(a)) for a in arrays]


def denoise(total: Sequence[npt.NDArray[Any]], mine: Sequence[npt.NDArray[Any]],
            sent: Sequence[npt.NDArray[Any]], noise_std: float, *,
            groups: Sequence[npt.NDArray[np.int64] | None] | None = None,
            false_keys: float = 0.001) -> list[F64]:
    """A node's view of noisy federated counts (post-processing: no privacy cost).

    ``total`` is the released sum (everyone's clipped updates plus noise of std
    ``noise_std`` per coordinate, accumulated over the rounds); ``sent`` what this
    node put into it, ``mine`` its own exact, unclipped counts. The others' part,
    ``total - sent``, is read in pairs of coordinates (a key's success and failure
    weight) gathered in ``groups`` (one id per pair, per array; default: every pair
    its own group; :meth:`SnapshotCodec.groups` puts the actions of one context
    together, as a bandit needs them together). A group is kept when its sum stands
    above the noise — above k·√(coordinates)·std, with k such that pure noise passes
    for ``false_keys`` groups of the whole vector on average (a false group is shared
    by every node, so the rate is per vector) — and clamped at 0; the node's own
    counts are added back exactly. With no noise, this is ``total`` again.
    """
    out: list[F64] = []
    for i, (t, m, s) in enumerate(zip(total, mine, sent, strict=True)):
        others = np.asarray(t, np.float64) - np.asarray(s, np.float64)
        if noise_std > 0:
            pairs = others.reshape(-1, 2) if others.size % 2 == 0 else others.reshape(-1, 1)
            g = groups[i] if groups is not None else None
            ids = np.arange(pairs.shape[0]) if g is None else np.asarray(g, np.int64)
            n_groups = int(ids.max()) + 1 if ids.size else 0
            size = np.bincount(ids, minlength=n_groups) * pairs.shape[1]
            sums = np.bincount(ids, weights=pairs.sum(axis=1), minlength=n_groups)
            k = NormalDist().inv_cdf(1.0 - false_keys / max(1, n_groups))
            passed = sums > k * np.sqrt(np.maximum(size, 1)) * noise_std
            others = np.maximum(pairs * passed[ids][:, None], 0.0).reshape(others.shape)
        out.append(np.asarray(m, np.float64) + others)
    return out


# -- accounting ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PrivacySpent:
    epsilon: float
    delta: float
    rounds: int
    order: float  # the RDP order that gave this ε

    def to_dict(self) -> dict[str, float]:
        return {"epsilon": self.epsilon, "delta": self.delta, "rounds": self.rounds,
                "order": self.order}


def _event(noise_multiplier: float, sample_rate: float) -> Any:
    dp_event = require("dp_accounting.dp_event", "fed")
    gaussian = dp_event.GaussianDpEvent(noise_multiplier)
    if sample_rate >= 1.0:
        return gaussian
    return dp_event.PoissonSampledDpEvent(sample_rate, gaussian)


def _accountant(orders: Sequence[float] | None) -> Any:
    rdp = require("dp_accounting.rdp", "fed")
    return rdp.RdpAccountant(orders=list(orders) if orders is not None else None)


class PrivacyLedger:
    """Rounds released so far and the (ε, δ) they spent (RDP, ``dp-accounting``).

    ``sample_rate`` q is each node's chance of being asked in a round (Poisson
    sampling: :func:`swarmlearn.fed.sample_nodes`); q = 1 is no sampling.
    """

    def __init__(self, noise_multiplier: float, *, sample_rate: float = 1.0,
                 delta: float = 1e-5, budget: float | None = None,
                 orders: Sequence[float] | None = None) -> None:
        check_range("noise_multiplier", noise_multiplier, lo=0.0, lo_open=True)
        check_range("sample_rate", sample_rate, lo=0.0, hi=1.0, lo_open=True)
        self.noise_multiplier = noise_multiplier
        self.sample_rate = sample_rate
        self.delta = delta
        self.budget = budget
        self._orders = orders
        self.rounds = 0

    def spent(self, rounds: int | None = None) -> PrivacySpent:
        """(ε, δ) after ``rounds`` released rounds (default: those released so far)."""
        n = self.rounds if rounds is None else rounds
        if n == 0:
            return PrivacySpent(0.0, self.delta, 0, math.nan)
        acc = _accountant(self._orders)
        dp_event = require("dp_accounting.dp_event", "fed")
        acc.compose(dp_event.SelfComposedDpEvent(
            _event(self.noise_multiplier, self.sample_rate), n))
        eps, order = acc.get_epsilon_and_optimal_order(self.delta)
        return PrivacySpent(float(eps), self.delta, n, float(order))

    def would_exceed(self) -> bool:
        """True if releasing one more round would spend more than the budget."""
        return self.budget is not None and self.spent(self.rounds + 1).epsilon > self.budget

    def record_round(self) -> PrivacySpent:
        self.rounds += 1
        return self.spent()


def epsilon_for(noise_multiplier: float, *, rounds: int, sample_rate: float = 1.0,
                delta: float = 1e-5) -> float:
    """ε spent by ``rounds`` rounds at noise multiplier z and sampling rate q."""
    ledger = PrivacyLedger(noise_multiplier, sample_rate=sample_rate, delta=delta)
    return ledger.spent(rounds).epsilon


def noise_for_epsilon(target: float, *, rounds: int, sample_rate: float = 1.0,
                      delta: float = 1e-5, tol: float = 1e-4) -> float:
    """The smallest noise multiplier z (to ``tol`` relative) whose ε after ``rounds``
    rounds is at most ``target`` (bisection on ε, which falls as z grows)."""
    check_range("target_epsilon", target, lo=0.0, lo_open=True)
    check_range("rounds", rounds, lo=1)
    lo, hi = 1e-2, 1.0
    while epsilon_for(hi, rounds=rounds, sample_rate=sample_rate, delta=delta) > target:
        lo, hi = hi, hi * 2.0
        if hi > 1e6:
            raise ConfigError(f"dp.target_epsilon: {target} cannot be reached in {rounds} "
                              "rounds", field="dp.target_epsilon", value=target)
    while (hi - lo) / hi > tol:
        mid = 0.5 * (lo + hi)
        if epsilon_for(mid, rounds=rounds, sample_rate=sample_rate, delta=delta) > target:
            lo = mid
        else:
            hi = mid
    return hi
