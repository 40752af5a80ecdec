"""What ``swarmlearn daemon status`` shows per level, all read from the store."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from swarmlearn._cpu_share import share_wait_from_log
from swarmlearn._daemon_config import DaemonConfig, build_kind
from swarmlearn._daemon_log import backoff_until, count_episodes, runs_of
from swarmlearn.core.scenario import load_scenario
from swarmlearn.lifecycle import Lifecycle
from swarmlearn.store import LogRecord, SqlStore

__all__ = ["LevelStatus", "level_status"]


@dataclass(frozen=True, slots=True)
class LevelStatus:
    level: str
    kind: str
    scope: str
    trigger: str
    last_run: LogRecord | None
    next_trigger: str
    champion: dict[str, Any] | None
    challenger: dict[str, Any] | None
    failures: list[LogRecord] = field(default_factory=list)


def _version_info(v: Any) -> dict[str, Any] | None:
    if v is None:
        return None
    gate = v.gate or {}
    return {"version": v.version, "state": v.state.value,
            "gated_rate": v.gated_rate,
            "cost_per_solve": (gate.get("challenger") or {}).get("cost_per_solve"),
            "p_value": gate.get("p_value"), "vs": (v.meta.get("gate_results") or {})
            .get("champion_version")}


def level_status(config: DaemonConfig, store: SqlStore) -> list[LevelStatus]:
    """Per configured level: last run, what the trigger waits for, champion, challenger,
    recent failures — all read from the store."""
    scenario = load_scenario(config.scenario, variant=config.variant)
    levels = []
    for lv in config.active_levels():
        kind = build_kind(lv, scenario, store, config.strategy)
        levels.append((lv, kind, runs_of(store, kind.name, kind.scope)))
    share = share_wait_from_log((runs.last("run-done", "run-failed") for *_, runs in levels),
                                config.cpu_share)
    if share is not None and share.left(time.time()) <= 0:
        share = None  # the share holds no run back
    out = []
    for lv, kind, runs in levels:
        life = Lifecycle(store, kind.name, kind.scope)
        base = runs.done or runs.last("follow")
        counted = int(base.data.get("episodes", 0)) if base is not None else 0
        new = max(0, count_episodes(store, scenario) - counted)
        after = backoff_until(config, runs.failures)
        waiting = f"{new} new episodes; trigger: {lv.trigger}"
        if runs.pending_request is not None:
            waiting = "requested: runs at the next pass"
        elif after is not None and after > time.time():
            waiting += f"; backing off until {time.strftime('%H:%M:%S', time.localtime(after))}"
        if share is not None:
            waiting += f"; {share.describe()}"
        out.append(LevelStatus(lv.name, kind.name, kind.scope, lv.trigger,
                               runs.last("run-done", "run-failed"), waiting,
                               _version_info(life.champion(payload=False)),
                               _version_info(life.challenger(payload=False)),
                               runs.failures[:3]))
    return out
