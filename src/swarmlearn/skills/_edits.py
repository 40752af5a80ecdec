"""Anchored edits on a skill document and their application, with a per-edit report.

An :class:`Edit` is one of ``append`` (content at the end), ``insert_after``
(content on the line after the line holding ``anchor``), ``replace`` (the first
occurrence of ``anchor`` by ``content``) and ``delete`` (the first occurrence
of ``anchor``). :func:`apply_edits` is pure: it returns the new document and one
:class:`EditOutcome` per edit; an edit whose anchor is missing is reported as
``missing_anchor`` and changes nothing (it is never silently turned into an
append, nor dropped from the report).
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from swarmlearn.errors import BadResponse

__all__ = [
    "Edit",
    "EditOp",
    "EditOutcome",
    "EditStatus",
    "Source",
    "apply_edits",
    "skill_hash",
]


class EditOp(enum.StrEnum):
    APPEND = "append"
    INSERT_AFTER = "insert_after"
    REPLACE = "replace"
    DELETE = "delete"


class Source(enum.StrEnum):
    """Which reflection proposed an edit: on failed or on solved tasks."""

    FAILURE = "failure"
    SUCCESS = "success"


class EditStatus(enum.StrEnum):
    APPLIED = "applied"
    MISSING_ANCHOR = "missing_anchor"
    NO_CHANGE = "no_change"  # the edit would leave the document as it is


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


@dataclass(frozen=True, kw_only=True, slots=True)
class Edit:
    """One anchored edit; ``support`` counts the trajectories behind it."""

    op: EditOp
    content: str = ""
    anchor: str = ""
    support: int = 1
    source: Source = Source.FAILURE
    rationale: str = ""

    def __post_init__(self) -> None:
        if self.op is not EditOp.APPEND and not self.anchor.strip():
            raise BadResponse(f"edit {self.op.value}: needs a non-empty 'anchor'")
        if self.op is not EditOp.DELETE and not self.content.strip():
            raise BadResponse(f"edit {self.op.value}: needs a non-empty 'content'")
        if self.support < 1:
            raise BadResponse(f"edit support must be >= 1, got {self.support}")

    @property
    def key(self) -> str:
        """What makes two edits the same edit (whitespace and case ignored)."""
        return f"{self.op.value}|{_norm(self.anchor)}|{_norm(self.content)}"

    @property
    def anchor_key(self) -> str:
        """Edits on the same anchor conflict (appends never do)."""
        return "" if self.op is EditOp.APPEND else _norm(self.anchor)

    def with_support(self, support: int) -> Edit:
        return replace(self, support=support)

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op.value, "content": self.content, "anchor": self.anchor,
                "support": self.support, "source": self.source.value,
                "rationale": self.rationale}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: Source | None = None,
                  support: int | None = None) -> Edit:
        """An edit from a reply or a checkpoint; BadResponse says what is wrong."""
        if not isinstance(data, Mapping):
            raise BadResponse(f"an edit must be an object, got {type(data).__name__}")
        try:
            op = EditOp(str(data.get("op", "")).strip().lower())
        except ValueError:
            raise BadResponse(f"edit op {data.get('op')!r} is not one of "
                              f"{', '.join(o.value for o in EditOp)}") from None
        raw_support = data.get("support", support if support is not None else 1)
        try:
            n = int(raw_support)
        except (TypeError, ValueError):
            raise BadResponse(f"edit support {raw_support!r} is not an integer") from None
        src = source if source is not None else Source(str(data.get("source", "failure")))
        return cls(op=op, content=str(data.get("content", "") or ""),
                   anchor=str(data.get("anchor", data.get("target", "")) or ""),
                   support=max(1, n), source=src, rationale=str(data.get("rationale", "") or ""))


@dataclass(frozen=True, slots=True)
class EditOutcome:
    """What applying one edit did."""

    index: int
    edit: Edit
    status: EditStatus

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "status": self.status.value, "edit": self.edit.to_dict()}


def _apply_one(doc: str, e: Edit) -> tuple[str, EditStatus]:
    if e.op is EditOp.APPEND:
        new = (doc.rstrip() + "\n" if doc.strip() else "") + e.content.strip() + "\n"
        return new, EditStatus.APPLIED
    at = doc.find(e.anchor)
    if at < 0:
        return doc, EditStatus.MISSING_ANCHOR
    end = at + len(e.anchor)
    if e.op is EditOp.INSERT_AFTER:
        nl = doc.find("\n", end)
        cut = len(doc) if nl < 0 else nl + 1
        head = doc[:cut] if nl >= 0 else doc[:cut] + "\n"
        new = head + e.content.strip() + "\n" + doc[cut:]
    elif e.op is EditOp.REPLACE:
        new = doc[:at] + e.content.strip() + doc[end:]
    else:
        new = doc[:at] + doc[end:]
        while "\n\n\n" in new:
            new = new.replace("\n\n\n", "\n\n")
    return new, (EditStatus.APPLIED if new != doc else EditStatus.NO_CHANGE)


def apply_edits(doc: str, edits: Sequence[Edit]) -> tuple[str, tuple[EditOutcome, ...]]:
    """Apply ``edits`` in order; the new document and one outcome per edit."""
    out = []
    for i, e in enumerate(edits):
        doc, status = _apply_one(doc, e)
        out.append(EditOutcome(i, e, status))
    return doc, tuple(out)


def skill_hash(doc: str) -> str:
    """A short stable id of a document's text."""
    return hashlib.sha256(doc.encode("utf-8")).hexdigest()[:16]
