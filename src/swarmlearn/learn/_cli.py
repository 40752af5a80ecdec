"""CLI sub-apps: ``swarmlearn profile …`` and ``swarmlearn snapshot …``.

Mounted by :mod:`swarmlearn.cli` (``app.add_typer(profile_app, name="profile")``
and the same for ``snapshot_app``). Errors are raised as
:class:`~swarmlearn.errors.SwarmlearnError`\\ s; the main entry point turns
them into one line and an exit code.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Annotated

import typer

from swarmlearn._config import check_output_path, check_range
from swarmlearn.core.scenario import POLICIES, load_scenario
from swarmlearn.learn.bootstrap import BootstrapStep, bootstrap_profile
from swarmlearn.learn.merge import MergeKind, merge_stored, strategy_from_name
from swarmlearn.learn.profile_store import ProfileStore
from swarmlearn.learn.profiles import Phase, ProfileConfig, ProfileState, ScenarioProfile
from swarmlearn.learn.registry import KeywordMatcher
from swarmlearn.learn.snapshot import SnapshotScope, SnapshotStore
from swarmlearn.ops.report import print_rows, terminal_console
from swarmlearn.store import SqlStore, open_store

__all__ = ["profile_app", "snapshot_app"]

profile_app = typer.Typer(
    no_args_is_help=True, help="Scenario profiles: list, show, bootstrap through the lifecycle."
)
snapshot_app = typer.Typer(
    no_args_is_help=True, help="Learning snapshots: list, merge, export and import."
)

console = terminal_console()

StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="Store URL or path (default: $SWARMLEARN_STORE or .swarmlearn/swarmlearn.db).",
    ),
]


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _pct(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.0%}"


# -- profile ----------------------------------------------------------------------------------
@profile_app.command("list")
def profile_list(store: StoreOpt = None) -> None:
    """List the stored profiles (latest version of each)."""
    with SqlStore(store, read_only=True) as st:
        if not st.exists:
            console.print(f"no profiles: no store at {st.url}")
            return
        records = ProfileStore(st).records()
        url = st.url
    if not records:
        console.print(f"no profiles in {url}")
        return
    headers = ["name", "version", "state", "scenario", "sessions b/v/r", "keywords", "updated"]
    rows = []
    for r in records:
        m = r.meta
        counts = m.get("sessions", {})
        rows.append([r.name, str(r.version), str(m.get("state", "?")), str(m.get("scenario", "")),
                     "/".join(str(counts.get(p.value, 0)) for p in Phase),
                     ", ".join(m.get("keywords", [])) or "–", _when(r.created)])
    print_rows(console, f"profiles in {url}", headers, rows,
               keep={"name", "version", "state", "scenario", "sessions b/v/r"},
               right={"version"})


@profile_app.command("show")
def profile_show(
    name: Annotated[str, typer.Argument(help="Profile name.")],
    version: Annotated[int | None, typer.Option(help="Version (default: the latest).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the stored JSON.")] = False,
    store: StoreOpt = None,
) -> None:
    """Show a profile: lifecycle, session groups and what its learners learned."""
    with SqlStore(store, read_only=True) as st:
        p = ProfileStore(st).load(name, version)
    if as_json:
        console.print_json(json.dumps(p.to_dict()))
        return
    console.print(f"[bold]{p.name}[/] — {p.state} (round {p.round}), scenario {p.scenario}")
    if p.description:
        console.print(p.description)
    for m in p.matchers:
        console.print(f"matcher: priority {m.priority}, {m.mode}: {', '.join(m.keywords)}")
    headers = ["phase", "sessions", "episodes", "success", "session ids"]
    rows = [[phase.value, str(len(g.sessions)), str(g.episodes),
             _pct(g.success_rate) if g.episodes else "–", ", ".join(map(str, g.session_ids)) or "–"]
            for phase, g in p.groups().items()]
    print_rows(console, "session groups", headers, rows,
               keep=set(headers[:4]), right=set(headers[1:4]))
    for t in p.history:
        console.print(f"{_when(t.created)}  {t.before} → {t.after}: {t.reason}")
    _show_learners(p)


def _show_learners(p: ScenarioProfile) -> None:
    graph = p.dependencies.graph()
    if graph is None:
        console.print(
            f"dependency graph: not yet ({p.dependencies.episodes} of "
            f"{p.dependencies.config.min_episodes} successful episodes)"
        )
    else:
        console.print(
            "dependency graph: "
            + (
                "; ".join(f"{b} after {', '.join(a)}" for b, a in graph.items())
                or "no dependencies"
            )
        )
    for s in p.strategies.ranking():
        console.print(
            f"strategy {s.strategy}: {s.wins}/{s.episodes} won, "
            f"posterior {s.posterior_mean:.2f}, actions to solve {s.actions_to_solve:.1f}"
        )
    best = p.exploration.recommend()
    if best:
        console.print("best parameters: " + ", ".join(f"{k}={v:g}" for k, v in best.items()))


@profile_app.command("bootstrap")
def profile_bootstrap(
    scenario: Annotated[str, typer.Argument(help="Scenario file, or a built-in name.")],
    sessions: Annotated[int, typer.Option("-n", "--sessions", help="Most sessions to run.")] = 5,
    episodes: Annotated[int, typer.Option("--episodes", help="Tasks per session.")] = 10,
    name: Annotated[str | None, typer.Option(help="Profile name (default: scenario's).")] = None,
    variant: Annotated[str, typer.Option(help="Named variant of the scenario.")] = "",
    policy: Annotated[str | None, typer.Option(
        help=f"Override the workers' selection policy: {' | '.join(POLICIES)}.")] = None,
    keyword: Annotated[
        list[str] | None,
        typer.Option("--keyword", "-k", help="Routing keyword (repeat); replaces the matchers."),
    ] = None,
    priority: Annotated[int, typer.Option(help="Priority of the keyword matcher.")] = 0,
    bootstrap_sessions: Annotated[
        int, typer.Option(help="Bootstrap sessions per round (new profiles).")
    ] = 3,
    threshold: Annotated[
        float, typer.Option(help="Validation success rate to become active (new profiles).")
    ] = 0.5,
    store: StoreOpt = None,
) -> None:
    """Run sessions for a profile until it is Active: bootstrap, then validate on held-out seeds."""
    for option, value in (("-n/--sessions", sessions), ("--episodes", episodes),
                          ("--bootstrap-sessions", bootstrap_sessions)):
        check_range(option, value, lo=1)
    sc = load_scenario(scenario, variant=variant)
    if policy:
        sc = sc.override(workers={"policy": policy})
    matcher = KeywordMatcher(
        keywords=tuple(keyword or [sc.name.replace("_", " ")]), priority=priority
    )
    with open_store(store) as st:
        profiles = ProfileStore(st)
        profile = profiles.get(name or sc.label) or ScenarioProfile(
            name or sc.label,
            scenario=scenario,
            description=sc.description,
            config=ProfileConfig(
                bootstrap_sessions=bootstrap_sessions, validation_threshold=threshold
            ),
            matchers=[matcher],
        )
        if keyword:
            profile.matchers = [matcher]
        if profile.state in (ProfileState.ACTIVE, ProfileState.OPTIMIZING):
            if keyword:
                profiles.save(profile)
            console.print(f"profile {profile.name} is already {profile.state}; nothing to run")
            return
        steps = bootstrap_profile(
            profile, sc, st, sessions=sessions, episodes=episodes, on_step=_show_step
        )
        console.print(
            f"[bold]profile {profile.name}[/]: {profile.state} after {len(steps)} sessions "
            f"(round {profile.round}) in {st.url}"
        )


def _show_step(step: BootstrapStep) -> None:
    ev = step.evidence
    moves = "".join(f"  → {t.after} ({t.reason})" for t in step.transitions)
    console.print(
        f"session {ev.session:<5} {ev.phase:<9} seeds {ev.seeds.start}..{ev.seeds.stop - 1}"
        f"  success {_pct(ev.success_rate):>4}  actions {ev.actions}{moves}"
    )


# -- snapshot ---------------------------------------------------------------------------------
@snapshot_app.command("list")
def snapshot_list(
    scope: Annotated[SnapshotScope | None, typer.Option(help="Only this scope.")] = None,
    key: Annotated[str | None, typer.Option(help="Only this key (needs --scope).")] = None,
    latest: Annotated[int | None, typer.Option(help="Only the latest N.")] = None,
    store: StoreOpt = None,
) -> None:
    """List stored snapshots, newest first."""
    if latest is not None:
        check_range("--latest", latest, lo=1)
    with SqlStore(store, read_only=True) as st:
        if not st.exists:
            console.print(f"no snapshots: no store at {st.url}")
            return
        records = SnapshotStore(st).records(scope, key, latest=latest)
        url = st.url
    if not records:
        console.print(f"no snapshots in {url}")
        return
    headers = ["name", "version", "stored", "sessions", "episodes", "success", "from", "status"]
    rows = []
    for r in records:
        m = r.meta
        n, won = int(m.get("episodes", 0)), int(m.get("successes", 0))
        source = str(m.get("strategy", "")) or ("import" if "imported_from" in m else "–")
        rows.append([r.name, str(r.version), _when(r.created), str(m.get("sessions", "?")),
                     str(n), _pct(won / n) if n else "–", source, r.status])
    print_rows(console, f"snapshots in {url}", headers, rows,
               keep=set(headers) - {"stored"},
               right={"version", "sessions", "episodes", "success"})


@snapshot_app.command("merge")
def snapshot_merge(
    scope: Annotated[SnapshotScope, typer.Argument(help="Scope of the result.")],
    key: Annotated[str, typer.Argument(help="Key of the result (scenario name, session id …).")],
    strategy: Annotated[MergeKind, typer.Option(help="How to weigh the snapshots.")] = (
        MergeKind.ADDITIVE
    ),
    half_life: Annotated[
        float | None, typer.Option(help="Half-life in sessions (time-decay).")
    ] = None,
    floor: Annotated[
        float | None, typer.Option(help="Least weight of a snapshot (success-weighted).")
    ] = None,
    latest: Annotated[int | None, typer.Option(help="Merge only the latest N.")] = None,
    from_sessions: Annotated[
        bool,
        typer.Option(
            "--from-sessions", help="Merge the scenario's session snapshots, not its versions."
        ),
    ] = False,
    store: StoreOpt = None,
) -> None:
    """Merge stored snapshots into a new version of SCOPE:KEY (the sources stay as they are)."""
    if latest is not None:
        check_range("--latest", latest, lo=1)
    how = strategy_from_name(strategy, half_life=half_life, floor=floor)
    with open_store(store) as st:
        out = merge_stored(
            SnapshotStore(st), scope, key, how, latest=latest, from_sessions=from_sessions
        )
    s = out.snapshot
    console.print(
        f"stored {s.name} v{out.version}: merged {len(out.meta['merged_from'])} snapshots "
        f"({strategy.value}) — {s.sessions} sessions, {s.episodes} episodes, "
        f"success {_pct(s.success_rate)}"
    )


@snapshot_app.command("export")
def snapshot_export(
    scope: Annotated[SnapshotScope, typer.Argument(help="Scope of the snapshot.")],
    key: Annotated[str, typer.Argument(help="Key of the snapshot.")],
    out: Annotated[Path, typer.Argument(help="JSON file to write.")],
    version: Annotated[int | None, typer.Option(help="Version (default: the latest).")] = None,
    store: StoreOpt = None,
) -> None:
    """Write a snapshot to a JSON file."""
    check_output_path(out, "OUT")  # before anything is read
    with SqlStore(store, read_only=True) as st:
        found = SnapshotStore(st).export(out, scope, key, version)
    console.print(f"exported {found.snapshot.name} v{found.version} to {out}")


@snapshot_app.command("import")
def snapshot_import(
    path: Annotated[Path, typer.Argument(help="JSON file written by 'snapshot export'.")],
    store: StoreOpt = None,
) -> None:
    """Store a snapshot from a JSON file as a new version of its name."""
    with open_store(store) as st:
        found = SnapshotStore(st).import_(path)
    console.print(f"imported {path} as {found.snapshot.name} v{found.version}")
