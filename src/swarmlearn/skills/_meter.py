"""Calls and tokens per stage, and the budget that stops a run cleanly.

:class:`Meter` wraps an :class:`~swarmlearn.llm.LLMClient`: every call is
counted under its stage (``rollout``, ``validate``, ``reflect``, ``rank``,
``test``), ok or failed, with its prompt and completion tokens. Before a call
starts, :meth:`Meter.complete` raises :class:`BudgetExhausted` when the budget
(calls or tokens) is spent; the optimizer then stops at the last checkpoint,
which a resume with a larger budget continues from.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from swarmlearn._config import check_range
from swarmlearn.errors import BackendError, SwarmlearnError
from swarmlearn.llm import Completion, CompletionRequest, LLMClient, run_batch

__all__ = ["Budget", "BudgetExhausted", "Meter", "StageUsage", "Usage"]


class BudgetExhausted(SwarmlearnError):
    """The run's call or token budget is spent (a clean, resumable stop)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Budget:
    """``max_calls`` / ``max_tokens`` over the whole run (0: no limit)."""

    max_calls: int = 0
    max_tokens: int = 0

    def __post_init__(self) -> None:
        check_range("max_calls", self.max_calls, lo=0)
        check_range("max_tokens", self.max_tokens, lo=0)


@dataclass(slots=True)
class StageUsage:
    calls: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, int]:
        return {"calls": self.calls, "failed": self.failed,
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens}


@dataclass(slots=True)
class Usage:
    """Usage per stage; ``total`` sums them."""

    stages: dict[str, StageUsage] = field(default_factory=dict)

    @property
    def calls(self) -> int:
        return sum(s.calls for s in self.stages.values())

    @property
    def tokens(self) -> int:
        return sum(s.tokens for s in self.stages.values())

    def copy(self) -> Usage:
        return Usage.from_dict(self.to_dict())

    def to_dict(self) -> dict[str, dict[str, int]]:
        return {k: v.to_dict() for k, v in sorted(self.stages.items())}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Usage:
        return cls({k: StageUsage(int(v["calls"]), int(v["failed"]), int(v["prompt_tokens"]),
                                  int(v["completion_tokens"])) for k, v in data.items()})


class Meter:
    """An LLM client that counts every call under ``stage`` and enforces ``budget``."""

    def __init__(self, client: LLMClient, usage: Usage, budget: Budget, lock: threading.Lock,
                 stage: str = "") -> None:
        self._client = client
        self.usage = usage
        self.budget = budget
        self._lock = lock
        self.stage = stage

    @classmethod
    def over(cls, client: LLMClient, budget: Budget | None = None,
             usage: Usage | None = None) -> Meter:
        return cls(client, usage or Usage(), budget or Budget(), threading.Lock())

    def for_stage(self, stage: str) -> Meter:
        """The same counters and budget, calls counted under ``stage``."""
        return Meter(self._client, self.usage, self.budget, self._lock, stage)

    def exhausted(self) -> str:
        """Why the budget is spent, or ``""`` if it is not."""
        b, u = self.budget, self.usage
        if b.max_calls and u.calls >= b.max_calls:
            return f"call budget spent ({u.calls} >= {b.max_calls})"
        if b.max_tokens and u.tokens >= b.max_tokens:
            return f"token budget spent ({u.tokens} >= {b.max_tokens})"
        return ""

    def complete(self, request: CompletionRequest) -> Completion:
        with self._lock:
            why = self.exhausted()
            if why:
                raise BudgetExhausted(why)
            s = self.usage.stages.setdefault(self.stage or "other", StageUsage())
            s.calls += 1
        try:
            reply = self._client.complete(request)
        except BackendError:
            with self._lock:
                s.failed += 1
            raise
        with self._lock:
            s.prompt_tokens += reply.prompt_tokens
            s.completion_tokens += reply.completion_tokens
        return reply

    def complete_many(self, requests: Sequence[CompletionRequest], *,
                      concurrency: int = 4) -> list[Completion | BackendError]:
        return run_batch(self.complete, requests, concurrency=concurrency)
