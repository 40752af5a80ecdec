"""The rejected-edit memory, with credit assignment for candidates of several edits.

When the gate rejects a candidate made of one edit, that edit is **rejected**:
it is shown to the optimizer as tried and rejected, and if proposed again it is
dropped (``repeated_rejected``) before it costs a validation. When the gate
rejects a candidate of several edits, nobody knows which of them hurt: each is
a **suspect** (shown to the optimizer as "rejected together with other edits").
A suspect is never again combined with other edits: while any unsuspected edit
is proposed the suspects wait (``deferred``); when a step proposes nothing
unsuspected, the first suspect in the selection order — proposed again in this
step or only remembered, as long as it still applies to the skill — is tried
alone: rejected alone it becomes rejected, accepted it leaves the memory. So a
good edit that was bundled with a harmful one is not lost, even when the
optimizer never proposes it again word for word (a real model seldom does).
skillrl 1.0.0 has no memory at all; a memory that blamed every edit of a
rejected bundle would lose it, and one that waited for it to be proposed again
would too.

The memory is a list of JSON records in the checkpoint; every function here
is pure over it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from swarmlearn.skills._edits import Edit, EditOp
from swarmlearn.skills._select import fallback_order

__all__ = ["applies", "clear", "isolate", "record_rejection", "rejected_keys", "shown",
           "suspect_keys"]


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


def applies(edit: Edit, skill: str) -> bool:
    """Whether ``edit`` would change ``skill`` (its anchor is there; an append's text is
    not there yet)."""
    if edit.op is EditOp.APPEND:
        return edit.content.strip() not in skill
    return edit.anchor in skill


def isolate(edits: Sequence[Edit], memory: Sequence[Mapping[str, Any]], skill: str
            ) -> tuple[list[Edit], list[Edit]]:
    """(kept, deferred): the unsuspected ``edits``, or else the first suspect
    (failure-driven first, then by support) alone — one of ``edits`` or one only
    remembered that still applies to ``skill``."""
    suspects = suspect_keys(memory)
    clean = [e for e in edits if e.key not in suspects]
    if clean:
        return clean, [e for e in edits if e.key in suspects]
    proposed = {e.key for e in edits}
    waiting = [e for e in (Edit.from_dict(r) for r in memory
                           if not r.get("alone", True) and r["key"] not in proposed)
               if applies(e, skill)]
    if not edits and not waiting:
        return [], []
    first = fallback_order([*edits, *waiting])[0]
    return [first], [e for e in edits if e is not first]


def shown(memory: Sequence[Mapping[str, Any]], limit: int) -> list[str]:
    """The lines of the optimizer prompt, the most recent ``limit`` records."""
    out = []
    for r in list(memory)[-limit:] if limit else []:
        tag = "" if r.get("alone", True) else " (rejected together with other edits)"
        out.append(f"{r['op']} anchor={r['anchor'][:80]!r} content={r['content'][:160]!r}{tag}")
    return out
