"""The ``swarmlearn`` command line (typer + rich).

Every command prints one clear line and exits non-zero on bad input; the
exit code tells the error class (see :data:`swarmlearn.errors.EXIT_CODES`).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import logging
import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.table import Table

from swarmlearn._config import check_output_path, check_range
from swarmlearn._daemon_cli import artifacts_app, daemon_app
from swarmlearn.core.events import EpisodeEnded
from swarmlearn.core.scenario import (
    POLICIES,
    Scenario,
    WorkerKind,
    check_workers,
    load_scenario,
)
from swarmlearn.errors import ConfigError, SwarmlearnError, exit_code_for
from swarmlearn.fed._cli import fed_app
from swarmlearn.feedback import feedback_app
from swarmlearn.learn._analyze_cli import learn_app
from swarmlearn.learn._cli import profile_app, snapshot_app
from swarmlearn.ops._cli import report_command
from swarmlearn.ops.progress import CliProgress
from swarmlearn.ops.report import print_rows, terminal_console
from swarmlearn.rl._cli import rl_app
from swarmlearn.serving._cli import serve_app
from swarmlearn.skills._cli import skills_app
from swarmlearn.store import EventQuery, SqlStore, open_store
from swarmlearn.training._cli import lora_app
from swarmlearn.types import OutcomeKind

__all__ = ["app", "main"]

app = typer.Typer(
    name="swarmlearn",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="A swarm of agents that works on tasks and learns from its own experience.",
)
events_app = typer.Typer(no_args_is_help=True, help="Read the recorded event stream.")
scenarios_app = typer.Typer(no_args_is_help=True, help="List and validate scenarios.")
app.add_typer(events_app, name="events")
app.add_typer(scenarios_app, name="scenarios")
app.add_typer(learn_app, name="learn")
app.add_typer(profile_app, name="profile")
app.add_typer(snapshot_app, name="snapshot")
app.add_typer(rl_app, name="rl")
app.add_typer(serve_app, name="serve")
app.add_typer(daemon_app, name="daemon")
app.add_typer(artifacts_app, name="artifacts")
app.add_typer(lora_app, name="lora")
app.add_typer(feedback_app, name="feedback")
app.add_typer(skills_app, name="skills")
app.command("report")(report_command)
app.add_typer(fed_app, name="fed")

console = terminal_console()
err_console = terminal_console(stderr=True)

StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="Store URL or path (default: $SWARMLEARN_STORE or .swarmlearn/swarmlearn.db).",
    ),
]


MetricsPortOpt = Annotated[int | None, typer.Option(
    "--metrics-port", help="Serve Prometheus metrics on 127.0.0.1:PORT/metrics while it runs.")]


@app.callback()
def _setup(
    verbose: Annotated[
        int,
        typer.Option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug)."),
    ] = 0,
    track: Annotated[bool, typer.Option(
        "--track", help="Track runs in MLflow (default sqlite:///.swarmlearn/mlflow.db, or "
        "$MLFLOW_TRACKING_URI) and mirror the artifact lifecycle to its registry.")] = False,
    tracking_uri: Annotated[str | None, typer.Option(
        "--tracking-uri", help="Track in MLflow at this URI (implies --track).")] = None,
    metrics_port: MetricsPortOpt = None,
    metrics_dir: Annotated[str | None, typer.Option(
        "--metrics-dir", help="Prometheus multi-process directory shared by the processes "
        "of one deployment ($PROMETHEUS_MULTIPROC_DIR).")] = None,
) -> None:
    handler: logging.Handler
    if err_console.is_terminal:
        handler = RichHandler(console=Console(stderr=True), show_path=False)
        handler.setFormatter(logging.Formatter("%(message)s", datefmt="[%X]"))
    else:  # a log file or pipe gets one plain line per record
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)  # others: warnings
    logging.getLogger("swarmlearn").setLevel(logging.WARNING - 10 * min(verbose, 2))
    from swarmlearn.ops._cli import configure

    configure(track_runs=track, tracking_uri=tracking_uri, metrics_port=metrics_port,
              metrics_dir=metrics_dir)


PolicyOpt = Annotated[str | None, typer.Option(
    help=f"Override the workers' selection policy: {' | '.join(POLICIES)}.")]
LLMUrlOpt = Annotated[str | None, typer.Option(
    "--llm-url", help="LLM workers: an OpenAI-compatible URL instead of a local server.")]
LLMModelOpt = Annotated[str | None, typer.Option(
    "--llm-model", help="LLM workers: a GGUF model file (default: bundled SmolLM2-135M).")]


def _scenario(
    path: str, variant: str = "", *, workers: str | None = None, policy: str | None = None,
    llm_url: str | None = None, llm_model: str | None = None,
) -> Scenario:
    sc = load_scenario(path, variant=variant)
    over: dict[str, Any] = {}
    if llm_url:
        from swarmlearn.llm import normalize_base_url

        over["url"] = normalize_base_url(llm_url, field="--llm-url")
    if llm_model:
        from swarmlearn.serving import check_gguf

        over["model"] = str(check_gguf(Path(llm_model), field="--llm-model"))
    if workers:
        if workers not in set(WorkerKind):
            raise ConfigError(
                f"--workers: expected one of {', '.join(WorkerKind)}, got {workers!r}"
            )
        over["kind"] = workers
    if policy:
        over["policy"] = policy
    if not over:
        return sc
    sc = sc.override(workers=over)
    check_workers(sc.workers, sc.manager)  # before any work, as for the file itself
    return sc


def _closing(st: Any) -> contextlib.AbstractContextManager[Any]:
    """Close the store (when there is one) as the command ends: its connections and
    the WAL are released at once, not whenever the garbage collector gets to them."""
    return contextlib.closing(st) if st is not None else contextlib.nullcontext()


def _at_least(option: str, value: int | None, lo: int = 1) -> None:
    """A count option below ``lo`` is a ConfigError that names the option and its value."""
    if value is not None:
        check_range(option, value, lo=lo)


def _outputs(**paths: Path | None) -> None:
    """Check every output file before the work starts (one rule for all, see check_output_path)."""
    seen: dict[Path, str] = {}
    for option, path in paths.items():
        if path is None:
            continue
        p = check_output_path(path, option).resolve()
        if p in seen:
            raise ConfigError(f"{option}: {str(path)!r} is also the {seen[p]} file", field=option)
        seen[p] = option


@contextlib.contextmanager
def _atomic(path: Path, option: str) -> Iterator[TextIO]:
    """An output file written in full or not at all (the old file stays on any error)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            yield fh
        os.replace(tmp, path)
    except OSError as exc:
        raise ConfigError(f"{option}: cannot write {str(path)!r}: {exc.strerror or exc}",
                          field=option) from exc
    finally:
        tmp.unlink(missing_ok=True)


def _write(path: Path, text: str, option: str) -> Path:
    with _atomic(path, option) as fh:
        fh.write(text)
    return path


def _progress() -> CliProgress:
    """Episodes or sessions, with the success rate so far as live figures."""
    return CliProgress(err_console, stages=False)


# -- run / eval ---------------------------------------------------------------------------
@app.command()
def run(
    scenario: Annotated[str, typer.Argument(help="Scenario file, or a built-in name.")],
    episodes: Annotated[int, typer.Option("-n", "--episodes", help="Tasks to run.")] = 5,
    variant: Annotated[str, typer.Option(help="Named variant of the scenario.")] = "",
    seed: Annotated[int | None, typer.Option(help="First task seed.")] = None,
    policy: PolicyOpt = None,
    workers: Annotated[str | None, typer.Option(help="Override the worker kind.")] = None,
    llm_url: LLMUrlOpt = None,
    llm_model: LLMModelOpt = None,
    store: StoreOpt = None,
    no_store: Annotated[bool, typer.Option("--no-store", help="Record nothing.")] = False,
    metrics_port: MetricsPortOpt = None,
) -> None:
    """Run a scenario for some episodes and record everything."""
    from swarmlearn.ops._cli import session_ops
    from swarmlearn.session import run_session

    _at_least("-n/--episodes", episodes)
    sc = _scenario(scenario, variant, workers=workers, policy=policy, llm_url=llm_url,
                   llm_model=llm_model)
    st = None if no_store else open_store(store)

    def show(e: EpisodeEnded) -> None:
        console.print(
            f"episode {e.episode:>3}  seed {e.seed:<6} {e.outcome.kind.value:<8} "
            f"score {e.outcome.value:.2f}  ticks {e.ticks:<4} actions {e.actions}"
        )

    with _closing(st), session_ops("run", metrics_port=metrics_port, params=sc.to_dict(),
                                   tags={"swarmlearn.scenario": sc.label}) as ops:
        result = run_session(sc, episodes=episodes, store=ops.store(st), seed=seed,
                             on_episode=ops.on_episode(show), subscribers=ops.subscribers)
        ops.run.log_metrics(result.summary())
    s = result.summary()
    console.print(
        f"[bold]{escape(sc.label)}[/]: success {s['success_rate']:.0%} over {s['episodes']} "
        f"episodes, {s['actions']} actions in {s['wall_seconds']:.2f}s"
        + (f" — session {result.session} in {st.url}" if st else "")
    )


@app.command("eval")
def eval_cmd(
    scenario: Annotated[str, typer.Argument(help="Scenario file, or a built-in name.")],
    runs: Annotated[int | None, typer.Option(
        "-n", "--runs", help="Tasks per variant (default 30); with --learning: independent "
        "learning runs (default 5).")] = None,
    seed: Annotated[int | None, typer.Option(
        help="First task seed (default 42; with --learning 10000).")] = None,
    attempts: Annotated[int, typer.Option(help="Attempts per task (pass@k needs k ≤ this).")] = 1,
    variant: Annotated[
        list[str] | None,
        typer.Option(
            help="Variant(s) to evaluate; repeat the option. 'base' is the scenario itself."
        ),
    ] = None,
    all_variants: Annotated[
        bool, typer.Option("--all-variants", help="Base and every variant.")
    ] = False,
    policy: PolicyOpt = None,
    workers: Annotated[
        str | None, typer.Option(help="Override the worker kind (rule|llm|rl).")
    ] = None,
    llm_url: LLMUrlOpt = None,
    llm_model: LLMModelOpt = None,
    adapter: Annotated[str | None, typer.Option(
        help="LLM workers: a LoRA adapter GGUF, or a version of the scenario's (3, v3, "
             "champion; see `swarmlearn lora list`).")] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the JSON report.")
    ] = None,
    html_out: Annotated[Path | None, typer.Option("--html", help="Write the HTML report.")] = None,
    store: StoreOpt = None,
    no_store: Annotated[bool, typer.Option("--no-store", help="Record nothing.")] = False,
    learning: Annotated[bool, typer.Option(
        "--learning", help="Learning on vs off over independent runs of sessions in sequence."
    )] = False,
    sessions: Annotated[int | None, typer.Option(
        help="--learning: sessions per run (default 20).")] = None,
    episodes: Annotated[int | None, typer.Option(
        help="--learning: tasks per session (default 10).")] = None,
    strategy: Annotated[str | None, typer.Option(
        help="--learning: selection strategy (default adaptive; --policy says the same).")] = None,
    metrics_port: MetricsPortOpt = None,
) -> None:
    """Evaluate a scenario: success rate, pass@k, ticks/actions/duration with 95% CIs.

    With --learning: independent learning runs (-n, default 5), each of sessions in sequence
    with learning on (each session starts from the previous snapshot and offline model) and
    off, on the same tasks; per-run figures, intervals over the runs, the learning curves.
    """
    _outputs(**{"-o/--output": output, "--html": html_out})
    if learning:
        _eval_learning(
            scenario, variant=variant or [], all_variants=all_variants, seed=seed, runs=runs,
            attempts=attempts, policy=policy, workers=workers, llm=(llm_url, llm_model),
            sessions=sessions, episodes=episodes, strategy=strategy, output=output,
            html_out=html_out, store=store, no_store=no_store)
        return
    for option, value in (("--sessions", sessions), ("--episodes", episodes),
                          ("--strategy", strategy)):
        if value is not None:
            raise ConfigError(f"{option}: only with --learning", field=option)
    runs = 30 if runs is None else runs
    from swarmlearn.eval import evaluate
    from swarmlearn.ops.report import eval_html

    _at_least("-n/--runs", runs)
    _at_least("--attempts", attempts)
    sc = _scenario(scenario, workers=workers, policy=policy, llm_url=llm_url,
                   llm_model=llm_model)
    names = [("" if v == "base" else v) for v in (variant or [""])]
    if adapter:
        from swarmlearn.training._cli import adapter_path

        sc = sc.override(workers={"adapter": adapter_path(adapter, scenario, names[0], store)})
        check_workers(sc.workers, sc.manager)
    if all_variants:
        names = ["", *sc.variants]
    for name in names:
        if name:
            sc.with_variant(name)  # fail fast on an unknown variant
    st = None if no_store else open_store(store)
    total = runs * attempts * len(names)
    from swarmlearn.ops._cli import log_eval, session_ops

    with _closing(st), _progress() as progress, session_ops(
            "eval", metrics_port=metrics_port, params={**sc.to_dict(), "runs": runs,
                                                       "attempts": attempts},
            tags={"swarmlearn.scenario": sc.label}) as ops:
        task = progress.add(f"eval {sc.name}", total=total, info="success –")
        wins = [0, 0]

        def tick(e: EpisodeEnded) -> None:
            wins[0] += e.outcome.kind is OutcomeKind.SUCCESS
            wins[1] += 1
            progress.update(task, advance=1, info=f"success {wins[0] / wins[1]:.0%}")

        report = evaluate(
            sc, runs=runs, seed=42 if seed is None else seed, attempts=attempts, variants=names,
            store=ops.store(st), on_episode=ops.on_episode(tick), subscribers=ops.subscribers,
        )
        _print_eval(report)
        if output:
            _write(output, json.dumps(report.to_dict(), indent=2, default=str), "-o/--output")
            console.print(f"JSON report: {output}")
        if html_out:
            _write(html_out, eval_html(report).render(), "--html")
            console.print(f"HTML report: {html_out}")
        log_eval(ops.run, report, [output, html_out])


def _eval_learning(
    scenario: str, *, variant: list[str], all_variants: bool, seed: int | None,
    runs: int | None, attempts: int, policy: str | None, workers: str | None,
    llm: tuple[str | None, str | None], sessions: int | None, episodes: int | None,
    strategy: str | None, output: Path | None, html_out: Path | None, store: str | None,
    no_store: bool,
) -> None:
    """``eval --learning``: every option is checked (used or refused) before any work."""
    from swarmlearn.learn.loop import LearningRunConfig, run_proof
    from swarmlearn.learn.policies import STRATEGIES
    from swarmlearn.ops.report import learning_html

    refused = [
        (len(variant) > 1 or all_variants, "--learning takes at most one --variant"),
        (attempts != 1, "--attempts: not with --learning (each task is played once a side; "
                        "repeat with -n/--runs)"),
        (workers not in (None, "rule"), f"--workers: --learning needs rule workers, got "
                                        f"{workers!r}"),
        (any(llm), "--llm-url/--llm-model: not with --learning (it runs rule workers)"),
        (store is not None and no_store, "--store and --no-store: choose one"),
        (policy is not None and policy not in STRATEGIES,
         f"--policy: --learning needs a learning strategy ({', '.join(STRATEGIES)}), "
         f"got {policy!r}"),
        (None not in (policy, strategy) and policy != strategy,
         f"--policy {policy} and --strategy {strategy}: they name the same thing, choose one"),
    ]
    for bad, message in refused:
        if bad:
            raise ConfigError(message)
    for option, count in (("-n/--runs", runs), ("--sessions", sessions),
                          ("--episodes", episodes)):
        _at_least(option, count)
    name = variant[0] if variant else ""
    sc = load_scenario(scenario, variant="" if name == "base" else name)
    defaults = LearningRunConfig()
    n_sessions = defaults.sessions if sessions is None else sessions
    cfg = LearningRunConfig(
        sessions=n_sessions, episodes=defaults.episodes if episodes is None else episodes,
        strategy=policy or strategy or defaults.strategy, last=min(defaults.last, n_sessions),
        seed=defaults.seed if seed is None else seed, runs=defaults.runs if runs is None else runs)
    st = None if no_store else open_store(store)
    from swarmlearn._config import to_mapping
    from swarmlearn.ops._cli import learning_logger, log_files, session_ops

    with _closing(st), _progress() as progress, session_ops(
            "eval.learning", params={"learning": to_mapping(cfg), "scenario": sc.label},
            tags={"swarmlearn.scenario": sc.label}) as ops:
        task = progress.add(f"learning {sc.label}", total=2 * cfg.sessions * cfg.runs,
                            info="success –")
        log = learning_logger(ops.run)

        def tick(run: int, mode: str, i: int, point: Any) -> None:
            progress.update(task, advance=1, info=f"success {point.success_rate:.0%}",
                            description=f"learning run {run + 1}/{cfg.runs} {mode} "
                                        f"{sc.label}")
            log(run, mode, i, point)

        proof = run_proof(sc, st, cfg, progress=tick)
        _print_learning(proof)
        if output:
            _write(output, json.dumps(proof.to_dict(), indent=2, default=str), "-o/--output")
            console.print(f"JSON report: {output}")
        if html_out:
            _write(html_out, learning_html(proof).render(), "--html")
            console.print(f"HTML report: {html_out}")
        log_files(ops.run, [output, html_out])


def _print_learning(report: Any) -> None:
    """Per-run figures, intervals over the runs and the verdict (a LearningReport: one run)."""
    from swarmlearn.learn.loop import LearningProof, LearningReport, Verdict

    proof = (LearningProof(report.scenario, report.config, [report])
             if isinstance(report, LearningReport) else report)
    cfg, summary = proof.config, proof.summary()
    last = min(cfg.last, cfg.sessions)
    table = Table(title=f"learning on vs off, {escape(proof.scenario)}: {len(proof.runs)} "
                        f"independent run(s), last {last} sessions × {cfg.episodes} tasks a side",
                  title_justify="left")
    for col in ("run", "task seeds", "worker seed", "success on", "off",
                "actions per solved task on", "off", "solved only on", "off",
                "fewer actions on, tasks both solved"):
        table.add_column(col, justify="left" if col == "run" else "right")
    for f in proof.figures():
        table.add_row(str(f.run + 1), f"{f.first_seed}–{f.first_seed + cfg.block - 1}",
                      str(f.worker_seed), f"{f.on.success_rate:.0%}", f"{f.off.success_rate:.0%}",
                      f"{f.on.actions_per_solve:.1f}", f"{f.off.actions_per_solve:.1f}",
                      f"{f.on.actions_to_solve:.1f}", f"{f.off.actions_to_solve:.1f}",
                      f"{f.fewer_actions_on:.1f} ({f.paired_tasks} tasks)")
    console.print(table)
    s = summary
    table = Table(title=f"over the {s.runs} run(s): mean (95% t interval over the runs)",
                  title_justify="left")
    for col in ("", "learning on", "learning off", "difference per run"):
        table.add_column(col, justify="left" if not col else "right")
    table.add_row("success", _mean_ci(s.success_on, pct=True), _mean_ci(s.success_off, pct=True),
                  "on - off " + _mean_ci(s.success_gain, pct=True))
    table.add_row("actions per solved task", _mean_ci(s.actions_per_solve_on),
                  _mean_ci(s.actions_per_solve_off), "off - on " + _mean_ci(s.actions_saved))
    table.add_row("actions to solve, solved only", _mean_ci(s.actions_to_solve_on),
                  _mean_ci(s.actions_to_solve_off), "")
    table.add_row(f"tasks both solved ({s.paired_tasks})", "", "",
                  "off - on " + _mean_ci(s.paired))
    console.print(table)
    color = {"clearly better": "green", "clearly worse": "red"}.get(str(s.verdict), "yellow")
    said = ("no verdict on learning on vs off" if s.verdict is Verdict.NO_VERDICT
            else f"learning on is [{color}]{s.verdict}[/] than off")
    console.print(f"{said}: {s.reason} (rule: both per-run differences, success and actions "
                  "per solved task, wholly above 0; docs/learning.md)")


def _mean_ci(iv: Any, *, pct: bool = False) -> str:
    k, fmt = (100.0, ".0f") if pct else (1.0, ".1f")
    unit = "%" if pct else ""
    if iv.n < 2:
        return f"{k * iv.mean:{fmt}}{unit}"
    return f"{k * iv.mean:{fmt}}{unit} ({k * iv.low:{fmt}} to {k * iv.high:{fmt}})"


def _num(x: float, fmt: str = ".1f") -> str:
    return "–" if math.isnan(x) else f"{x:{fmt}}"


def _print_eval(report: Any) -> None:
    attempts = any(v.attempts > 1 for v in report.variants)  # pass@k only where it was measured
    headers = ["variant", "runs", "success (95% CI)", *(["pass@k"] if attempts else []),
               "actions (95% CI)", "actions to solve", "ticks", "score", "invalid"]
    rows = []
    for v in report.variants:
        a = v.actions
        rows.append([
            v.variant or "base",
            f"{v.runs}×{v.attempts}",
            f"{v.success_rate:.0%} ({v.success_ci[0]:.0%}–{v.success_ci[1]:.0%})",
            *([" ".join(f"@{k} {p:.0%}" for k, p in v.pass_at.items())] if attempts else []),
            f"{_num(a.mean)} ({_num(a.ci_low)}–{_num(a.ci_high)})",
            _num(v.actions_to_solve.mean),
            _num(v.ticks.mean),
            _num(v.score.mean, ".2f"),
            f"{v.extras.get('invalid_action_rate', 0.0):.1%}",
        ])
    print_rows(console, f"evaluation of {report.scenario}", headers, rows,
               keep={"variant", "runs", "actions to solve", "ticks", "score", "invalid"},
               right=set(headers) - {"variant"})
    llm = [v for v in report.variants if v.extras.get("llm_calls")]
    if llm:
        _print_llm(llm)


def _print_llm(variants: list[Any]) -> None:
    headers = ["variant", "valid actions", "calls", "s/call", "prompt tok/call",
               "completion tok/call", "completion tok/s",
               "replies valid/repaired/lenient/rejected", "backend errors"]
    rows = []
    for v in variants:
        x = v.extras
        replies = "/".join(str(int(x.get(f"llm_{k}", 0))) for k in
                           ("valid", "repaired", "lenient", "rejected"))
        rows.append([v.variant or "base", f"{x['valid_action_rate']:.1%}",
                     str(int(x["llm_calls"])), f"{x['latency_per_call']:.2f}",
                     f"{x['prompt_tokens_per_call']:.0f}", f"{x['completion_tokens_per_call']:.1f}",
                     f"{x.get('completion_tokens_per_s', 0.0):.1f}", replies,
                     str(int(x.get("llm_failed", 0)))])
    print_rows(console, "LLM workers", headers, rows, keep=set(headers),
               right=set(headers) - {"variant"})


# -- demo ---------------------------------------------------------------------------------
_DEMO_REPORT = Path(".swarmlearn/demo-report.html")


@app.command()
def demo(
    out: Annotated[Path | None, typer.Option(
        help="Where to write the HTML report (default: .swarmlearn/demo-report.html).")] = None,
    sessions: Annotated[int, typer.Option(help="Learning sessions.")] = 20,
    runs: Annotated[int, typer.Option("-n", "--runs", help="Tasks per variant evaluated.")] = 30,
    learning_runs: Annotated[int, typer.Option(
        help="Independent learning runs (on vs off) on the held-out variant.")] = 3,
    store: StoreOpt = None,
) -> None:
    """The main job on embedded defaults: a swarm learns the troubleshooting scenario.

    First the built-in scenario and its variants are evaluated with the scenario's own
    rule workers; then independent learning runs on the held-out variant, each sessions in
    sequence with learning on (each session starts from the last snapshot and offline
    model) and off, on the same tasks, judged over the runs. Results are printed; the HTML
    report has the plots.
    """
    from swarmlearn.eval import evaluate
    from swarmlearn.learn.loop import LearningRunConfig, run_proof
    from swarmlearn.ops.report import eval_html, learning_html

    _at_least("--sessions", sessions)
    _at_least("--learning-runs", learning_runs)
    _at_least("-n/--runs", runs)
    if out is None:  # the default folder is ours to create; a folder you name must exist
        out = _DEMO_REPORT
        out.parent.mkdir(parents=True, exist_ok=True)
    _outputs(**{"--out": out})
    sc = load_scenario("troubleshooting")
    with open_store(store) as st:
        console.print(f"[bold]swarmlearn demo[/]: scenario {sc.name!r}, store {st.url}")
        with _progress() as progress:
            task = progress.add("evaluate variants", total=runs * (1 + len(sc.variants)))
            report = evaluate(sc, runs=runs, seed=42, variants=["", *sc.variants], store=st,
                              on_episode=lambda e: progress.update(task, advance=1))
        _print_eval(report)
        held = sc.with_variant("heldout")
        cfg = LearningRunConfig(sessions=sessions, runs=learning_runs,
                                last=min(LearningRunConfig().last, sessions))
        with _progress() as progress:
            task = progress.add(f"learning {held.label}", total=2 * sessions * learning_runs,
                                info="success –")
            learned = run_proof(held, st, cfg, progress=lambda r, mode, i, p: progress.update(
                task, advance=1, description=f"learning run {r + 1}/{learning_runs} {mode}",
                info=f"success {p.success_rate:.0%}"))
        _print_learning(learned)
        page = learning_html(learned)
        page.extend(eval_html(report))
        console.print(f"HTML report: {_write(out, page.render(), '--out')}")


# -- events -------------------------------------------------------------------------------
def _event_line(e: Any) -> str:
    mark = "[green]✓[/]" if e.result.success else ("[red]✗[/]" if e.result.error else "·")
    text = e.result.error or e.result.output
    return (
        f"{e.id:>14} s{e.session} t{e.tick:<3} w{e.worker} {mark} "
        f"{e.action}({e.target}) [dim]{e.context}[/] {text[:80]}"
    )


def _query(
    session: int | None,
    action: str | None,
    outcome: str | None,
    limit: int | None,
    newest_first: bool = False,
    after: int | None = None,
) -> EventQuery:
    success = {None: None, "success": True, "failure": False}.get(outcome, None)
    if outcome not in (None, "success", "failure"):
        raise ConfigError(f"--outcome: expected success or failure, got {outcome!r}")
    return EventQuery(
        session=session,
        action=action,
        success=success,
        limit=limit,
        newest_first=newest_first,
        after_id=after,
    )


@events_app.command("tail")
def events_tail(
    limit: Annotated[int, typer.Option("-n", "--limit", help="How many recent events.")] = 20,
    session: Annotated[int | None, typer.Option(help="Only this session.")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action name.")] = None,
    outcome: Annotated[str | None, typer.Option(help="success | failure")] = None,
    follow: Annotated[
        bool, typer.Option("-f", "--follow", help="Keep printing new events.")
    ] = False,
    store: StoreOpt = None,
) -> None:
    """Show the most recent events (and follow new ones with -f)."""
    _at_least("-n/--limit", limit)
    query = _query(session, action, outcome, limit, newest_first=True)
    st = SqlStore(store, read_only=True)
    if not st.exists:
        console.print(f"no events yet: no store at {st.url}")
        return
    recent = list(st.events(query))[::-1]
    if not recent and not follow:
        console.print(f"no events yet in {st.url}")
    for e in recent:
        console.print(_event_line(e), highlight=False)
    last = recent[-1].id if recent else None
    while follow:
        time.sleep(0.5)
        for e in st.events(_query(session, action, outcome, None, after=last)):
            console.print(_event_line(e), highlight=False)
            last = e.id


@events_app.command("export")
def events_export(
    out: Annotated[Path, typer.Argument(help="JSONL file to write ('-' for stdout).")],
    session: Annotated[int | None, typer.Option(help="Only this session.")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action name.")] = None,
    outcome: Annotated[str | None, typer.Option(help="success | failure")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many.")] = None,
    store: StoreOpt = None,
) -> None:
    """Export events as JSON lines."""
    _at_least("--limit", limit)
    to_stdout = str(out) == "-"
    if not to_stdout:
        _outputs(OUT=out)
    query = _query(session, action, outcome, limit)
    st = SqlStore(store, read_only=True)
    if to_stdout:
        _write_events(st, query, sys.stdout)
        return
    with _atomic(out, "OUT") as fh:
        n = _write_events(st, query, fh)
    console.print(f"{n} events → {out}")


def _write_events(st: SqlStore, query: EventQuery, stream: TextIO) -> int:
    n = 0
    for e in st.events(query):
        row = e._asdict()
        row["result"] = e.result._asdict()
        row["args"] = dict(e.args)
        stream.write(json.dumps(row) + "\n")
        n += 1
    return n


# -- sessions -----------------------------------------------------------------------------
@app.command()
def sessions(
    scenario: Annotated[str | None, typer.Option(help="Only this scenario.")] = None,
    limit: Annotated[int, typer.Option("-n", "--limit", help="How many (newest first).")] = 20,
    show: Annotated[int | None, typer.Option(help="Show one session's episodes.")] = None,
    store: StoreOpt = None,
) -> None:
    """List recorded sessions, or show one session's episodes."""
    _at_least("-n/--limit", limit)
    st = SqlStore(store, read_only=True)
    if show is not None:
        _show_session(st, show)  # with no store, an error that says so
        return
    if not st.exists:
        console.print(f"no sessions yet: no store at {st.url}")
        return
    found = st.sessions(scenario=scenario, limit=limit)
    if not found:
        console.print(f"no sessions yet in {st.url}" + (f" of {scenario}" if scenario else ""))
        return
    rows = [[str(s.id), s.scenario + (f"[{s.variant}]" if s.variant else ""), s.kind, s.group,
             s.status, _when(s.started), str(s.summary.get("episodes", "–")),
             f"{s.summary['success_rate']:.0%}" if "success_rate" in s.summary else "–"]
            for s in found]
    narrow = [[r[0], r[1].replace("[", "\n[", 1), *r[2:]] for r in rows]  # variant below
    headers = ["id", "scenario", "kind", "group", "status", "started", "tasks", "success"]
    print_rows(console, f"sessions in {st.url}", headers, rows, keep=set(headers) - {"started"},
               right={"id", "tasks", "success"}, narrow_rows=narrow)


def _when(t: float) -> str:
    """ls-style: month, day and time this year, the date before that."""
    when = time.localtime(t)
    fmt = "%m-%d %H:%M" if when.tm_year == time.localtime().tm_year else "%Y-%m-%d"
    return time.strftime(fmt, when)


def _show_session(st: SqlStore, sid: int) -> None:
    s = st.session(sid)
    console.print(
        f"session {s.id}: {s.scenario} {s.variant} ({s.kind}, {s.status}) "
        f"— {st.count_events(sid)} events", markup=False, highlight=False,
    )
    headers = ["episode", "seed", "outcome", "score", "ticks", "actions", "seconds"]
    rows = [[str(e.episode), str(e.seed), e.outcome.kind.value, f"{e.outcome.value:.2f}",
             str(e.ticks), str(e.actions), f"{e.duration:.3f}"]
            for e in st.episodes(session=sid)]
    print_rows(console, None, headers, rows, keep=set(headers), right=set(headers))


# -- scenarios ----------------------------------------------------------------------------
@scenarios_app.command("list")
def scenarios_list(
    folder: Annotated[Path | None, typer.Argument(help="A folder of scenario files.")] = None,
) -> None:
    """List built-in scenarios (or those in a folder) with their variants."""
    base = folder or Path(__file__).resolve().parent / "scenarios"
    if not base.is_dir():
        raise ConfigError(f"FOLDER: no such directory {str(base)!r}", field="FOLDER")
    found = [load_scenario(path) for path in sorted(base.glob("*.toml"))]
    if not found:
        console.print(f"no scenario files (*.toml) in {base}", markup=False)
        return
    envs = any(sc.env_kind != sc.name for sc in found)  # the column only when it says more
    headers = ["name", *(["environment"] if envs else []), "workers", "variants", "description"]
    rows = [[sc.name, *([sc.env_kind] if envs else []), f"{sc.workers.count}× {sc.workers.kind}",
             ", ".join(sc.variants) or "–", sc.description] for sc in found]
    print_rows(console, f"scenarios in {base}", headers, rows,
               keep={"name", "environment", "workers"})


@scenarios_app.command("validate")
def scenarios_validate(
    files: Annotated[list[str], typer.Argument(help="Scenario files to check.")],
) -> None:
    """Validate scenario files (and all their variants)."""
    failed = 0
    for f in files:
        try:
            sc = load_scenario(f)
            console.print(
                f"[green]ok[/] {f}: {sc.name} ({sc.env_kind}, {len(sc.variants)} variants)"
            )
        except SwarmlearnError as exc:
            err_console.print(f"[red]error[/]: {exc}", highlight=False)
            failed += 1
    if failed:
        raise typer.Exit(3)


def _tidy_help(command: Any) -> None:
    """Help as a reader expects it, for ``command`` and every command under it.

    Flags and counters take no value, so they show no ``<bool>``/``<int>`` type
    (typer shows one for every option); a docstring's paragraphs are reflowed to
    the terminal instead of keeping the source's line breaks (indented or
    bulleted paragraphs, and ``\b`` blocks, stay as written).
    """
    help_option = command.get_help_option(command.context_class(command))
    for param in [*command.params, help_option]:
        takes_no_value = getattr(param, "is_flag", False) or getattr(param, "count", False)
        if param is not None and takes_no_value and param.metavar is None:
            param.metavar = ""
    if command.help:
        command.help = "\n\n".join(_reflow(p) for p in inspect.cleandoc(command.help).split("\n\n"))
    for sub in getattr(command, "commands", {}).values():
        _tidy_help(sub)


def _reflow(paragraph: str) -> str:
    lines = paragraph.split("\n")
    if paragraph.startswith("\b") or any(line[:1] in (" ", "-", "*") for line in lines):
        return paragraph
    return " ".join(lines)


@functools.cache
def _command() -> Any:
    """The click command of the app, built once (typer takes ~0.1 s to build it)."""
    command = typer.main.get_command(app)
    _tidy_help(command)
    return command


def _usage_error() -> type[Exception]:
    """typer >= 0.22 raises its own TyperException; the typer < 0.21 that flwr pins, click's."""
    found: type[Exception] | None = getattr(typer, "TyperException", None)
    if found is None:
        import click

        found = click.ClickException
    return found


def main() -> None:
    """Entry point: run the app; any error becomes one line and an exit code.

    A usage error (a missing argument, a value of the wrong type) exits 2; a
    swarmlearn error exits with the code of its class.
    """
    bad = next((i for i, a in enumerate(sys.argv[1:], 1) if "\x00" in a), None)
    if bad is not None:  # click's path checks raise ValueError on a NUL (click < 8.3)
        _error(f"argument {bad} ({sys.argv[bad]!r}) contains a NUL byte (see `swarmlearn "
               f"--help`)")
        sys.exit(2)
    try:
        code = _command().main(prog_name="swarmlearn", standalone_mode=False)
    except (KeyboardInterrupt, typer.Abort):
        err_console.print("interrupted")
        sys.exit(130)
    except _usage_error() as exc:  # click's usage errors
        if type(exc).__name__ != "NoArgsIsHelpError":  # that one has printed the help
            ctx = getattr(exc, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            fmt = getattr(exc, "format_message", None)
            text = str(fmt()) if callable(fmt) else str(exc)
            _error(" ".join(text.split()) + hint)
        sys.exit(getattr(exc, "exit_code", 2))
    except SwarmlearnError as exc:
        _error(str(exc))
        sys.exit(exit_code_for(exc))
    sys.exit(code if isinstance(code, int) else 0)


def _error(message: str) -> None:
    err_console.print(f"[red]error[/]: {escape(message)}", highlight=False, soft_wrap=True)


if __name__ == "__main__":
    main()
