"""A real llama.cpp server (xllamacpp, bundled SmolLM2-135M) on loopback.

One module-scoped server (2 slots, a tiny LoRA adapter at scale 0) serves the
behaviour tests; the lifecycle tests start their own small servers.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from swarmlearn.errors import BackendUnavailable, ConfigError
from swarmlearn.llm import (
    Completion,
    CompletionRequest,
    HttpLLMClient,
    JsonReplyParser,
    LLMClientConfig,
    LoraScale,
)
from swarmlearn.serving import (
    ExternalServer,
    InferenceServer,
    LlamaServer,
    LlamaServerConfig,
    SupportsLora,
)

pytestmark = pytest.mark.integration

ACTION_SCHEMA = {
    "type": "object",
    "properties": {
        "action": {"type": "string", "enum": ["inspect", "restart", "rollback", "escalate"]},
        "target": {"type": "string", "enum": ["db", "api", "cache"]},
    },
    "required": ["action", "target"],
    "additionalProperties": False,
}

STORY = CompletionRequest.chat(
    "Write a long story about a cat named Tom who lives in Paris.",
    max_tokens=8,
    temperature=0.0,
    seed=1,
)


@pytest.fixture(scope="module")
def llama(tiny_lora: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    pytest.importorskip("xllamacpp")
    config = LlamaServerConfig(
        parallel=2, loras=(tiny_lora,), log_dir=tmp_path_factory.mktemp("llama")
    )
    with LlamaServer(config) as server:
        yield server


@pytest.fixture(scope="module")
def client(llama: LlamaServer) -> Iterator[HttpLLMClient]:
    """A client made by the server: it sends the current adapter scales with every request."""
    with llama.client(LLMClientConfig(base_url=llama.base_url, timeout_s=120)) as c:
        yield c


@pytest.fixture(scope="module")
def raw(llama: LlamaServer) -> Iterator[HttpLLMClient]:
    """A plain client: its requests carry no lora field unless they set one."""
    with HttpLLMClient(LLMClientConfig(base_url=llama.base_url, timeout_s=120)) as c:
        yield c


def test_server_fits_the_protocols(llama: LlamaServer) -> None:
    assert isinstance(llama, InferenceServer) and isinstance(llama, SupportsLora)
    assert llama.base_url.startswith("http://127.0.0.1:")
    assert llama.health().ok


def test_schema_constrained_replies_parse(client: HttpLLMClient) -> None:
    system = (
        "You operate a web service. Reply with JSON: an action "
        "(inspect, restart, rollback, escalate) and a target (db, api, cache)."
    )
    states = [
        "The api returns 502 errors since the last deploy.",
        "The db CPU is at 100% and queries time out.",
        "Cache hit rate fell to 3%.",
        "Nothing is wrong; all checks are green.",
    ]
    requests = [
        CompletionRequest.chat(s, system=system, json_schema=ACTION_SCHEMA, max_tokens=64, seed=i)
        for i, s in enumerate(states)
    ]
    parser = JsonReplyParser(ACTION_SCHEMA)
    results = client.complete_many(requests, concurrency=2)
    for result in results:
        assert isinstance(result, Completion), result
        reply = parser.parse(result.text)
        assert reply.value["action"] in ACTION_SCHEMA["properties"]["action"]["enum"]  # type: ignore[index]
    assert parser.stats.rejected == 0 and parser.stats.total == len(states)


def test_adapter_list(llama: LlamaServer, tiny_lora: Path) -> None:
    [adapter] = llama.lora_adapters()
    assert adapter.id == 0 and adapter.scale == 0.0
    assert Path(adapter.path).resolve() == tiny_lora.resolve()


def test_scale_change_is_never_answered_from_the_old_cache(
    llama: LlamaServer, raw: HttpLLMClient
) -> None:
    # A plain client (no lora field): only the slot erase around the change protects it.
    base = raw.complete(STORY)
    again = raw.complete(STORY)
    assert again.cached_tokens > 0 and again.text == base.text  # the cache is in use

    llama.set_lora_scales({0: 1.0})
    try:
        assert llama.lora_adapters()[0].scale == 1.0
        assert llama.lora_scales() == (LoraScale(0, 1.0),)
        scaled = raw.complete(STORY)
        assert scaled.cached_tokens == 0, "answered from a cache built under scale 0"
        assert scaled.text != base.text, "the adapter should change the reply"
        assert raw.complete(STORY).text == scaled.text
    finally:
        llama.set_lora_scales({0: 0.0})

    back = raw.complete(STORY)
    assert back.cached_tokens == 0 and back.text == base.text


def test_per_request_lora_matches_the_global_scale(
    llama: LlamaServer, client: HttpLLMClient
) -> None:
    base = client.complete(STORY)
    with_adapter = client.complete(
        CompletionRequest.chat(
            STORY.messages[0].content,
            max_tokens=8,
            temperature=0.0,
            seed=1,
            lora=(LoraScale(0, 1.0),),
        )
    )
    assert with_adapter.text != base.text and with_adapter.adapter == "0@1"
    # The same slot's cache was built under scale 1; the client sends scale 0 explicitly,
    # so the server drops that cache instead of reusing it.
    after = client.complete(STORY)
    assert after.text == base.text and after.adapter == ""


def test_metrics_report_generated_tokens(llama: LlamaServer, client: HttpLLMClient) -> None:
    client.complete(STORY)
    metrics = llama.metrics()
    assert metrics.tokens_predicted_total > 0 and metrics.predicted_tokens_per_second > 0


def test_attach_to_a_running_server(llama: LlamaServer) -> None:
    with ExternalServer.attach(llama.base_url + "/v1") as external:
        assert external.health().ok
        assert external.lora_adapters() == llama.lora_adapters()
    assert llama.health().ok  # letting go does not stop it


def _wait_for(predicate: object, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached")


def test_restart_after_kill_then_graceful_stop(tmp_path: Path, tiny_lora: Path) -> None:
    pytest.importorskip("xllamacpp")
    config = LlamaServerConfig(log_dir=tmp_path, loras=(tiny_lora,), health_interval_s=0.5)
    server = LlamaServer(config).start()
    try:
        server.set_lora_scales({0: 0.5})
        first = server.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)  # only the child this test started
        client_config = LLMClientConfig(base_url=server.base_url, retries=8, backoff_s=0.25)
        with server.client(client_config) as client:
            reply = client.complete(CompletionRequest.chat("Say hello.", max_tokens=4))
        assert reply.text and reply.attempts > 1 and server.restarts == 1
        second = server.pid
        assert second is not None and second != first
        assert server.lora_adapters()[0].scale == 0.5  # the scales survive the restart
    finally:
        server.stop()
    assert server.pid is None and server.health().status == "stopped"
    with pytest.raises(ProcessLookupError):
        os.kill(second, 0)
    log = server.log_path.read_text()
    assert "signal 15: stopping" in log and log.rstrip().endswith("stopped")


def test_a_hung_child_is_killed_and_restarted(tmp_path: Path) -> None:
    pytest.importorskip("xllamacpp")
    config = LlamaServerConfig(log_dir=tmp_path, health_interval_s=0.3, unhealthy_after=2)
    with LlamaServer(config) as server:
        hung = server.pid
        assert hung is not None
        os.kill(hung, signal.SIGSTOP)  # alive, but answers nothing
        try:
            _wait_for(lambda: server.restarts == 1 and server.health().ok, timeout_s=60)
        finally:
            try:
                os.kill(hung, signal.SIGKILL)  # in case the test failed before the supervisor did
            except ProcessLookupError:
                pass
        assert server.pid != hung


def test_supervisor_gives_up_after_max_restarts(tmp_path: Path) -> None:
    pytest.importorskip("xllamacpp")
    config = LlamaServerConfig(log_dir=tmp_path, max_restarts=0)
    with LlamaServer(config) as server:
        pid = server.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        _wait_for(lambda: server.status == "failed")
        assert not server.health().ok
        with HttpLLMClient(LLMClientConfig(base_url=server.base_url, retries=0)) as client:
            with pytest.raises(BackendUnavailable):
                client.complete(CompletionRequest.chat("x", max_tokens=2))


def test_a_model_that_fails_to_load_is_one_config_error_line(tmp_path: Path) -> None:
    pytest.importorskip("xllamacpp")
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + bytes(64))  # right magic, garbage after it
    server = LlamaServer(LlamaServerConfig(model=broken, log_dir=tmp_path))
    with pytest.raises(ConfigError) as info:
        server.start()
    message = str(info.value)
    assert "\n" not in message and "GGUF" in message and str(server.log_path) in message
    assert server.pid is None


def test_a_busy_port_is_backend_unavailable(tmp_path: Path) -> None:
    # Not which log line the message quotes: llama.cpp writes its own log lines from a
    # thread of its own, so under load the child's Python error line can come first.
    pytest.importorskip("xllamacpp")
    from swarmlearn.serving._child import EXIT_START_FAILED

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = LlamaServer(LlamaServerConfig(port=port, log_dir=tmp_path, restart=False))
        with pytest.raises(BackendUnavailable) as info:
            server.start()
    message = str(info.value)
    assert "\n" not in message
    assert f"exited with code {EXIT_START_FAILED} while starting" in message
    assert str(server.log_path) in message
    assert server.pid is None


def test_serve_cli_runs_until_ctrl_c(tmp_path: Path) -> None:
    pytest.importorskip("xllamacpp")
    code = "from swarmlearn.serving._cli import serve_app; serve_app()"
    proc = subprocess.Popen(
        [sys.executable, "-u", "-c", code, "--port", "0", "--log-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        match = re.search(r"at (http://127\.0\.0\.1:\d+)", first)
        assert match, first
        assert httpx.get(f"{match.group(1)}/health", timeout=10).status_code == 200
        log = (tmp_path / "llama-server.log").read_text()
        child = int(re.findall(r"listening on \S+ pid (\d+)", log)[-1])
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        with pytest.raises(ProcessLookupError):
            os.kill(child, 0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
