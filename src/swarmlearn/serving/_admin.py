"""Administration of a running llama.cpp server over HTTP: health, LoRA scales, slots, metrics.

Prompt cache and LoRA scales
----------------------------
llama.cpp keeps each slot's KV cache and reuses its longest common prefix with
the next prompt. Measured on the xllamacpp build we ship against: after
``POST /lora-adapters`` changes a scale, a request without a per-request
``lora`` field reuses the slot's cache built under the old scale (the reply is
wrong), and the host-memory prompt cache (``--cache-ram``) restores prompts
without looking at adapters at all, even for requests that carry ``lora``.
The same holds between requests: a request without ``lora`` that lands on a
slot whose cache was built by a request with other per-request scales reuses
that cache. A request *with* ``lora`` is compared with the slot's scales and
the cache is dropped when they differ.

So: :meth:`LlamaAdmin.set_lora_scales` erases every slot's cache around the
change (erase, set, erase; an erase waits for a busy slot to finish);
:class:`~swarmlearn.serving.LlamaServer` turns the host-memory cache off when
adapters are loaded; and clients made by ``LlamaServer.client()`` send the
current scales with every request that has no ``lora`` of its own
(``HttpLLMClient(default_lora=...)``), so no request reaches the server without
them. Slot erase needs the server started with ``--slot-save-path``;
LlamaServer does that, an external server must be told.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import httpx

from swarmlearn.errors import BackendUnavailable, BadResponse, ConfigError
from swarmlearn.serving._records import Health, LoraAdapter, ServerMetrics

__all__ = ["LlamaAdmin"]

logger = logging.getLogger(__name__)


def _flat(text: str, limit: int = 200) -> str:
    return " ".join(text.split())[:limit]


class LlamaAdmin:
    """HTTP administration of one llama.cpp server (thread-safe)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 30.0,
        api_key: str = "",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(timeout=timeout_s, headers=headers, transport=transport)

    def close(self) -> None:
        self._http.close()

    # -- plumbing ------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = f"{self.base_url}{path}"
        try:
            return self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise BackendUnavailable(
                f"cannot reach llama.cpp server at {self.base_url}: {_flat(str(exc)) or exc!r}"
            ) from exc

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        if response.status_code >= 400:
            raise BadResponse(
                f"{method} {path} on {self.base_url} answered HTTP {response.status_code}: "
                f"{_flat(response.text)}"
            )
        try:
            return response.json()
        except ValueError as exc:
            raise BadResponse(f"{method} {path} on {self.base_url} did not answer JSON") from exc

    # -- health --------------------------------------------------------------------------

    def health(self, *, timeout_s: float = 5.0) -> Health:
        """``/health``; a server without it (not llama.cpp) is asked ``/v1/models``."""
        try:
            response = self._http.get(f"{self.base_url}/health", timeout=timeout_s)
            if response.status_code == 404:
                response = self._http.get(f"{self.base_url}/v1/models", timeout=timeout_s)
        except httpx.TransportError as exc:
            return Health(False, "unreachable", _flat(str(exc)) or type(exc).__name__)
        if response.status_code == 200:
            return Health(True, "ok")
        if response.status_code == 503:
            return Health(False, "loading", _flat(response.text))
        return Health(False, "error", f"HTTP {response.status_code}: {_flat(response.text)}")

    # -- LoRA ----------------------------------------------------------------------------

    def lora_adapters(self) -> list[LoraAdapter]:
        data = self._json("GET", "/lora-adapters")
        if not isinstance(data, list):
            raise BadResponse(f"GET /lora-adapters answered {type(data).__name__}, not a list")
        try:
            return [LoraAdapter(int(a["id"]), str(a["path"]), float(a["scale"])) for a in data]
        except (KeyError, TypeError, ValueError) as exc:
            raise BadResponse(f"GET /lora-adapters answered malformed entries: {exc}") from exc

    def set_lora_scales(
        self, scales: Mapping[int, float], *, clear_cache: bool = True
    ) -> dict[int, float]:
        """Set the global scale of the adapters named by id; the others keep theirs.

        Returns every adapter's scale after the change.

        With ``clear_cache`` (the default) every slot's prompt cache is erased
        before and after the change, so no later request is answered from a
        cache built under the old scales (see the module docstring).
        """
        current = {a.id: a.scale for a in self.lora_adapters()}
        unknown = sorted(set(scales) - set(current))
        if unknown:
            raise ConfigError(
                f"no LoRA adapter with id {unknown[0]} (loaded: {sorted(current) or 'none'})",
                field="scales",
                value=unknown[0],
            )
        merged = {**current, **{int(k): float(v) for k, v in scales.items()}}
        if clear_cache:
            self.erase_slots()
        self._json(
            "POST", "/lora-adapters", json=[{"id": i, "scale": s} for i, s in merged.items()]
        )
        if clear_cache:
            self.erase_slots()
        logger.info("LoRA scales on %s now %s", self.base_url, merged)
        return merged

    # -- slots and metrics ---------------------------------------------------------------

    def slot_ids(self) -> list[int]:
        data = self._json("GET", "/slots")
        if not isinstance(data, list):
            raise BadResponse(f"GET /slots answered {type(data).__name__}, not a list")
        return [int(s["id"]) for s in data if isinstance(s, dict) and "id" in s]

    def erase_slots(self, *, timeout_s: float = 600.0) -> int:
        """Erase every slot's KV cache; the number of tokens erased.

        The server defers the erase of a busy slot until its request is done,
        so this can take as long as the longest request in flight.
        """
        erased = 0
        for slot in self.slot_ids():
            response = self._request(
                "POST", f"/slots/{slot}", params={"action": "erase"}, timeout=timeout_s
            )
            if response.status_code == 501:
                raise BadResponse(
                    f"llama.cpp server at {self.base_url} cannot erase slots: start it with "
                    "--slot-save-path DIR (or pass clear_cache=False and accept stale caches)"
                )
            if response.status_code >= 400:
                raise BadResponse(
                    f"erasing slot {slot} on {self.base_url} answered HTTP "
                    f"{response.status_code}: {_flat(response.text)}"
                )
            erased += int(response.json().get("n_erased", 0))
        return erased

    def metrics(self) -> ServerMetrics:
        response = self._request("GET", "/metrics")
        if response.status_code == 501:
            raise BadResponse(
                f"llama.cpp server at {self.base_url} has metrics disabled: start it with --metrics"
            )
        if response.status_code >= 400:
            raise BadResponse(f"GET /metrics on {self.base_url} answered {response.status_code}")
        return ServerMetrics.from_prometheus(response.text)
