"""Stage 3, merge: many proposals into one coherent set of edits, hierarchically.

Proposals are merged ``fan_in`` at a time, level by level, failure-driven and
success-driven proposals each in their own tree, then the two roots together.
Merging is deterministic and costs no LLM call: the same edit (op, anchor and
content, ignoring case and spacing) proposed several times becomes one edit
whose support is the sum; two different edits on the same anchor conflict, and
the failure-driven one wins, then the better supported, then the first.
"""

from __future__ import annotations

from collections.abc import Sequence

from swarmlearn.errors import ConfigError
from swarmlearn.skills._edits import Edit, Source

__all__ = ["merge", "merge_group"]


def _beats(a: Edit, b: Edit) -> bool:
    """Whether ``a`` wins a conflict with ``b``."""
    rank_a = (a.source is Source.FAILURE, a.support)
    rank_b = (b.source is Source.FAILURE, b.support)
    return rank_a > rank_b


def merge_group(groups: Sequence[Sequence[Edit]]) -> list[Edit]:
    """One merged list from ``groups`` (order kept: first appearance)."""
    by_key: dict[str, Edit] = {}
    for group in groups:
        for e in group:
            old = by_key.get(e.key)
            if old is None:
                by_key[e.key] = e
            else:
                src = Source.FAILURE if Source.FAILURE in (old.source, e.source) else old.source
                by_key[e.key] = Edit(op=old.op, content=old.content, anchor=old.anchor,
                                     support=old.support + e.support, source=src,
                                     rationale=old.rationale or e.rationale)
    winners: dict[str, Edit] = {}
    for e in by_key.values():
        k = e.anchor_key
        if not k:
            continue
        if k not in winners or _beats(e, winners[k]):
            winners[k] = e
    return [e for e in by_key.values() if not e.anchor_key or winners[e.anchor_key] is e]


def _tree(groups: list[list[Edit]], fan_in: int) -> list[Edit]:
    if not groups:
        return []
    while len(groups) > 1:
        groups = [merge_group(groups[i:i + fan_in]) for i in range(0, len(groups), fan_in)]
    return merge_group(groups)


def merge(proposals: Sequence[Sequence[Edit]], *, fan_in: int = 4) -> list[Edit]:
    """Merge per-minibatch ``proposals`` (module docstring)."""
    if fan_in < 2:
        raise ConfigError(f"merge fan_in must be >= 2, got {fan_in}", field="merge_fan_in",
                          value=fan_in)
    fail = [[e for e in p if e.source is Source.FAILURE] for p in proposals]
    succ = [[e for e in p if e.source is Source.SUCCESS] for p in proposals]
    return merge_group([_tree([g for g in fail if g], fan_in),
                        _tree([g for g in succ if g], fan_in)])
