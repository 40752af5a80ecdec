"""A scripted LLM client for tests of worker and manager logic: no server, no randomness."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence

from swarmlearn.errors import BackendError
from swarmlearn.llm._batch import run_batch
from swarmlearn.llm._client import CallHook
from swarmlearn.llm._types import CallRecord, Completion, CompletionRequest

__all__ = ["ScriptExhausted", "ScriptedLLMClient", "ScriptedReply"]

ScriptedReply = str | Completion | BackendError | Callable[[CompletionRequest], str]
"""One step of a script: a reply text, a full completion, an error to raise, or a
function of the request that returns the reply text."""


class ScriptExhausted(LookupError):
    """The test asked a :class:`ScriptedLLMClient` for more replies than it was given."""


def _count_tokens(text: str) -> int:
    return len(text.split())


class ScriptedLLMClient:
    """An :class:`~swarmlearn.llm.LLMClient` that answers from a script, in order.

    Every request is kept in :attr:`requests`; every call is reported to
    ``on_call`` like the HTTP client does. When the script runs out, ``default``
    (if given) answers; otherwise :class:`ScriptExhausted` is raised. Token
    counts are whitespace word counts.
    """

    def __init__(
        self,
        script: Iterable[ScriptedReply] = (),
        *,
        default: ScriptedReply | None = None,
        model: str = "scripted",
        on_call: CallHook | None = None,
    ) -> None:
        self._script: deque[ScriptedReply] = deque(script)
        self._default = default
        self.model = model
        self._on_call = on_call
        self._lock = threading.Lock()
        self.requests: list[CompletionRequest] = []

    @property
    def remaining(self) -> int:
        with self._lock:
            return len(self._script)

    def _next(self, request: CompletionRequest) -> ScriptedReply:
        with self._lock:
            self.requests.append(request)
            if self._script:
                return self._script.popleft()
            if self._default is not None:
                return self._default
            raise ScriptExhausted(
                f"ScriptedLLMClient: script exhausted after {len(self.requests) - 1} replies"
            )

    def complete(self, request: CompletionRequest) -> Completion:
        start = time.perf_counter()
        step = self._next(request)
        try:
            completion = self._answer(step, request, start)
        except BackendError as exc:
            self._record(request, None, time.perf_counter() - start, exc)
            raise
        self._record(request, completion, completion.latency, None)
        return completion

    def complete_many(
        self, requests: Sequence[CompletionRequest], *, concurrency: int = 4
    ) -> list[Completion | BackendError]:
        return run_batch(self.complete, requests, concurrency=concurrency)

    def _answer(self, step: ScriptedReply, request: CompletionRequest, start: float) -> Completion:
        if isinstance(step, BackendError):
            raise step
        if isinstance(step, Completion):
            return step
        text = step(request) if callable(step) else step
        prompt = " ".join(m.content for m in request.messages)
        return Completion(
            text=text,
            prompt_tokens=_count_tokens(prompt),
            completion_tokens=_count_tokens(text),
            cached_tokens=0,
            latency=time.perf_counter() - start,
            model=self.model,
            adapter=request.adapter_label,
            finish_reason="stop",
        )

    def _record(
        self,
        request: CompletionRequest,
        completion: Completion | None,
        latency: float,
        error: BackendError | None,
    ) -> None:
        if self._on_call is not None:
            self._on_call(
                CallRecord.of(
                    request,
                    completion=completion,
                    error=error,
                    latency=latency,
                    attempts=1,
                    ts=time.time(),
                    model=self.model,
                )
            )
