"""The events a swarm publishes, and how their ids are made.

Every event carries a stable, unique, ordered integer id::

    id = session << 32 | seq

``session`` is allocated by the store (an autoincrement key, so two
processes never get the same one and a restarted run gets a larger one) and
``seq`` counts up within the session. Ids are therefore ordered within a
session, sessions are ordered by start, and nothing ever collides.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import NamedTuple, TypeAlias

from swarmlearn.core.actions import ActionResult
from swarmlearn.types import EventId, Outcome, SessionId, WorkerId

__all__ = [
    "SEQ_BITS",
    "ActionEvent",
    "EpisodeEnded",
    "EpisodeStarted",
    "Event",
    "EventIds",
    "FeedbackEvent",
    "LLMCallEvent",
    "NoteEvent",
    "session_of",
]

SEQ_BITS = 32
_SEQ_MASK = (1 << SEQ_BITS) - 1


def session_of(event_id: EventId) -> SessionId:
    """The session an event id belongs to."""
    return event_id >> SEQ_BITS


class EventIds:
    """Allocates ``session << 32 | seq`` ids; ``start`` continues a session."""

    __slots__ = ("_counter", "session")

    def __init__(self, session: SessionId, start: int = 0) -> None:
        if session < 0 or session >= 1 << 31:
            raise ValueError(f"session id out of range: {session}")
        self.session = session
        self._counter = itertools.count((session << SEQ_BITS) | (start & _SEQ_MASK))

    def next(self) -> EventId:
        return next(self._counter)


class ActionEvent(NamedTuple):
    """One action taken by one worker, and what it did."""

    id: EventId
    session: SessionId
    task: str
    group: str
    episode: int
    tick: int
    worker: WorkerId
    action: str
    target: str
    args: tuple[tuple[str, str], ...]
    result: ActionResult
    duration: float  # seconds spent in env.step
    context: str
    ts: float  # wall-clock time (epoch seconds)

    @property
    def success(self) -> bool:
        return self.result.success

    @property
    def key(self) -> str:
        return f"{self.action}:{self.target}" if self.target else self.action


class LLMCallEvent(NamedTuple):
    """One call to a language model (decide, guide, plan, reflect …)."""

    id: EventId
    session: SessionId
    task: str
    worker: WorkerId
    tick: int
    purpose: str
    model: str
    adapter: str
    prompt_tokens: int
    completion_tokens: int
    latency: float  # seconds
    ok: bool
    error: str
    ts: float


class EpisodeStarted(NamedTuple):
    """A task (one episode) begins."""

    id: EventId
    session: SessionId
    task: str
    group: str
    episode: int
    seed: int
    ts: float


class EpisodeEnded(NamedTuple):
    """A task ends; covers the action events ``first_event..last_event``."""

    id: EventId
    session: SessionId
    task: str
    group: str
    episode: int
    seed: int
    outcome: Outcome
    ticks: int
    actions: int
    duration: float  # seconds, by the swarm's clock
    first_event: EventId
    last_event: EventId
    stats: Mapping[str, float]  # extra counters (invalid actions, dropped events …)
    ts: float


class NoteEvent(NamedTuple):
    """Something a component wants on the record: a strategy switch, a rollback …

    Notes have no event id of their own (the store numbers them); ``data``
    holds a few typed values, never nested structures.
    """

    session: SessionId
    task: str
    worker: WorkerId
    tick: int
    kind: str
    message: str
    data: Mapping[str, str | float]
    ts: float


class FeedbackEvent(NamedTuple):
    """A person's words about a finished task, classified, and the outcome they imply.

    The episode's recorded outcome is never rewritten: this event is stored
    beside it, and readers of the store see ``outcome`` in its place when
    ``applied`` (the latest applied feedback of an episode wins). A prediction
    below the reward mapping's confidence floor is recorded with
    ``applied=False`` and ``outcome`` the one it would have set.
    ``classifier`` is the version of the classifier that read ``text``.
    """

    session: SessionId
    task: str
    episode: EventId  # the id of the EpisodeEnded the words are about
    text: str
    label: str
    confidence: float
    classifier: str
    applied: bool
    outcome: Outcome
    reward: float  # the value the outcome credits, in [0, 1]
    ts: float


Event: TypeAlias = (
    ActionEvent | LLMCallEvent | EpisodeStarted | EpisodeEnded | NoteEvent | FeedbackEvent
)
