"""``swarmlearn rl``: train, evaluate and resume DQN runs from the command line.

    swarmlearn rl train CartPole-v1 --steps 50000 [--config dqn.toml]
    swarmlearn rl eval runs/CartPole-v1/v1/20260101T120000Z
    swarmlearn rl resume runs/CartPole-v1/v1/20260101T120000Z

Errors propagate as :class:`~swarmlearn.errors.SwarmlearnError`; the main
CLI turns them into one line and an exit code.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

from swarmlearn.errors import ConfigError
from swarmlearn.ops.hooks import track_dqn
from swarmlearn.ops.progress import CliProgress
from swarmlearn.ops.report import terminal_console
from swarmlearn.rl._loop import LoopResult
from swarmlearn.rl._loop import Progress as LoopProgress
from swarmlearn.rl._records import EvalReport
from swarmlearn.rl._run import RunConfig, Trainer, evaluate_run

__all__ = ["load_config_file", "rl_app"]

rl_app = typer.Typer(
    name="rl",
    help="Reinforcement learning: train, evaluate and resume DQN runs on gymnasium envs.",
    no_args_is_help=True,
)
console = terminal_console(stderr=True)


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a JSON or TOML config file into a mapping (ConfigError naming the file)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}", field="config") from exc
    try:
        data = tomllib.loads(raw.decode()) if path.suffix == ".toml" else json.loads(raw)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{path}: not valid {path.suffix[1:] or 'JSON'}: {exc}", field="config"
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a table at the top level", field="config")
    return data


def _fmt(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.1f}"


@contextlib.contextmanager
def _graceful_interrupt() -> Iterator[threading.Event]:
    """First Ctrl-C asks the loop to stop between steps (and checkpoint); the second aborts."""
    stop = threading.Event()
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        console.print("[yellow]stopping after this step (Ctrl-C again to abort)…")

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: leave SIGINT alone
        yield stop
        return
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def _run_with_progress(trainer: Trainer) -> LoopResult:
    with CliProgress(console, unit="steps", stages=False) as bar:
        task = bar.add(trainer.config.env_id, total=trainer.config.steps,
                       completed=trainer.session.steps, info="mean return - · eval -")

        with track_dqn(trainer) as tracked, _graceful_interrupt() as stop:

            def on_progress(p: LoopProgress) -> None:
                bar.update(task, completed=p.steps,
                           info=f"mean return {_fmt(p.mean_return)} · eval "
                                f"{_fmt(p.last_eval)}")
                tracked.on_progress(p)

            return trainer.run(on_progress=on_progress, on_eval=tracked.on_eval,
                               should_stop=stop.is_set)


def _summary(trainer: Trainer, result: LoopResult) -> None:
    session = trainer.session
    best = session.best_score
    word = "stopped" if result.stopped else "done"
    console.print(
        f"[bold]{word}[/bold]: {session.steps:,} steps, {session.episodes:,} episodes, "
        f"train {result.train_seconds:.1f}s + eval {result.eval_seconds:.1f}s, "
        f"best eval mean {_fmt(best)}"
    )
    console.print(f"run directory: {trainer.run_dir.path}")


def _print_report(report: EvalReport) -> None:
    console.print(
        f"{report.n_episodes} episodes: mean {report.mean_reward:.2f} ± {report.std_reward:.2f} "
        f"(min {report.min_reward:.1f}, max {report.max_reward:.1f}), "
        f"mean length {report.mean_length:.1f}, "
        f"{report.terminated} terminated / {report.truncated} truncated"
    )


@rl_app.command()
def train(
    env: Annotated[str, typer.Argument(help="gymnasium environment id, e.g. CartPole-v1")],
    steps: Annotated[int, typer.Option("--steps", help="environment steps to train for")],
    config: Annotated[
        Path | None, typer.Option("--config", help="JSON or TOML file with RunConfig fields")
    ] = None,
    runs_dir: Annotated[Path | None, typer.Option(help="root of the run directories")] = None,
    name: Annotated[str | None, typer.Option(help="run name (default: the env id)")] = None,
    seed: Annotated[int | None, typer.Option(help="seed of the envs and the agent")] = None,
) -> None:
    """Train a DQN on ENV for --steps environment steps in a new run directory."""
    data = load_config_file(config) if config is not None else {}
    data = {**data, "env_id": env, "steps": steps}
    if runs_dir is not None:
        data["runs_dir"] = str(runs_dir)
    if name is not None:
        data["name"] = name
    if seed is not None:
        data["seed"] = seed
        data["dqn"] = {**data.get("dqn", {}), "seed": seed}
    trainer = Trainer.start(RunConfig.from_mapping(data))
    try:
        result = _run_with_progress(trainer)
    finally:
        trainer.close()
    _summary(trainer, result)


@rl_app.command("eval")
def eval_run(
    run_dir: Annotated[Path, typer.Argument(help="a run directory")],
    episodes: Annotated[int, typer.Option(help="evaluation episodes")] = 10,
    checkpoint: Annotated[str, typer.Option(help="'best' or 'latest'")] = "best",
) -> None:
    """Evaluate a run's best (or latest) checkpoint greedily on fresh environments."""
    report = evaluate_run(run_dir, episodes=episodes, checkpoint=checkpoint)
    _print_report(report)


@rl_app.command()
def resume(
    run_dir: Annotated[Path, typer.Argument(help="a run directory")],
    steps: Annotated[
        int | None, typer.Option("--steps", help="new total steps (default: the run's own)")
    ] = None,
) -> None:
    """Continue a run from its latest checkpoint."""
    trainer = Trainer.resume(run_dir, steps=steps)
    try:
        result = _run_with_progress(trainer)
    finally:
        trainer.close()
    _summary(trainer, result)
