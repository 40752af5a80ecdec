"""swarmlearn.fed: federated learning across swarm nodes on Flower, with accounted DP.

Nodes share what they learned — statistics and snapshots (sums), LoRA adapter
weights, DQN policy weights — never their episodes. Pure parts (codecs,
clipping, noise, aggregation, accounting) import without Flower; the apps,
strategy and grid need the ``fed`` extra (``flwr``), imported on first use.
See docs/federation.md.
"""

from typing import TYPE_CHECKING, Any

from swarmlearn.fed._aggregate import (
    Aggregator,
    aggregate,
    coordinate_median,
    fixed_mean,
    robust_bound,
    total,
    trimmed_mean,
)
from swarmlearn.fed._cli import fed_app
from swarmlearn.fed._config import (
    BUILTIN_SCENARIOS,
    Backend,
    Behaviour,
    EvalConfig,
    FedConfig,
    FederationConfig,
    NodeSpec,
    VocabConfig,
    load_config,
)
from swarmlearn.fed._dp import (
    DpConfig,
    DpMode,
    DpUnit,
    PrivacyLedger,
    PrivacySpent,
    add_noise,
    clip_update,
    denoise,
    epsilon_for,
    l2_norm,
    noise_for_epsilon,
)
from swarmlearn.fed._payload import (
    Codec,
    DqnCodec,
    LoraCodec,
    SnapshotCodec,
    Vocabulary,
    build_vocabulary,
)
from swarmlearn.fed._report import NodeUtility, UtilitySummary, summarize_utility

if TYPE_CHECKING:
    from swarmlearn.fed._apps import FedResult, make_apps, run_federation
    from swarmlearn.fed._grid import InProcessGrid
    from swarmlearn.fed._run import simulate
    from swarmlearn.fed._strategy import RoundRecord, SwarmStrategy, sample_nodes

_LAZY = {
    "FedResult": "swarmlearn.fed._apps",
    "make_apps": "swarmlearn.fed._apps",
    "run_federation": "swarmlearn.fed._apps",
    "InProcessGrid": "swarmlearn.fed._grid",
    "simulate": "swarmlearn.fed._run",
    "RoundRecord": "swarmlearn.fed._strategy",
    "SwarmStrategy": "swarmlearn.fed._strategy",
    "sample_nodes": "swarmlearn.fed._strategy",
}

__all__ = [
    "BUILTIN_SCENARIOS",
    "Aggregator",
    "Backend",
    "Behaviour",
    "Codec",
    "DpConfig",
    "DpMode",
    "DpUnit",
    "DqnCodec",
    "EvalConfig",
    "FedConfig",
    "FedResult",
    "FederationConfig",
    "InProcessGrid",
    "LoraCodec",
    "NodeSpec",
    "NodeUtility",
    "PrivacyLedger",
    "PrivacySpent",
    "RoundRecord",
    "SnapshotCodec",
    "SwarmStrategy",
    "UtilitySummary",
    "VocabConfig",
    "Vocabulary",
    "add_noise",
    "aggregate",
    "build_vocabulary",
    "clip_update",
    "coordinate_median",
    "denoise",
    "epsilon_for",
    "fed_app",
    "fixed_mean",
    "l2_norm",
    "load_config",
    "make_apps",
    "noise_for_epsilon",
    "robust_bound",
    "run_federation",
    "sample_nodes",
    "simulate",
    "summarize_utility",
    "total",
    "trimmed_mean",
]


def __getattr__(name: str) -> Any:
    """The Flower-based names, imported on first use (they need the ``fed`` extra)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'swarmlearn.fed' has no attribute {name!r}")
