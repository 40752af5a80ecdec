"""``swarmlearn fed``: federated learning across swarm nodes, with differential privacy.

    swarmlearn fed simulate examples/fed/ten_nodes.toml [--epsilon off,8,1] [-o report.json]
    swarmlearn fed server CONFIG [--port 9092]       # SuperLink + our ServerApp, on loopback
    swarmlearn fed node CONFIG --index 0 [--superlink 127.0.0.1:9092]   # one SuperNode
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer

from swarmlearn._config import check_output_path, check_range
from swarmlearn.errors import ConfigError
from swarmlearn.ops.progress import CliProgress
from swarmlearn.ops.report import terminal_console

__all__ = ["fed_app", "parse_epsilons"]

fed_app = typer.Typer(name="fed", no_args_is_help=True,
                      help="Federated learning across swarm nodes (Flower), with DP accounting.")
console = terminal_console(stderr=True)


def parse_epsilons(text: str) -> list[float | None]:
    """``off,8,1`` → [None, 8.0, 1.0] (None: no DP)."""
    out: list[float | None] = []
    for part in text.split(","):
        p = part.strip().lower()
        if p in ("off", "none", "inf"):
            out.append(None)
            continue
        try:
            v = float(p)
        except ValueError:
            raise ConfigError(f"--epsilon: expected numbers or 'off', got {part!r}",
                              field="--epsilon") from None
        if not (v > 0 and math.isfinite(v)):
            raise ConfigError(f"--epsilon: expected > 0, got {part!r}", field="--epsilon")
        out.append(v)
    return out


def _fmt(r: tuple[float, float, float]) -> str:
    return f"{r[0]:.3f} [{r[1]:.3f}, {r[2]:.3f}]"


@fed_app.command("simulate")
def simulate_cmd(
    config: Annotated[Path, typer.Argument(help="The federation TOML.")],
    epsilon: Annotated[str | None, typer.Option(
        help="Comma-separated settings to run, each 'off' or a target ε of central DP "
             "(e.g. off,8,1); default: the config's [dp].")] = None,
    backend: Annotated[str | None, typer.Option(
        help="inprocess (default) or ray (Flower's simulation engine).")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output",
                                                help="Write the JSON report.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a PNG of success vs ε.")] = None,
    unit: Annotated[str | None, typer.Option(
        help="DP unit for the --epsilon settings: node (default) or episode.")] = None,
    clip: Annotated[float | None, typer.Option(
        help="DP clip C for the --epsilon settings (default: the config's dp.clip).")] = None,
    repeats: Annotated[int, typer.Option(
        help="Independent repetitions of each setting (federation seed, seed+1, …: other "
             "private tasks and other noise).")] = 1,
) -> None:
    """Simulate every node of CONFIG on this machine and report utility vs privacy."""
    from swarmlearn.fed._config import Backend, load_config
    from swarmlearn.fed._dp import DpConfig, DpMode, DpUnit

    cfg = load_config(config)
    settings = parse_epsilons(epsilon) if epsilon is not None else [cfg.dp]
    try:
        kind = Backend(backend) if backend is not None else None
    except ValueError:
        raise ConfigError(f"--backend: expected inprocess or ray, got {backend!r}",
                          field="--backend") from None
    check_range("--repeats", repeats, lo=1)
    if clip is not None:
        check_range("--clip", clip, lo=0.0, lo_open=True)
    try:
        dp_unit = DpUnit(unit) if unit is not None else cfg.dp.unit
    except ValueError:
        raise ConfigError(f"--unit: expected node or episode, got {unit!r}",
                          field="--unit") from None
    dp_clip = clip if clip is not None else cfg.dp.clip
    for path, name in ((output, "--output"), (plot, "--plot")):
        if path is not None:
            check_output_path(path, name)
    runs = []
    for s in settings:
        if isinstance(s, DpConfig):
            dp = s
        elif s is None:
            dp = DpConfig(mode=DpMode.OFF, clip=dp_clip)
        else:
            dp = DpConfig(mode=DpMode.CENTRAL, unit=dp_unit, clip=dp_clip, target_epsilon=s,
                          delta=cfg.dp.delta)
        reps = [_simulate_one(cfg.with_dp(dp).with_seed(cfg.federation.seed + r), kind)
                for r in range(repeats)]
        runs.append(_combine(reps))
    _print_table(runs)
    if output is not None:
        output.write_text(json.dumps({"format_version": 1, "kind": "federation-report",
                                      "runs": runs}, indent=1, default=float), encoding="utf-8")
        console.print(f"wrote {output}")
    if plot is not None:
        _plot(runs, plot)
        console.print(f"wrote {plot}")


def _simulate_one(cfg: Any, kind: Any) -> dict[str, Any]:
    from swarmlearn.fed._config import Payload
    from swarmlearn.fed._report import summarize_utility
    from swarmlearn.fed._run import simulate

    label = ("no DP" if not cfg.dp.enabled else
             f"central DP per {cfg.dp.unit}, target ε = {cfg.dp.target_epsilon}")
    with CliProgress(console, unit="rounds", rate=False) as bar:
        task = bar.add(label, total=cfg.federation.rounds)

        def tick(rec: Any) -> None:
            eps = "" if rec.epsilon is None else f"  ε = {rec.epsilon:.2f}"
            fails = f"  {len(rec.failures)} left out" if rec.failures else ""
            console.print(f"{label}: round {rec.round}: {len(rec.answered)} nodes{fails}{eps}",
                          markup=False, highlight=False)
            bar.update(task, advance=1)

        result = simulate(cfg, backend=kind, on_round=tick)
    if result.stopped != "completed":
        console.print(f"{label}: stopped: {result.stopped}")
    if cfg.federation.payload is Payload.DQN:
        utility = {side: _interval([m[f"{side}.return"] for m in result.evaluation.values()])
                   for side in ("fed", "local")}
    else:
        utility = summarize_utility(result.evaluation, cfg.evaluation.scenarios,
                                    result.epsilon).to_dict()
    return {"setting": label, "target_epsilon": cfg.dp.target_epsilon,
            "result": result.to_dict(), "utility": utility}


def _interval(values: list[float]) -> tuple[float, float, float]:
    from swarmlearn._stats import summarize

    s = summarize(values)
    return (s.mean, s.ci_low, s.ci_high)


def _combine(reps: list[dict[str, Any]]) -> dict[str, Any]:
    """One setting over its repetitions: pooled rates (Wilson), the gain's t interval over
    the repetitions (each one's own interval is over its nodes, which share one noise
    draw), and how many (repetition, node) pairs gained."""
    from swarmlearn._stats import summarize, wilson

    if len(reps) == 1 or "fed" in reps[0]["utility"]:
        return reps[0] if len(reps) == 1 else {**reps[0], "runs": reps}
    utility: dict[str, Any] = {"nodes": [n for r in reps for n in r["utility"]["nodes"]]}
    for side in ("fed_unseen", "local_unseen", "fed_seen", "local_seen"):
        k = sum(round(r["utility"][side][0] * r["utility"]["episodes"][side]) for r in reps)
        n = sum(r["utility"]["episodes"][side] for r in reps)
        lo, hi = wilson(k, n)
        utility[side] = (k / n if n else math.nan, lo, hi)
    s = summarize([r["utility"]["gain_unseen"][0] for r in reps])
    utility["gain_unseen"] = (s.mean, s.ci_low, s.ci_high)
    utility["nodes_better"] = sum(r["utility"]["nodes_better"] for r in reps)
    eps = [r["result"]["epsilon"] for r in reps]
    return {"setting": reps[0]["setting"], "target_epsilon": reps[0]["target_epsilon"],
            "repeats": len(reps), "result": {**reps[0]["result"], "epsilon": eps[0]},
            "utility": utility, "runs": reps}


def _print_table(runs: list[dict[str, Any]]) -> None:
    from swarmlearn.ops.report import print_rows, terminal_console

    if runs and "fed" in runs[0]["utility"]:  # DQN policies: greedy returns
        print_rows(terminal_console(), "greedy return on held-out episodes (t 95% over nodes)",
                   ["setting", "federated", "local-only"],
                   [[r["setting"], _fmt(r["utility"]["fed"]), _fmt(r["utility"]["local"])]
                    for r in runs])
        return
    rows = []
    for r in runs:
        u = r["utility"]
        eps = r["result"]["epsilon"]
        z = r["result"]["noise_multiplier"]
        rows.append([r["setting"], "∞" if eps is None else f"{eps:.2f}",
                     "-" if z is None else f"{z:.2f}", _fmt(u["fed_unseen"]),
                     _fmt(u["local_unseen"]), _fmt(u["gain_unseen"]),
                     f"{u['nodes_better']}/{len(u['nodes'])}", _fmt(u["fed_seen"]),
                     _fmt(u["local_seen"])])
    print_rows(terminal_console(), "success on held-out tasks (95% intervals)",
               ["setting", "ε spent", "z", "fed, unseen", "local, unseen", "gain, unseen",
                "nodes better", "fed, seen", "local, seen"], rows,
               keep=["ε spent", "z", "nodes better"])


def _plot(runs: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [("no DP" if r["result"]["epsilon"] is None else f"ε={r['result']['epsilon']:.1f}")
              for r in runs]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    x = range(len(runs))
    for key, name, dx in (("fed_unseen", "federated, unseen", -0.1),
                          ("local_unseen", "local-only, unseen", 0.1)):
        m = [r["utility"][key][0] for r in runs]
        lo = [m[i] - r["utility"][key][1] for i, r in enumerate(runs)]
        hi = [r["utility"][key][2] - m[i] for i, r in enumerate(runs)]
        ax.errorbar([i + dx for i in x], m, yerr=[lo, hi], fmt="o", capsize=4, label=name)
    ax.set_xticks(list(x), labels)
    ax.set_ylabel("success rate (held-out tasks)")
    ax.set_ylim(0, 1.05)
    ax.legend()
    ax.set_title("Swarm success on scenarios a node never saw")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@fed_app.command("server")
def server_cmd(
    config: Annotated[Path, typer.Argument(help="The federation TOML.")],
    port: Annotated[int, typer.Option(help="The SuperLink's HTTP port.")] = 9091,
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] =
    "127.0.0.1",
    output: Annotated[Path, typer.Option("-o", "--output", help="The JSON report.")] =
    Path("federation.json"),
    workdir: Annotated[Path, typer.Option(help="Flower's files and logs.")] =
    Path(".swarmlearn/fed"),
) -> None:
    """Start a SuperLink, run our ServerApp over the nodes that connect, write the report."""
    from swarmlearn.fed._config import load_config
    from swarmlearn.fed._deploy import run_app, start_superlink, stopping

    cfg = load_config(config)
    check_output_path(output, "--output")
    workdir.mkdir(parents=True, exist_ok=True)
    console.print(f"SuperLink on {host}:{port}; start the {len(cfg.nodes)} nodes with "
                  f"`swarmlearn fed node {config} --index I --superlink {host}:{port}`")
    _exit_on_sigterm()
    with stopping([start_superlink(workdir, port=port, host=host)]):
        done = run_app(workdir, config, output)
        if done.returncode != 0 or not output.exists():
            raise ConfigError(f"the Flower run failed (exit {done.returncode}): "
                              f"{done.stderr.strip()[-300:] or done.stdout.strip()[-300:]}")
    data = json.loads(output.read_text(encoding="utf-8"))
    console.print(f"{data['stopped']}: {len(data['rounds'])} rounds, ε = {data['epsilon']}; "
                  f"wrote {output}")


@fed_app.command("node")
def node_cmd(
    config: Annotated[Path, typer.Argument(help="The federation TOML (this site's copy).")],
    index: Annotated[int, typer.Option(help="This node's index in [[nodes]].")],
    superlink: Annotated[str, typer.Option(help="host:port of the SuperLink.")] =
    "127.0.0.1:9091",
    port: Annotated[int | None, typer.Option(
        help="This SuperNode's local port (default 9100 + index).")] = None,
    workdir: Annotated[Path, typer.Option(help="Flower's files and logs.")] =
    Path(".swarmlearn/fed"),
) -> None:
    """Run one SuperNode (our ClientApp) until it is stopped (Ctrl-C)."""
    from swarmlearn.fed._config import load_config
    from swarmlearn.fed._deploy import start_supernode

    cfg = load_config(config)
    cfg.node(index)
    workdir.mkdir(parents=True, exist_ok=True)
    proc = start_supernode(workdir, index=index, nodes=len(cfg.nodes), superlink=superlink,
                           port=port if port is not None else 9100 + index,
                           fed_config=config.resolve())
    console.print(f"node {index} ({cfg.node(index).name}) → {superlink}; log {proc.log}")
    _exit_on_sigterm()
    try:
        proc.proc.wait()
    finally:
        proc.stop()


def _exit_on_sigterm() -> None:
    """SIGTERM ends the command through its ``finally`` (which stops the Flower
    processes it started) instead of killing it and orphaning them."""
    import signal
    import sys

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
