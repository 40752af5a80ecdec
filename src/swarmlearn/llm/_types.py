"""Records that cross the LLM client boundary: requests, completions, call records."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from swarmlearn.core.events import LLMCallEvent
from swarmlearn.errors import ConfigError
from swarmlearn.types import EventId, SessionId, WorkerId

__all__ = [
    "CallRecord",
    "Completion",
    "CompletionRequest",
    "LoraScale",
    "Message",
    "Role",
    "ServerTimings",
]


class Role(enum.StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message."""

    role: Role
    content: str

    @classmethod
    def system(cls, content: str) -> Message:
        return cls(Role.SYSTEM, content)

    @classmethod
    def user(cls, content: str) -> Message:
        return cls(Role.USER, content)

    @classmethod
    def assistant(cls, content: str) -> Message:
        return cls(Role.ASSISTANT, content)


@dataclass(frozen=True, slots=True)
class LoraScale:
    """The scale of one LoRA adapter (by its id on the server) for one request."""

    id: int
    scale: float

    def __post_init__(self) -> None:
        if self.id < 0:
            raise ConfigError(f"LoRA adapter id must be >= 0, got {self.id}", field="lora.id")


_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, kw_only=True, slots=True)
class CompletionRequest:
    """One chat completion to ask for.

    ``json_schema`` constrains the reply (llama.cpp compiles it to a grammar);
    ``lora`` sets adapter scales for this request only (adapters not listed run
    at scale 0); ``adapter`` is the label recorded with the call (defaults to a
    rendering of ``lora``); ``purpose`` says why the call was made ("decide",
    "guide", "plan" …) and is recorded too. ``extra`` is merged into the HTTP
    body last, for server options this record does not name.
    """

    messages: tuple[Message, ...]
    max_tokens: int = 128
    temperature: float = 0.0
    seed: int | None = None
    json_schema: Mapping[str, Any] | None = None
    lora: tuple[LoraScale, ...] | None = None
    stop: tuple[str, ...] = ()
    cache_prompt: bool | None = None
    adapter: str = ""
    purpose: str = ""
    extra: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    def __post_init__(self) -> None:
        if not self.messages:
            raise ConfigError("a completion request needs at least one message", field="messages")
        if self.max_tokens < 1:
            raise ConfigError(
                f"max_tokens must be >= 1, got {self.max_tokens}",
                field="max_tokens",
                value=self.max_tokens,
            )
        if not 0.0 <= self.temperature <= 5.0:
            raise ConfigError(
                f"temperature must be in [0, 5], got {self.temperature}",
                field="temperature",
                value=self.temperature,
            )

    @classmethod
    def chat(cls, user: str, *, system: str | None = None, **kwargs: Any) -> CompletionRequest:
        """A request of one optional system message and one user message."""
        messages: tuple[Message, ...] = (Message.user(user),)
        if system is not None:
            messages = (Message.system(system), *messages)
        return cls(messages=messages, **kwargs)

    @property
    def adapter_label(self) -> str:
        """What to record as the adapter of this call."""
        if self.adapter:
            return self.adapter
        if self.lora:
            return ",".join(f"{s.id}@{s.scale:g}" for s in self.lora if s.scale != 0.0)
        return ""

    def to_body(self, model: str) -> dict[str, Any]:
        """The OpenAI-compatible JSON body of this request."""
        body: dict[str, Any] = {
            "messages": [{"role": m.role.value, "content": m.content} for m in self.messages],
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        if model:
            body["model"] = model
        if self.seed is not None:
            body["seed"] = self.seed
        if self.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "reply", "schema": dict(self.json_schema)},
            }
        if self.lora is not None:
            body["lora"] = [{"id": s.id, "scale": s.scale} for s in self.lora]
        if self.stop:
            body["stop"] = list(self.stop)
        if self.cache_prompt is not None:
            body["cache_prompt"] = self.cache_prompt
        body.update(self.extra)
        return body


@dataclass(frozen=True, slots=True)
class ServerTimings:
    """What a llama.cpp server reports about one request (its ``timings`` field)."""

    prompt_n: int
    prompt_ms: float
    predicted_n: int
    predicted_ms: float
    cache_n: int

    @property
    def predicted_per_second(self) -> float:
        return 1000.0 * self.predicted_n / self.predicted_ms if self.predicted_ms > 0 else 0.0

    @property
    def total_ms(self) -> float:
        return self.prompt_ms + self.predicted_ms


@dataclass(frozen=True, kw_only=True, slots=True)
class Completion:
    """A reply. ``latency`` is wall-clock seconds for the call, retries included."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    latency: float
    model: str
    adapter: str
    finish_reason: str
    attempts: int = 1
    timings: ServerTimings | None = None

    @property
    def truncated(self) -> bool:
        """True when the reply stopped at ``max_tokens`` rather than by itself."""
        return self.finish_reason == "length"


@dataclass(frozen=True, kw_only=True, slots=True)
class CallRecord:
    """One LLM call as the client saw it, ok or failed.

    The client does not know the swarm's session, task, worker or tick; the
    caller adds them with :meth:`to_event` to get an :class:`LLMCallEvent`.
    """

    purpose: str
    model: str
    adapter: str
    prompt_tokens: int
    completion_tokens: int
    latency: float
    ok: bool
    error: str
    attempts: int
    ts: float

    @classmethod
    def of(
        cls,
        request: CompletionRequest,
        *,
        completion: Completion | None,
        error: BaseException | None,
        latency: float,
        attempts: int,
        ts: float,
        model: str,
    ) -> CallRecord:
        """The record of one call that returned ``completion`` or failed with ``error``."""
        return cls(
            purpose=request.purpose,
            model=completion.model if completion else model,
            adapter=request.adapter_label,
            prompt_tokens=completion.prompt_tokens if completion else 0,
            completion_tokens=completion.completion_tokens if completion else 0,
            latency=latency,
            ok=error is None,
            error=f"{type(error).__name__}: {error}" if error else "",
            attempts=attempts,
            ts=ts,
        )

    def to_event(
        self, *, id: EventId, session: SessionId, task: str, worker: WorkerId, tick: int
    ) -> LLMCallEvent:
        return LLMCallEvent(
            id=id,
            session=session,
            task=task,
            worker=worker,
            tick=tick,
            purpose=self.purpose,
            model=self.model,
            adapter=self.adapter,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            latency=self.latency,
            ok=self.ok,
            error=self.error,
            ts=self.ts,
        )
