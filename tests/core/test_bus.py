"""The event bus: inline and queued subscribers, slow subscribers never stall the swarm."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from swarmlearn.core.bus import EventBus, Overflow


def test_inline_subscribers_see_events_in_order_before_publish_returns() -> None:
    bus: EventBus[int] = EventBus()
    seen: list[int] = []
    bus.subscribe(seen.extend, inline=True)
    bus.publish([1, 2])
    bus.publish([3])
    assert seen == [1, 2, 3]


def test_queued_subscriber_gets_everything_in_batches() -> None:
    bus: EventBus[int] = EventBus()
    batches: list[list[int]] = []
    bus.subscribe(lambda b: batches.append(list(b)), batch_size=100)
    for i in range(1_000):
        bus.publish([i])
    assert bus.flush(10)
    assert [x for b in batches for x in b] == list(range(1_000))
    assert all(len(b) <= 100 for b in batches)
    bus.close()


def test_slow_subscriber_drops_and_counts_but_never_stalls() -> None:
    bus: EventBus[int] = EventBus()
    gate = threading.Event()
    got: list[int] = []

    def slow(batch: Sequence[int]) -> None:
        gate.wait(5)
        got.extend(batch)

    bus.subscribe(slow, name="slow", maxsize=10, batch_size=5)
    fast: list[int] = []
    bus.subscribe(fast.extend, name="fast", inline=True)
    start = time.perf_counter()
    for i in range(1_000):
        bus.publish([i])
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0  # publishing did not wait for the slow subscriber
    gate.set()
    bus.flush(5)
    stats = {s.name: s for s in bus.stats()}
    assert stats["slow"].dropped > 0
    assert stats["slow"].dropped + stats["slow"].delivered == 1_000
    assert len(got) == stats["slow"].delivered
    assert fast == list(range(1_000)) and stats["fast"].dropped == 0
    assert bus.dropped() == stats["slow"].dropped
    bus.close()


def test_blocking_subscriber_loses_nothing_and_counts_the_wait() -> None:
    bus: EventBus[int] = EventBus()
    got: list[int] = []

    def slowish(batch: Sequence[int]) -> None:
        time.sleep(0.001)
        got.extend(batch)

    bus.subscribe(slowish, name="rec", maxsize=8, batch_size=4, overflow=Overflow.BLOCK)
    for i in range(200):
        bus.publish([i, i])
    bus.flush(10)
    (stats,) = bus.stats()
    assert got == [i for i in range(200) for _ in range(2)]
    assert stats.dropped == 0 and stats.blocked_seconds > 0
    bus.close()


def test_failing_subscriber_is_counted_and_others_continue() -> None:
    bus: EventBus[int] = EventBus()

    def broken(batch: Sequence[int]) -> None:
        raise RuntimeError("nope")

    ok: list[int] = []
    bus.subscribe(broken, name="broken", inline=True)
    bus.subscribe(ok.extend, name="ok", inline=True)
    bus.publish([1, 2, 3])
    stats = {s.name: s for s in bus.stats()}
    assert stats["broken"].failed == 3 and ok == [1, 2, 3]


def test_unsubscribe_and_close() -> None:
    bus: EventBus[int] = EventBus()
    got: list[int] = []
    sub = bus.subscribe(got.extend)
    bus.publish([1])
    bus.unsubscribe(sub)
    bus.publish([2])
    assert got == [1]
    bus.close()
    bus.publish([3])
    assert bus.stats() == []


def test_a_blocking_subscriber_holds_at_most_maxsize_counting_its_handlers_batch() -> None:
    bus: EventBus[int] = EventBus()
    gate = threading.Event()
    got: list[int] = []

    def stuck(batch: Sequence[int]) -> None:
        gate.wait(10)
        got.extend(batch)

    bus.subscribe(stuck, name="rec", maxsize=8, batch_size=4, overflow=Overflow.BLOCK)
    published = [0]

    def publisher() -> None:
        for i in range(100):
            bus.publish([i])
            published[0] += 1

    thread = threading.Thread(target=publisher)
    thread.start()
    deadline = time.monotonic() + 5
    while published[0] < 8 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # room for a ninth event, if the subscriber wrongly had any
    assert published[0] == 8 and thread.is_alive()  # queued + in the handler == maxsize
    gate.set()
    thread.join(10)
    assert bus.flush(10) and got == list(range(100))
    bus.close()


def test_a_batch_is_handed_over_when_full_or_max_delay_after_its_first_event() -> None:
    bus: EventBus[int] = EventBus()
    batches: list[list[int]] = []
    bus.subscribe(lambda b: batches.append(list(b)), batch_size=10, max_delay=0.3)
    bus.publish([1, 2, 3])
    time.sleep(0.05)
    assert batches == []  # not full, not due yet
    deadline = time.monotonic() + 5
    while not batches and time.monotonic() < deadline:
        time.sleep(0.01)
    assert batches == [[1, 2, 3]]  # due: handed over without more events coming
    slow: list[list[int]] = []
    bus.subscribe(lambda b: slow.append(list(b)), batch_size=10, max_delay=60)
    bus.publish(list(range(10)))
    deadline = time.monotonic() + 5
    while not slow and time.monotonic() < deadline:
        time.sleep(0.01)
    assert slow == [list(range(10))]  # full: handed over long before max_delay
    bus.publish([10, 11])
    assert bus.flush(5) and slow[-1] == [10, 11]  # a flush does not wait out max_delay
    bus.close()
