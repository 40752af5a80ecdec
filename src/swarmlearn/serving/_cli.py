"""``swarmlearn serve``: run a llama.cpp server from the command line until Ctrl-C.

Mounted by the main CLI as ``app.add_typer(serve_app, name="serve")``; errors
are swarmlearn errors, which the main CLI turns into one line and an exit code.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from swarmlearn.serving._server import LlamaServer, LlamaServerConfig

__all__ = ["serve", "serve_app"]

serve_app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Run a llama.cpp server (OpenAI-compatible) on this machine until Ctrl-C.",
)


def serve(
    model: Annotated[
        Path | None,
        typer.Option("--model", "-m", help="GGUF model file (default: bundled SmolLM2-135M)."),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port (0: any free port).")] = 8080,
    parallel: Annotated[
        int, typer.Option("--parallel", "-np", help="Parallel slots (concurrent requests).")
    ] = 1,
    ctx_size: Annotated[
        int | None,
        typer.Option("--ctx-size", "-c", help="Total context, shared by the slots."),
    ] = None,
    threads: Annotated[int | None, typer.Option("--threads", "-t", help="CPU threads.")] = None,
    lora: Annotated[
        list[Path] | None,
        typer.Option("--lora", help="LoRA adapter GGUF, loaded at scale 0 (repeatable)."),
    ] = None,
    log_dir: Annotated[
        Path | None, typer.Option("--log-dir", help="Where to keep the server log.")
    ] = None,
) -> None:
    """Start the server, print where it listens, restart it if it crashes, stop on Ctrl-C."""
    config = LlamaServerConfig(
        model=model,
        host=host,
        port=port,
        parallel=parallel,
        ctx_size=ctx_size,
        threads=threads,
        loras=tuple(lora or ()),
        log_dir=log_dir,
    )
    server = LlamaServer(config).start()
    done = threading.Event()
    try:
        _stop_on_sigterm(done)
        typer.echo(f"serving {server.model_path.name} at {server.base_url}")
        typer.echo(f"  OpenAI-compatible: {server.base_url}/v1/chat/completions")
        typer.echo(f"  log: {server.log_path}")
        for adapter in server.lora_adapters():
            typer.echo(f"  lora {adapter.id}: {adapter.path} (scale {adapter.scale:g})")
        typer.echo("Ctrl-C to stop")
        while not done.wait(1.0):
            if server.status == "failed":
                typer.echo(f"the server keeps crashing: giving up (log: {server.log_path})")
                raise typer.Exit(7)
    except KeyboardInterrupt:
        pass
    finally:
        typer.echo("stopping")
        server.stop()


def _stop_on_sigterm(done: threading.Event) -> None:
    """Treat SIGTERM (systemd, docker, kill) like Ctrl-C: stop the child gracefully."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, handler)


serve_app.callback(invoke_without_command=True)(serve)
