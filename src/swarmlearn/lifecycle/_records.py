"""The records of the artifact lifecycle: states, lineage, one stored version.

States and the moves between them (:data:`TRANSITIONS`)::

    candidate ──► evaluating ──► promoted ──► retired
        │             │
        │             └────────► rejected ──► retired
        └──────────────────────► rejected          (produce or evaluate failed)

``promoted`` means "has been champion": the live champion and the previous
champions kept for rollback (the last ``history`` of them). Leaving the
history, or being rolled back from, is ``retired``. Which version is live is
not a state but an **alias**: ``champion`` and ``challenger`` per (kind,
scope), where the scope is the scenario label (``troubleshooting[heldout]``).
Rejected versions keep their payload and their gate numbers.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from swarmlearn.errors import ArtifactError
from swarmlearn.store import ArtifactRecord

__all__ = [
    "TRANSITIONS",
    "Alias",
    "ArtifactState",
    "ArtifactVersion",
    "Lineage",
    "Produced",
    "check_move",
]


class ArtifactState(enum.StrEnum):
    CANDIDATE = "candidate"
    EVALUATING = "evaluating"
    PROMOTED = "promoted"
    REJECTED = "rejected"
    RETIRED = "retired"


class Alias(enum.StrEnum):
    CHAMPION = "champion"
    CHALLENGER = "challenger"


_S = ArtifactState
TRANSITIONS: Mapping[ArtifactState, frozenset[ArtifactState]] = {
    _S.CANDIDATE: frozenset({_S.EVALUATING, _S.REJECTED}),
    _S.EVALUATING: frozenset({_S.PROMOTED, _S.REJECTED}),
    _S.PROMOTED: frozenset({_S.RETIRED}),
    _S.REJECTED: frozenset({_S.RETIRED}),
    _S.RETIRED: frozenset(),
}


def check_move(before: ArtifactState | str, after: ArtifactState) -> ArtifactState:
    """The state ``before`` (as an ArtifactState); ArtifactError unless ``before → after``
    is a move of the lifecycle."""
    try:
        state = ArtifactState(before)
    except ValueError:
        raise ArtifactError(f"unknown artifact state {before!r}") from None
    if after not in TRANSITIONS[state]:
        allowed = ", ".join(sorted(TRANSITIONS[state])) or "none"
        raise ArtifactError(f"cannot move an artifact from {state} to {after} "
                            f"(from {state}: {allowed})")
    return state


@dataclass(frozen=True, kw_only=True, slots=True)
class Lineage:
    """Where a version came from: its parent version, inputs, config, code version, metrics.

    ``inputs`` names the data (session ids, episode id range, data-set
    artifact ids …); ``config`` the producing config; ``metrics`` what the
    producer measured (training loss, episodes seen …). All JSON values.
    """

    parent: int | None = None  # the artifact id this version was built from
    inputs: Mapping[str, Any] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)
    code_version: str = ""
    metrics: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.code_version:
            from swarmlearn import __version__

            object.__setattr__(self, "code_version", __version__)
        for name in ("inputs", "config", "metrics"):
            try:
                json.dumps(getattr(self, name), allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise ArtifactError(f"lineage.{name}: not JSON ({exc})") from exc

    def to_dict(self) -> dict[str, Any]:
        return {"parent": self.parent, "inputs": dict(self.inputs), "config": dict(self.config),
                "code_version": self.code_version, "metrics": dict(self.metrics)}

    @classmethod
    def from_dict(cls, data: Any) -> Lineage:
        if not isinstance(data, Mapping):
            return cls()
        parent = data.get("parent")
        return cls(parent=int(parent) if isinstance(parent, int) else None,
                   inputs=dict(data.get("inputs") or {}), config=dict(data.get("config") or {}),
                   code_version=str(data.get("code_version") or ""),
                   metrics=dict(data.get("metrics") or {}))


@dataclass(frozen=True, kw_only=True, slots=True)
class Produced:
    """What a kind's ``produce`` returns: the payload to store, a summary, the lineage.

    ``payload`` is the artifact's bytes (JSON, safetensors or GGUF — never a
    pickle); a kind whose payload is a file too large for the store may store
    a small JSON pointer and keep the file in a directory of versions.
    ``summary`` is kept in the record's meta so listings need no decoding.
    """

    payload: bytes
    format_version: int = 1
    summary: Mapping[str, Any] = field(default_factory=dict)
    lineage: Lineage = field(default_factory=Lineage)


@dataclass(frozen=True, slots=True)
class ArtifactVersion:
    """One stored version of a lifecycle artifact (a view on its store record)."""

    record: ArtifactRecord

    @property
    def id(self) -> int:
        return self.record.id

    @property
    def kind(self) -> str:
        return self.record.kind

    @property
    def scope(self) -> str:
        return self.record.name

    @property
    def version(self) -> int:
        return self.record.version

    @property
    def state(self) -> ArtifactState:
        try:
            return ArtifactState(self.record.status)
        except ValueError:
            return ArtifactState.CANDIDATE  # pre-lifecycle rows

    @property
    def payload(self) -> bytes:
        if self.record.payload is None:
            raise ArtifactError(f"{self.label}: the record was read without its payload")
        return self.record.payload

    @property
    def meta(self) -> Mapping[str, Any]:
        return self.record.meta

    @property
    def lineage(self) -> Lineage:
        return Lineage.from_dict(self.record.meta.get("lineage"))

    @property
    def gate(self) -> Mapping[str, Any] | None:
        """The gate's numbers for this version (as the challenger), if it was gated."""
        found = self.record.meta.get("gate")
        return found if isinstance(found, Mapping) else None

    @property
    def gated_rate(self) -> float | None:
        """The success rate this version showed on held-out tasks when it was gated."""
        g = self.gate
        if g is None:
            return None
        return float(g["challenger"]["success_rate"])

    @property
    def label(self) -> str:
        return f"{self.kind}/{self.scope} v{self.version}"

    def __repr__(self) -> str:
        return f"ArtifactVersion({self.label}, {self.state})"
