"""Attaching feedback to a recorded task: classify the words, decide the reward, record it.

:func:`attach_feedback` writes one :class:`~swarmlearn.core.events.FeedbackEvent`
to the store, beside the episode it is about; nothing recorded is
rewritten. Readers of the store then see the corrected outcome in place of
the recorded one (``store.episodes()``), so every learning level that reads
episodes learns from it.
"""

from __future__ import annotations

import logging
import time

from swarmlearn.core.events import EpisodeEnded, FeedbackEvent
from swarmlearn.errors import ConfigError, StoreError
from swarmlearn.feedback._reward import RewardMapping
from swarmlearn.feedback._types import TextClassifier
from swarmlearn.store import Store
from swarmlearn.types import SessionId

__all__ = ["attach_feedback", "find_episode"]

logger = logging.getLogger(__name__)


def find_episode(store: Store, session: SessionId, task: str) -> EpisodeEnded:
    """The episode ``task`` names in ``session``: a task name (its latest episode) or an
    episode number."""
    episodes = store.episodes(session=session)
    if not episodes:
        raise StoreError(f"session {session} has no recorded episodes in {store.url}")
    named = [e for e in episodes if e.task == task]
    if named:
        return named[-1]
    if task.strip().isdigit():
        numbered = [e for e in episodes if e.episode == int(task)]
        if numbered:
            return numbered[-1]
    tasks = sorted({e.task for e in episodes})
    shown = ", ".join(tasks[:5]) + (f" … ({len(tasks)} in all)" if len(tasks) > 5 else "")
    raise StoreError(f"session {session} has no task {task!r} (a task name or an episode "
                     f"number; its tasks: {shown})")


def attach_feedback(store: Store, session: SessionId, task: str, text: str, *,
                    classifier: TextClassifier, mapping: RewardMapping) -> FeedbackEvent:
    """Classify ``text`` about ``task`` of ``session``, and record the feedback event.

    The event carries the text, label, confidence and the classifier's
    version; it is applied (corrects the outcome) unless its label keeps the
    outcome or its confidence is below ``mapping.min_confidence``.
    """
    if not text.strip():
        raise ConfigError("text: the feedback text is empty", field="text")
    mapping.check_covers(classifier.labels)
    ended = find_episode(store, session, task)
    pred = classifier.predict([text])[0]
    decision = mapping.decide(pred.label, pred.confidence, ended.outcome)
    event = FeedbackEvent(session, ended.task, ended.id, text.strip(), pred.label,
                          pred.confidence, classifier.version, decision.applied,
                          decision.outcome, decision.reward, time.time())
    store.write([event])
    logger.info("feedback on %s/%s: %s (%.2f) — %s", session, ended.task, pred.label,
                pred.confidence, decision.why)
    return event
