"""The error tree of swarmlearn.

Every error the library raises on purpose is a :class:`SwarmlearnError`.
Subclasses are cut by what the caller can do about them::

    SwarmlearnError
    ├── ConfigError            a config value is wrong (field, value, expected)
    │   └── ScenarioError      a scenario file is wrong (file, line, field)
    ├── MissingExtraError      an optional dependency is not installed
    ├── StoreError             the store cannot be opened, read or written
    │   └── SchemaError        the database schema is newer/older than supported
    ├── EnvironmentError_      an environment was driven wrongly (unknown action …)
    ├── BackendError           an LLM backend or server failed
    │   ├── BackendUnavailable     cannot connect / server not running
    │   ├── BackendTimeout         the call timed out
    │   └── BadResponse            the reply could not be used
    ├── TrainingError          a trainer could not train or save
    └── ArtifactError          a learned artifact (snapshot, adapter …) is malformed

The CLI maps each class to an exit code (:data:`EXIT_CODES`) and prints one line.
"""

from __future__ import annotations

__all__ = [
    "EXIT_CODES",
    "ArtifactError",
    "BackendError",
    "BackendTimeout",
    "BackendUnavailable",
    "BadResponse",
    "ConfigError",
    "EnvironmentError_",
    "MissingExtraError",
    "ScenarioError",
    "SchemaError",
    "StoreError",
    "SwarmlearnError",
    "TrainingError",
    "exit_code_for",
]


class SwarmlearnError(Exception):
    """Root of every error swarmlearn raises on purpose."""


class ConfigError(SwarmlearnError, ValueError):
    """A configuration value is invalid.

    ``field`` names the offending field (dotted path), ``value`` its value.
    """

    def __init__(self, message: str, *, field: str | None = None, value: object = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class ScenarioError(ConfigError):
    """A scenario file is invalid; the message names file, line and field."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        field: str | None = None,
        value: object = None,
    ) -> None:
        where = path or "<scenario>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}", field=field, value=value)
        self.path = path
        self.line = line


class MissingExtraError(SwarmlearnError, ImportError):
    """An optional dependency is missing; the message says what to install."""


class StoreError(SwarmlearnError):
    """The store could not be opened, read or written."""


class SchemaError(StoreError):
    """The database schema version is not one this swarmlearn can use."""


class EnvironmentError_(SwarmlearnError):
    """An environment was driven wrongly (unknown action, step after done …)."""


class BackendError(SwarmlearnError):
    """An LLM backend failed."""


class BackendUnavailable(BackendError):
    """The backend cannot be reached or is not running."""


class BackendTimeout(BackendError):
    """A backend call timed out."""


class BadResponse(BackendError):
    """The backend answered, but the answer could not be used."""


class TrainingError(SwarmlearnError):
    """A trainer could not train, save or load."""


class ArtifactError(SwarmlearnError):
    """A learned artifact (snapshot, profile, adapter, checkpoint) is malformed."""


EXIT_CODES: dict[type[SwarmlearnError], int] = {
    ScenarioError: 3,
    ConfigError: 2,
    MissingExtraError: 4,
    SchemaError: 6,
    StoreError: 5,
    BackendError: 7,
    TrainingError: 8,
    ArtifactError: 9,
    EnvironmentError_: 10,
}


def exit_code_for(exc: SwarmlearnError) -> int:
    """The CLI exit code for ``exc``: the entry of its nearest class, else 1."""
    for cls in type(exc).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return 1
