"""An in-process Flower Grid: the ServerApp's messages delivered to ClientApps in threads.

Flower's simulation engine runs ClientApps in Ray actors; on a small machine
(two cores) starting Ray costs more than a whole federation of swarms. This
:class:`InProcessGrid` implements Flower's ``Grid`` interface over real
``ClientApp`` objects called in a thread pool of this process, one
persistent ``Context`` per node (as a SuperNode keeps it). A ClientApp that
raises becomes an error reply; one that takes longer than the timeout is
not waited for (its reply is dropped when it comes): the same failures a
SuperLink reports.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from swarmlearn._extras import require

__all__ = ["InProcessGrid"]

logger = logging.getLogger(__name__)

fl = require("flwr.app", "fed")
grid_mod = require("flwr.serverapp.grid", "fed")
run_mod = require("flwr.supercore.run", "fed")
identity_mod = require("flwr.supercore.task_identity", "fed")
SUPERLINK_NODE_ID = require("flwr.common.constant", "fed").SUPERLINK_NODE_ID


def _claim_identity() -> None:
    """Messages made in this process name its task; a process that is no Flower
    task (ours, driving the grid) takes the SuperLink's identity for run 1."""
    ti = identity_mod.TaskIdentity
    for name, value in (("_run_id", 1), ("_node_id", SUPERLINK_NODE_ID), ("_task_id", 0)):
        if getattr(ti, name) is None:
            setattr(ti, name.lstrip("_"), value)

ERROR_CLIENT_APP = 2  # the code Flower uses for a ClientApp that raised


_Grid: Any = grid_mod.Grid


class InProcessGrid(_Grid):  # type: ignore[misc]
    """``num_nodes`` nodes, each a ``client_app`` with its own Context."""

    def __init__(self, client_app: Any, num_nodes: int, *,
                 run_config: Mapping[str, Any] | None = None, max_workers: int = 2) -> None:
        _claim_identity()
        self._app = client_app
        self._run = run_mod.Run.create_empty(1)
        self._nodes = {1000 + i: fl.Context(run_id=1, node_id=1000 + i,
                                            node_config={"partition-id": i,
                                                         "num-partitions": num_nodes},
                                            state=fl.RecordDict(),
                                            run_config=dict(run_config or {}))
                       for i in range(num_nodes)}
        self._pool = cf.ThreadPoolExecutor(max_workers=max_workers,
                                           thread_name_prefix="fed-node")
        self._pending: dict[str, cf.Future[Any]] = {}
        self._ids = itertools.count()

    # -- Grid --------------------------------------------------------------------------
    def set_run(self, run: Any) -> None:
        self._run = run

    @property
    def run(self) -> Any:
        return self._run

    def create_message(self, content: Any, message_type: str, dst_node_id: int,
                       group_id: str, ttl: float | None = None) -> Any:
        return fl.Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        return list(self._nodes)

    def push_messages(self, messages: Iterable[Any]) -> Iterable[str]:
        ids = []
        for msg in messages:
            mid = uuid.uuid4().hex
            msg.metadata.__dict__["_message_id"] = mid  # as Flower's own in-memory grid does
            self._pending[mid] = self._pool.submit(self._deliver, msg)
            ids.append(mid)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Any]:
        out = []
        for mid in message_ids:
            fut = self._pending.get(mid)
            if fut is not None and fut.done():
                out.append(fut.result())
                del self._pending[mid]
        return out

    def send_and_receive(self, messages: Iterable[Any], *,
                         timeout: float | None = None) -> Iterable[Any]:
        ids = list(self.push_messages(messages))
        futures = [self._pending[i] for i in ids]
        cf.wait(futures, timeout=timeout)
        replies = list(self.pull_messages(ids))
        for mid in ids:  # a late reply is dropped when it comes
            self._pending.pop(mid, None)
        return replies

    # -- delivery ----------------------------------------------------------------------
    def _deliver(self, msg: Any) -> Any:
        node = msg.metadata.dst_node_id
        context = self._nodes[node]
        t0 = time.perf_counter()
        try:
            reply = self._app(msg, context)
        except Exception as exc:  # a node's failure is data for the round, not a crash
            logger.warning("node %d: ClientApp raised %r", node, exc)
            return fl.Message(fl.Error(code=ERROR_CLIENT_APP, reason=repr(exc)), reply_to=msg)
        logger.debug("node %d answered in %.2fs", node, time.perf_counter() - t0)
        return reply

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
