"""Following the store by id watermark: every episode once, whatever the sessions do."""

from __future__ import annotations

import random
import time

import pytest

from swarmlearn.core.events import EpisodeEnded, EventIds, FeedbackEvent
from swarmlearn.store import EpisodeCursor, SqlStore
from swarmlearn.types import Failure, OutcomeKind, Success


def _ended(ids: EventIds, solved: bool) -> EpisodeEnded:
    outcome = Success() if solved else Failure(reason="no")
    return EpisodeEnded(ids.next(), ids.session, "t", "g", 0, 1, outcome, 1, 1, 0.1, 0, 0, {},
                        time.time())


class _Writer:
    def __init__(self, st: SqlStore, scenario: str = "s", kind: str = "run") -> None:
        self.st = st
        self.sid = st.open_session(scenario=scenario, kind=kind)
        self.ids = EventIds(self.sid, 0)
        self.written: list[int] = []

    def write(self, n: int, solved: bool = True) -> list[int]:
        batch = [_ended(self.ids, solved) for _ in range(n)]
        self.st.write(batch)
        self.written += [e.id for e in batch]
        return [e.id for e in batch]

    def close(self) -> None:
        self.st.close_session(self.sid)


def test_a_follower_reads_each_new_episode_once_and_ended_sessions_drop_out(
        store_url: str) -> None:
    with SqlStore(store_url) as st:
        a, b = _Writer(st), _Writer(st)
        a.write(3)
        b.write(2)
        got, cur = st.follow_episodes(None, scenario="s")
        assert sorted(g.id for g in got) == sorted(a.written + b.written)
        assert cur.poll == {a.sid, b.sid}
        again, cur = st.follow_episodes(cur, scenario="s")
        assert again == []
        a.write(2)  # the older session writes again, below the newer one's ids
        b.write(1)
        a.close()  # ended: the next look reads it once more, then leaves it
        got, cur = st.follow_episodes(cur, scenario="s")
        assert sorted(g.id for g in got) == sorted(a.written[3:] + b.written[2:])
        assert cur.poll == {b.sid}
        c = _Writer(st)  # a session begun after the last look is read whole
        c.write(4)
        got, cur = st.follow_episodes(cur, scenario="s")
        assert [g.id for g in got] == c.written
        assert st.count_episodes(scenario="s") == len(a.written + b.written + c.written)


def test_random_interleavings_lose_and_repeat_nothing(store_url: str) -> None:
    rng = random.Random(3)
    with SqlStore(store_url) as st:
        writers: list[_Writer] = []
        seen: list[int] = []
        cursor: EpisodeCursor | None = None
        for _ in range(120):
            r = rng.random()
            open_ = [w for w in writers if w.sid not in getattr(w, "closed", set())]
            if r < 0.12 or not open_:
                writers.append(_Writer(st))
            elif r < 0.6:
                rng.choice(open_).write(rng.randint(1, 3), rng.random() < 0.5)
            elif r < 0.72:
                w = rng.choice(open_)
                w.close()
                w.closed = {w.sid}  # type: ignore[attr-defined]
            else:
                got, cursor = st.follow_episodes(cursor, scenario="s")
                seen += [g.id for g in got]
        got, cursor = st.follow_episodes(cursor, scenario="s")
        seen += [g.id for g in got]
        every = sorted(i for w in writers for i in w.written)
        assert len(seen) == len(set(seen)), "an episode came twice"
        assert sorted(seen) == every
        assert cursor.poll <= {w.sid for w in writers if not hasattr(w, "closed")}


def test_from_end_starts_after_what_is_there_and_a_resumed_session_continues(
        store_url: str) -> None:
    with SqlStore(store_url) as st:
        a = _Writer(st)
        a.write(5)
        a.close()
        b = _Writer(st)
        b.write(2)
        got, cur = st.follow_episodes(None, scenario="s", from_end=True)
        assert got == [] and cur.poll == {b.sid}
        assert all(cur.covers(i, a.sid) for i in a.written)
        assert all(cur.covers(i, b.sid) for i in b.written)
        b.write(1)
        assert not cur.covers(b.written[-1], b.sid)
        st.reopen_session(a.sid)  # `run --resume`: the ended session writes again
        a.write(2)
        got, cur = st.follow_episodes(cur, scenario="s")
        assert sorted(g.id for g in got) == sorted(a.written[5:] + b.written[2:])


def test_filters_and_feedback_are_those_of_episodes(store_url: str) -> None:
    with SqlStore(store_url) as st:
        mine, other, daemon = _Writer(st), _Writer(st, scenario="x"), _Writer(st, kind="daemon")
        first = mine.write(2, solved=True)
        other.write(2)
        daemon.write(2)
        st.write([FeedbackEvent(mine.sid, "t", first[0], "no, still down", "anger", 0.9, "fb@1",
                                True, Failure(reason="feedback"), -1.0, time.time())])
        got, _ = st.follow_episodes(None, scenario="s", exclude_kinds=["daemon"])
        assert [g.id for g in got] == first
        assert [g.outcome for g in got] == [OutcomeKind.FAILURE, OutcomeKind.SUCCESS]
        assert [g.solved for g in got] == [False, True]
        assert [g.outcome for g in got] == [e.outcome.kind for e in st.episodes(
            scenario="s", exclude_kinds=["daemon"])]


def test_reopening_a_missing_session_is_one_clear_error(store_url: str) -> None:
    from swarmlearn.errors import StoreError

    with SqlStore(store_url) as st:
        _Writer(st).write(1)
        with pytest.raises(StoreError, match="no session 99"):
            st.reopen_session(99)
