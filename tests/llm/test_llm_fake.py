"""ScriptedLLMClient: the fake used by worker tests behaves like the real client."""

from __future__ import annotations

import inspect

import pytest

import swarmlearn.llm as llm
from swarmlearn.errors import BackendTimeout, BackendUnavailable
from swarmlearn.llm import (
    CallRecord,
    Completion,
    CompletionRequest,
    LLMClient,
    ScriptedLLMClient,
    ScriptExhausted,
)


def test_replies_come_in_script_order_and_requests_are_kept() -> None:
    records: list[CallRecord] = []
    client = ScriptedLLMClient(
        ['{"action": "a"}', lambda r: r.messages[-1].content.upper()], on_call=records.append
    )
    assert isinstance(client, LLMClient)
    first = client.complete(CompletionRequest.chat("one two", purpose="decide"))
    second = client.complete(CompletionRequest.chat("echo me"))
    assert (first.text, second.text) == ('{"action": "a"}', "ECHO ME")
    assert first.prompt_tokens == 2 and first.completion_tokens == 2
    assert [r.messages[-1].content for r in client.requests] == ["one two", "echo me"]
    assert [r.ok for r in records] == [True, True] and records[0].purpose == "decide"
    with pytest.raises(ScriptExhausted):
        client.complete(CompletionRequest.chat("three"))


def test_scripted_errors_are_raised_and_recorded() -> None:
    records: list[CallRecord] = []
    client = ScriptedLLMClient([BackendTimeout("slow")], on_call=records.append)
    with pytest.raises(BackendTimeout):
        client.complete(CompletionRequest.chat("x"))
    assert not records[0].ok and records[0].error == "BackendTimeout: slow"


def test_default_answers_after_the_script_and_batches_keep_errors_in_place() -> None:
    done = Completion(
        text="{}",
        prompt_tokens=1,
        completion_tokens=1,
        cached_tokens=0,
        latency=0.0,
        model="m",
        adapter="",
        finish_reason="stop",
    )
    client = ScriptedLLMClient([done, BackendUnavailable("down")], default="ok")
    results = client.complete_many(
        [CompletionRequest.chat(str(i)) for i in range(4)], concurrency=1
    )
    assert results[0] is done and isinstance(results[1], BackendUnavailable)
    assert [r.text for r in results[2:] if isinstance(r, Completion)] == ["ok", "ok"]
    assert client.remaining == 0


def test_exported_names() -> None:
    exported = {
        n for n, v in vars(llm).items() if not n.startswith("_") and not inspect.ismodule(v)
    }
    # submodules (e.g. worker modules added beside the client) are not names of this API
    assert exported == set(llm.__all__)
