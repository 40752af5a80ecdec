"""HttpLLMClient against httpx's MockTransport: bodies, retries, backoff, typed errors."""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarmlearn.core.events import LLMCallEvent
from swarmlearn.errors import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    BadResponse,
    ConfigError,
)
from swarmlearn.llm import (
    CallRecord,
    Completion,
    CompletionRequest,
    HttpLLMClient,
    LLMClientConfig,
    LoraScale,
    backoff_delay,
)

Handler = Callable[[httpx.Request], httpx.Response]


def reply(text: str = '{"action": "a"}', **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"content": text}}],
        "model": "smol.gguf",
        "usage": {
            "prompt_tokens": 12,
            "completion_tokens": 5,
            "prompt_tokens_details": {"cached_tokens": 3},
        },
        "timings": {
            "prompt_n": 9,
            "prompt_ms": 10.0,
            "predicted_n": 5,
            "predicted_ms": 50.0,
            "cache_n": 3,
        },
    }
    body.update(extra)
    return body


class Recorder:
    """A fake sleep and a list of call records."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.records: list[CallRecord] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def make_client(handler: Handler, rec: Recorder, **config: Any) -> HttpLLMClient:
    cfg = LLMClientConfig(base_url="http://llm.test:8080", jitter=0.0, **config)
    return HttpLLMClient(
        cfg,
        transport=httpx.MockTransport(handler),
        sleep=rec.sleep,
        rng=random.Random(0),
        on_call=rec.records.append,
    )


def test_complete_sends_the_request_and_parses_the_reply() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url == "http://llm.test:8080/v1/chat/completions"
        seen.append(json.loads(request.content))
        return httpx.Response(200, json=reply())

    rec = Recorder()
    schema = {"type": "object", "properties": {"action": {"enum": ["a", "b"]}}}
    request = CompletionRequest.chat(
        "pick",
        system="you are a worker",
        json_schema=schema,
        lora=(LoraScale(0, 0.5),),
        seed=7,
        max_tokens=32,
        purpose="decide",
    )
    with make_client(handler, rec, model="smol") as client:
        completion = client.complete(request)

    body = seen[0]
    assert body["messages"] == [
        {"role": "system", "content": "you are a worker"},
        {"role": "user", "content": "pick"},
    ]
    assert body["response_format"]["json_schema"]["schema"] == schema
    assert body["lora"] == [{"id": 0, "scale": 0.5}]
    assert (body["seed"], body["max_tokens"], body["model"]) == (7, 32, "smol")
    assert completion.text == '{"action": "a"}'
    assert (completion.prompt_tokens, completion.completion_tokens) == (12, 5)
    assert completion.cached_tokens == 3
    assert completion.finish_reason == "stop" and not completion.truncated
    assert completion.model == "smol.gguf"
    assert completion.adapter == "0@0.5"
    assert completion.timings is not None and completion.timings.predicted_per_second == 100.0
    assert rec.sleeps == []
    [record] = rec.records
    assert record.ok and record.purpose == "decide" and record.prompt_tokens == 12
    event = record.to_event(id=5, session=1, task="t", worker=2, tick=3)
    assert isinstance(event, LLMCallEvent) and event.completion_tokens == 5


def test_base_url_with_v1_is_not_doubled() -> None:
    cfg = LLMClientConfig(base_url="http://h:1/v1/")
    assert cfg.chat_url == "http://h:1/v1/chat/completions"


def test_5xx_is_retried_with_exponential_backoff_then_succeeds() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls <= 3:
            return httpx.Response(503, json={"error": {"message": "Loading model"}})
        return httpx.Response(200, json=reply())

    rec = Recorder()
    with make_client(handler, rec, backoff_s=0.1, backoff_cap_s=0.3) as client:
        completion = client.complete(CompletionRequest.chat("x"))
    assert calls == 4 and completion.attempts == 4
    assert rec.sleeps == pytest.approx([0.1, 0.2, 0.3])  # capped at 0.3
    assert rec.records[0].ok and rec.records[0].attempts == 4


def test_connect_errors_exhaust_to_backend_unavailable_one_line() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    rec = Recorder()
    with make_client(handler, rec, retries=2) as client, pytest.raises(BackendUnavailable) as info:
        client.complete(CompletionRequest.chat("x", purpose="guide"))
    assert calls == 3
    message = str(info.value)
    assert "\n" not in message
    assert "Connection refused" in message and "after 3 attempts" in message
    [record] = rec.records
    assert not record.ok and record.error.startswith("BackendUnavailable:")
    assert record.purpose == "guide" and record.completion_tokens == 0


def test_timeouts_become_backend_timeout() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    rec = Recorder()
    with make_client(handler, rec, retries=1) as client, pytest.raises(BackendTimeout):
        client.complete(CompletionRequest.chat("x"))
    assert len(rec.sleeps) == 1


def test_other_5xx_is_a_backend_error_not_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, text="boom")

    rec = Recorder()
    with make_client(handler, rec, retries=1) as client, pytest.raises(BackendError) as info:
        client.complete(CompletionRequest.chat("x"))
    assert type(info.value) is BackendError and "HTTP 500: boom" in str(info.value)


def test_4xx_is_bad_response_and_not_retried() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(
            400, json={"error": {"message": "the request exceeds the available context size"}}
        )

    rec = Recorder()
    with make_client(handler, rec) as client, pytest.raises(BadResponse, match="context size"):
        client.complete(CompletionRequest.chat("x"))
    assert calls == 1 and rec.sleeps == []


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="<html>not json</html>"),
        httpx.Response(200, json=["a list"]),
        httpx.Response(200, json={"choices": []}),
        httpx.Response(200, json={"choices": [{"message": {"content": None}}]}),
    ],
)
def test_unusable_2xx_bodies_are_bad_responses(response: httpx.Response) -> None:
    rec = Recorder()
    with make_client(lambda r: response, rec) as client, pytest.raises(BadResponse):
        client.complete(CompletionRequest.chat("x"))
    assert not rec.records[0].ok


@pytest.mark.parametrize(
    "url",
    ["127.0.0.1:8080", "ftp://host/x", "http://", "http://host:notaport", "http://h:1/?q=1", ""],
)
def test_malformed_base_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        LLMClientConfig(base_url=url)
    assert "\n" not in str(info.value) and info.value.field == "base_url"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_url_is_backend_unavailable_in_one_line() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    with HttpLLMClient(LLMClientConfig(base_url=url, retries=1, backoff_s=0.01)) as client:
        with pytest.raises(BackendUnavailable) as info:
            client.check()
        assert url in str(info.value) and "\n" not in str(info.value)
        with pytest.raises(BackendUnavailable) as info:
            client.complete(CompletionRequest.chat("x"))
        assert url in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [("timeout_s", 0), ("retries", -1), ("jitter", 1.5), ("backoff_s", -1)],
)
def test_config_rejects_bad_values(field: str, value: float) -> None:
    with pytest.raises(ConfigError) as info:
        LLMClientConfig(base_url="http://h:1", **{field: value})
    assert info.value.field == field


def test_request_validation() -> None:
    with pytest.raises(ConfigError):
        CompletionRequest(messages=())
    with pytest.raises(ConfigError):
        CompletionRequest.chat("x", max_tokens=0)
    with pytest.raises(ConfigError):
        LoraScale(-1, 1.0)


def test_complete_many_bounds_concurrency_and_keeps_order() -> None:
    lock = threading.Lock()
    in_flight = 0
    peak = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        prompt = json.loads(request.content)["messages"][0]["content"]
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.05)
        with lock:
            in_flight -= 1
        if prompt == "bad":
            return httpx.Response(400, json={"error": {"message": "nope"}})
        return httpx.Response(200, json=reply(text=prompt))

    rec = Recorder()
    prompts = [f"p{i}" for i in range(9)] + ["bad"]
    with make_client(handler, rec) as client:
        results = client.complete_many([CompletionRequest.chat(p) for p in prompts], concurrency=3)
    assert peak == 3
    texts = [r.text if isinstance(r, Completion) else None for r in results]
    assert texts == [*prompts[:-1], None]
    assert isinstance(results[-1], BadResponse)
    assert len(rec.records) == 10


def test_complete_many_rejects_zero_concurrency() -> None:
    with make_client(lambda r: httpx.Response(200, json=reply()), Recorder()) as client:
        with pytest.raises(ConfigError):
            client.complete_many([CompletionRequest.chat("x")], concurrency=0)
        assert client.complete_many([], concurrency=2) == []


@given(
    attempt=st.integers(0, 20),
    base=st.floats(0.0, 5.0),
    cap=st.floats(0.01, 60.0),
    jitter=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**32),
)
def test_backoff_delay_is_bounded(
    attempt: int, base: float, cap: float, jitter: float, seed: int
) -> None:
    full = min(cap, base * 2.0**attempt)
    delay = backoff_delay(attempt, base=base, cap=cap, jitter=jitter, rng=random.Random(seed))
    assert (1.0 - jitter) * full - 1e-9 <= delay <= full + 1e-9


def test_default_lora_is_sent_when_the_request_sets_none() -> None:
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json=reply())

    scales = [LoraScale(0, 1.0), LoraScale(1, 0.0)]
    client = HttpLLMClient(
        LLMClientConfig(base_url="http://llm.test"),
        transport=httpx.MockTransport(handler),
        default_lora=lambda: scales,
    )
    with client:
        plain = client.complete(CompletionRequest.chat("x"))
        own = client.complete(CompletionRequest.chat("x", lora=(LoraScale(1, 0.5),)))
    assert bodies[0]["lora"] == [{"id": 0, "scale": 1.0}, {"id": 1, "scale": 0.0}]
    assert bodies[1]["lora"] == [{"id": 1, "scale": 0.5}]
    assert (plain.adapter, own.adapter) == ("0@1", "1@0.5")
