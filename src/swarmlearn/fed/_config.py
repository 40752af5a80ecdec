"""The federation's configuration: one TOML file read by server, nodes and simulation.

Layout (every table optional but ``[[nodes]]``)::

    [federation]  rounds, episodes (per scenario, node and round), aggregator,
                  trim, sample_rate, round_timeout, seed, backend
    [dp]          mode (off | central | local), clip, noise_multiplier or target_epsilon,
                  delta, budget_epsilon
    [evaluation]  variant, episodes, seed (held-out task seeds)
    [vocabulary]  episodes, seed (public task seeds), tables
    [[nodes]]     name, scenarios (``name`` or ``name:variant``), behaviour

A malformed file is refused before any work, in one line naming the file,
line and field.
"""

from __future__ import annotations

import dataclasses
import enum
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swarmlearn._config import check_range, from_mapping, to_mapping
from swarmlearn.core.scenario import Scenario, load_scenario
from swarmlearn.errors import ConfigError, ScenarioError
from swarmlearn.fed._aggregate import Aggregator
from swarmlearn.fed._dp import DpConfig, DpMode
from swarmlearn.fed._dqn import DqnFedConfig

__all__ = [
    "BUILTIN_SCENARIOS",
    "Backend",
    "Behaviour",
    "EvalConfig",
    "FedConfig",
    "FederationConfig",
    "NodeSpec",
    "Payload",
    "VocabConfig",
    "load_config",
    "scenario_ref",
]

BUILTIN_SCENARIOS = ("code_exploration", "internal_diagnosis", "maze", "search",
                     "troubleshooting")


class Behaviour(enum.StrEnum):
    HONEST = "honest"
    GARBAGE = "garbage"  # sends huge random numbers instead of its update
    CRASH = "crash"  # fails in every training round
    SLOW = "slow"  # answers after the round's timeout


class Payload(enum.StrEnum):
    STATISTICS = "statistics"  # learned statistics / snapshots (sums)
    DQN = "dqn"  # DQN policy weights (FedAvg)


class Backend(enum.StrEnum):
    INPROCESS = "inprocess"  # our Grid: ClientApps called in threads of this process
    RAY = "ray"  # Flower's simulation engine


def scenario_ref(ref: str) -> Scenario:
    """``name`` or ``name:variant`` → the scenario (built-in name or file)."""
    name, _, variant = ref.partition(":")
    return load_scenario(name, variant=variant)


@dataclass(frozen=True, kw_only=True, slots=True)
class NodeSpec:
    name: str
    scenarios: tuple[str, ...] = ()  # its private scenarios (the statistics payload)
    behaviour: Behaviour = Behaviour.HONEST

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ConfigError("nodes.name: expected a non-empty name", field="name")

    @property
    def scenario_names(self) -> set[str]:
        return {s.partition(":")[0] for s in self.scenarios}


@dataclass(frozen=True, kw_only=True, slots=True)
class FederationConfig:
    rounds: int = 5
    episodes: int = 4
    aggregator: Aggregator = Aggregator.SUM
    trim: float = 0.2
    sample_rate: float = 1.0
    round_timeout: float = 120.0
    seed: int = 0
    backend: Backend = Backend.INPROCESS
    payload: Payload = Payload.STATISTICS

    def __post_init__(self) -> None:
        check_range("rounds", self.rounds, lo=1)
        check_range("episodes", self.episodes, lo=1)
        check_range("trim", self.trim, lo=0.0, hi=0.49)
        check_range("sample_rate", self.sample_rate, lo=0.0, hi=1.0, lo_open=True)
        check_range("round_timeout", self.round_timeout, lo=0.0, lo_open=True)


@dataclass(frozen=True, kw_only=True, slots=True)
class EvalConfig:
    variant: str = "heldout"
    episodes: int = 20
    seed: int = 50_000
    scenarios: tuple[str, ...] = BUILTIN_SCENARIOS

    def __post_init__(self) -> None:
        check_range("episodes", self.episodes, lo=1)


@dataclass(frozen=True, kw_only=True, slots=True)
class VocabConfig:
    episodes: int = 20
    seed: int = 900_000
    # the bandit arms only: under DP every shared number costs signal-to-noise
    # (docs/federation.md); add "actions", "transitions", … to share more without DP
    tables: tuple[str, ...] = ("contexts",)

    def __post_init__(self) -> None:
        check_range("episodes", self.episodes, lo=1)


@dataclass(frozen=True, kw_only=True, slots=True)
class FedConfig:
    federation: FederationConfig = field(default_factory=FederationConfig)
    dp: DpConfig = field(default_factory=DpConfig)
    evaluation: EvalConfig = field(default_factory=EvalConfig)
    vocabulary: VocabConfig = field(default_factory=VocabConfig)
    dqn: DqnFedConfig = field(default_factory=DqnFedConfig)
    nodes: tuple[NodeSpec, ...] = ()
    path: str = ""

    def __post_init__(self) -> None:
        if not self.nodes:
            raise ConfigError("nodes: the federation needs at least one [[nodes]] entry",
                              field="nodes")
        names = [n.name for n in self.nodes]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ConfigError(f"nodes: the name {sorted(dup)[0]!r} is used twice",
                              field="nodes.name")
        if self.federation.payload is Payload.STATISTICS:
            for i, n in enumerate(self.nodes):
                if not n.scenarios:
                    raise ConfigError(f"nodes[{i}].scenarios: a node needs at least one "
                                      "scenario", field=f"nodes[{i}].scenarios")
        robust = self.federation.aggregator in (Aggregator.TRIMMED_MEAN, Aggregator.MEDIAN)
        if robust and self.dp.mode is DpMode.CENTRAL:
            raise ConfigError(
                f"federation.aggregator: {self.federation.aggregator} with central DP has no "
                "bounded sensitivity (one node can move a median by C in every coordinate); "
                "use sum or mean with DP", field="federation.aggregator")

    def node(self, index: int) -> NodeSpec:
        if not 0 <= index < len(self.nodes):
            raise ConfigError(f"node: expected 0..{len(self.nodes) - 1}, got {index}",
                              field="node", value=index)
        return self.nodes[index]

    def training_scenarios(self) -> list[str]:
        return sorted({s for n in self.nodes for s in n.scenarios})

    def evaluation_scenarios(self) -> list[str]:
        v = self.evaluation.variant
        return [f"{s}:{v}" if v else s for s in self.evaluation.scenarios]

    def resolved_dp(self) -> DpConfig:
        return self.dp.resolve(rounds=self.federation.rounds,
                               sample_rate=self.federation.sample_rate)

    def with_dp(self, dp: DpConfig) -> FedConfig:
        return dataclasses.replace(self, dp=dp)

    def with_seed(self, seed: int) -> FedConfig:
        """The same federation with another seed: other private tasks, other noise."""
        return dataclasses.replace(self, federation=dataclasses.replace(self.federation,
                                                                        seed=seed))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = to_mapping({"federation": self.federation,
                                          "evaluation": self.evaluation,
                                          "vocabulary": self.vocabulary,
                                          "dqn": self.dqn,
                                          "nodes": list(self.nodes)})
        out["dp"] = self.dp.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, path: str = "") -> FedConfig:
        known = {"federation", "dp", "evaluation", "vocabulary", "dqn", "nodes"}
        unknown = [k for k in data if k not in known]
        if unknown:
            raise ConfigError(f"{unknown[0]}: unknown table (known: {', '.join(sorted(known))})",
                              field=str(unknown[0]))
        nodes = data.get("nodes", [])
        if not isinstance(nodes, list):
            raise ConfigError("nodes: expected [[nodes]] tables", field="nodes")
        cfg = cls(
            federation=from_mapping(FederationConfig, data.get("federation", {}),
                                    where="federation"),
            dp=from_mapping(DpConfig, data.get("dp", {}), where="dp"),
            evaluation=from_mapping(EvalConfig, data.get("evaluation", {}), where="evaluation"),
            vocabulary=from_mapping(VocabConfig, data.get("vocabulary", {}), where="vocabulary"),
            dqn=from_mapping(DqnFedConfig, data.get("dqn", {}), where="dqn"),
            nodes=tuple(from_mapping(NodeSpec, n, where=f"nodes[{i}]")
                        for i, n in enumerate(nodes)),
            path=path,
        )
        for i, node in enumerate(cfg.nodes):
            for j, ref in enumerate(node.scenarios):
                try:
                    scenario_ref(ref)
                except ScenarioError as exc:
                    raise ConfigError(f"nodes[{i}].scenarios[{j}]: {exc}",
                                      field=f"nodes[{i}].scenarios") from exc
        for ref in cfg.evaluation_scenarios():
            try:
                scenario_ref(ref)
            except ScenarioError as exc:
                raise ConfigError(f"evaluation: {exc}", field="evaluation.scenarios") from exc
        return cfg


def _line_of(text: str, dotted: str) -> int | None:
    key = dotted.split(".")[-1].split("[")[0]
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip().startswith(f"{key} ") or line.strip().startswith(f"{key}="):
            return i
    return None


def load_config(path: str | Path) -> FedConfig:
    """Read and check a federation TOML file; ScenarioError names file, line and field."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"cannot read the federation config ({exc.strerror})",
                            path=str(p)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"not valid TOML: {exc}", path=str(p)) from None
    try:
        return FedConfig.from_dict(data, path=str(p.resolve()))
    except ConfigError as exc:
        line = _line_of(text, exc.field) if exc.field else None
        raise ScenarioError(str(exc), path=str(p), line=line, field=exc.field) from None
