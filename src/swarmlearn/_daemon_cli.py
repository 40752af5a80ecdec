"""``swarmlearn daemon …``: the learning daemon and the artifacts it manages.

    swarmlearn daemon start  --config daemon.toml      # a background process
    swarmlearn daemon status --config daemon.toml
    swarmlearn daemon stop
    swarmlearn daemon run    --config daemon.toml      # in the foreground
    swarmlearn daemon run-once --config daemon.toml [--level snapshot]
    swarmlearn daemon trigger snapshot --config daemon.toml
    swarmlearn daemon log
    swarmlearn daemon gate-sim [--scenario examples/troubleshooting.toml --variant heldout]
    swarmlearn daemon artifacts list|show|promote|rollback|diff

Mounted by :mod:`swarmlearn.cli` as ``daemon``. Errors are
:class:`~swarmlearn.errors.SwarmlearnError`\\ s; the main entry point prints
one line and exits with the error's code.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from swarmlearn._daemon_config import DaemonConfig, load_daemon_config
from swarmlearn.errors import ConfigError
from swarmlearn.lifecycle import Alias, ArtifactVersion, Lifecycle, LifecycleConfig
from swarmlearn.store import SqlStore, open_store

__all__ = ["artifacts_app", "daemon_app"]

daemon_app = typer.Typer(no_args_is_help=True,
                         help="The learning daemon: trigger → train → gate → promote → watch → "
                              "roll back, unattended.")
artifacts_app = typer.Typer(no_args_is_help=True,
                            help="Learned artifacts: versions, states, champions, rollback.")
daemon_app.add_typer(artifacts_app, name="artifacts")

console = Console()

StoreOpt = Annotated[str | None, typer.Option(
    "--store", help="Store URL or path (default: $SWARMLEARN_STORE or .swarmlearn/swarmlearn.db).")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="The daemon's TOML config.")]
ScenarioOpt = Annotated[str | None, typer.Option(
    "--scenario", help="Scenario file or name (instead of, or over, the config's).")]
VariantOpt = Annotated[str | None, typer.Option("--variant", help="Scenario variant.")]
ModeOpt = Annotated[str | None, typer.Option("--mode", help="offline-only | lora-only | full")]
RunDirOpt = Annotated[str | None, typer.Option(
    "--run-dir", help="Where the daemon keeps its pid, status and log files.")]


def _config(config: Path | None, scenario: str | None, variant: str | None,
            mode: str | None = None, run_dir: str | None = None) -> DaemonConfig:
    if config is None and scenario is None:
        raise ConfigError("--config or --scenario: say what the daemon learns for")
    return load_daemon_config(config, scenario=scenario, variant=variant, mode=mode,
                              run_dir=run_dir)


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "–"


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie — exited, not yet reaped — does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _read_pid(run_dir: Path) -> int | None:
    try:
        return int((run_dir / "daemon.pid").read_text().strip())
    except (OSError, ValueError):
        return None


# -- daemon ------------------------------------------------------------------------------------
@daemon_app.command("run")
def daemon_run(config: ConfigOpt = None, scenario: ScenarioOpt = None, variant: VariantOpt = None,
               mode: ModeOpt = None, run_dir: RunDirOpt = None, store: StoreOpt = None) -> None:
    """Run the daemon in the foreground until SIGTERM or Ctrl-C."""
    from swarmlearn.daemon import LearningDaemon, lower_priority

    cfg = _config(config, scenario, variant, mode, run_dir)
    daemon = LearningDaemon(cfg, store)
    if cfg.nice:
        lower_priority(cfg.nice)
    folder = Path(cfg.run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "daemon.pid").write_text(str(os.getpid()))

    def _stop(signum: int, _frame: FrameType | None) -> None:
        daemon.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        daemon.run()
    finally:
        with contextlib.suppress(OSError):
            if _read_pid(folder) == os.getpid():
                (folder / "daemon.pid").unlink()


@daemon_app.command("start")
def daemon_start(config: ConfigOpt = None, scenario: ScenarioOpt = None,
                 variant: VariantOpt = None, mode: ModeOpt = None, run_dir: RunDirOpt = None,
                 store: StoreOpt = None) -> None:
    """Start the daemon as a background process (its log: RUN_DIR/daemon.log)."""
    cfg = _config(config, scenario, variant, mode, run_dir)  # a bad config fails here
    folder = Path(cfg.run_dir)
    pid = _read_pid(folder)
    if pid is not None and _pid_alive(pid):
        raise ConfigError(f"the daemon already runs (pid {pid}, {folder / 'daemon.pid'})")
    folder.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-c", "from swarmlearn.cli import main; main()", "daemon", "run",
            "--run-dir", str(folder)]
    for flag, value in (("--config", config), ("--scenario", scenario),
                        ("--variant", variant), ("--mode", mode), ("--store", store)):
        if value is not None:
            args += [flag, str(value)]
    with (folder / "daemon.log").open("ab") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    for _ in range(100):
        if _read_pid(folder) == proc.pid or proc.poll() is not None:
            break
        time.sleep(0.1)
    if proc.poll() is not None:
        raise ConfigError(f"the daemon exited at once (code {proc.returncode}); "
                          f"see {folder / 'daemon.log'}")
    console.print(f"daemon started: pid {proc.pid}, log {folder / 'daemon.log'}")


@daemon_app.command("stop")
def daemon_stop(run_dir: Annotated[str, typer.Option(
        "--run-dir", help="The daemon's run directory.")] = ".swarmlearn/daemon",
        timeout: Annotated[float, typer.Option(help="Seconds to wait.")] = 60.0) -> None:
    """Stop the background daemon (SIGTERM; a training in flight is abandoned)."""
    folder = Path(run_dir)
    pid = _read_pid(folder)
    if pid is None or not _pid_alive(pid):
        console.print(f"no daemon runs ({folder / 'daemon.pid'})")
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _pid_alive(pid):
        raise ConfigError(f"the daemon (pid {pid}) did not stop within {timeout:g} s")
    console.print(f"daemon stopped (pid {pid})")


@daemon_app.command("run-once")
def daemon_run_once(config: ConfigOpt = None, scenario: ScenarioOpt = None,
                    variant: VariantOpt = None, mode: ModeOpt = None,
                    level: Annotated[list[str] | None, typer.Option(
                        "--level", help="Run this level now, whatever its trigger.")] = None,
                    store: StoreOpt = None) -> None:
    """One pass: watch, trigger, train, gate every level, then exit."""
    from swarmlearn.daemon import LearningDaemon
    from swarmlearn.lifecycle import add_observer
    from swarmlearn.ops.progress import CliProgress, DaemonProgress
    from swarmlearn.ops.report import terminal_console

    cfg = _config(config, scenario, variant, mode)
    for name in level or []:
        cfg.level(name)
    daemon = LearningDaemon(cfg, store)
    try:
        with CliProgress(terminal_console(stderr=True), rate=False) as bar:
            remove = add_observer(DaemonProgress(bar))  # each level run's stages
            try:
                ran = daemon.run_once(force=level or [])
            finally:
                remove()
        st = daemon.store
        assert st is not None
        _print_status(cfg, st)
    finally:
        daemon.close()
    console.print(f"{ran} level run(s)")


@daemon_app.command("trigger")
def daemon_trigger(level: Annotated[str, typer.Argument(help="The level to run.")],
                   config: ConfigOpt = None, scenario: ScenarioOpt = None,
                   variant: VariantOpt = None, store: StoreOpt = None) -> None:
    """Ask the running daemon to run a level at its next pass (a manual trigger)."""
    from swarmlearn._daemon_config import build_kind
    from swarmlearn.core.scenario import load_scenario

    cfg = _config(config, scenario, variant)
    lv = cfg.level(level)
    with open_store(store) as st:
        kind = build_kind(lv, load_scenario(cfg.scenario, variant=cfg.variant), st,
                          cfg.strategy)
        Lifecycle(st, kind.name, kind.scope).note("request", "requested from the command line",
                                                  {"level": level})
    console.print(f"level {level}: requested; the daemon runs it at its next pass")


def _print_status(cfg: DaemonConfig, st: SqlStore) -> None:
    from swarmlearn.daemon import level_status

    table = Table(title=escape(f"levels of {cfg.scenario} [{cfg.variant or '-'}] ({cfg.mode})"),
                  title_justify="left")
    for col in ("level", "kind", "last run", "next trigger", "champion", "challenger",
                "recent failures"):
        table.add_column(col, overflow="fold")
    for s in level_status(cfg, st):
        last = (f"{_when(s.last_run.ts)} {s.last_run.step}: {s.last_run.reason[:60]}"
                if s.last_run else "never")
        table.add_row(*(escape(x) for x in (
            s.level, f"{s.kind}\n{s.scope}", last, s.next_trigger, _describe(s.champion),
            _describe(s.challenger),
            "\n".join(f"{_when(f.ts)} {f.reason[:80]}" for f in s.failures) or "–")))
    console.print(table)


def _describe(info: dict[str, Any] | None) -> str:
    if info is None:
        return "–"
    rate = info.get("gated_rate")
    text = f"v{info['version']} ({info['state']})"
    if rate is not None:
        text += f"\ngated {rate:.0%}"
        if info.get("cost_per_solve") is not None:
            text += f", {info['cost_per_solve']:.1f} actions/solve"
        if info.get("p_value") is not None:
            text += f", p={info['p_value']:.2g}"
    return text


@daemon_app.command("status")
def daemon_status(config: ConfigOpt = None, scenario: ScenarioOpt = None,
                  variant: VariantOpt = None, mode: ModeOpt = None, run_dir: RunDirOpt = None,
                  store: StoreOpt = None) -> None:
    """Per level: last run, next trigger, champion and challenger, recent failures."""
    cfg = _config(config, scenario, variant, mode, run_dir)
    folder = Path(cfg.run_dir)
    pid = _read_pid(folder)
    try:
        state = json.loads((folder / "status.json").read_text())
    except (OSError, ValueError):
        state = {}
    alive = pid is not None and _pid_alive(pid)
    line = f"daemon: {'running, pid ' + str(pid) if alive else 'not running'}"
    if state:
        line += f"; last status {state.get('state')} at {_when(state.get('ts'))}"
        if state.get("error"):
            line += f" ({state['error']})"
    console.print(escape(line))
    if alive and float(state.get("next_run_at") or 0) > time.time():
        due = "due: " + ", ".join(state["waiting"]) if state.get("waiting") else "none due yet"
        console.print(escape(f"next level run at {_when(state['next_run_at'])} ({due}): "
                             f"{state.get('share_wait', '')}"))
    with open_store(store) as st:
        _print_status(cfg, st)


def _reading(store: str | None) -> SqlStore:
    """The store opened read-only: a listing creates nothing (``exists`` says if it is there)."""
    return SqlStore(store, read_only=True)


@daemon_app.command("log")
def daemon_log(limit: Annotated[int, typer.Option("-n", help="How many entries.")] = 30,
               kind: Annotated[str | None, typer.Option(help="Only this kind.")] = None,
               store: StoreOpt = None) -> None:
    """The learning log: every lifecycle move and daemon step, newest last."""
    st = _reading(store)
    if not st.exists:
        console.print(f"no learning log yet: no store at {st.url}")
        return
    with closing(st):
        rows = st.learning_log(kind=kind, limit=limit, newest_first=True)[::-1]
    for r in rows:
        v = r.data.get("version")
        console.print(f"{_when(r.ts)} {r.kind}/{r.scope} {r.step}"
                      f"{f' v{v}' if v else ''}: {r.reason}", highlight=False, markup=False)


@daemon_app.command("gate-sim")
def gate_sim(
    tasks: Annotated[int, typer.Option(help="Held-out tasks per gate.")] = 40,
    trials: Annotated[int, typer.Option(help="Gates run.")] = 10_000,
    effect: Annotated[float, typer.Option(help="Challenger's extra solve probability.")] = 0.0,
    alpha: Annotated[float, typer.Option(help="The gate's alpha.")] = 0.05,
    seed: Annotated[int, typer.Option(help="Simulation seed.")] = 0,
    scenario: ScenarioOpt = None, variant: VariantOpt = None,
) -> None:
    """Measure how often the gate promotes a challenger equal to the champion.

    Without --scenario: a simulation of tasks of varied difficulty. With it: the
    real swarm (a learned snapshot evaluated twice, with different worker seeds).
    """
    from swarmlearn.lifecycle import GateConfig, simulate_false_promotion

    cfg = GateConfig(alpha=alpha, min_tasks=min(20, tasks))
    if scenario is None:
        sim = simulate_false_promotion(cfg, tasks=tasks, trials=trials, seed=seed, effect=effect)
        lo, hi = sim.ci
        console.print(f"simulated: {sim.promotions} promotions in {sim.trials} gates of "
                      f"{tasks} tasks (effect {effect:g}): {sim.rate:.2%} "
                      f"(95% {lo:.2%}–{hi:.2%}); alpha {alpha:g}")
        return
    from swarmlearn.lifecycle._real_sim import real_false_promotion

    promoted, n = real_false_promotion(scenario, variant or "", cfg, tasks=tasks,
                                       trials=trials, seed=seed)
    from swarmlearn._stats import wilson

    lo, hi = wilson(promoted, n)
    console.print(f"real swarm: {promoted} promotions in {n} gates of {tasks} tasks "
                  f"(two equal artifacts): {promoted / n:.2%} (95% {lo:.2%}–{hi:.2%}); "
                  f"alpha {alpha:g}")


# -- artifacts --------------------------------------------------------------------------------
KindArg = Annotated[str, typer.Argument(help="Artifact kind (snapshot, offline_model …).")]
ScopeArg = Annotated[str, typer.Argument(help="Scope: the artifact name, e.g. a scenario label.")]


def _life(st: SqlStore, kind: str, scope: str) -> Lifecycle:
    life = Lifecycle(st, kind, scope, LifecycleConfig())
    if not st.artifacts(kind, scope, latest=1, payload=False):
        raise ConfigError(f"no artifact {kind}/{scope} in {st.url}")
    return life


@artifacts_app.command("list")
def artifacts_list(kind: Annotated[str | None, typer.Option(help="Only this kind.")] = None,
                   scope: Annotated[str | None, typer.Option(help="Only this scope.")] = None,
                   limit: Annotated[int, typer.Option("-n", help="How many.")] = 30,
                   store: StoreOpt = None) -> None:
    """Versions newest first, with state, alias and gate numbers."""
    st = _reading(store)
    if not st.exists:
        console.print(f"no artifacts yet: no store at {st.url}")
        return
    with closing(st):
        records = st.artifacts(kind, scope, latest=limit, payload=False)
        aliases = {a.artifact_id: a.alias for a in st.aliases(kind, scope)}
    if not records:
        console.print("no artifacts")
        return
    table = Table(title_justify="left")
    for col in ("kind", "scope", "version", "state", "alias", "created", "gate"):
        table.add_column(col)
    for r in records:
        v = ArtifactVersion(r)
        g = v.gate
        gate_text = (f"{g['challenger']['success_rate']:.0%} vs "
                     f"{g['champion']['success_rate']:.0%}, p={g['p_value']:.2g}" if g else "–")
        table.add_row(*(escape(x) for x in (r.kind, r.name, str(r.version), r.status,
                                            aliases.get(r.id, ""), _when(r.created), gate_text)))
    console.print(table)


@artifacts_app.command("show")
def artifacts_show(kind: KindArg, scope: ScopeArg,
                   version: Annotated[int | None, typer.Argument(help="Default: latest.")] = None,
                   store: StoreOpt = None) -> None:
    """One version: state, lineage, gate numbers, and its log."""
    with closing(_reading(store)) as st:
        life = _life(st, kind, scope)
        v = ArtifactVersion(st.get_artifact(kind, scope, version))
        log = st.learning_log(artifact_id=v.id)
    meta = {k: val for k, val in v.meta.items() if k != "gate_results"}
    console.print(f"{v.label}: {v.state}, {len(v.record.payload or b'')} bytes, sha256 "
                  f"{v.record.sha256[:16]}…, created {_when(v.record.created)}", markup=False)
    console.print_json(json.dumps(meta, default=str))
    for r in log:
        console.print(f"  {_when(r.ts)} {r.step}: {r.reason}", highlight=False, markup=False)
    del life


@artifacts_app.command("promote")
def artifacts_promote(kind: KindArg, scope: ScopeArg,
                      version: Annotated[int, typer.Argument(help="The version to promote.")],
                      reason: Annotated[str, typer.Option(help="Why (logged).")] =
                      "promoted by hand", store: StoreOpt = None) -> None:
    """Make a version the champion without a gate (the running daemon applies it)."""
    with open_store(store) as st:
        life = _life(st, kind, scope)
        v = life.promote(life.get(version), reason=reason)
    console.print(f"{v.label} is the {Alias.CHAMPION}", markup=False)


@artifacts_app.command("rollback")
def artifacts_rollback(kind: KindArg, scope: ScopeArg,
                       to: Annotated[int | None, typer.Option(
                           help="A previous champion's version (default: the last one).")] = None,
                       reason: Annotated[str, typer.Option(help="Why (logged).")] =
                       "rolled back by hand", store: StoreOpt = None) -> None:
    """Retire the champion and put the previous one back (the running daemon applies it)."""
    with open_store(store) as st:
        life = _life(st, kind, scope)
        target = life.get(to) if to is not None else None
        back = life.rollback(reason, to=target)
    console.print(f"{kind}/{scope}: champion now "
                  f"{'v' + str(back.version) if back is not None else 'none (the baseline)'}",
                  markup=False)


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): data}


@artifacts_app.command("diff")
def artifacts_diff(kind: KindArg, scope: ScopeArg,
                   a: Annotated[int, typer.Argument(help="One version.")],
                   b: Annotated[int, typer.Argument(help="The other version.")],
                   store: StoreOpt = None) -> None:
    """What differs between two versions' metadata, lineage and gate numbers."""
    with closing(_reading(store)) as st:
        life = _life(st, kind, scope)
        va, vb = life.get(a), life.get(b)
    fa = _flat({k: v for k, v in va.meta.items() if k != "gate_results"})
    fb = _flat({k: v for k, v in vb.meta.items() if k != "gate_results"})
    table = Table(title=escape(f"{kind}/{scope}: v{a} → v{b}"), title_justify="left")
    for col in ("field", f"v{a}", f"v{b}"):
        table.add_column(col, overflow="fold")
    table.add_row("state", va.state.value, vb.state.value)
    table.add_row("sha256", va.record.sha256[:16], vb.record.sha256[:16])
    for key in sorted(fa.keys() | fb.keys()):
        if fa.get(key) != fb.get(key):
            table.add_row(escape(key), escape(str(fa.get(key, "–"))[:80]),
                          escape(str(fb.get(key, "–"))[:80]))
    console.print(table)
