"""``swarmlearn learn analyze``: the offline analyzer from the command line."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from swarmlearn._config import check_range
from swarmlearn.core.events import ActionEvent, EpisodeEnded
from swarmlearn.core.scenario import load_scenario
from swarmlearn.errors import ConfigError
from swarmlearn.learn.offline import ARTIFACT_KIND, AnalyzerConfig, OfflineAnalyzer, OfflineModel
from swarmlearn.learn.stats import LearnedStats
from swarmlearn.lifecycle import Lifecycle
from swarmlearn.ops.progress import CliProgress
from swarmlearn.ops.report import print_rows, terminal_console
from swarmlearn.store import EventQuery, SqlStore, Store, open_store

__all__ = ["learn_app", "stats_from_store"]

learn_app = typer.Typer(no_args_is_help=True, help="Offline learning across recorded sessions.")
console = terminal_console()


def stats_from_store(store: Store, sessions: list[int]) -> LearnedStats:
    """Rebuild the learned statistics by replaying recorded sessions through them."""
    stats = LearnedStats()
    for sid in sorted(sessions):
        ends = {e.last_event: e for e in store.episodes(session=sid)}
        batch: list[ActionEvent | EpisodeEnded] = []
        for e in store.events(EventQuery(session=sid)):
            batch.append(e)
            if e.id in ends:
                batch.append(ends.pop(e.id))
        stats.observe(batch)
    return stats


@learn_app.command("analyze")
def analyze(
    scenario: Annotated[str, typer.Argument(help="Scenario file, or a built-in name.")],
    variant: Annotated[str, typer.Option(help="Only sessions of this variant.")] = "",
    sessions: Annotated[int, typer.Option(help="Analyze at most the latest N sessions.")] = 50,
    trials: Annotated[int, typer.Option(help="Parameter-search trials (0: no search).")] = 24,
    promote: Annotated[bool, typer.Option(
        "--promote", help="Make the new model the champion at once (a person's decision, "
        "logged) instead of leaving it a candidate for the gate.")] = False,
    store: Annotated[str | None, typer.Option("--store", help="Store URL or path.")] = None,
) -> None:
    """Analyze a scenario's recorded sessions; register the offline model as a candidate.

    The model is the next version of the scenario's ``offline_model`` lineage
    (``swarmlearn artifacts list``); the daemon's gate, ``swarmlearn artifacts
    promote`` or ``--promote`` makes it the champion sessions start from.
    """
    check_range("--sessions", sessions, lo=1)
    check_range("--trials", trials, lo=0)
    sc = load_scenario(scenario, variant=variant)
    with SqlStore(store, read_only=True) as reader:  # a missing store is an error, not made
        recs = [s for s in reader.sessions(scenario=sc.name, limit=sessions)
                if s.variant == sc.variant]
        if not recs:
            raise ConfigError(f"no recorded sessions of {sc.label} in {reader.url}: run "
                              f"`swarmlearn run {scenario}` first")
    with open_store(store) as st:
        ids = [s.id for s in recs]
        stats = stats_from_store(st, ids)
        analyzer = OfflineAnalyzer(st, AnalyzerConfig(trials=trials, max_sessions=sessions))
        life = Lifecycle(st, ARTIFACT_KIND, sc.label)
        latest = next(iter(life.versions()), None)
        previous = analyzer.load(sc.label)
        with CliProgress(terminal_console(stderr=True), unit="trials") as bar:
            task = bar.add(f"learn analyze {sc.label}", total=trials,
                           info=f"{len(ids)} sessions")
            model = analyzer.analyze(sc, stats=stats, sessions=ids, previous=previous,
                                     progress=lambda done, n: bar.update(task, completed=done,
                                                                         total=n))
            bar.update(task, done=True)
        version = analyzer.save(model, sessions=ids, parent=latest.id if latest else None,
                                reason="swarmlearn learn analyze")
        registered = life.get(version)
        if promote:
            registered = life.promote(registered,
                                      reason="promoted by hand: learn analyze --promote")
        _show(model, version)
        console.print(f"{registered.label}: {registered.state}"
                      + ("" if promote else f" (champion: `swarmlearn artifacts promote "
                         f"{ARTIFACT_KIND} '{sc.label}' {version}`, or the daemon's gate)"),
                      markup=False)
        _finish_optimizing(st, sc.name)


def _show(model: OfflineModel, version: int) -> None:
    console.print(f"[bold]offline model {escape(model.scenario)} v{version}[/]: "
                  f"{model.episodes} episodes, {model.successes} successful, "
                  f"strategy {model.strategy}")
    search = model.search
    if search.get("trials"):
        console.print(f"parameter search ({search['method']}, {search['trials']} trials): "
                      f"{search['best_value']:.3f} vs defaults {search['default_value']:.3f}")
    rows = [[k, f"{v:.4g}"] for k, v in sorted(model.params.items())]
    print_rows(console, None, ["parameter", "value"], rows,
               keep={"parameter", "value"}, right={"value"})
    console.print("action order: " + " → ".join(model.action_order))
    for b, pre in sorted(model.dependencies.items()):
        console.print(f"  {b} after {', '.join(pre)}")
    for b, groups in sorted(model.any_of.items()):
        console.print(f"  {b} after one of " + " | ".join("/".join(g) for g in groups))
    for p in model.paths[:5]:
        console.print(f"  path ({p['support']}×, {p['success_rate']:.0%}): "
                      + " → ".join(p["path"]))


def _finish_optimizing(store: Store, scenario: str) -> None:
    """Profiles of this scenario waiting in Optimizing have their search now: back to Active."""
    from swarmlearn.learn.profile_store import ProfileStore
    from swarmlearn.learn.profiles import ProfileState

    profiles = ProfileStore(store)
    for profile in profiles.load_all():
        if profile.scenario == scenario and profile.state is ProfileState.OPTIMIZING:
            profile.finish_optimizing("offline analysis applied")
            profiles.save(profile)
            console.print(f"profile {profile.name}: optimizing → active")
