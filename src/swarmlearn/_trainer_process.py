"""Running a level's ``produce`` in a child process, with a time budget.

The child is started with ``spawn`` (a fresh interpreter: nothing of the
daemon's store connections or threads is shared), builds the level's kind from
the daemon config, opens its own store, produces, and sends the
:class:`~swarmlearn.lifecycle.Produced` record back over a pipe. It asks the
kernel to kill it when the daemon dies (``PR_SET_PDEATHSIG``), so a ``kill
-9`` of the daemon leaves no trainer behind. A child that raises, exits, or
runs past ``timeout_s`` is a :class:`~swarmlearn.errors.TrainingError`; the
daemon records it and nothing is registered.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import signal
import threading
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

from swarmlearn._daemon_config import DaemonConfig, build_kind
from swarmlearn.errors import TrainingError
from swarmlearn.lifecycle import Lifecycle, ProduceContext, Produced

__all__ = ["produce_in_child"]

logger = logging.getLogger(__name__)


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _child(config: DaemonConfig, level_name: str, store_url: str, parent: int,
           since_episode: int, deadline: float, conn: Connection) -> None:
    _die_with_parent()
    if os.getppid() != parent:  # the daemon died before prctl took effect
        os._exit(1)
    try:
        from swarmlearn.core.scenario import load_scenario
        from swarmlearn.store import open_store

        level = config.level(level_name)
        scenario = load_scenario(config.scenario, variant=config.variant)
        with open_store(store_url) as store:
            kind = build_kind(level, scenario, store, config.strategy)
            champion = Lifecycle(store, kind.name, kind.scope).champion()
            produced = kind.produce(ProduceContext(store=store, scope=kind.scope,
                                                   champion=champion,
                                                   since_episode=since_episode,
                                                   deadline=deadline))
        if not isinstance(produced, Produced):
            raise TrainingError(f"{kind!r}.produce returned {type(produced).__name__}, "
                                f"not Produced")
        conn.send(("ok", produced))
    except BaseException as exc:  # the child's process boundary: report, then exit
        tail = traceback.format_exc().strip().splitlines()[-3:]
        conn.send(("error", f"{type(exc).__name__}: {exc}", tail))
    finally:
        conn.close()


def produce_in_child(config: DaemonConfig, level_name: str, store_url: str, *,
                     timeout_s: float, since_episode: int = 0,
                     stop: threading.Event | None = None) -> Produced:
    """Run the level's ``produce`` in a child process; TrainingError on any failure."""
    ctx = mp.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    deadline = time.time() + timeout_s
    proc = ctx.Process(target=_child, name=f"swarmlearn-train-{level_name}", daemon=True,
                       args=(config, level_name, store_url, os.getpid(), since_episode,
                             deadline, send))
    proc.start()
    send.close()
    reply: Any = None
    try:
        while reply is None:
            if stop is not None and stop.is_set():
                raise TrainingError(f"level {level_name}: training stopped (the daemon stops)")
            if recv.poll(0.2):
                try:
                    reply = recv.recv()
                except EOFError:
                    break
            elif not proc.is_alive() and not recv.poll(0):
                break
            if time.time() > deadline:
                raise TrainingError(f"level {level_name}: the trainer ran out of time "
                                    f"({timeout_s:g} s)")
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        recv.close()
    if reply is None:
        raise TrainingError(f"level {level_name}: the trainer died (exit code {proc.exitcode})")
    if reply[0] == "error":
        logger.debug("trainer traceback: %s", " | ".join(reply[2]))
        raise TrainingError(f"level {level_name}: the trainer failed: {reply[1]}")
    produced: Produced = reply[1]
    return produced
