"""The learning daemon's configuration: levels, their triggers, gate and watch, from TOML.

::

    [daemon]
    scenario = "examples/troubleshooting.toml"   # a path or a built-in scenario name
    variant = "heldout"
    mode = "full"              # offline-only | lora-only | full
    strategy = "adaptive"      # the selection strategy the swarm kinds evaluate with
    poll_s = 2.0               # how often the store is followed
    gate_tasks = 40            # held-out tasks per gate (each level may override)
    timeout_s = 600            # a trainer's time budget (each level may override)
    backoff_s = 30             # after a failure; doubles per failure, at most backoff_max_s
    history = 5                # previous champions kept for rollback
    nice = 19                  # niceness of the daemon and its trainers (the swarm goes first)
    cpu_share = 0.05           # of one core, on average, for level runs (1.0: no bound)

    [daemon.gate]              # swarmlearn.lifecycle.GateConfig
    alpha = 0.05
    min_tasks = 20

    [daemon.watch]             # swarmlearn.lifecycle.WatchConfig
    drop = 0.2

    [levels.snapshot]          # a level: the kind it trains and when
    trigger = "count >= 20"

    [levels.offline_model]
    trigger = "count >= 50"
    trials = 16                # anything else is passed to the kind's builder

    [levels.lora]
    kind = "some.module:build_lora_kind"   # any ArtifactKind builder
    group = "lora"
    trigger = "count >= 200 or every 1d"

Without a ``[levels]`` table the defaults are :data:`DEFAULT_LEVELS`. A level's
``kind`` is a built-in kind name (:data:`BUILTIN_KINDS`) or ``module:function``
for a builder called as ``build(scenario, store, **options)`` that returns an
:class:`~swarmlearn.lifecycle.ArtifactKind`. Every error names the file and
the field.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swarmlearn._config import check_range, from_mapping
from swarmlearn.errors import ConfigError
from swarmlearn.lifecycle import ArtifactKind, GateConfig, WatchConfig
from swarmlearn.lifecycle._triggers import Trigger, parse_trigger

__all__ = [
    "BUILTIN_KINDS",
    "DEFAULT_LEVELS",
    "DaemonConfig",
    "LevelConfig",
    "Mode",
    "build_kind",
    "load_daemon_config",
]


class Mode(enum.StrEnum):
    OFFLINE_ONLY = "offline-only"
    LORA_ONLY = "lora-only"
    FULL = "full"


#: which level groups each mode runs
MODE_GROUPS: Mapping[Mode, frozenset[str]] = {
    Mode.OFFLINE_ONLY: frozenset({"offline"}),
    Mode.LORA_ONLY: frozenset({"lora"}),
    Mode.FULL: frozenset({"offline", "lora", "rl"}),
}

#: built-in kind → (builder "module:attribute", level group)
BUILTIN_KINDS: Mapping[str, tuple[str, str]] = {
    "snapshot": ("swarmlearn.learn.kinds:SnapshotKind", "offline"),
    "offline_model": ("swarmlearn.learn.kinds:OfflineModelKind", "offline"),
    "dqn_policy": ("swarmlearn.lifecycle.dqn_kind:DQNPolicyKind", "rl"),
}

#: the levels a config without ``[levels]`` gets
DEFAULT_LEVELS: Mapping[str, Mapping[str, Any]] = {
    "snapshot": {"trigger": "count >= 20"},
    "offline_model": {"trigger": "count >= 50"},
    "dqn_policy": {"trigger": "manual"},
}

_LEVEL_KEYS = ("kind", "trigger", "group", "enabled", "gate_tasks", "timeout_s")


@dataclass(frozen=True, kw_only=True, slots=True)
class LevelConfig:
    name: str
    kind: str
    trigger: str
    group: str
    enabled: bool = True
    gate_tasks: int = 40
    timeout_s: float = 600.0
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        parse_trigger(self.trigger, field=f"levels.{self.name}.trigger")
        check_range("gate_tasks", self.gate_tasks, lo=1)
        check_range("timeout_s", self.timeout_s, lo=1.0)
        if self.kind not in BUILTIN_KINDS and ":" not in self.kind:
            known = ", ".join(BUILTIN_KINDS)
            raise ConfigError(f"levels.{self.name}.kind: expected one of {known} or "
                              f"'module:function', got {self.kind!r}",
                              field=f"levels.{self.name}.kind", value=self.kind)

    @property
    def parsed_trigger(self) -> Trigger:
        return parse_trigger(self.trigger, field=f"levels.{self.name}.trigger")


@dataclass(frozen=True, kw_only=True, slots=True)
class DaemonConfig:
    scenario: str
    variant: str = ""
    mode: Mode = Mode.FULL
    strategy: str = "adaptive"
    poll_s: float = 2.0
    gate_tasks: int = 40
    timeout_s: float = 600.0
    backoff_s: float = 30.0
    backoff_max_s: float = 3600.0
    history: int = 5
    live_window: int = 50  # live episodes the quality trigger looks at
    nice: int = 19  # the daemon (and its trainers) run at this niceness: the swarm goes first
    # of one core its level runs may use on average (swarmlearn._cpu_share): learning is
    # background work; at 0.05 the daemon costs the swarm ~2% here (benchmarks/daemon_overhead.py)
    cpu_share: float = 0.05
    run_dir: str = ".swarmlearn/daemon"
    gate: GateConfig = field(default_factory=GateConfig)
    watch: WatchConfig = field(default_factory=WatchConfig)
    levels: tuple[LevelConfig, ...] = ()

    def __post_init__(self) -> None:
        if not self.scenario:
            raise ConfigError("daemon.scenario: name the scenario the daemon learns for",
                              field="daemon.scenario")
        object.__setattr__(self, "mode", Mode(self.mode))
        check_range("poll_s", self.poll_s, lo=0.01)
        check_range("backoff_s", self.backoff_s, lo=0.0)
        check_range("backoff_max_s", self.backoff_max_s, lo=0.0)
        check_range("history", self.history, lo=1)
        check_range("live_window", self.live_window, lo=1)
        check_range("nice", self.nice, lo=0, hi=19)
        if math.isnan(self.cpu_share):
            raise ConfigError("cpu_share: expected > 0 and <= 1, got nan", field="cpu_share",
                              value=self.cpu_share)
        check_range("cpu_share", self.cpu_share, lo=0.0, hi=1.0, lo_open=True)
        names = [lv.name for lv in self.levels]
        if len(set(names)) != len(names):
            raise ConfigError(f"levels: duplicate level names in {names}", field="levels")

    def active_levels(self) -> list[LevelConfig]:
        """The enabled levels the mode runs, in config order."""
        groups = MODE_GROUPS[self.mode]
        return [lv for lv in self.levels if lv.enabled and lv.group in groups]

    def level(self, name: str) -> LevelConfig:
        for lv in self.levels:
            if lv.name == name:
                return lv
        known = ", ".join(lv.name for lv in self.levels)
        raise ConfigError(f"level: no level {name!r} (levels: {known})", field="level",
                          value=name)


def _level(name: str, data: Mapping[str, Any], top: Mapping[str, Any]) -> LevelConfig:
    where = f"levels.{name}"
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a table", field=where)
    kind = str(data.get("kind", name))
    group = data.get("group", BUILTIN_KINDS.get(kind, ("", "offline"))[1])
    for key, typ in (("trigger", str), ("group", str), ("enabled", bool)):
        if key in data and not isinstance(data[key], typ):
            raise ConfigError(f"{where}.{key}: expected a {typ.__name__}, got {data[key]!r}",
                              field=f"{where}.{key}", value=data[key])
    try:
        return LevelConfig(
            name=name, kind=kind, group=str(group),
            trigger=str(data.get("trigger", DEFAULT_LEVELS.get(name, {}).get("trigger",
                                                                              "manual"))),
            enabled=bool(data.get("enabled", True)),
            gate_tasks=int(data.get("gate_tasks", top.get("gate_tasks", 40))),
            timeout_s=float(data.get("timeout_s", top.get("timeout_s", 600.0))),
            options={k: v for k, v in data.items() if k not in _LEVEL_KEYS})
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}", field=where) from exc


def daemon_config_from_mapping(data: Mapping[str, Any], *, where: str = "") -> DaemonConfig:
    """A DaemonConfig from a parsed TOML document (``[daemon]`` and ``[levels]``)."""
    unknown = set(data) - {"daemon", "levels"}
    if unknown:
        raise ConfigError(f"{where}unknown tables {sorted(unknown)} (known: daemon, levels)",
                          field=sorted(unknown)[0])
    top = dict(data.get("daemon", {}))
    levels_data = data.get("levels", DEFAULT_LEVELS)
    try:
        gate = from_mapping(GateConfig, top.pop("gate", {}), where="daemon.gate")
        watch = from_mapping(WatchConfig, top.pop("watch", {}), where="daemon.watch")
        if not isinstance(levels_data, Mapping):
            raise ConfigError("levels: expected a table of levels", field="levels")
        levels = tuple(_level(n, d, top) for n, d in levels_data.items())
        base = from_mapping(DaemonConfig, top, where="daemon")
        return dataclasses.replace(base, gate=gate, watch=watch, levels=levels)
    except ConfigError as exc:
        if not where:
            raise
        raise ConfigError(f"{where}{exc}", field=exc.field, value=exc.value) from exc


def load_daemon_config(path: str | Path | None = None, **overrides: Any) -> DaemonConfig:
    """The config in a TOML file (or the defaults with ``overrides``, e.g. scenario=)."""
    data: dict[str, Any] = {}
    where = ""
    if path is not None:
        p = Path(path)
        where = f"{p}: "
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{p}: cannot read the daemon config ({exc.strerror})",
                              field="config") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: not valid TOML ({exc})", field="config") from exc
    if overrides:
        data["daemon"] = {**data.get("daemon", {}),
                          **{k: v for k, v in overrides.items() if v is not None}}
    return daemon_config_from_mapping(data, where=where)


def build_kind(level: LevelConfig, scenario: Any, store: Any, strategy: str) -> ArtifactKind:
    """The ArtifactKind a level trains, built for ``scenario`` on ``store``."""
    ref = BUILTIN_KINDS[level.kind][0] if level.kind in BUILTIN_KINDS else level.kind
    module, _, attr = ref.partition(":")
    try:
        builder = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"levels.{level.name}.kind: cannot load {ref!r} ({exc})",
                          field=f"levels.{level.name}.kind", value=ref) from exc
    options = dict(level.options)
    if level.kind in BUILTIN_KINDS:
        options.setdefault("strategy", strategy)
    try:
        kind: ArtifactKind = builder(scenario, store, **options)
    except TypeError as exc:
        raise ConfigError(f"levels.{level.name}: bad options for {ref} ({exc})",
                          field=f"levels.{level.name}") from exc
    return kind
