"""An httpx client for any OpenAI-compatible chat endpoint (llama.cpp, vLLM, OpenAI …).

Failures are typed, after retries::

    connect error, connection reset, 5xx  ──retry──►  BackendUnavailable (503/connect)
                                                      BackendError (other 5xx)
    timeout                               ──retry──►  BackendTimeout
    4xx (bad request, context too long)   ─────────►  BadResponse (not retried)
    2xx whose body is not a completion    ─────────►  BadResponse (not retried)
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import httpx

from swarmlearn.errors import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    BadResponse,
    ConfigError,
)
from swarmlearn.llm._batch import run_batch
from swarmlearn.llm._types import (
    CallRecord,
    Completion,
    CompletionRequest,
    LoraScale,
    ServerTimings,
)

__all__ = [
    "CallHook",
    "HttpLLMClient",
    "LLMClientConfig",
    "OpenAIClient",
    "backoff_delay",
    "normalize_base_url",
]

logger = logging.getLogger(__name__)

CallHook = Callable[[CallRecord], None]


def normalize_base_url(url: str, *, field: str = "base_url") -> str:
    """``url`` without a trailing slash, or ConfigError saying what is wrong with it."""
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError on a non-numeric or out-of-range port
    except ValueError as exc:
        raise ConfigError(f"malformed URL {url!r} for {field}: {exc}", field=field) from exc
    if parts.scheme not in ("http", "https"):
        raise ConfigError(
            f"malformed URL {url!r} for {field}: expected http:// or https://, "
            "e.g. http://127.0.0.1:8080",
            field=field,
            value=url,
        )
    if not parts.hostname:
        raise ConfigError(f"malformed URL {url!r} for {field}: no host", field=field, value=url)
    if parts.query or parts.fragment:
        raise ConfigError(
            f"malformed URL {url!r} for {field}: a base URL has no query or fragment",
            field=field,
            value=url,
        )
    del port
    return text.rstrip("/")


def backoff_delay(
    attempt: int, *, base: float, cap: float, jitter: float, rng: random.Random
) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based).

    Exponential (``base * 2**attempt``, at most ``cap``), reduced by a random
    fraction of at most ``jitter`` so that many clients do not retry in step.
    """
    delay = min(cap, base * (2.0**attempt))
    return delay * (1.0 - jitter * rng.random())


@dataclass(frozen=True, kw_only=True, slots=True)
class LLMClientConfig:
    """Where the server is and how patient to be with it.

    ``base_url`` is the server root (``http://127.0.0.1:8080``) or its ``/v1``
    root; ``model`` is sent as the request's model (llama.cpp ignores it; leave
    it empty there). ``retries`` is the number of retries after the first try.
    """

    base_url: str
    model: str = ""
    api_key: str = ""
    timeout_s: float = 120.0
    connect_timeout_s: float = 5.0
    retries: int = 5
    backoff_s: float = 0.25
    backoff_cap_s: float = 4.0
    jitter: float = 0.5
    max_connections: int = 64

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", normalize_base_url(self.base_url))
        for name in ("timeout_s", "connect_timeout_s", "backoff_cap_s"):
            value = getattr(self, name)
            if not value > 0:
                raise ConfigError(f"{name} must be > 0, got {value}", field=name, value=value)
        if self.retries < 0:
            raise ConfigError(f"retries must be >= 0, got {self.retries}", field="retries")
        if self.backoff_s < 0:
            raise ConfigError(f"backoff_s must be >= 0, got {self.backoff_s}", field="backoff_s")
        if not 0.0 <= self.jitter <= 1.0:
            raise ConfigError(f"jitter must be in [0, 1], got {self.jitter}", field="jitter")
        if self.max_connections < 1:
            raise ConfigError(
                f"max_connections must be >= 1, got {self.max_connections}",
                field="max_connections",
            )

    @property
    def chat_url(self) -> str:
        root = self.base_url if self.base_url.endswith("/v1") else f"{self.base_url}/v1"
        return f"{root}/chat/completions"


class _Retryable(Exception):
    """Internal: one failed attempt that may be retried; carries the typed error."""

    def __init__(self, error: BackendError) -> None:
        super().__init__(str(error))
        self.error = error


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class HttpLLMClient:
    """An :class:`~swarmlearn.llm.LLMClient` over HTTP (httpx), thread-safe.

    ``on_call`` is called once per :meth:`complete`, ok or failed, with a
    :class:`CallRecord`; an exception it raises propagates to the caller.

    ``default_lora`` gives the adapter scales to send with every request that
    sets no ``lora`` of its own (``LlamaServer.lora_scales`` fits). With
    adapters loaded, llama.cpp reuses a slot's cache for a request without a
    ``lora`` field even when the cache was built under other scales; a client
    that always sends the scales never hits that (see ``swarmlearn.serving``).
    ``transport``, ``sleep`` and ``rng`` are for tests (a fake transport, a
    recording sleep, a seeded generator).
    """

    def __init__(
        self,
        config: LLMClientConfig,
        *,
        on_call: CallHook | None = None,
        default_lora: Callable[[], Sequence[LoraScale]] | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self._on_call = on_call
        self._default_lora = default_lora
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._http = httpx.Client(
            timeout=httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s),
            limits=httpx.Limits(
                max_connections=config.max_connections,
                max_keepalive_connections=config.max_connections,
            ),
            headers=headers,
            transport=transport,
        )

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HttpLLMClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calls ---------------------------------------------------------------------------

    def check(self) -> None:
        """Raise BackendUnavailable (one line) unless the server answers now; no retries."""
        url = f"{self.config.base_url.removesuffix('/v1')}/v1/models"
        try:
            response = self._http.get(url, timeout=self.config.connect_timeout_s)
        except httpx.TransportError as exc:
            raise BackendUnavailable(
                f"cannot reach LLM server at {self.config.base_url}: {_one_line(str(exc))}"
            ) from exc
        if response.status_code >= 500:
            raise BackendUnavailable(
                f"LLM server at {self.config.base_url} is not ready: HTTP {response.status_code}"
            )

    def complete(self, request: CompletionRequest) -> Completion:
        if request.lora is None and self._default_lora is not None:
            request = replace(request, lora=tuple(self._default_lora()))
        start = time.perf_counter()
        ts = time.time()
        attempts = 0
        try:
            completion, attempts = self._complete_with_retries(request, start)
        except BackendError as exc:
            self._record(request, None, time.perf_counter() - start, exc, attempts or 1, ts)
            raise
        self._record(request, completion, completion.latency, None, attempts, ts)
        return completion

    def complete_many(
        self, requests: Sequence[CompletionRequest], *, concurrency: int = 4
    ) -> list[Completion | BackendError]:
        return run_batch(self.complete, requests, concurrency=concurrency)

    # -- internals -----------------------------------------------------------------------

    def _complete_with_retries(
        self, request: CompletionRequest, start: float
    ) -> tuple[Completion, int]:
        body = request.to_body(self.config.model)
        retries = self.config.retries
        for attempt in range(retries + 1):
            try:
                data = self._post_once(body)
            except _Retryable as failure:
                if attempt == retries:
                    raise self._exhausted(failure.error, attempt + 1, start) from failure.error
                delay = self._delay(attempt)
                logger.debug(
                    "LLM call attempt %d failed (%s); retrying in %.2fs",
                    attempt + 1,
                    failure.error,
                    delay,
                )
                self._sleep(delay)
                continue
            latency = time.perf_counter() - start
            return _parse_completion(data, request, latency, attempt + 1), attempt + 1
        raise AssertionError("unreachable")  # pragma: no cover

    def _delay(self, attempt: int) -> float:
        c = self.config
        with self._rng_lock:
            return backoff_delay(
                attempt, base=c.backoff_s, cap=c.backoff_cap_s, jitter=c.jitter, rng=self._rng
            )

    def _exhausted(self, error: BackendError, attempts: int, start: float) -> BackendError:
        elapsed = time.perf_counter() - start
        suffix = f" (after {attempts} attempts over {elapsed:.1f}s)" if attempts > 1 else ""
        return type(error)(f"{error}{suffix}")

    def _post_once(self, body: dict[str, Any]) -> dict[str, Any]:
        url = self.config.chat_url
        try:
            response = self._http.post(url, json=body)
        except httpx.TimeoutException as exc:
            kind = "connecting to" if isinstance(exc, httpx.ConnectTimeout) else "waiting for"
            raise _Retryable(
                BackendTimeout(
                    f"timed out {kind} LLM server at {self.config.base_url} ({type(exc).__name__})"
                )
            ) from exc
        except httpx.TransportError as exc:
            raise _Retryable(
                BackendUnavailable(
                    f"cannot reach LLM server at {self.config.base_url}: "
                    f"{_one_line(str(exc)) or type(exc).__name__}"
                )
            ) from exc
        status = response.status_code
        if status >= 500 or status == 429:
            detail = _error_detail(response)
            cls = BackendUnavailable if status in (429, 503) else BackendError
            raise _Retryable(cls(f"LLM server at {url} answered HTTP {status}: {detail}"))
        if status >= 400:
            detail = _error_detail(response)
            raise BadResponse(f"LLM server at {url} answered HTTP {status}: {detail}")
        try:
            data = response.json()
        except ValueError as exc:
            raise BadResponse(
                f"LLM server at {url} answered with a body that is not JSON: "
                f"{_one_line(response.text, 120)!r}"
            ) from exc
        if not isinstance(data, dict):
            raise BadResponse(f"LLM server at {url} answered with a JSON {type(data).__name__}")
        return data

    def _record(
        self,
        request: CompletionRequest,
        completion: Completion | None,
        latency: float,
        error: BackendError | None,
        attempts: int,
        ts: float,
    ) -> None:
        if self._on_call is not None:
            self._on_call(
                CallRecord.of(
                    request,
                    completion=completion,
                    error=error,
                    latency=latency,
                    attempts=attempts,
                    ts=ts,
                    model=self.config.model,
                )
            )


OpenAIClient = HttpLLMClient
"""Alias: the client speaks the OpenAI chat-completions protocol."""


def _error_detail(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return _one_line(response.text, 200) or response.reason_phrase
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and "message" in err:
            return _one_line(str(err["message"]), 200)
        if isinstance(err, str):
            return _one_line(err, 200)
    return _one_line(str(data), 200)


def _as_int(value: Any, default: int = 0) -> int:
    return int(value) if isinstance(value, int | float) else default


def _parse_timings(data: Any) -> ServerTimings | None:
    if not isinstance(data, dict):
        return None
    try:
        return ServerTimings(
            prompt_n=_as_int(data.get("prompt_n")),
            prompt_ms=float(data.get("prompt_ms", 0.0)),
            predicted_n=_as_int(data.get("predicted_n")),
            predicted_ms=float(data.get("predicted_ms", 0.0)),
            cache_n=_as_int(data.get("cache_n")),
        )
    except (TypeError, ValueError):
        logger.debug("ignoring malformed timings %r", data)
        return None


def _parse_completion(
    data: dict[str, Any], request: CompletionRequest, latency: float, attempts: int
) -> Completion:
    try:
        choice = data["choices"][0]
        text = choice["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise BadResponse(
            f"LLM reply has no choices[0].message.content: {_one_line(str(data), 200)}"
        ) from exc
    if not isinstance(text, str):
        raise BadResponse(f"LLM reply content is {type(text).__name__}, not text")
    raw_usage = data.get("usage")
    usage: dict[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
    details = usage.get("prompt_tokens_details")
    timings = _parse_timings(data.get("timings"))
    cached = _as_int(details.get("cached_tokens")) if isinstance(details, dict) else 0
    if timings is not None and not cached:
        cached = timings.cache_n
    return Completion(
        text=text,
        prompt_tokens=_as_int(usage.get("prompt_tokens")),
        completion_tokens=_as_int(usage.get("completion_tokens")),
        cached_tokens=cached,
        latency=latency,
        model=str(data.get("model", "")),
        adapter=request.adapter_label,
        finish_reason=str(choice.get("finish_reason") or ""),
        attempts=attempts,
        timings=timings,
    )
