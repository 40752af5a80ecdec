"""What a server handle reports, and the small protocol every handle speaks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from swarmlearn.llm import LoraScale

__all__ = ["Health", "InferenceServer", "LoraAdapter", "ServerMetrics", "SupportsLora"]


@dataclass(frozen=True, slots=True)
class Health:
    """The answer to "can this server take a request now?"."""

    ok: bool
    status: str  # "ok", "loading", "unreachable", "error", "stopped", "failed"
    detail: str = ""


@dataclass(frozen=True, slots=True)
class LoraAdapter:
    """One LoRA adapter loaded in a llama.cpp server, by its id (load order)."""

    id: int
    path: str
    scale: float


@dataclass(frozen=True, kw_only=True, slots=True)
class ServerMetrics:
    """Counters from a llama.cpp server's ``/metrics`` (Prometheus text, ``llamacpp:`` names).

    Counters are totals since the server started; a restart resets them.
    """

    prompt_tokens_total: float
    prompt_seconds_total: float
    tokens_predicted_total: float
    tokens_predicted_seconds_total: float
    n_decode_total: float
    requests_processing: float
    requests_deferred: float
    raw: Mapping[str, float]

    @property
    def predicted_tokens_per_second(self) -> float:
        """Generation speed the server reports, per busy slot (tokens / generation seconds)."""
        t = self.tokens_predicted_seconds_total
        return self.tokens_predicted_total / t if t > 0 else 0.0

    @classmethod
    def from_prometheus(cls, text: str) -> ServerMetrics:
        raw: dict[str, float] = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            name, _, value = line.rpartition(" ")
            try:
                raw[name.removeprefix("llamacpp:")] = float(value)
            except ValueError:
                continue

        def get(name: str) -> float:
            return raw.get(name, 0.0)

        return cls(
            prompt_tokens_total=get("prompt_tokens_total"),
            prompt_seconds_total=get("prompt_seconds_total"),
            tokens_predicted_total=get("tokens_predicted_total"),
            tokens_predicted_seconds_total=get("tokens_predicted_seconds_total"),
            n_decode_total=get("n_decode_total"),
            requests_processing=get("requests_processing"),
            requests_deferred=get("requests_deferred"),
            raw=raw,
        )


@runtime_checkable
class InferenceServer(Protocol):
    """A running OpenAI-compatible server: where it is, is it up, stop it.

    :class:`~swarmlearn.serving.LlamaServer` (a child process we own) and
    :class:`~swarmlearn.serving.ExternalServer` (a URL we attach to) both fit.
    """

    @property
    def base_url(self) -> str: ...

    def health(self) -> Health: ...

    def stop(self) -> None: ...


@runtime_checkable
class SupportsLora(Protocol):
    """A llama.cpp server whose LoRA adapters can be listed and scaled while it runs.

    ``lora_scales`` is the last known global scale of every adapter, without a
    request: fit to pass as a client's ``default_lora``.
    """

    def lora_adapters(self) -> list[LoraAdapter]: ...

    def lora_scales(self) -> tuple[LoraScale, ...]: ...

    def set_lora_scales(self, scales: Mapping[int, float], *, clear_cache: bool = True) -> None: ...
