"""Stage 4, select: keep at most the step's edit budget, ranked by the optimizer.

Within budget, every edit is kept and no call is made. Over budget, the
optimizer ranks the edits (one call, reply ``{"order": [indices]}``); a reply
that cannot be used is a recorded :class:`Failure` and the edits are then taken
failure-driven first, then by support (the order is still deterministic).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from swarmlearn.errors import BadResponse
from swarmlearn.llm import CompletionRequest, JsonReplyParser, LLMClient, Message
from swarmlearn.skills._edits import Edit, Source
from swarmlearn.skills._records import Failure, FailureKind

__all__ = ["Selection", "fallback_order", "select"]

RANK_SYSTEM = ("You rank proposed edits to a skill document by how much each would help an "
               "agent solve its tasks. The most useful first.")


@dataclass(frozen=True, slots=True)
class Selection:
    edits: tuple[Edit, ...]
    ranked_by: str  # "all" (within budget), "optimizer" or "fallback"
    failures: tuple[Failure, ...] = ()


def fallback_order(edits: Sequence[Edit]) -> list[Edit]:
    """Failure-driven first, then by support, then as proposed."""
    return sorted(edits, key=lambda e: (e.source is not Source.FAILURE, -e.support))


def _request(skill: str, edits: Sequence[Edit], budget: int) -> CompletionRequest:
    lines = [f"[{i}] {e.op.value} anchor={e.anchor[:120]!r} content={e.content[:200]!r} "
             f"support={e.support} source={e.source.value}" for i, e in enumerate(edits)]
    user = (f"## Current skill\n{skill.strip() or '(empty)'}\n\n## Proposed edits\n"
            + "\n".join(lines) + f"\n\nPick the {budget} most useful. Reply with JSON only: "
            '{"order": [indices, most useful first]}')
    schema = {"type": "object", "properties": {"order": {
        "type": "array", "items": {"type": "integer", "minimum": 0, "maximum": len(edits) - 1},
        "maxItems": len(edits)}}, "required": ["order"]}
    return CompletionRequest(messages=(Message.system(RANK_SYSTEM), Message.user(user)),
                             max_tokens=256, temperature=0.0, purpose="rank", json_schema=schema)


def _order(text: str, n: int) -> list[int]:
    value = JsonReplyParser().parse(text).value
    order = value.get("order") if isinstance(value, dict) else value
    if not isinstance(order, list):
        raise BadResponse(f"reply has no 'order' list: {text[:120]!r}")
    out: list[int] = []
    for x in order:
        if isinstance(x, int) and not isinstance(x, bool) and 0 <= x < n and x not in out:
            out.append(x)
    if not out:
        raise BadResponse(f"reply names no edit index in 0..{n - 1}: {text[:120]!r}")
    return out


def select(client: LLMClient, skill: str, edits: Sequence[Edit], budget: int) -> Selection:
    if len(edits) <= budget:
        return Selection(tuple(edits), "all")
    reply = client.complete(_request(skill, edits, budget))  # an outage raises
    try:
        order = _order(reply.text, len(edits))
    except BadResponse as exc:
        why = Failure(FailureKind.UNPARSABLE, "rank", f"{exc}; kept the fallback order")
        return Selection(tuple(fallback_order(edits)[:budget]), "fallback", (why,))
    rest = [e for i, e in enumerate(fallback_order(edits)) if edits.index(e) not in order]
    picked = [edits[i] for i in order] + rest
    return Selection(tuple(picked[:budget]), "optimizer")
