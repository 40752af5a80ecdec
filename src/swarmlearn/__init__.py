"""swarmlearn: a swarm of agents that works on tasks and learns from its own experience."""

from swarmlearn.errors import (
    ArtifactError,
    BackendError,
    ConfigError,
    MissingExtraError,
    ScenarioError,
    StoreError,
    SwarmlearnError,
    TrainingError,
)
from swarmlearn.types import Failure, Outcome, Success, Timeout, Unknown

__version__ = "0.1.0"

__all__ = [
    "ArtifactError",
    "BackendError",
    "ConfigError",
    "Failure",
    "MissingExtraError",
    "Outcome",
    "ScenarioError",
    "StoreError",
    "Success",
    "SwarmlearnError",
    "Timeout",
    "TrainingError",
    "Unknown",
    "__version__",
]
