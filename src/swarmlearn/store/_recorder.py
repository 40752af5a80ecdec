"""The recorder: a queued bus subscriber that writes events to the store in batches."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from swarmlearn.core.bus import EventBus, Overflow, Subscription
from swarmlearn.core.events import Event
from swarmlearn.errors import StoreError
from swarmlearn.store._protocol import Store

__all__ = ["Recorder"]

logger = logging.getLogger(__name__)


class Recorder:
    """Writes every event on ``bus`` to ``store``, one transaction per batch.

    It subscribes with ``Overflow.BLOCK``: the store is the source every
    learner reads, so the recorder slows the swarm rather than lose history
    (the wait is counted in the bus stats). A failed write is kept and raised
    by :meth:`flush` / :meth:`close`, never swallowed.
    """

    def __init__(
        self,
        store: Store,
        bus: EventBus[Event],
        *,
        batch_size: int = 4_096,
        maxsize: int = 262_144,
    ) -> None:
        self.store = store
        self.written = 0
        self.errors: list[str] = []
        self._sub: Subscription[Event] = bus.subscribe(
            self._write,
            name="recorder",
            maxsize=maxsize,
            overflow=Overflow.BLOCK,
            batch_size=batch_size,
        )
        self._bus = bus

    def _write(self, batch: Sequence[Event]) -> None:
        try:
            self.store.write(batch)
        except StoreError as exc:
            self.errors.append(str(exc))
            raise
        self.written += len(batch)

    def flush(self, timeout: float | None = 60.0) -> None:
        """Wait until everything published so far is committed; raise if a write failed."""
        if not self._sub.flush(timeout):
            raise StoreError(f"the recorder did not catch up within {timeout}s")
        if self.errors:
            raise StoreError(f"{len(self.errors)} batch(es) could not be stored: {self.errors[0]}")

    def close(self, timeout: float | None = 60.0) -> None:
        try:
            self.flush(timeout)
        finally:
            self._bus.unsubscribe(self._sub)
