"""The in-process event bus.

Two kinds of subscriber:

* **inline** — called in the publisher's thread, in order, before
  ``publish`` returns. For cheap, must-be-current consumers (online
  statistics that the next decision reads). An inline handler that raises is
  logged and counted; it never breaks the swarm.
* **queued** — each has its own bounded queue drained by its own thread in
  batches, handed over when a batch is full or ``max_delay`` after its oldest
  event came in. ``maxsize`` bounds what the subscriber *holds*: its queue
  plus the batch in its handler. A slow queued subscriber never stalls the
  swarm: when it holds ``maxsize`` the event is *dropped and counted*
  (``Overflow.DROP``), or — for a subscriber that must not lose anything and
  must not trail far behind, such as the store recorder — the publisher waits
  for room (``Overflow.BLOCK``) and the wait is counted.

``stats()`` reports delivered, dropped, failed and blocked counts per
subscriber; the swarm puts them into every episode's summary, so nothing is
lost silently.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["EventBus", "Overflow", "SubscriberStats", "Subscription"]

logger = logging.getLogger(__name__)

E = TypeVar("E")
Handler = Callable[[Sequence[E]], None]


class Overflow(enum.StrEnum):
    DROP = "drop"
    BLOCK = "block"


@dataclass(slots=True)
class SubscriberStats:
    name: str
    delivered: int = 0
    dropped: int = 0
    failed: int = 0
    blocked_seconds: float = 0.0
    queued: int = 0


class Subscription(Generic[E]):
    """One subscriber: inline (``maxsize == 0``) or with its own queue and thread.

    A queued subscriber *holds* at most ``maxsize`` events: the ones in its
    queue plus the batch its handler is working on. Its thread hands the
    handler up to ``batch_size`` events at a time, as soon as ``batch_size``
    are queued, or ``max_delay`` seconds after the oldest queued event came in
    (0: at once), or when someone waits for it (a blocked publisher,
    :meth:`flush`, :meth:`close`).
    """

    def __init__(
        self,
        name: str,
        handler: Handler[E],
        *,
        maxsize: int,
        overflow: Overflow,
        batch_size: int,
        max_delay: float = 0.0,
    ) -> None:
        self.name = name
        self.handler = handler
        self.maxsize = maxsize
        self.overflow = overflow
        self.batch_size = max(1, batch_size)
        self.max_delay = max_delay
        self.stats = SubscriberStats(name)
        self._queue: deque[E] = deque()
        self._inflight = 0  # events the handler is working on
        self._since = 0.0  # monotonic time the oldest queued event came in
        self._waiters = 0  # publishers waiting for room, flushes waiting for the handler
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        if maxsize > 0:
            self._thread = threading.Thread(target=self._drain, name=f"bus-{name}", daemon=True)
            self._thread.start()

    @property
    def inline(self) -> bool:
        return self._thread is None

    def offer(self, events: Sequence[E]) -> None:
        if self._thread is None:
            self._call(events)
            return
        with self._cond:
            queue = self._queue
            was_empty = not queue
            if was_empty:
                self._since = time.monotonic()
            room = self.maxsize - len(queue) - self._inflight
            if len(events) <= room:
                queue.extend(events)
            elif self.overflow is Overflow.BLOCK:
                self._wait_for_room(events)
            else:
                self._drop(events, room)
            if was_empty or len(queue) >= self.batch_size:
                self._cond.notify_all()

    def _wait_for_room(self, events: Sequence[E]) -> None:
        """Append ``events`` one by one, waiting while the subscriber holds ``maxsize``."""
        start = time.perf_counter()
        self._waiters += 1
        try:
            for event in events:
                while len(self._queue) + self._inflight >= self.maxsize and not self._closed:
                    self._cond.notify_all()
                    self._cond.wait(0.05)
                self._queue.append(event)
        finally:
            self._waiters -= 1
        self.stats.blocked_seconds += time.perf_counter() - start

    def _drop(self, events: Sequence[E], room: int) -> None:
        keep = max(room, 0)
        self._queue.extend(events[:keep])
        if self.stats.dropped == 0:
            logger.warning(
                "subscriber %r is too slow: dropping events (holds %d already)",
                self.name,
                self.maxsize,
            )
        self.stats.dropped += len(events) - keep

    def _call(self, batch: Sequence[E]) -> None:
        try:
            self.handler(batch)
            self.stats.delivered += len(batch)
        except Exception:
            self.stats.failed += len(batch)
            logger.exception("subscriber %r failed on a batch of %d events", self.name, len(batch))

    def _next_batch(self) -> list[E] | None:
        """Wait (holding the lock) until a batch is due; None once closed and empty."""
        queue = self._queue
        while True:
            if not queue:
                if self._closed:
                    return None
                self._cond.wait()
                continue
            if len(queue) >= self.batch_size or self._waiters or self._closed:
                break
            wait = self._since + self.max_delay - time.monotonic()
            if wait <= 0:
                break
            self._cond.wait(wait)
        if len(queue) <= self.batch_size:
            batch = list(queue)
            queue.clear()
        else:  # the rest came in after the oldest: due no later than it was
            batch = [queue.popleft() for _ in range(self.batch_size)]
        return batch

    def _drain(self) -> None:
        while True:
            with self._cond:
                batch = self._next_batch()
                if batch is None:
                    return
                self._inflight = len(batch)
            self._call(batch)
            with self._cond:
                self._inflight = 0
                self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Hand over everything queued now and wait until the handler is done; False on timeout."""
        if self._thread is None:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._waiters += 1
            try:
                self._cond.notify_all()
                while self._queue or self._inflight:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._cond.wait(remaining)
            finally:
                self._waiters -= 1
        return True

    def close(self, timeout: float | None = 30.0) -> None:
        self.flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def snapshot(self) -> SubscriberStats:
        with self._cond:
            self.stats.queued = len(self._queue)
            return SubscriberStats(**{k: getattr(self.stats, k) for k in SubscriberStats.__slots__})


class EventBus(Generic[E]):
    """Publishes events to inline and queued subscribers (see module docstring)."""

    def __init__(self) -> None:
        self._subs: list[Subscription[E]] = []
        self._inline: tuple[Subscription[E], ...] = ()
        self._queued: tuple[Subscription[E], ...] = ()

    def subscribe(
        self,
        handler: Handler[E],
        *,
        name: str | None = None,
        maxsize: int = 65_536,
        overflow: Overflow = Overflow.DROP,
        batch_size: int = 1_024,
        max_delay: float = 0.0,
        inline: bool = False,
    ) -> Subscription[E]:
        """Add a subscriber; ``handler`` receives a batch (a sequence) of events.

        ``maxsize`` bounds the events a queued subscriber holds (queued or in
        its handler); ``batch_size`` and ``max_delay`` say when its thread
        hands them over (see :class:`Subscription`).
        """
        sub = Subscription(
            name or str(getattr(handler, "__qualname__", "subscriber")),
            handler,
            maxsize=0 if inline else max(1, maxsize),
            overflow=overflow,
            batch_size=batch_size,
            max_delay=max_delay,
        )
        self._subs.append(sub)
        self._refresh()
        return sub

    def unsubscribe(self, sub: Subscription[E]) -> None:
        if sub in self._subs:
            sub.close()
            self._subs.remove(sub)
            self._refresh()

    def _refresh(self) -> None:
        self._inline = tuple(s for s in self._subs if s.inline)
        self._queued = tuple(s for s in self._subs if not s.inline)

    def publish(self, events: Sequence[E]) -> None:
        """Deliver a batch: inline subscribers first (in order), then the queues."""
        if not events:
            return
        for sub in self._inline:
            sub.offer(events)
        for sub in self._queued:
            sub.offer(events)

    def flush(self, timeout: float | None = None) -> bool:
        return all(sub.flush(timeout) for sub in self._queued)

    def close(self, timeout: float | None = 30.0) -> None:
        for sub in self._subs:
            sub.close(timeout)
        self._subs.clear()
        self._refresh()

    def stats(self) -> list[SubscriberStats]:
        return [sub.snapshot() for sub in self._subs]

    def dropped(self) -> int:
        return sum(sub.stats.dropped for sub in self._subs)
