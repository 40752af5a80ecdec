"""The LLMClient protocol and bounded concurrent batch invocation."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, runtime_checkable

from swarmlearn.errors import BackendError, ConfigError
from swarmlearn.llm._types import Completion, CompletionRequest

__all__ = ["LLMClient", "run_batch"]

logger = logging.getLogger(__name__)


@runtime_checkable
class LLMClient(Protocol):
    """What a worker needs from a language model.

    ``complete`` returns a :class:`Completion` or raises a
    :class:`~swarmlearn.errors.BackendError` (never an empty text in place of
    a failure). ``complete_many`` runs at most ``concurrency`` calls at once
    and returns, in request order, each call's completion or its error: one
    failed call is data, not an exception that loses the others.
    Both are safe to call from many threads.
    """

    def complete(self, request: CompletionRequest) -> Completion: ...

    def complete_many(
        self, requests: Sequence[CompletionRequest], *, concurrency: int = 4
    ) -> list[Completion | BackendError]: ...


def _one(
    complete: Callable[[CompletionRequest], Completion], request: CompletionRequest
) -> Completion | BackendError:
    try:
        return complete(request)
    except BackendError as exc:
        logger.debug("batch call failed: %s", exc)
        return exc


def run_batch(
    complete: Callable[[CompletionRequest], Completion],
    requests: Sequence[CompletionRequest],
    *,
    concurrency: int,
) -> list[Completion | BackendError]:
    """Call ``complete`` on every request, at most ``concurrency`` at a time.

    Results come back in request order; a :class:`BackendError` is returned in
    place of its completion, any other exception propagates.
    """
    if concurrency < 1:
        raise ConfigError(
            f"concurrency must be >= 1, got {concurrency}", field="concurrency", value=concurrency
        )
    if not requests:
        return []
    workers = min(concurrency, len(requests))
    if workers == 1:
        return [_one(complete, r) for r in requests]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="swarmlearn-llm") as pool:
        futures = [pool.submit(_one, complete, r) for r in requests]
        return [f.result() for f in futures]
