"""The rejected-edit memory, with credit assignment for candidates of several edits.

When the gate rejects a candidate made of one edit, that edit is **rejected**:
it is shown to the optimizer as tried and rejected, and if proposed again it is
dropped (``repeated_rejected``) before it costs a validation. When the gate
rejects a candidate of several edits, nobody knows which of them hurt: each is
a **suspect** (shown to the optimizer as "rejected together with other edits").
A suspect is never again combined with other edits: while any unsuspected edit
is proposed the suspects wait (``deferred``); when only suspects are proposed,
the first of them in the selection order is tried alone — rejected alone it
becomes rejected, accepted it leaves the memory. So a good edit that was
bundled with a harmful one is not lost (skillrl 1.0.0 has no memory at all;
a memory that blamed every edit of a rejected bundle would lose it).

The memory is a list of JSON records in the checkpoint; every function here
is pure over it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from swarmlearn.skills._edits import Edit
from swarmlearn.skills._select import fallback_order

__all__ = ["clear", "isolate", "record_rejection", "rejected_keys", "shown", "suspect_keys"]


def rejected_keys(memory: Sequence[Mapping[str, Any]]) -> set[str]:
    return {r["key"] for r in memory if r.get("alone", True)}


def suspect_keys(memory: Sequence[Mapping[str, Any]]) -> set[str]:
    return {r["key"] for r in memory if not r.get("alone", True)}


def record_rejection(memory: list[dict[str, Any]], applied: Sequence[Edit],
                     step: int) -> None:
    """Remember the applied edits of a rejected candidate (alone: rejected; else suspects)."""
    alone = len(applied) == 1
    index = {r["key"]: r for r in memory}
    for e in applied:
        old = index.get(e.key)
        if old is None:
            rec = {"key": e.key, "step": step, "alone": alone, **e.to_dict()}
            memory.append(rec)
            index[e.key] = rec
        elif alone and not old.get("alone", True):
            old.update(alone=True, step=step)


def clear(memory: list[dict[str, Any]], accepted: Iterable[Edit]) -> None:
    """Suspects in an accepted candidate were innocent: forget them."""
    keys = {e.key for e in accepted}
    memory[:] = [r for r in memory if r["key"] not in keys or r.get("alone", True)]


def isolate(edits: Sequence[Edit], memory: Sequence[Mapping[str, Any]]
            ) -> tuple[list[Edit], list[Edit]]:
    """(kept, deferred): the unsuspected edits, or else the first suspect (failure-driven
    first, then by support) alone."""
    suspects = suspect_keys(memory)
    clean = [e for e in edits if e.key not in suspects]
    if clean or not edits:
        return clean, [e for e in edits if e.key in suspects]
    first = fallback_order(edits)[0]
    return [first], [e for e in edits if e is not first]


def shown(memory: Sequence[Mapping[str, Any]], limit: int) -> list[str]:
    """The lines of the optimizer prompt, the most recent ``limit`` records."""
    out = []
    for r in list(memory)[-limit:] if limit else []:
        tag = "" if r.get("alone", True) else " (rejected together with other edits)"
        out.append(f"{r['op']} anchor={r['anchor'][:80]!r} content={r['content'][:160]!r}{tag}")
    return out
