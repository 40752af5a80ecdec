"""Keep BLAS to a few threads around DQN's small matrix products.

NumPy's OpenBLAS starts one thread per core.  For the 64-256-row products
of a DQN gradient step that buys little, and on a machine whose other
cores are busy it costs a great deal: the calling thread waits for helper
threads that are not scheduled (measured: 13 ms instead of 0.1 ms per
forward pass on a loaded 2-core machine).  :class:`BlasThreads` limits the
threads with ``threadpoolctl`` when it is installed (one library scan at
construction, ~16 us per limit); without it, it does nothing and says so
once in the log (``OPENBLAS_NUM_THREADS=1`` before start-up does the same).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

__all__ = ["BlasThreads"]

logger = logging.getLogger(__name__)
_warned = False


class BlasThreads:
    """A context manager factory: ``with blas.limit(): ...`` runs with ``n`` BLAS threads."""

    __slots__ = ("_controller", "n")

    def __init__(self, n: int) -> None:
        self.n = n
        self._controller: Any = None
        if n <= 0:
            return
        try:
            from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]
        except ImportError:
            global _warned
            if not _warned:
                _warned = True
                logger.info("threadpoolctl is not installed: BLAS thread count left as it is")
            return
        self._controller = ThreadpoolController().select(user_api="blas")

    @contextlib.contextmanager
    def limit(self) -> Iterator[None]:
        if self._controller is None:
            yield
            return
        with self._controller.limit(limits=self.n):
            yield
