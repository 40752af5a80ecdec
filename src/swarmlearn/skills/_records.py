"""Typed records of what went wrong in a step: nothing is a silent zero or an empty string."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Failure", "FailureKind"]


class FailureKind(enum.StrEnum):
    OUTAGE = "outage"  # the target or optimizer could not be reached (after retries)
    UNPARSABLE = "unparsable"  # an optimizer reply that is not JSON even after json-repair
    INVALID_EDIT = "invalid_edit"  # a reply's edit lacks a field or names an unknown op
    MISSING_ANCHOR = "missing_anchor"  # an edit whose anchor is not in the document
    REPEATED_REJECTED = "repeated_rejected"  # an edit the gate rejected before, proposed again
    BUDGET = "budget"  # the call or token budget was spent


@dataclass(frozen=True, slots=True)
class Failure:
    kind: FailureKind
    stage: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "stage": self.stage, "detail": self.detail}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Failure:
        return cls(FailureKind(d["kind"]), str(d["stage"]), str(d["detail"]))
