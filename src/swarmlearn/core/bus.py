"""The in-process event bus.

Two kinds of subscriber:

* **inline** — called in the publisher's thread, in order, before
  ``publish`` returns. For cheap, must-be-current consumers (online
  statistics that the next decision reads). An inline handler that raises is
  logged and counted; it never breaks the swarm.
* **queued** — each has its own bounded queue drained by its own thread in
  batches. A slow queued subscriber never stalls the swarm: when its queue is
  full the event is *dropped and counted* (``Overflow.DROP``), or — for a
  subscriber that must not lose anything, such as the store recorder — the
  publisher waits for room (``Overflow.BLOCK``) and the wait is counted.

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
    """One subscriber: inline (``maxsize == 0``) or with its own queue and thread."""

    def __init__(
        self,
        name: str,
        handler: Handler[E],
        *,
        maxsize: int,
        overflow: Overflow,
        batch_size: int,
    ) -> None:
        self.name = name
        self.handler = handler
        self.maxsize = maxsize
        self.overflow = overflow
        self.batch_size = batch_size
        self.stats = SubscriberStats(name)
        self._queue: deque[E] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._busy = False
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
            room = self.maxsize - len(self._queue)
            if len(events) > room and self.overflow is Overflow.BLOCK:
                start = time.perf_counter()
                for event in events:
                    while len(self._queue) >= self.maxsize and not self._closed:
                        self._cond.notify_all()
                        self._cond.wait(0.05)
                    self._queue.append(event)
                self.stats.blocked_seconds += time.perf_counter() - start
            elif len(events) > room:
                keep = max(room, 0)
                self._queue.extend(events[:keep])
                lost = len(events) - keep
                if self.stats.dropped == 0:
                    logger.warning(
                        "subscriber %r is too slow: dropping events (queue %d full)",
                        self.name,
                        self.maxsize,
                    )
                self.stats.dropped += lost
            else:
                self._queue.extend(events)
            self._cond.notify_all()

    def _call(self, batch: Sequence[E]) -> None:
        try:
            self.handler(batch)
            self.stats.delivered += len(batch)
        except Exception:
            self.stats.failed += len(batch)
            logger.exception("subscriber %r failed on a batch of %d events", self.name, len(batch))

    def _drain(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue and self._closed:
                    return
                n = min(len(self._queue), self.batch_size)
                batch = [self._queue.popleft() for _ in range(n)]
                self._busy = True
                self._cond.notify_all()
            self._call(batch)
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the queue is empty and no batch is in flight; False on timeout."""
        if self._thread is None:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
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
        inline: bool = False,
    ) -> Subscription[E]:
        """Add a subscriber; ``handler`` receives a batch (a sequence) of events."""
        sub = Subscription(
            name or str(getattr(handler, "__qualname__", "subscriber")),
            handler,
            maxsize=0 if inline else max(1, maxsize),
            overflow=overflow,
            batch_size=batch_size,
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
