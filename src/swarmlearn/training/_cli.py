"""``swarmlearn lora …``: train, gate, export, list, apply and roll back LoRA adapters.

    swarmlearn lora train examples/troubleshooting.toml --variant heldout --max-seconds 600
    swarmlearn lora gate  examples/troubleshooting.toml --variant heldout 3 --tasks 30 --teacher
    swarmlearn lora list  examples/troubleshooting.toml --variant heldout
    swarmlearn lora apply examples/troubleshooting.toml --variant heldout 3 --server URL
    swarmlearn lora rollback examples/troubleshooting.toml --variant heldout
    swarmlearn lora export ADAPTER_DIR --base model.gguf -o adapter.gguf

Versions live in the store (kind ``lora_adapter``, scope = the scenario label)
and their files in the adapter directory (``--dir``, default
``.swarmlearn/lora``). Mounted by :mod:`swarmlearn.cli` as ``lora``; errors
are swarmlearn errors, printed as one line with the error's exit code.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from swarmlearn.errors import ConfigError
from swarmlearn.ops.progress import CliProgress
from swarmlearn.ops.report import terminal_console
from swarmlearn.training.lora import Objective

__all__ = ["lora_app"]

lora_app = typer.Typer(no_args_is_help=True,
                       help="LoRA adapters trained on the swarm's own episodes: train, gate, "
                            "list, apply, roll back, export.")
console = Console()

ScenarioArg = Annotated[str, typer.Argument(help="Scenario file, or a built-in name.")]
VariantOpt = Annotated[str, typer.Option(help="Scenario variant (the adapter's scope).")]
StoreOpt = Annotated[str | None, typer.Option(
    "--store", help="Store URL or path (default: $SWARMLEARN_STORE or .swarmlearn/swarmlearn.db).")]
DirOpt = Annotated[Path | None, typer.Option(
    "--dir", help="Adapter directory (default: $SWARMLEARN_LORA_DIR or .swarmlearn/lora).")]
BaseOpt = Annotated[Path | None, typer.Option(
    "--base", help="The GGUF the adapter is trained on and served with (default: bundled).")]
ServerOpt = Annotated[str | None, typer.Option(
    "--server", help="A running llama.cpp server to apply the adapter on (its base URL).")]
VersionArg = Annotated[str, typer.Argument(help="A version: 3, v3 or champion.")]


def _layers(spec: str) -> tuple[int, ...]:
    """``18-29`` or ``0,1,2`` → layer numbers."""
    if not spec:
        return ()
    try:
        if "-" in spec:
            lo, hi = (int(x) for x in spec.split("-", 1))
            return tuple(range(lo, hi + 1))
        return tuple(int(x) for x in spec.split(","))
    except ValueError as exc:
        raise ConfigError(f"--layers: expected 18-29 or 0,1,2, got {spec!r}",
                          field="--layers") from exc


def _kind(scenario: str, variant: str, store: Any, *, base: Path | None, root: Path | None,
          **kwargs: Any) -> Any:
    from swarmlearn.core.scenario import load_scenario
    from swarmlearn.training.kind import LoraAdapterKind

    sc = load_scenario(scenario, variant=variant)
    return LoraAdapterKind(sc, store, base=base, root=root, **kwargs)


def _progress() -> CliProgress:
    """Training steps or gate tasks; loss and tallies are live figures."""
    return CliProgress(terminal_console(stderr=True), rate=False, stages=False)


def _gate_line(decision: Any) -> str:
    b, c = decision.champion, decision.challenger

    def side(s: Any) -> str:
        per = s.cost_per_solve
        return (f"{s.successes}/{s.tasks} solved ({s.success_rate:.0%}), "
                f"{'–' if math.isinf(per) else f'{per:.1f}'} actions per solved task")

    return (f"champion: {side(b)}\nchallenger: {side(c)}\n"
            f"gate: {'PROMOTE' if decision.promote else 'reject'} — {decision.reason}")


@lora_app.command("train")
def train(
    scenario: ScenarioArg, variant: VariantOpt = "", store: StoreOpt = None,
    root: DirOpt = None, base: BaseOpt = None,
    objective: Annotated[Objective, typer.Option(
        help="sft: the decisions of successful episodes; dpo: pairs of a successful and a "
             "failed episode's decisions in the same prompt.")] = Objective.SFT,
    init: Annotated[str, typer.Option(
        "--init", help="Start from this adapter: a version (3, v3, champion) or a PEFT "
                       "directory; its rank, alpha, targets and layers are kept (DPO on top "
                       "of the SFT adapter: --objective dpo --init champion).")] = "",
    max_examples: Annotated[int, typer.Option(help="At most this many examples (0: all).")] = 0,
    min_score: Annotated[float, typer.Option(help="Episodes scoring less are left out.")] = 0.0,
    rank: Annotated[int, typer.Option(help="LoRA rank.")] = 8,
    alpha: Annotated[float, typer.Option(help="LoRA alpha.")] = 16.0,
    layers: Annotated[str, typer.Option(help="Adapt only these layers: 18-29 or 0,1 "
                                            "(default: all).")] = "",
    learning_rate: Annotated[float, typer.Option("--lr", help="Learning rate.")] = 5e-4,
    epochs: Annotated[int, typer.Option(help="Passes over the data.")] = 1,
    batch_size: Annotated[int, typer.Option("--batch", help="Examples per step.")] = 4,
    max_steps: Annotated[int, typer.Option(help="Stop after this many steps (0: none).")] = 0,
    max_seconds: Annotated[float, typer.Option(help="Stop training after this long "
                                                   "(0: none).")] = 0.0,
    dpo_beta: Annotated[float, typer.Option(help="DPO: how far from its reference the policy "
                                              "may move (beta).")] = 0.1,
    min_gap: Annotated[float, typer.Option(help="DPO: a pair's episodes differ in score by "
                                               "at least this.")] = 0.25,
    threads: Annotated[int, typer.Option(help="torch threads.")] = 2,
    gate: Annotated[bool, typer.Option("--gate/--no-gate", help="Gate the new version "
                                       "against the champion on held-out tasks.")] = False,
    tasks: Annotated[int, typer.Option(help="Held-out tasks per side of the gate.")] = 30,
    server: ServerOpt = None,
) -> None:
    """Build the data set (SFT examples or DPO pairs) from the store, train an adapter,
    export it, register it.

    With --gate it is then evaluated against the champion (or the base model) on fresh
    held-out tasks and promoted only if the gate says so (then applied to --server)."""
    from swarmlearn.store import open_store
    from swarmlearn.training.data import DatasetConfig
    from swarmlearn.training.lora import LoraTrainConfig

    cfg = LoraTrainConfig(objective=objective, rank=rank, alpha=alpha, layers=_layers(layers),
                          learning_rate=learning_rate, epochs=epochs, batch_size=batch_size,
                          max_steps=max_steps, max_seconds=max_seconds, dpo_beta=dpo_beta,
                          init_adapter=init, threads=threads)
    data = DatasetConfig(max_examples=max_examples, min_score=min_score, min_gap=min_gap)
    with open_store(store) as st:
        # the scenario, the base model and the options are checked before any progress shows
        kind = _kind(scenario, variant, st, base=base, root=root, data=data, train=cfg,
                     server_url=server or "")
        from swarmlearn.lifecycle import Lifecycle

        kind.start_from(Lifecycle(st, kind.name, kind.scope).champion())
        with _progress() as progress:
            _train(kind, st, progress, gate=gate, tasks=tasks)


def _train(kind: Any, st: Any, progress: CliProgress, *, gate: bool, tasks: int) -> None:
    from swarmlearn.lifecycle import Lifecycle, ProduceContext
    from swarmlearn.ops.hooks import log_version, tracked_command

    bar = progress.add("training")
    with tracked_command("lora.train", tags={"swarmlearn.scope": kind.scope}) as run:
        log = run.callback(step="step", prefix="train/")

        def step(p: Any) -> None:
            progress.update(bar, total=p.steps, completed=p.step,
                            info=f"loss {p.loss:.3f}  {p.tokens_per_s:.0f} tok/s  "
                                 f"ETA {p.eta:.0f}s")
            log(p)

        kind.on_progress = step
        life = Lifecycle(st, kind.name, kind.scope)
        version = life.register(kind.produce(ProduceContext(store=st, scope=kind.scope,
                                                            champion=life.champion())))
        log_version(run, version)
    progress.update(bar, description="trained", done=True)
    m = version.lineage.metrics
    console.print(f"{version.label} ({m['objective']}): {m['examples']} examples, "
                  f"{m['steps']} steps, loss "
                  f"{m['first_loss']:.3f} → {m['final_loss']:.3f}, val loss "
                  f"{_num(m['val_loss_before'])} → {_num(m['val_loss'])}, "
                  f"{m['tokens_per_s']:.0f} tokens/s, {m['wall_seconds']:.0f} s, peak "
                  f"{m['peak_rss_mb']:.0f} MB — {version.meta['directory']}", markup=False)
    if gate:
        _run_gate(kind, life, version, tasks=tasks, seed=None, teacher=False,
                  progress=progress)


def _num(x: Any) -> str:
    return "–" if x is None else f"{x:.3f}"


def _run_gate(kind: Any, life: Any, version: Any, *, tasks: int, seed: int | None,
              teacher: bool, progress: CliProgress) -> None:
    from swarmlearn.lifecycle import HeldOutTasks, run_gate

    bar = progress.add("gate", total=2 * tasks)
    wins: dict[str, list[int]] = {}

    def tick(side: str, r: Any) -> None:
        won = wins.setdefault(side, [0, 0])
        won[0] += r.solved
        won[1] += 1
        progress.update(bar, advance=1, info=f"{side}: {won[0]}/{won[1]} solved")

    kind.on_task = tick
    gated = life if seed is None else _FixedSeeds.wrap(life, HeldOutTasks(
        scope=life.scope, seeds=tuple(range(seed, seed + tasks))))
    run = run_gate(gated, kind, version, tasks=tasks)
    console.print(_gate_line(run.decision), markup=False)
    if teacher:
        ran = _teacher(kind, tuple(range(seed, seed + tasks)) if seed is not None
                       else run.decision.tasks)
        console.print(f"teacher (the learning rule swarm, same tasks): {ran}", markup=False)


class _FixedSeeds:
    """A lifecycle whose next gate runs on the given seeds (``lora gate --seed``)."""

    @staticmethod
    def wrap(life: Any, tasks: Any) -> Any:
        from swarmlearn.lifecycle import Lifecycle

        class Fixed(Lifecycle):
            def held_out_tasks(self, n: int, *, worker_seed: int = 0) -> Any:
                return tasks

        return Fixed(life.store, life.kind, life.scope, life.config)


def _teacher(kind: Any, seeds: tuple[int, ...]) -> str:
    from swarmlearn.learn.kinds import evaluate_swarm, learning_sessions, replay_stats
    from swarmlearn.lifecycle import HeldOutTasks

    sessions = learning_sessions(kind.store, kind.scenario)
    stats, _, _ = replay_stats(kind.store, sessions)
    held = HeldOutTasks(scope=kind.scope, seeds=seeds)
    results = evaluate_swarm(kind.scenario, held, stats, None, "adaptive")
    ok = [r for r in results if r.solved]
    per = sum(r.cost for r in results) / len(ok) if ok else math.inf
    return (f"{len(ok)}/{len(results)} solved ({len(ok) / len(results):.0%}), "
            f"{'–' if math.isinf(per) else f'{per:.1f}'} actions per solved task "
            f"(statistics of {len(sessions)} recorded sessions, strategy adaptive)")


@lora_app.command("gate")
def gate_cmd(
    scenario: ScenarioArg, version: VersionArg, variant: VariantOpt = "",
    store: StoreOpt = None, root: DirOpt = None, base: BaseOpt = None,
    tasks: Annotated[int, typer.Option(help="Held-out tasks per side.")] = 30,
    seed: Annotated[int | None, typer.Option(help="First held-out task seed (default: the "
                                                  "lifecycle's next fresh block).")] = None,
    teacher: Annotated[bool, typer.Option("--teacher", help="Also run the learning rule "
                                          "swarm the data came from on the same tasks.")] = False,
    server: ServerOpt = None,
) -> None:
    """Gate a candidate version against the champion (or the base model): both sides on
    the same held-out tasks, the paired sign test decides; promoted only if it says so."""
    from swarmlearn.lifecycle import Lifecycle
    from swarmlearn.store import open_store

    with open_store(store) as st, _progress() as progress:
        kind = _kind(scenario, variant, st, base=base, root=root, server_url=server or "")
        life = Lifecycle(st, kind.name, kind.scope)
        v = _version(life, version)
        _run_gate(kind, life, v, tasks=tasks, seed=seed, teacher=teacher, progress=progress)


def _version(life: Any, ref: str) -> Any:
    text = ref.strip().lower().removeprefix("v")
    if text == "champion":
        v = life.champion()
        if v is None:
            raise ConfigError(f"{life.kind}/{life.scope}: no champion (the base model is live)")
        return v
    if not text.isdigit():
        raise ConfigError(f"version: expected 3, v3 or champion, got {ref!r}", field="version")
    from swarmlearn.errors import StoreError

    try:
        return life.get(int(text))
    except StoreError as exc:
        raise ConfigError(f"{life.kind}/{life.scope} has no version {text}",
                          field="version") from exc


@lora_app.command("list")
def list_cmd(scenario: ScenarioArg, variant: VariantOpt = "", store: StoreOpt = None) -> None:
    """The adapter versions of a scenario: state, data, training and gate numbers."""
    from swarmlearn.core.scenario import load_scenario
    from swarmlearn.lifecycle import Lifecycle
    from swarmlearn.store import SqlStore, resolve_url

    sc = load_scenario(scenario, variant=variant)
    with contextlib.closing(SqlStore(str(resolve_url(store)), read_only=True)) as st:
        if not st.exists:
            console.print(f"{sc.label}: no adapters (nothing recorded in {st.url})",
                          markup=False)
            return
        from swarmlearn.training.adapters import ADAPTER_KIND

        life = Lifecycle(st, ADAPTER_KIND, sc.label)
        champion = life.champion(payload=False)
        versions = life.versions()
    table = Table(title=f"LoRA adapters of {sc.label}", title_justify="left")
    for col in ("version", "state", "objective", "examples", "val loss", "tokens/s", "gate",
                "directory"):
        table.add_column(col, overflow="fold")
    for v in versions:
        m, gate = v.lineage.metrics, v.gate or {}
        live = " (champion)" if champion is not None and champion.id == v.id else ""
        table.add_row(f"v{v.version}{live}", v.state.value, str(m.get("objective", "")),
                      str(m.get("examples", "")),
                      _num(m.get("val_loss")), f"{m.get('tokens_per_s', 0):.0f}",
                      str(gate.get("reason", "")), str(v.meta.get("directory", "")))
    console.print(table)
    if not versions:
        console.print(f"{sc.label}: no adapters yet", markup=False)


@lora_app.command("apply")
def apply_cmd(scenario: ScenarioArg, version: VersionArg, variant: VariantOpt = "",
              store: StoreOpt = None, root: DirOpt = None, base: BaseOpt = None,
              server: ServerOpt = None) -> None:
    """Make a version the champion by hand (logged) and, with --server, apply it there:
    its scale to 1, every other adapter's to 0. A file that fails its checks changes nothing."""
    from swarmlearn.lifecycle import Lifecycle
    from swarmlearn.store import open_store

    with open_store(store) as st:
        kind = _kind(scenario, variant, st, base=base, root=root, server_url=server or "")
        life = Lifecycle(st, kind.name, kind.scope)
        v = _version(life, version)
        kind.gguf_of(v)  # the file is the registered one, for this base: before any change
        if server:
            kind.apply(v)
        v = life.promote(v, reason="applied by hand (swarmlearn lora apply)")
    console.print(f"{v.label} is the champion{' and live on ' + server if server else ''}",
                  markup=False)


@lora_app.command("rollback")
def rollback_cmd(scenario: ScenarioArg, variant: VariantOpt = "", store: StoreOpt = None,
                 root: DirOpt = None, base: BaseOpt = None,
                 to: Annotated[int | None, typer.Option(help="A previous champion's version "
                                                        "(default: the last one).")] = None,
                 server: ServerOpt = None) -> None:
    """Retire the champion and put the previous one (or the base model) back."""
    from swarmlearn.lifecycle import Lifecycle
    from swarmlearn.store import open_store

    with open_store(store) as st:
        kind = _kind(scenario, variant, st, base=base, root=root, server_url=server or "")
        life = Lifecycle(st, kind.name, kind.scope)
        target = _version(life, str(to)) if to is not None else None
        back = life.rollback("rolled back by hand (swarmlearn lora rollback)", to=target)
        if server:
            kind.revert(back)
    console.print(f"{kind.scope}: champion now "
                  f"{back.label if back is not None else 'none (the base model)'}", markup=False)


@lora_app.command("export")
def export_cmd(adapter: Annotated[Path, typer.Argument(help="A PEFT adapter directory.")],
               base: Annotated[Path, typer.Option("--base", help="The base GGUF.")],
               output: Annotated[Path, typer.Option("-o", "--output",
                                                    help="The GGUF adapter to write.")],
               ) -> None:
    """Convert a PEFT LoRA adapter directory to a llama.cpp GGUF adapter for --base."""
    from swarmlearn._config import check_output_path
    from swarmlearn.serving import check_lora
    from swarmlearn.training.gguf_export import export_gguf

    check_output_path(output, "-o/--output")
    path = export_gguf(adapter, base, output)
    check_lora(path, base=base.resolve())
    console.print(f"wrote {path}", markup=False)


def adapter_path(ref: str, scenario: str, variant: str, store: str | None) -> str:
    """``eval --adapter``: a GGUF file, or a version (3, v3, champion) of the scenario's
    adapters, as the path LLM workers load (a version's file checked against its digest)."""
    from swarmlearn.core.scenario import load_scenario
    from swarmlearn.store import SqlStore, resolve_url
    from swarmlearn.training.adapters import resolve_adapter

    p = Path(ref).expanduser()
    if p.exists():
        return str(resolve_adapter(ref)[0])
    sc = load_scenario(scenario, variant=variant)
    with contextlib.closing(SqlStore(str(resolve_url(store)), read_only=True)) as st:
        if not st.exists:
            raise ConfigError(f"--adapter: {ref!r} is not a file, and {st.url} holds no "
                              f"adapter versions", field="--adapter", value=ref)
        return str(resolve_adapter(ref, store=st, scope=sc.label, field="--adapter")[0])
