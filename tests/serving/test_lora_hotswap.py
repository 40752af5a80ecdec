"""LoRA hot-swap on a real llama.cpp server (bundled SmolLM2-135M, a tiny random adapter).

What the LoRA trainer relies on: an adapter loaded at start sits at scale 0
and changes nothing; its scale is raised over HTTP with no restart and no
reply is ever answered from a cache built under the old scale; requests can
name their own scales (A/B) side by side; a bad adapter file is one line and
leaves the live adapter as it was; a good one is added at scale 0.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lora_files import with_alpha, write_adapter

from swarmlearn.errors import ConfigError
from swarmlearn.llm import Completion, CompletionRequest, HttpLLMClient, LLMClientConfig, LoraScale
from swarmlearn.serving import LlamaServer, LlamaServerConfig, LoraAdapter, default_model_path

pytestmark = pytest.mark.integration

PROMPT = "Write a long story about a cat named Tom who lives in Paris."


def story(*, lora: tuple[LoraScale, ...] | None = None, seed: int = 1) -> CompletionRequest:
    return CompletionRequest.chat(PROMPT, max_tokens=8, temperature=0.0, seed=seed, lora=lora)


ON = (LoraScale(0, 1.0),)


@pytest.fixture(scope="module")
def server(tiny_lora: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    pytest.importorskip("xllamacpp")
    config = LlamaServerConfig(parallel=2, loras=(tiny_lora,), threads=1,
                               log_dir=tmp_path_factory.mktemp("hotswap"))
    with LlamaServer(config) as s:
        yield s


@pytest.fixture(scope="module")
def client(server: LlamaServer) -> Iterator[HttpLLMClient]:
    with server.client(LLMClientConfig(base_url=server.base_url, timeout_s=300)) as c:
        yield c


@pytest.fixture(scope="module")
def base_text(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The reply of the bundled model with no adapter loaded at all."""
    pytest.importorskip("xllamacpp")
    config = LlamaServerConfig(threads=1, log_dir=tmp_path_factory.mktemp("plain"))
    with LlamaServer(config) as plain, plain.client() as c:
        return c.complete(story()).text


def text(result: Completion | Exception) -> str:
    assert isinstance(result, Completion), result
    return result.text


def test_an_adapter_loaded_at_start_is_at_scale_0_and_changes_nothing(
    server: LlamaServer, client: HttpLLMClient, tiny_lora: Path, base_text: str
) -> None:
    assert server.lora_adapters() == [LoraAdapter(0, str(tiny_lora.resolve()), 0.0)]
    assert server.lora_scales() == (LoraScale(0, 0.0),)
    assert client.complete(story()).text == base_text


def test_raising_the_scale_needs_no_restart_and_no_old_cache_answers(
    server: LlamaServer, client: HttpLLMClient, base_text: str
) -> None:
    pid = server.pid
    assert client.complete(story()).cached_tokens > 0  # the cache is in use
    server.set_lora_scales({0: 1.0})
    try:
        assert server.pid == pid and server.restarts == 0  # no restart
        assert server.lora_adapters()[0].scale == 1.0
        raised = client.complete(story())
        assert raised.cached_tokens == 0, "answered from a cache built under scale 0"
        assert raised.text != base_text and raised.adapter == "0@1"
        again = client.complete(story())
        assert again.cached_tokens > 0 and again.text == raised.text  # new cache, new scale
    finally:
        server.set_lora_scales({0: 0.0})
    back = client.complete(story())
    assert back.cached_tokens == 0 and back.text == base_text and server.pid == pid


def test_per_request_scales_for_a_b_side_by_side(
    server: LlamaServer, client: HttpLLMClient, base_text: str
) -> None:
    adapted = text(client.complete(story(lora=ON)))
    assert adapted != base_text
    # A and B interleaved on two slots, twice over: every reply is its own arm's
    requests = [story(lora=ON if i % 2 else None) for i in range(8)]
    replies = [text(r) for r in client.complete_many(requests, concurrency=2)]
    assert replies == [adapted if i % 2 else base_text for i in range(8)]
    assert server.lora_scales() == (LoraScale(0, 0.0),)  # the global scale is untouched


def bad_adapters(tmp_path: Path, good: Path) -> list[Path]:
    data = good.read_bytes()
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(data[: len(data) // 2])
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(b"GGUF" + bytes(range(256)) * 16)
    text_file = tmp_path / "notes.gguf"
    text_file.write_text("not an adapter")
    wide = {"blk.0.attn_q.weight.lora_a": (8, 960), "blk.0.attn_q.weight.lora_b": (960, 8)}
    wrong_base = write_adapter(tmp_path / "wide.gguf", wide)  # for a 960-wide model
    return [truncated, corrupt, text_file, default_model_path(), wrong_base]


def test_a_bad_adapter_file_is_one_line_and_the_live_adapter_stays(
    server: LlamaServer, client: HttpLLMClient, tiny_lora: Path, tmp_path: Path
) -> None:
    server.set_lora_scales({0: 1.0})
    try:
        live = client.complete(story()).text
        before = server.lora_adapters()
        pid = server.pid
        for bad in bad_adapters(tmp_path, tiny_lora):
            with pytest.raises(ConfigError) as info:
                server.load_lora(bad)
            message = str(info.value)
            assert "\n" not in message and bad.name in message, message
        assert server.pid == pid and server.lora_adapters() == before
        assert client.complete(story()).text == live
    finally:
        server.set_lora_scales({0: 0.0})


def test_load_lora_adds_an_adapter_at_scale_0_and_keeps_the_others(
    tiny_lora: Path, tmp_path: Path, base_text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("xllamacpp")
    second = with_alpha(tiny_lora, tmp_path / "second.gguf", 16.0)  # twice the effect
    config = LlamaServerConfig(loras=(tiny_lora,), threads=1, log_dir=tmp_path,
                               health_interval_s=0.3)
    with LlamaServer(config) as server, server.client() as client:
        server.set_lora_scales({0: 0.5})
        half = client.complete(story()).text
        url, first_pid = server.base_url, server.pid
        added = server.load_lora(second)
        assert added == LoraAdapter(1, str(second.resolve()), 0.0)
        assert server.base_url == url and server.pid != first_pid
        assert server.lora_scales() == (LoraScale(0, 0.5), LoraScale(1, 0.0))
        assert server.lora_adapters()[0].scale == 0.5 and client.complete(story()).text == half
        only_second = (LoraScale(0, 0.0), LoraScale(1, 1.0))
        assert client.complete(story(lora=only_second)).text not in (half, base_text)

        # a file that passes the checks but that llama.cpp refuses: back to the old adapters
        import swarmlearn.serving._server as server_module

        monkeypatch.setattr(server_module, "check_lora", lambda path, **_: Path(path).resolve())
        [truncated, *_] = bad_adapters(tmp_path, tiny_lora)
        with pytest.raises(ConfigError, match="previous adapters") as info:
            server.load_lora(truncated)
        assert "\n" not in str(info.value)
        assert [a.path for a in server.lora_adapters()] == [str(tiny_lora.resolve()),
                                                           str(second.resolve())]
        assert server.lora_scales() == (LoraScale(0, 0.5), LoraScale(1, 0.0))
        assert server.lora_adapters()[0].scale == 0.5 and client.complete(story()).text == half
        assert server.restarts == 0 and server.status == "running"  # the supervisor kept out
