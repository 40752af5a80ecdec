"""Attach to a server someone else runs: a ``llama-server`` or any OpenAI-compatible URL."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from swarmlearn.errors import BackendError, BackendUnavailable, ConfigError
from swarmlearn.llm import HttpLLMClient, LLMClientConfig, LoraScale, normalize_base_url
from swarmlearn.serving._admin import LlamaAdmin
from swarmlearn.serving._records import Health, LoraAdapter, ServerMetrics

__all__ = ["ExternalServer", "ExternalServerConfig"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True, slots=True)
class ExternalServerConfig:
    """Where the server is. ``base_url`` is its root (``http://host:8080``), ``/v1`` allowed."""

    base_url: str
    api_key: str = ""
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        url = normalize_base_url(self.base_url).removesuffix("/v1")
        object.__setattr__(self, "base_url", url)
        if not self.timeout_s > 0:
            raise ConfigError(
                f"timeout_s must be > 0, got {self.timeout_s}",
                field="timeout_s",
                value=self.timeout_s,
            )


class ExternalServer:
    """A server we attach to and do not own: :meth:`stop` only lets go of it.

    LoRA and metrics calls need a llama.cpp server (started with ``--metrics``,
    and ``--slot-save-path DIR --cache-ram 0`` for safe adapter scale changes;
    see :mod:`swarmlearn.serving._admin`).
    """

    def __init__(self, config: ExternalServerConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._scales: dict[int, float] | None = None
        self._admin = LlamaAdmin(
            config.base_url, timeout_s=config.timeout_s, api_key=config.api_key
        )

    @classmethod
    def attach(cls, base_url: str, **kwargs: object) -> ExternalServer:
        """Attach and check now: ConfigError for a malformed URL, BackendUnavailable if down."""
        server = cls(ExternalServerConfig(base_url=base_url, **kwargs))  # type: ignore[arg-type]
        health = server.health()
        if not health.ok:
            server.stop()
            raise BackendUnavailable(
                f"LLM server at {server.base_url} is {health.status}: {health.detail}"
            )
        return server

    @property
    def base_url(self) -> str:
        return self.config.base_url

    def health(self) -> Health:
        return self._admin.health()

    def stop(self) -> None:
        self._admin.close()

    def __enter__(self) -> ExternalServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def lora_adapters(self) -> list[LoraAdapter]:
        return self._admin.lora_adapters()

    def lora_scales(self) -> tuple[LoraScale, ...]:
        """The adapters' scales as last read or set through this handle (read once if never)."""
        with self._lock:
            if self._scales is None:
                self._scales = {a.id: a.scale for a in self._admin.lora_adapters()}
            return tuple(LoraScale(i, s) for i, s in sorted(self._scales.items()))

    def set_lora_scales(self, scales: Mapping[int, float], *, clear_cache: bool = True) -> None:
        with self._lock:
            self._scales = self._admin.set_lora_scales(scales, clear_cache=clear_cache)

    def client(self, config: LLMClientConfig | None = None, **kwargs: Any) -> HttpLLMClient:
        """An HttpLLMClient for this server; it sends the adapter scales if there are adapters."""
        config = config or LLMClientConfig(base_url=self.base_url, api_key=self.config.api_key)
        try:
            has_adapters = bool(self.lora_scales())
        except BackendError as exc:  # not llama.cpp: no /lora-adapters
            logger.debug("no LoRA adapters on %s: %s", self.base_url, exc)
            has_adapters = False
        default = self.lora_scales if has_adapters else None
        return HttpLLMClient(config, default_lora=default, **kwargs)

    def metrics(self) -> ServerMetrics:
        return self._admin.metrics()
