"""``swarmlearn skills …``: optimize a skill document, resume, show, diff and report a run.

    swarmlearn skills train CONFIG.toml --run-dir runs/qa     # starts, or resumes the run
    swarmlearn skills resume runs/qa --config CONFIG.toml
    swarmlearn skills show runs/qa [--which best|current|initial]
    swarmlearn skills diff runs/qa [--from initial] [--to best]
    swarmlearn skills report runs/qa [--out runs/qa/report.html]
    swarmlearn skills publish runs/qa --scope troubleshooting [--promote] [--store URL]

``optimize`` is the old name of ``train``. CONFIG.toml::

    initial_skill = ""             # optional
    [qa]                           # QAConfig: path, val_fraction, test_fraction, seed …
    path = "qa.jsonl"
    # or [swarm]                   # SwarmTasksConfig: the LLM workers' skill on a scenario
    # scenario = "troubleshooting"
    [target]                       # LLMClientConfig of the target (any OpenAI-compatible URL)
    base_url = "http://127.0.0.1:8080"
    [optimizer]                    # optional; the target's endpoint when absent
    base_url = "http://gpu-box:8080"
    [optimize]                     # SkillOptConfig
    epochs = 2

The whole config is checked (tables, fields, the JSONL file line by line)
before the first call. ``train`` shows progress per stage and writes
``report.html`` (accuracy per step plotted) into the run directory at the end.
"""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from swarmlearn._config import from_mapping
from swarmlearn.errors import ConfigError
from swarmlearn.llm import HttpLLMClient, LLMClientConfig
from swarmlearn.ops.progress import CliProgress
from swarmlearn.ops.report import terminal_console
from swarmlearn.skills._checkpoint import read_state
from swarmlearn.skills._env import SkillEnv
from swarmlearn.skills._optimizer import SkillOptConfig, SkillOptimizer, SkillRun
from swarmlearn.skills._qa import QAConfig, QAEnv

__all__ = ["skills_app"]

skills_app = typer.Typer(help="Optimize the skill document LLM workers read.",
                         no_args_is_help=True)
_out = Console()
_TABLES = {"initial_skill", "qa", "swarm", "target", "optimizer", "optimize"}


def _load(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})", field="config") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not TOML ({exc})", field="config") from exc
    unknown = set(data) - _TABLES
    if unknown:
        raise ConfigError(f"{path}: unknown keys {sorted(unknown)} (known: "
                          f"{', '.join(sorted(_TABLES))})", field=sorted(unknown)[0])
    if ("qa" in data) == ("swarm" in data) or "target" not in data:
        raise ConfigError(f"{path}: needs [target] and one of [qa] or [swarm]", field="qa")
    for key in _TABLES - {"initial_skill"}:
        if key in data and not isinstance(data[key], dict):
            raise ConfigError(f"{path}: {key} must be a table ([{key}])", field=key)
    if not isinstance(data.get("initial_skill", ""), str):
        raise ConfigError(f"{path}: initial_skill must be a string", field="initial_skill")
    return data


def _env(data: dict[str, Any]) -> SkillEnv:
    if "qa" in data:
        return QAEnv.from_config(from_mapping(QAConfig, data["qa"], where="qa"))
    from swarmlearn.skills._swarm import SwarmSkillEnv, SwarmTasksConfig

    return SwarmSkillEnv.from_config(SwarmTasksConfig.from_mapping(data["swarm"]))


class _Progress:
    """A bar over the steps on stderr; its text says the stage in progress, calls and
    tokens. Each finished step is a line on stdout."""

    def __init__(self, progress: CliProgress) -> None:
        self.progress = progress
        self.task = progress.add("skills train", info="starting")
        self.opt: SkillOptimizer | None = None

    def stage(self, step: int, stage: str) -> None:
        assert self.opt is not None
        run = self.opt.run
        self.progress.update(self.task, total=run.total_steps, completed=run.step,
                             info=f"step {max(step, 1)} · {stage} · calls "
                             f"{run.usage.calls} · tokens {run.usage.tokens}")

    def step(self, run: SkillRun) -> None:
        h = run.history[-1]
        self.progress.update(self.task, completed=run.step)
        _out.print(
            f"step {run.step}/{run.total_steps}: {h['action']}  rollout "
            f"{h['rollout']['solved']}/{h['rollout']['tasks']}  edits {h['proposed']}→"
            f"{h['merged']}→{len(h['apply'])}  val tasks {h.get('val_tasks', '-')}  calls "
            f"{run.usage.calls}  tokens {run.usage.tokens}  failures {len(h['failures'])}",
            highlight=False)


def _train(config: Path, run_dir: Path) -> None:
    data = _load(config)
    env = _env(data)
    target = HttpLLMClient(from_mapping(LLMClientConfig, data["target"], where="target"))
    optimizer = HttpLLMClient(from_mapping(LLMClientConfig, data.get("optimizer",
                                                                     data["target"]),
                                           where="optimizer"))
    cfg = SkillOptConfig.from_mapping(data.get("optimize", {}))
    from swarmlearn.ops.hooks import finish_skill, skill_logger, tracked_command
    from swarmlearn.skills._report import write_report

    with tracked_command("skills.train", params={"optimize": data.get("optimize", {}),
                                                 "env": env.name}) as tracked:
        log = skill_logger(tracked)

        def on_step(r: SkillRun) -> None:
            ui.step(r)
            log(r)

        # a stored run that cannot resume is one error line, before any progress shows
        opt = SkillOptimizer(env, target=target, optimizer=optimizer, run_dir=run_dir,
                             config=cfg, initial_skill=str(data.get("initial_skill", "")),
                             on_step=on_step, on_stage=lambda step, stage: ui.stage(step, stage))
        with CliProgress(terminal_console(stderr=True), unit="steps") as bar:
            ui = _Progress(bar)
            ui.opt = opt
            run = opt.train()
        page = write_report(run, run_dir / "report.html", title=f"Skill run: {env.name}")
        finish_skill(tracked, run, run_dir, page)
    _out.print(f"status {run.status}; best from step {run.best_step}; calls "
               f"{run.usage.calls}, tokens {run.usage.tokens}; report {page}")
    if run.test.get("best"):
        _out.print(f"test exact {run.test['initial']['exact']:.3f} → "
                   f"{run.test['best']['exact']:.3f} on {run.test['tasks']} tasks "
                   f"(p={run.test['paired']['p_value']:.3g})")


_CONFIG = Annotated[Path, typer.Argument(help="the run's TOML config")]
_RUN_DIR = Annotated[Path, typer.Option(help="where state.json goes")]


@skills_app.command("train")
def train(config: _CONFIG, run_dir: _RUN_DIR = Path("skill-run")) -> None:
    """Optimize (or resume, if RUN_DIR has a run) a skill document."""
    _train(config, run_dir)


@skills_app.command("optimize", hidden=True)
def optimize(config: _CONFIG, run_dir: _RUN_DIR = Path("skill-run")) -> None:
    """The old name of ``train``."""
    _train(config, run_dir)


@skills_app.command("resume")
def resume(run_dir: Annotated[Path, typer.Argument(help="a run directory")],
           config: Annotated[Path, typer.Option(help="the run's TOML config")]) -> None:
    """Continue a run where its last checkpoint left it."""
    read_state(run_dir)  # a clear error if there is no run
    _train(config, run_dir)


@skills_app.command("report")
def report(run_dir: Annotated[Path, typer.Argument(help="a run directory")],
           out: Annotated[Path | None, typer.Option(help="the HTML file (default: "
                                                     "RUN_DIR/report.html)")] = None) -> None:
    """Write a run's HTML report: accuracy per step, calls, steps, skills, memory."""
    from swarmlearn.skills._report import write_report

    run = SkillRun.from_dict(read_state(run_dir))
    _out.print(str(write_report(run, out or run_dir / "report.html",
                                title=f"Skill run: {run_dir}")))


@skills_app.command("publish")
def publish(run_dir: Annotated[Path, typer.Argument(help="a finished run directory")],
            scope: Annotated[str, typer.Option(help="the lineage: the scenario label the "
                                                    "LLM workers run (e.g. troubleshooting)")],
            promote: Annotated[bool, typer.Option(help="make it the champion now (a "
                                                       "person's decision, logged)")] = False,
            store: Annotated[str | None, typer.Option(help="store URL or path")] = None) -> None:
    """Register a run's best skill as a version of kind ``skill`` (lineage: the run's
    splits, config, calls, tokens and test); a champion reaches the LLM workers of
    sessions of that scenario at their next episode."""
    from swarmlearn._config import to_mapping
    from swarmlearn.lifecycle import Lifecycle, Lineage, Produced
    from swarmlearn.skills._kind import FORMAT_VERSION, SKILL_KIND, encode_skill
    from swarmlearn.store import open_store

    run = SkillRun.from_dict(read_state(run_dir))
    if run.status != "done":
        raise ConfigError(f"{run_dir}: the run is {run.status}, not done; resume it first",
                          field="run_dir")
    with open_store(store) as st:
        life = Lifecycle(st, SKILL_KIND, scope)
        champion = life.champion(payload=False)
        version = life.register(Produced(
            payload=encode_skill(run.best, run), format_version=FORMAT_VERSION,
            summary={"chars": len(run.best), "best_step": run.best_step, "run_dir": str(run_dir)},
            lineage=Lineage(parent=champion.id if champion else None,
                            inputs={"run_dir": str(run_dir), **run.splits},
                            config=to_mapping(run.config),
                            metrics={"calls": run.usage.calls, "tokens": run.usage.tokens,
                                     "test": run.test})), reason=f"published from {run_dir}")
        if promote:
            version = life.promote(version, reason=f"promoted by hand from {run_dir}")
        _out.print(f"{version.label}: {version.state}")


def _doc(run: SkillRun, which: str) -> str:
    docs = {"best": run.best, "current": run.current, "initial": run.initial}
    if which not in docs:
        raise ConfigError(f"--which {which!r}: expected best, current or initial", field="which")
    return docs[which]


@skills_app.command("show")
def show(run_dir: Annotated[Path, typer.Argument(help="a run directory")],
         which: Annotated[str, typer.Option(help="best | current | initial")] = "best") -> None:
    """Print a run's status, its steps and one of its skill documents."""
    run = SkillRun.from_dict(read_state(run_dir))
    _out.print(f"status {run.status}, step {run.step}/{run.total_steps}, best from step "
               f"{run.best_step}, calls {run.usage.calls}, tokens {run.usage.tokens}, "
               f"rejected edits remembered {len(run.rejected)}")
    for h in run.history:
        kinds = sorted({f["kind"] for f in h["failures"]})
        _out.print(f"  step {h['step']}: {h['action']} val={h.get('val_score', '-')} "
                   f"budget={h['budget']} failures={','.join(kinds) or '-'}")
    _out.print(f"--- {which} skill ---")
    _out.print(escape(_doc(run, which)) or "(empty)", highlight=False)


@skills_app.command("diff")
def diff(run_dir: Annotated[Path, typer.Argument(help="a run directory")],
         from_: Annotated[str, typer.Option("--from")] = "initial",
         to: Annotated[str, typer.Option("--to")] = "best") -> None:
    """A unified diff between two of a run's skill documents."""
    run = SkillRun.from_dict(read_state(run_dir))
    a, b = _doc(run, from_), _doc(run, to)
    lines = difflib.unified_diff(a.splitlines(), b.splitlines(), from_, to, lineterm="")
    _out.print(escape("\n".join(lines)) or "(no difference)", highlight=False)
