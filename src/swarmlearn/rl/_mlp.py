"""A ReLU MLP Q-network whose forward *and* backward pass are written out in NumPy.

All parameters live in one flat float32 vector (and the gradient in another
of the same layout), so the optimizer, gradient clipping, target-network
copies and checkpoints each touch one array.  Layer ``k`` is ``W_k`` (shape
``in x out``) followed by ``b_k``.

Why by hand: for the small MLPs DQN uses on vector observations, a training
step is three matrix products forward and five backward; PyTorch autograd
plus its optimizer add more per-step overhead than those products cost on a
CPU (measured in ``docs/rl.md``).  The gradients are checked against
``torch.autograd`` in ``tests/rl/test_mlp.py``.

Dueling heads (Wang et al. 2016): the last layer outputs ``1 + A`` values,
``V`` and ``A_k``, combined as ``Q_k = V + A_k - mean_j A_j``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from swarmlearn.errors import ConfigError

__all__ = ["MLPQNet", "MLPSpec"]

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
CHUNK_ROWS = 1024


@dataclass(frozen=True, slots=True)
class MLPSpec:
    """Shape of a Q-network: input size, hidden widths, number of actions, dueling or not."""

    obs_dim: int
    hidden: tuple[int, ...]
    n_actions: int
    dueling: bool = False

    def __post_init__(self) -> None:
        if self.obs_dim < 1 or self.n_actions < 1:
            raise ConfigError(f"obs_dim and n_actions must be >= 1, got {self}", field="spec")
        if any(h < 1 for h in self.hidden):
            raise ConfigError(
                f"hidden: widths must be >= 1, got {self.hidden}", field="hidden", value=self.hidden
            )

    @property
    def out_dim(self) -> int:
        return self.n_actions + 1 if self.dueling else self.n_actions

    @property
    def layer_shapes(self) -> list[tuple[int, int]]:
        dims = [self.obs_dim, *self.hidden, self.out_dim]
        return list(itertools.pairwise(dims))

    @property
    def n_params(self) -> int:
        return sum(i * o + o for i, o in self.layer_shapes)


def _views(flat: F32, spec: MLPSpec) -> list[tuple[F32, F32]]:
    layers: list[tuple[F32, F32]] = []
    offset = 0
    for fan_in, fan_out in spec.layer_shapes:
        weight = flat[offset : offset + fan_in * fan_out].reshape(fan_in, fan_out)
        offset += fan_in * fan_out
        bias = flat[offset : offset + fan_out]
        offset += fan_out
        layers.append((weight, bias))
    return layers


class MLPQNet:
    """Parameters, gradient and scratch buffers of one MLP Q-network.

    ``params`` is the flat parameter vector (the layer views alias it), and
    ``grad`` the flat gradient filled by :meth:`backward`.
    """

    __slots__ = (
        "_acts",
        "_deltas",
        "_out",
        "_rows",
        "_x",
        "grad",
        "grads",
        "layers",
        "params",
        "spec",
    )

    def __init__(self, spec: MLPSpec, rng: np.random.Generator, *, max_rows: int = 0) -> None:
        self.spec = spec
        self.params: F32 = np.zeros(spec.n_params, np.float32)
        self.grad: F32 = np.zeros(spec.n_params, np.float32)
        self.layers = _views(self.params, spec)
        self.grads = _views(self.grad, spec)
        for weight, bias in self.layers:
            # PyTorch's nn.Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for W and b.
            bound = 1.0 / math.sqrt(weight.shape[0])
            weight[...] = rng.uniform(-bound, bound, weight.shape)
            bias[...] = rng.uniform(-bound, bound, bias.shape)
        self._rows = 0
        self._x: F32 = np.zeros((0, spec.obs_dim), np.float32)
        self._acts: list[F32] = []
        self._deltas: list[F32] = []
        self._out: F32 = np.zeros((0, spec.out_dim), np.float32)
        self._reserve(max_rows)

    def _reserve(self, rows: int) -> None:
        if rows <= self._rows:
            return
        self._rows = rows
        self._x = np.zeros((rows, self.spec.obs_dim), np.float32)
        self._acts = [np.zeros((rows, h), np.float32) for h in self.spec.hidden]
        self._deltas = [np.zeros((rows, h), np.float32) for h in self.spec.hidden]
        self._out = np.zeros((rows, self.spec.out_dim), np.float32)

    def q_values(self, obs: F32, params: F32 | None = None) -> F32:
        """Q-values for a batch ``(B, obs_dim) -> (B, A)``; ``params`` another flat vector.

        Large batches go through in chunks whose activations stay in cache.
        """
        layers = self.layers if params is None else _views(params, self.spec)
        if len(obs) > CHUNK_ROWS:
            return np.concatenate(
                [self._q(obs[i : i + CHUNK_ROWS], layers) for i in range(0, len(obs), CHUNK_ROWS)]
            )
        return self._q(obs, layers)

    def _q(self, obs: F32, layers: list[tuple[F32, F32]]) -> F32:
        return self._combine(self._head(obs, layers))

    def _head(self, obs: F32, layers: list[tuple[F32, F32]]) -> F32:
        h = obs
        last = len(layers) - 1
        for k, (weight, bias) in enumerate(layers):
            h = h @ weight
            h += bias
            if k < last:
                np.maximum(h, 0.0, out=h)
        return h

    def action_scores(self, obs: F32) -> F32:
        """Scores whose row-wise argmax is the greedy action: Q, or the advantages if dueling.

        ``V + A_k - mean(A)`` and ``A_k`` have the same argmax, so acting skips the combine.
        """
        out = self._head(obs, self.layers)
        return out[:, 1:] if self.spec.dueling else out

    def _combine(self, out: F32) -> F32:
        if not self.spec.dueling:
            return out
        adv = out[:, 1:]
        q: F32 = out[:, :1] + adv - adv.mean(axis=1, keepdims=True)
        return q

    def forward_train(self, obs: F32) -> F32:
        """Q-values like :meth:`q_values`, keeping activations for :meth:`backward`.

        The returned array is a scratch buffer, valid until the next call.
        """
        rows = len(obs)
        self._reserve(rows)
        x = self._x[:rows]
        x[...] = obs
        h = x
        last = len(self.layers) - 1
        for k, (weight, bias) in enumerate(self.layers):
            out = self._out[:rows] if k == last else self._acts[k][:rows]
            np.matmul(h, weight, out=out)
            out += bias
            if k < last:
                np.maximum(out, 0.0, out=out)
            h = out
        return self._combine(h)

    def backward(self, dq: F32) -> None:
        """Fill :attr:`grad` with d loss / d params given ``dq = d loss / d Q``.

        ``dq`` may cover only the first ``len(dq)`` rows of the last
        :meth:`forward_train` call (the rest, e.g. next observations for
        Double DQN, do not enter the loss).
        """
        rows = len(dq)
        if self.spec.dueling:
            dout = np.empty((rows, self.spec.out_dim), np.float32)
            dout[:, 0] = dq.sum(axis=1)
            dout[:, 1:] = dq - dq.mean(axis=1, keepdims=True)
        else:
            dout = dq
        d = dout
        for k in range(len(self.layers) - 1, -1, -1):
            inp = self._x[:rows] if k == 0 else self._acts[k - 1][:rows]
            g_weight, g_bias = self.grads[k]
            np.matmul(inp.T, d, out=g_weight)
            np.sum(d, axis=0, out=g_bias)
            if k > 0:
                back = self._deltas[k - 1][:rows]
                np.matmul(d, self.layers[k][0].T, out=back)
                back *= inp > 0.0
                d = back
