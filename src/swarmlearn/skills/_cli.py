"""``swarmlearn skills …``: optimize a skill document, resume, show and diff a run.

    swarmlearn skills optimize CONFIG.toml --run-dir runs/qa   # starts, or resumes the run
    swarmlearn skills resume runs/qa --config CONFIG.toml
    swarmlearn skills show runs/qa [--which best|current|initial]
    swarmlearn skills diff runs/qa [--from initial] [--to best]

CONFIG.toml::

    initial_skill = ""             # optional
    [qa]                           # QAConfig: path, val_fraction, test_fraction, seed
    path = "qa.jsonl"
    [target]                       # LLMClientConfig of the target (any OpenAI-compatible URL)
    base_url = "http://127.0.0.1:8080"
    [optimizer]                    # optional; the target's endpoint when absent
    base_url = "http://gpu-box:8080"
    [optimize]                     # SkillOptConfig
    epochs = 2
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
from swarmlearn.skills._checkpoint import read_state
from swarmlearn.skills._optimizer import SkillOptConfig, SkillOptimizer, SkillRun
from swarmlearn.skills._qa import QAConfig, QAEnv

__all__ = ["skills_app"]

skills_app = typer.Typer(help="Optimize the skill document LLM workers read.",
                         no_args_is_help=True)
_out = Console()


def _load(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})", field="config") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not TOML ({exc})", field="config") from exc
    unknown = set(data) - {"initial_skill", "qa", "target", "optimizer", "optimize"}
    if unknown:
        raise ConfigError(f"{path}: unknown keys {sorted(unknown)}", field=sorted(unknown)[0])
    if "qa" not in data or "target" not in data:
        raise ConfigError(f"{path}: needs [qa] and [target] tables", field="qa")
    return data


def _progress(run: SkillRun) -> None:
    h = run.history[-1]
    _out.print(f"step {run.step}/{run.total_steps}: {h['action']}  "
               f"rollout {h['rollout']['solved']}/{h['rollout']['tasks']}  "
               f"edits {h['proposed']}→{h['merged']}→{len(h['apply'])}  "
               f"val {h.get('val_score', float('nan')):.3f}  calls {run.usage.calls}  "
               f"tokens {run.usage.tokens}  failures {len(h['failures'])}")


def _optimize(config: Path, run_dir: Path) -> None:
    data = _load(config)
    qa = from_mapping(QAConfig, data["qa"], where="qa")
    env = QAEnv.from_config(qa)
    target = HttpLLMClient(from_mapping(LLMClientConfig, data["target"], where="target"))
    optimizer = HttpLLMClient(from_mapping(LLMClientConfig, data.get("optimizer",
                                                                     data["target"]),
                                           where="optimizer"))
    cfg = SkillOptConfig.from_mapping(data.get("optimize", {}))
    opt = SkillOptimizer(env, target=target, optimizer=optimizer, run_dir=run_dir, config=cfg,
                         initial_skill=str(data.get("initial_skill", "")), on_step=_progress)
    run = opt.train()
    _out.print(f"status {run.status}; best from step {run.best_step}; calls "
               f"{run.usage.calls}, tokens {run.usage.tokens}")
    if run.test.get("best"):
        _out.print(f"test exact {run.test['initial']['exact']:.3f} → "
                   f"{run.test['best']['exact']:.3f} on {run.test['tasks']} tasks "
                   f"(p={run.test['paired']['p_value']:.3g})")


@skills_app.command("optimize")
def optimize(config: Annotated[Path, typer.Argument(help="the run's TOML config")],
             run_dir: Annotated[Path, typer.Option(help="where state.json goes")] =
             Path("skill-run")) -> None:
    """Optimize (or resume, if RUN_DIR has a run) a skill document."""
    _optimize(config, run_dir)


@skills_app.command("resume")
def resume(run_dir: Annotated[Path, typer.Argument(help="a run directory")],
           config: Annotated[Path, typer.Option(help="the run's TOML config")]) -> None:
    """Continue a run where its last checkpoint left it."""
    read_state(run_dir)  # a clear error if there is no run
    _optimize(config, run_dir)


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
