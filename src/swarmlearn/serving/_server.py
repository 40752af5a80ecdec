"""A llama.cpp server (the xllamacpp wheel) in a supervised child process on 127.0.0.1.

Lifecycle::

    start() ─► spawn child ─► wait for /health ─► running ──stop()──► SIGTERM … SIGKILL ─► stopped
                   ▲                                 │
                   └──── supervisor: child died, or /health failed N times in a row
                         (restart at most max_restarts times per restart_window_s,
                          then "failed")

The child keeps the same port across restarts, so clients keep their base URL:
a call in flight when the child dies gets a connection error, and the
client's retries reach the restarted server. The child's output (llama.cpp's
log included) is appended to ``log_path``.

LoRA adapters: the configured ones are loaded at scale 0; a scale changes over
HTTP with no restart (:meth:`LlamaServer.set_lora_scales`); requests may name
their own scales (``CompletionRequest.lora``). llama.cpp loads adapter files
only at start, so :meth:`LlamaServer.load_lora` checks a new file against the
model first and then restarts the child with it (same port, the other
adapters keep their ids and scales).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import swarmlearn
from swarmlearn._proc import inherit_priority
from swarmlearn.errors import BackendError, BackendUnavailable, ConfigError, MissingExtraError
from swarmlearn.llm import HttpLLMClient, LLMClientConfig, LoraScale
from swarmlearn.serving._admin import LlamaAdmin
from swarmlearn.serving._config import LlamaServerConfig
from swarmlearn.serving._lora import check_lora
from swarmlearn.serving._model import default_model_path
from swarmlearn.serving._records import Health, LoraAdapter, ServerMetrics
from swarmlearn.serving._spec import ChildSpec

__all__ = ["LlamaServer", "LlamaServerConfig"]

logger = logging.getLogger(__name__)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 20) -> list[str]:
    try:
        with path.open("r", encoding="utf-8", errors="replace") as fh:
            return [line.rstrip("\n") for line in deque(fh, maxlen=lines)]
    except OSError:
        return []


def _error_lines(tail: list[str]) -> list[str]:
    return [line for line in tail if " E " in line or " ERROR " in line]


def _reason(tail: list[str]) -> str:
    """The most telling line of a child's log tail: its first error line, else its last line."""
    errors = _error_lines(tail)
    pick = errors[0] if errors else (tail[-1] if tail else "no output")
    pick = re.sub(r"^[\d.]+ [A-Z] +", "", pick.strip())  # llama.cpp's "0.00.003.829 E "
    return " ".join(pick.split())[:240]


@dataclass(slots=True)
class _State:
    proc: subprocess.Popen[bytes] | None = None
    status: str = "stopped"  # stopped, starting, running, restarting, failed
    restarts: int = 0
    restart_times: deque[float] = field(default_factory=deque)
    failures_in_a_row: int = 0


class LlamaServer:
    """A supervised llama.cpp server child process; see the module docstring.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, config: LlamaServerConfig | None = None) -> None:
        self.config = config or LlamaServerConfig()
        self._model = self.config.model or default_model_path()
        self._dir = self.config.log_dir or Path(tempfile.mkdtemp(prefix="swarmlearn-llama-"))
        self._port = self.config.port
        self._state = _State()
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._admin: LlamaAdmin | None = None
        self._scales_lock = threading.Lock()
        self._loras = self.config.loras  # the adapter files the child loads, in id order
        self._scales: dict[int, float] = {i: 0.0 for i in range(len(self._loras))}

    # -- properties ----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if not self._port:
            raise BackendUnavailable("the llama.cpp server has not been started")
        return f"http://{self.config.host}:{self._port}"

    @property
    def log_path(self) -> Path:
        return self._dir / "llama-server.log"

    @property
    def model_path(self) -> Path:
        return self._model

    @property
    def pid(self) -> int | None:
        """The current child's process id (None when not running)."""
        proc = self._state.proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def restarts(self) -> int:
        return self._state.restarts

    @property
    def status(self) -> str:
        return self._state.status

    @property
    def admin(self) -> LlamaAdmin:
        if self._admin is None:
            raise BackendUnavailable("the llama.cpp server has not been started")
        return self._admin

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> LlamaServer:
        """Spawn the child and wait until it is healthy; ConfigError or BackendUnavailable."""
        with self._lock:
            if self._state.status not in ("stopped", "failed"):
                return self
            if importlib.util.find_spec("xllamacpp") is None:
                raise MissingExtraError(
                    "'xllamacpp' is not installed; it comes with the 'llm' extra: run "
                    "`scripts/install.sh llm` (or `pip install 'swarmlearn[llm]'`)"
                )
            for i, path in enumerate(self._loras):  # one line now, not a child that dies
                check_lora(path, base=self._model, field=f"loras[{i}]")
            self._dir.mkdir(parents=True, exist_ok=True)
            if not self._port:
                self._port = _free_port(self.config.host)
            self._admin = LlamaAdmin(self.base_url)
            self._stopping.clear()
            self._state = _State(status="starting")
            try:
                self._spawn_and_wait()
            except BaseException:
                self._terminate()
                self._state.status = "failed"
                raise
            self._state.status = "running"
        if self.config.restart:
            self._supervisor = threading.Thread(
                target=self._supervise, name=f"llama-supervisor-{self._port}", daemon=True
            )
            self._supervisor.start()
        logger.info(
            "llama.cpp server on %s (pid %s, log %s)", self.base_url, self.pid, self.log_path
        )
        return self

    def stop(self) -> None:
        """Stop the child: SIGTERM, then SIGKILL after ``stop_timeout_s``. Idempotent."""
        self._stopping.set()
        supervisor = self._supervisor
        if supervisor is not None and supervisor is not threading.current_thread():
            supervisor.join(timeout=self.config.start_timeout_s + self.config.stop_timeout_s)
        self._supervisor = None
        with self._lock:
            self._terminate()
            self._state.status = "stopped"
        if self._admin is not None:
            self._admin.close()
            self._admin = None

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def health(self) -> Health:
        status = self._state.status
        if status in ("stopped", "failed"):
            return Health(False, status, f"see {self.log_path}")
        if self.pid is None:
            return Health(False, "restarting", "the child process is not running")
        return self.admin.health()

    def wait_healthy(self, timeout_s: float | None = None) -> None:
        """Block until the server answers /health, or BackendUnavailable after the timeout."""
        deadline = time.monotonic() + (timeout_s or self.config.start_timeout_s)
        last = Health(False, "unknown")
        while time.monotonic() < deadline:
            last = self.health()
            if last.ok or last.status in ("stopped", "failed"):
                break
            time.sleep(0.1)
        if not last.ok:
            raise BackendUnavailable(
                f"llama.cpp server at {self.base_url} is not healthy ({last.status}: "
                f"{last.detail}); log: {self.log_path}"
            )

    # -- LoRA and metrics (see LlamaAdmin) ----------------------------------------------

    def lora_adapters(self) -> list[LoraAdapter]:
        return self.admin.lora_adapters()

    def lora_scales(self) -> tuple[LoraScale, ...]:
        """The global scale of every loaded adapter, as last set (no HTTP call)."""
        with self._scales_lock:
            return tuple(LoraScale(i, s) for i, s in sorted(self._scales.items()))

    def set_lora_scales(self, scales: Mapping[int, float], *, clear_cache: bool = True) -> None:
        """Set adapter scales (by id) and erase the slots' caches; kept across restarts."""
        with self._scales_lock:
            self._scales = self.admin.set_lora_scales(scales, clear_cache=clear_cache)

    def load_lora(self, path: Path | str) -> LoraAdapter:
        """Add an adapter at scale 0; the child is restarted with it (llama.cpp loads at start).

        The file is checked against the model first (:func:`check_lora`): a
        corrupt, truncated, non-adapter or wrong-base file is a one-line
        ConfigError and the server is not touched. If llama.cpp still refuses
        it, the child is restarted with the adapters it had (their scales
        restored) and ConfigError says why. The other adapters keep their ids
        and scales; calls in flight during the restart are retried by the client.
        """
        checked = check_lora(path, base=self._model)
        with self._lock:
            if self._state.status != "running":
                raise BackendUnavailable(
                    f"cannot load a LoRA adapter: the llama.cpp server is {self._state.status}")
            old = self._loras
            self._loras = (*old, checked)
            try:
                self._restart_child(f"loading LoRA adapter {checked.name}")
            except (ConfigError, BackendUnavailable) as exc:
                self._loras = old
                self._restart_child("back to its previous LoRA adapters")
                raise ConfigError(
                    f"LoRA adapter {str(checked)!r} was not loaded, the server runs with its "
                    f"previous adapters: {exc}", field="lora", value=str(checked)) from exc
            with self._scales_lock:
                self._scales[len(old)] = 0.0
        return self.lora_adapters()[len(old)]

    def client(self, config: LLMClientConfig | None = None, **kwargs: Any) -> HttpLLMClient:
        """An HttpLLMClient for this server that always sends the current adapter scales."""
        config = config or LLMClientConfig(base_url=self.base_url)
        return HttpLLMClient(config, default_lora=self.lora_scales, **kwargs)

    def metrics(self) -> ServerMetrics:
        return self.admin.metrics()

    # -- child process -------------------------------------------------------------------

    def _spec(self) -> ChildSpec:
        c = self.config
        return ChildSpec(
            model=str(self._model),
            host=c.host,
            port=self._port,
            parallel=c.parallel,
            ctx_size=c.total_ctx,
            threads=c.effective_threads,
            loras=tuple(str(p) for p in self._loras),
            metrics=c.metrics,
            slot_save_path=str(self._dir / "slots"),
            host_cache_mib=c.host_cache_mib,
            verbosity=c.verbosity,
        )

    def _spawn(self) -> subprocess.Popen[bytes]:
        spec_path = self._dir / "server.json"
        (self._dir / "slots").mkdir(exist_ok=True)
        self._spec().dump(spec_path)
        env = dict(os.environ)
        package_root = str(Path(swarmlearn.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        with self.log_path.open("ab") as log:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"=== {stamp} swarmlearn: starting llama.cpp server ===\n".encode())
            log.flush()
            proc = subprocess.Popen(
                [sys.executable, "-m", "swarmlearn.serving._child", str(spec_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # a Ctrl-C in the terminal is the parent's to handle
            )
        inherit_priority(proc.pid)
        return proc

    def _restart_child(self, why: str) -> None:
        """Replace a healthy child by a new one (same port) and restore the adapter scales."""
        logger.info("restarting the llama.cpp server on %s: %s", self.base_url, why)
        self._state.status = "restarting"
        self._terminate()
        try:
            self._spawn_and_wait()
            self._reapply_scales()
        except BaseException:
            self._terminate()
            self._state.status = "failed"
            raise
        self._state.failures_in_a_row = 0
        self._state.status = "running"

    def _spawn_and_wait(self) -> None:
        proc = self._spawn()
        self._state.proc = proc
        admin = self.admin
        deadline = time.monotonic() + self.config.start_timeout_s
        while time.monotonic() < deadline:
            code = proc.poll()
            if code is not None:
                self._raise_start_failure(code)
            if admin.health(timeout_s=1.0).ok:
                return
            if self._stopping.wait(0.1):
                raise BackendUnavailable("llama.cpp server start interrupted by stop()")
        self._terminate()
        raise BackendUnavailable(
            f"llama.cpp server did not become healthy within {self.config.start_timeout_s:g}s; "
            f"log: {self.log_path}"
        )

    def _raise_start_failure(self, code: int) -> None:
        tail = _tail(self.log_path)
        for line in tail:
            logger.error("llama.cpp: %s", line)
        reason = _reason(tail)
        message = (
            f"llama.cpp server exited with code {code} while starting: {reason} "
            f"(log: {self.log_path})"
        )
        errors = "\n".join(_error_lines(tail)).lower()
        if "lora" in errors:
            raise ConfigError(message, field="loras")
        if "failed to load model" in errors:
            raise ConfigError(message, field="model", value=str(self._model))
        raise BackendUnavailable(message)

    def _terminate(self, *, graceful: bool = True) -> None:
        proc = self._state.proc
        if proc is None:
            return
        if proc.poll() is None and not graceful:
            proc.kill()
            proc.wait()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=self.config.stop_timeout_s)
            except subprocess.TimeoutExpired:
                logger.warning("llama.cpp server pid %d ignored SIGTERM: killing it", proc.pid)
                proc.kill()
                proc.wait()
        self._state.proc = None

    # -- supervisor ----------------------------------------------------------------------

    def _supervise(self) -> None:
        next_health = time.monotonic() + self.config.health_interval_s
        while not self._stopping.wait(0.1):
            proc = self._state.proc
            code = proc.poll() if proc is not None else -1
            if code is not None:
                self._recover(f"exited with code {code}", proc)
                next_health = time.monotonic() + self.config.health_interval_s
            elif time.monotonic() >= next_health:
                self._check_health()
                next_health = time.monotonic() + self.config.health_interval_s
            if self._state.status == "failed":
                return

    def _check_health(self) -> None:
        proc = self._state.proc
        health = self.admin.health(timeout_s=max(1.0, self.config.health_interval_s))
        # a child being (re)started by load_lora is still loading: not hung
        if health.ok or self._stopping.is_set() or self._state.status != "running":
            self._state.failures_in_a_row = 0
            return
        self._state.failures_in_a_row += 1
        if self._state.failures_in_a_row >= self.config.unhealthy_after:
            why = f"unhealthy {self._state.failures_in_a_row} times ({health.detail})"
            self._recover(why, proc, graceful=False)

    def _allowed_to_restart(self) -> bool:
        now = time.monotonic()
        times = self._state.restart_times
        while times and now - times[0] > self.config.restart_window_s:
            times.popleft()
        return len(times) < self.config.max_restarts

    def _recover(self, why: str, seen: subprocess.Popen[bytes] | None, *,
                 graceful: bool = True) -> None:
        """Restart a child that died or hangs (a hung one gets SIGKILL: it would not listen).

        ``seen`` is the child found dead or hung; if another has taken its place
        meanwhile (:meth:`load_lora`), there is nothing to do.
        """
        with self._lock:
            if self._stopping.is_set() or self._state.proc is not seen:
                return
            if not graceful and self.admin.health(timeout_s=1.0).ok:
                return  # it was only busy (a restart by load_lora held the lock meanwhile)
            old = self._state.proc
            pid = old.pid if old is not None else None
            logger.warning("llama.cpp server (pid %s) %s; tail of %s:", pid, why, self.log_path)
            for line in _tail(self.log_path, 10):
                logger.warning("llama.cpp: %s", line)
            self._terminate(graceful=graceful)
            self._state.failures_in_a_row = 0
            while not self._stopping.is_set():
                if not self._allowed_to_restart():
                    self._state.status = "failed"
                    logger.error(
                        "llama.cpp server restarted %d times within %gs: giving up (log: %s)",
                        self.config.max_restarts,
                        self.config.restart_window_s,
                        self.log_path,
                    )
                    return
                self._state.restart_times.append(time.monotonic())
                self._state.restarts += 1
                self._state.status = "restarting"
                try:
                    self._spawn_and_wait()
                except (BackendUnavailable, ConfigError) as exc:
                    logger.error("restart of the llama.cpp server failed: %s", exc)
                    self._terminate()
                    continue
                try:
                    self._reapply_scales()
                except (BackendError, ConfigError) as exc:
                    logger.error("could not restore LoRA scales after restart: %s", exc)
                    self._terminate()
                    continue
                self._state.status = "running"
                logger.warning("llama.cpp server restarted on %s (pid %s)", self.base_url, self.pid)
                return

    def _reapply_scales(self) -> None:
        """A restarted child loads its adapters at scale 0: set the scales it had again."""
        with self._scales_lock:
            if any(self._scales.values()):
                self.admin.set_lora_scales(self._scales, clear_cache=False)
