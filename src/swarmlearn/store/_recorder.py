"""The recorder: a queued bus subscriber that writes events to the store in batches.

How much a crash can lose is bounded here. The recorder holds at most
``max_pending`` events that are not committed yet (queued, or in the
transaction being written); when it holds that many, the swarm's
``publish`` waits (``Overflow.BLOCK``). So a ``kill -9`` loses at most
``max_pending`` events — one batch, 4,096 by default — whatever the speed of
the swarm or of the store. Transactions are half that (``batch_size``), so
the swarm fills one half while the other is written, and a transaction is
also committed ``max_delay`` (0.25 s) after its first event came in, so a
slow swarm (LLM workers) loses at most that much time of work too.

What the user is told has ended is never lost: :meth:`Recorder.when_durable`
holds a report (the session's "episode ended") until the events up to it are
committed — for a fast swarm until the next commit (a fraction of a second),
for a slow one the recorder commits at the episode's end.

"Committed" means in the database file: on SQLite (WAL) that survives a
killed process; surviving a power cut needs ``synchronous=FULL``, which this
store does not set.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence

from swarmlearn._config import check_range
from swarmlearn.core.bus import EventBus, Overflow, Subscription
from swarmlearn.core.events import Event, FeedbackEvent, NoteEvent
from swarmlearn.errors import StoreError
from swarmlearn.store._protocol import Store
from swarmlearn.types import EventId

__all__ = ["MAX_PENDING", "Recorder"]

#: the most events a recorder holds uncommitted by default: what a kill -9 can lose
MAX_PENDING = 4_096


class Recorder:
    """Writes every event on ``bus`` to ``store``, one transaction per batch.

    It subscribes with ``Overflow.BLOCK``: the store is the source every
    learner reads, so the recorder slows the swarm rather than lose history
    or trail behind it (the wait is counted in the bus stats). A failed write
    is kept and raised by :meth:`flush` / :meth:`close`, never swallowed.
    See the module docstring for what a crash can lose.
    """

    def __init__(
        self,
        store: Store,
        bus: EventBus[Event],
        *,
        max_pending: int = MAX_PENDING,
        batch_size: int | None = None,
        max_delay: float = 0.25,
    ) -> None:
        check_range("max_pending", max_pending, lo=1)
        batch = max(1, max_pending // 2) if batch_size is None else batch_size
        check_range("batch_size", batch, lo=1, hi=max_pending)
        check_range("max_delay", max_delay, lo=0.0)
        self.store = store
        self.max_pending = max_pending
        self.max_delay = max_delay
        self.written = 0
        self.errors: list[str] = []
        self._committed: EventId = -1  # the id of the last event committed
        self._reports: deque[tuple[EventId, Callable[[], None]]] = deque()
        self._last_report = time.monotonic()
        self._sub: Subscription[Event] = bus.subscribe(
            self._write,
            name="recorder",
            maxsize=max_pending,
            overflow=Overflow.BLOCK,
            batch_size=batch,
            max_delay=max_delay,
        )
        self._bus = bus

    def _write(self, batch: Sequence[Event]) -> None:
        try:
            self.store.write(batch)
        except StoreError as exc:
            self.errors.append(str(exc))
            raise
        self.written += len(batch)
        if self.errors:  # after a lost batch, nothing later counts as durable
            return
        for e in reversed(batch):  # batches come in publish order; notes and feedback have no id
            if not isinstance(e, NoteEvent | FeedbackEvent):
                self._committed = e.id
                return

    def durable(self, event_id: EventId) -> bool:
        """Whether the event ``event_id`` and every event published before it are committed."""
        return self._committed >= event_id

    def when_durable(self, event_id: EventId, report: Callable[[], None]) -> None:
        """Call ``report`` (in this thread) once ``event_id`` is committed; see :meth:`deliver`.

        Reports are made at a later call, after the commit that covers them.
        A report that comes ``max_delay`` or more after the previous one (a
        slow swarm) makes the recorder commit now (waiting at most
        ``max_delay``), so it is made at once, not an episode late; a fast
        swarm's reports wait for the next commit and cost nothing.
        """
        now = time.monotonic()
        slow, self._last_report = now - self._last_report >= self.max_delay, now
        self._reports.append((event_id, report))
        if slow and not self.durable(event_id):
            self._sub.flush(self.max_delay)  # a failed write is raised by flush()/close()
        self.deliver()

    def deliver(self) -> None:
        """Make the reports whose events are committed, oldest first."""
        reports = self._reports
        while reports and self.durable(reports[0][0]):
            reports.popleft()[1]()

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
