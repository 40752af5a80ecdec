"""Running a federation: in process, on Flower's Ray simulation engine, or deployed."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from swarmlearn.errors import ConfigError
from swarmlearn.fed._config import Backend, FedConfig, Payload
from swarmlearn.fed._strategy import RoundRecord

__all__ = ["simulate"]

logger = logging.getLogger(__name__)


def simulate(config: FedConfig, *, backend: Backend | None = None,
             on_round: Callable[[RoundRecord], None] | None = None,
             threads: int = 2) -> Any:
    """Run ``config``'s federation with every node simulated on this machine.

    ``inprocess``: our Grid over real ClientApps in ``threads`` threads;
    ``ray``: Flower's ``run_simulation`` (Ray actors, 1 CPU each).
    """
    from swarmlearn.fed._apps import FedResult, make_apps, run_federation, vocabulary_for
    from swarmlearn.fed._grid import InProcessGrid

    kind = backend or config.federation.backend
    if config.federation.payload is Payload.STATISTICS:
        vocabulary_for(config)  # built once, before any node asks for it
    if kind is Backend.INPROCESS:
        _, client = make_apps(config)
        grid = InProcessGrid(client, len(config.nodes), max_workers=threads)
        try:
            return run_federation(grid, config, on_round=on_round)
        finally:
            grid.close()
    if kind is not Backend.RAY:
        raise ConfigError(f"backend: unknown {kind!r}", field="federation.backend")
    from swarmlearn._extras import require

    sim = require("flwr.simulation", "fed")
    sink: list[FedResult] = []
    server, client = make_apps(config, sink)
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    sim.run_simulation(server_app=server, client_app=client, num_supernodes=len(config.nodes),
                       backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                                       "init_args": {"num_cpus": threads,
                                                     "include_dashboard": False}})
    if not sink:
        raise RuntimeError("the Flower simulation ended without a result (see its log)")
    return sink[0]
