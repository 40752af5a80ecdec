"""Scenarios: what a swarm works on and how, in a TOML file.

::

    name = "troubleshooting"
    description = "One faulty service among five."

    [environment]          # kind + that environment's own parameters
    kind = "troubleshooting"
    services = 5

    [actions]              # optional: restrict the action set
    exclude = ["RunBackup"]

    [workers]
    count = 3
    kind = "rule"          # rule | llm | rl
    policy = "fifo"        # fifo | random | ucb1 | thompson | greedy | adaptive …

    [manager]
    kind = "rule"          # rule | none | llm
    schedule = "every_tick"  # every_tick | every_n | on_completion

    [limits]
    max_ticks = 100
    timeout_s = 30.0

    [seeds]
    base = 42              # episode i runs the task of seed base + i

    [variants.hard]        # named overrides, dotted keys
    environment.services = 10

Everything is validated on load, variants included; an error names the
file, the line, the field and what was expected. That includes what a run
would only find when it starts (:func:`check_workers`): the policy name and
its parameters, and each worker kind's own fields (an LLM URL or model file,
an RL run directory), checked by the same code the run uses. Overrides made
in code (:meth:`Scenario.override`) are checked when the run starts, or
earlier by calling :func:`check_workers`.
"""

from __future__ import annotations

import copy
import enum
import logging
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from swarmlearn._config import check_range, from_mapping, to_mapping
from swarmlearn.core.manager import GuidanceSchedule
from swarmlearn.errors import ConfigError, ScenarioError

__all__ = [
    "POLICIES",
    "ActionsConfig",
    "LimitsConfig",
    "ManagerConfig",
    "ManagerKind",
    "Scenario",
    "SeedsConfig",
    "WorkerKind",
    "WorkersConfig",
    "builtin_scenario",
    "check_workers",
    "load_scenario",
    "parse_scenario",
]

logger = logging.getLogger(__name__)

Scalar = str | int | float | bool

#: the selection policies a scenario can name (``swarmlearn.session`` builds them)
POLICIES = ("fifo", "random", "ucb1", "thompson", "thompson-mean", "greedy", "adaptive")


class WorkerKind(enum.StrEnum):
    RULE = "rule"
    LLM = "llm"
    RL = "rl"


class ManagerKind(enum.StrEnum):
    RULE = "rule"
    NONE = "none"
    LLM = "llm"


@dataclass(frozen=True, kw_only=True, slots=True)
class ActionsConfig:
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class WorkersConfig:
    count: int = 3
    kind: WorkerKind = WorkerKind.RULE
    policy: str = "fifo"
    policy_params: Mapping[str, Scalar] = field(default_factory=dict)
    model: str = ""  # LLM workers: a GGUF path, or empty for the bundled model
    url: str = ""  # LLM workers: an OpenAI-compatible base URL instead of a local server
    adapter: str = ""  # LLM workers: a LoRA adapter GGUF at scale 1 ("none": the base model)
    policy_path: str = ""  # RL workers: a run directory or checkpoint

    def __post_init__(self) -> None:
        check_range("count", self.count, lo=1, hi=256)


@dataclass(frozen=True, kw_only=True, slots=True)
class ManagerConfig:
    kind: ManagerKind = ManagerKind.RULE
    schedule: GuidanceSchedule = GuidanceSchedule.EVERY_TICK
    interval: int = 1

    def __post_init__(self) -> None:
        check_range("interval", self.interval, lo=1)


@dataclass(frozen=True, kw_only=True, slots=True)
class LimitsConfig:
    max_ticks: int = 100
    timeout_s: float = 60.0

    def __post_init__(self) -> None:
        check_range("max_ticks", self.max_ticks, lo=1)
        check_range("timeout_s", self.timeout_s, lo=0.0, lo_open=True)


@dataclass(frozen=True, kw_only=True, slots=True)
class SeedsConfig:
    base: int = 0
    workers: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class Scenario:
    name: str
    description: str = ""
    env_kind: str
    env_params: Mapping[str, Any] = field(default_factory=dict)
    actions: ActionsConfig = ActionsConfig()
    workers: WorkersConfig = WorkersConfig()
    manager: ManagerConfig = ManagerConfig()
    limits: LimitsConfig = LimitsConfig()
    seeds: SeedsConfig = SeedsConfig()
    variants: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    variant: str = ""
    path: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)
    overrides: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def label(self) -> str:
        return f"{self.name}[{self.variant}]" if self.variant else self.name

    def _effective(self, variant: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
        data = dict(self.raw)
        if variant:
            data = _merge(data, self.variants[variant])
        return _merge(data, overrides) if overrides else data

    def _rebuild(self, variant: str, overrides: Mapping[str, Any]) -> Scenario:
        built = _build(self._effective(variant, overrides), self.path, self.name)
        return replace(built, variant=variant, variants=self.variants, raw=self.raw,
                       overrides=overrides)

    def with_variant(self, name: str) -> Scenario:
        """This scenario with the named variant's overrides applied (keeping overrides)."""
        if not name:
            return self
        if name not in self.variants:
            known = ", ".join(sorted(self.variants)) or "none"
            raise ScenarioError(f"unknown variant {name!r} (variants: {known})",
                                path=self.path or None, field="variant", value=name)
        return self._rebuild(name, self.overrides)

    def override(self, **sections: Mapping[str, Any]) -> Scenario:
        """A copy with some fields replaced, e.g. ``override(workers={"policy": "ucb1"})``.

        Overrides win over the variant, which wins over the base file.
        """
        return self._rebuild(self.variant, _merge(self.overrides, sections))

    def to_dict(self) -> dict[str, Any]:
        data = copy.deepcopy(self._effective(self.variant, self.overrides))
        data.pop("variants", None)
        data["variant"] = self.variant
        return data


_SECTIONS: dict[str, type] = {
    "actions": ActionsConfig,
    "workers": WorkersConfig,
    "manager": ManagerConfig,
    "limits": LimitsConfig,
    "seeds": SeedsConfig,
}
_TOP = {"name", "description", "environment", "variants", *_SECTIONS}


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _build(data: Mapping[str, Any], path: str, default_name: str) -> Scenario:
    from swarmlearn.envs import env_config_class, make_env

    unknown = [k for k in data if k not in _TOP]
    if unknown:
        raise ConfigError(
            f"{unknown[0]}: unknown field (known: {', '.join(sorted(_TOP))})", field=unknown[0]
        )
    env = data.get("environment")
    if not isinstance(env, Mapping) or "kind" not in env:
        raise ConfigError("environment.kind: missing required field", field="environment.kind")
    kind = env["kind"]
    if not isinstance(kind, str):
        raise ConfigError(f"environment.kind: expected str, got {kind!r}", field="environment.kind")
    params = {k: v for k, v in env.items() if k != "kind"}
    env_config: object = from_mapping(env_config_class(kind), params, where="environment")
    sections: dict[str, Any] = {
        name: from_mapping(cls, data.get(name, {}), where=name) for name, cls in _SECTIONS.items()
    }
    actions = sections["actions"]
    assert isinstance(actions, ActionsConfig)
    if actions.include or actions.exclude:  # action names are checked against the environment
        make_env(kind, to_mapping(env_config)).restrict(actions.include, actions.exclude)
    name = data.get("name", default_name)
    description = data.get("description", "")
    for key, value in (("name", name), ("description", description)):
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected str, got {value!r}", field=key)
    variants = data.get("variants", {})
    if not isinstance(variants, Mapping) or not all(
        isinstance(v, Mapping) for v in variants.values()
    ):
        raise ConfigError("variants: expected tables [variants.NAME]", field="variants")
    return Scenario(
        name=name or kind,
        description=description,
        env_kind=kind,
        env_params=to_mapping(env_config),
        variants=variants,
        path=path,
        raw=data,
        **sections,
    )


def check_workers(workers: WorkersConfig, manager: ManagerConfig) -> None:
    """What a run checks before its first tick, checked now, by the code the run uses.

    The policy name and parameters go through the policy factory of
    ``swarmlearn.session``; an LLM ``url`` and ``model`` through the LLM
    client's and the server's checks; an RL ``policy_path`` must be a run
    directory. The parts are imported only when a scenario names them.
    """
    from swarmlearn.session import policy_factory

    if workers.kind is WorkerKind.RULE:
        factory = policy_factory(workers.policy)
        if workers.policy_params:
            factory(0, seed=0, params=workers.policy_params)
    if WorkerKind.LLM is workers.kind or manager.kind is ManagerKind.LLM:
        if workers.url:
            from swarmlearn.llm import normalize_base_url

            normalize_base_url(workers.url, field="workers.url")
        elif workers.model:
            from swarmlearn.serving import check_gguf

            check_gguf(workers.model, field="workers.model")
        if workers.adapter and workers.adapter != "none":
            from swarmlearn.serving import check_gguf

            check_gguf(workers.adapter, field="workers.adapter")
    if workers.kind is WorkerKind.RL:
        _check_run_dir(workers.policy_path)


def _check_run_dir(path: str) -> None:
    field_ = "workers.policy_path"
    if not path:
        raise ConfigError(f"{field_}: RL workers need a trained run directory (train one with "
                          "`swarmlearn rl train swarmlearn/<Kind>-v0`)", field=field_)
    from swarmlearn.errors import ArtifactError
    from swarmlearn.rl import RunDir

    try:
        RunDir.open(path)
    except ArtifactError as exc:
        raise ConfigError(f"{field_}: {exc}", field=field_, value=path) from exc


def _locate(text: str, dotted: str) -> int | None:
    """The line (1-based) of a dotted field in TOML text, best effort."""
    parts = [p for p in re.split(r"\.|\[\d+\]", dotted) if p]
    header = ""
    best: int | None = None
    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        m = re.match(r"^\[+\s*([^\]]+?)\s*\]+", stripped)
        if m:
            header = m.group(1).replace('"', "").replace(" ", "")
            if header == ".".join(parts) or ".".join(parts).startswith(header + "."):
                best = best or lineno  # the table that holds (or would hold) the field
            continue
        km = re.match(r'^"?([A-Za-z0-9_.\-]+)"?\s*=', stripped)
        if not km:
            continue
        full = f"{header}.{km.group(1)}" if header else km.group(1)
        if full == ".".join(parts):
            return lineno
        if ".".join(parts).startswith(full + "."):
            best = lineno  # the table/array that holds the field
    return best


def parse_scenario(text: str, *, path: str = "", variant: str = "") -> Scenario:
    """Parse and validate scenario TOML text (``path`` is used in errors)."""
    where = path or None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise ScenarioError(
            f"invalid TOML: {exc}", path=where, line=int(m.group(1)) if m else None
        ) from exc
    stem = Path(path).stem if path else ""
    try:
        scenario = _build(data, path, stem)
        check_workers(scenario.workers, scenario.manager)
        for name in scenario.variants:  # every variant must be valid too
            try:
                variant_ = scenario.with_variant(name)
                check_workers(variant_.workers, variant_.manager)
            except ScenarioError:
                raise
            except ConfigError as exc:
                raise _variant_error(exc, name) from exc
        return scenario.with_variant(variant) if variant else scenario
    except ScenarioError:
        raise
    except ConfigError as exc:
        line = _locate(text, exc.field) if exc.field else None
        if line is None and exc.field and exc.field.startswith("variants."):
            line = _locate(text, ".".join(exc.field.split(".")[:2]))
        raise ScenarioError(
            str(exc), path=where, line=line, field=exc.field, value=exc.value
        ) from exc


def _variant_error(exc: ConfigError, name: str) -> ConfigError:
    field_ = f"variants.{name}.{exc.field}" if exc.field else f"variants.{name}"
    return ConfigError(f"variants.{name}: {exc}", field=field_, value=exc.value)


def builtin_scenario(path: str | Path) -> Path | None:
    """The file of the built-in scenario ``path`` names (``troubleshooting``), else None.

    A name is a built-in one when no file of that name exists and it has no suffix.
    """
    p = Path(path)
    if p.exists() or p.suffix or p.name != str(path):
        return None
    builtin = Path(__file__).resolve().parent.parent / "scenarios" / f"{p.name}.toml"
    return builtin if builtin.is_file() else None


def load_scenario(path: str | Path, *, variant: str = "") -> Scenario:
    """Load a scenario file, or a built-in scenario by name (``troubleshooting``)."""
    p = builtin_scenario(path) or Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(
            "no such scenario file (or built-in scenario name)", path=str(path)
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read: {exc}", path=str(path)) from exc
    logger.debug("read %s (%d characters)", p, len(text))
    scenario = parse_scenario(text, path=str(path), variant=variant)
    logger.info("scenario %s from %s: %s, %d variants, all valid", scenario.label, p,
                scenario.env_kind, len(scenario.variants))
    return scenario
