"""Built-in task environments, by kind.

``make_env(kind, params)`` builds one from a scenario's ``[environment]``
table; every kind has a frozen config dataclass validated field by field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from swarmlearn._config import from_mapping
from swarmlearn.core.environment import BaseEnvironment
from swarmlearn.envs.code_exploration import CodeExplorationConfig, CodeExplorationEnv
from swarmlearn.envs.internal_diagnosis import InternalDiagnosisConfig, InternalDiagnosisEnv
from swarmlearn.envs.maze import MazeConfig, MazeEnv
from swarmlearn.envs.search import SearchConfig, SearchEnv
from swarmlearn.envs.troubleshooting import TroubleshootingConfig, TroubleshootingEnv
from swarmlearn.errors import ConfigError

__all__ = [
    "ENV_KINDS",
    "CodeExplorationConfig",
    "CodeExplorationEnv",
    "InternalDiagnosisConfig",
    "InternalDiagnosisEnv",
    "MazeConfig",
    "MazeEnv",
    "SearchConfig",
    "SearchEnv",
    "TroubleshootingConfig",
    "TroubleshootingEnv",
    "env_config_class",
    "make_env",
]

#: kind → (environment class, its config dataclass)
ENV_KINDS: Mapping[str, tuple[Callable[[Any], BaseEnvironment], type]] = {
    TroubleshootingEnv.kind: (TroubleshootingEnv, TroubleshootingConfig),
    InternalDiagnosisEnv.kind: (InternalDiagnosisEnv, InternalDiagnosisConfig),
    CodeExplorationEnv.kind: (CodeExplorationEnv, CodeExplorationConfig),
    SearchEnv.kind: (SearchEnv, SearchConfig),
    MazeEnv.kind: (MazeEnv, MazeConfig),
}


def env_config_class(kind: str, *, where: str = "environment.kind") -> type:
    if kind not in ENV_KINDS:
        known = ", ".join(sorted(ENV_KINDS))
        raise ConfigError(f"{where}: unknown environment kind {kind!r} (known: {known})",
                          field=where, value=kind)
    return ENV_KINDS[kind][1]


def make_env(kind: str, params: Mapping[str, Any] | None = None, *,
             where: str = "environment") -> BaseEnvironment:
    """Build an environment of ``kind`` from a mapping of its parameters."""
    config_cls = env_config_class(kind, where=f"{where}.kind")
    cls = ENV_KINDS[kind][0]
    config: Any = from_mapping(config_cls, params or {}, where=where)
    return cls(config)
