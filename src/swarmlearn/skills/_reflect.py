"""Stage 2, reflect: the optimizer reads failed and solved trajectories, separately, in
minibatches, and proposes anchored edits with support counts.

Each minibatch is one optimizer call, or (``packed``) all of a step's
minibatches are one call whose reply holds one edit list per minibatch. The
reply must be JSON
``{"edits": [{"op", "anchor", "content", "support", "rationale"}]}``; it is
parsed strictly, then repaired with json-repair; a reply that is still not
usable is a recorded :class:`Failure` (``unparsable``), and an edit that lacks
a field is one too (``invalid_edit``) — never a silent "no edits". The prompt
lists the edits the gate rejected before (the run's memory), so the optimizer
does not propose them again.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from swarmlearn.errors import BadResponse
from swarmlearn.llm import CompletionRequest, JsonReplyParser, LLMClient, Message
from swarmlearn.skills._edits import Edit, EditOp, Source
from swarmlearn.skills._env import Trajectory
from swarmlearn.skills._records import Failure, FailureKind

__all__ = ["ReflectResult", "minibatches", "reflect"]

REFLECT_SYSTEM = {
    Source.FAILURE: (
        "You improve a skill document that an AI agent reads before it works on a task. "
        "Below are tasks the agent FAILED with the current skill. Find what the skill "
        "should say so that such tasks are solved, and propose edits to the skill."),
    Source.SUCCESS: (
        "You improve a skill document that an AI agent reads before it works on a task. "
        "Below are tasks the agent SOLVED with the current skill. Find what made them work "
        "and propose edits that make the skill state it clearly (or remove what did not help)."),
}
PACKED_SYSTEM = (
    "You improve a skill document that an AI agent reads before it works on a task. "
    "Below are minibatches of tasks the agent FAILED or SOLVED with the current skill. "
    "Analyse each minibatch on its own: for failed tasks, find what the skill should say so "
    "that they are solved; for solved tasks, what made them work (or what did not help), "
    "and propose edits to the skill for that minibatch.")
#: the format's own placeholder texts: an edit that copies one is invalid (small models do)
PLACEHOLDERS = frozenset(("exact text of the skill (not for append)",
                          "new text (not for delete)", "why"))
PACKED_FORMAT = (
    'Reply with JSON only: {"minibatches": {"<minibatch id, e.g. F1>": [{"op": '
    '"append|insert_after|replace|delete", "anchor": "exact text of the skill (not for '
    'append)", "content": "new text (not for delete)", "support": <how many of its tasks '
    'back this edit>, "rationale": "why"}], ...}} with one entry per minibatch (an empty '
    'list if it needs no edit).')
REPLY_FORMAT = (
    'Reply with JSON only: {"edits": [{"op": "append|insert_after|replace|delete", '
    '"anchor": "exact text of the skill (not for append)", "content": "new text (not for '
    'delete)", "support": <how many of the tasks back this edit>, "rationale": "why"}]}')


@dataclass(frozen=True, slots=True)
class ReflectResult:
    proposals: tuple[tuple[Edit, ...], ...]  # one per minibatch (the merge's leaves)
    failures: tuple[Failure, ...]

    @property
    def edits(self) -> tuple[Edit, ...]:
        return tuple(e for p in self.proposals for e in p)


def minibatches(items: Sequence[Trajectory], size: int, seed: int) -> list[list[Trajectory]]:
    """``items`` shuffled by ``seed`` and cut into minibatches of at most ``size``."""
    order = list(items)
    random.Random(seed).shuffle(order)
    return [order[i:i + size] for i in range(0, len(order), size)]


def edit_schema(budget: int) -> dict[str, Any]:
    """The JSON schema of a list of edits (llama.cpp turns it into a grammar, so even a
    small optimizer model replies with parsable edits)."""
    edit = {"type": "object", "properties": {
        "op": {"type": "string", "enum": [o.value for o in EditOp]},
        "anchor": {"type": "string"}, "content": {"type": "string"},
        "support": {"type": "integer", "minimum": 1}, "rationale": {"type": "string"}},
        "required": ["op", "content"]}
    return {"type": "array", "items": edit, "maxItems": budget}


def _header(skill: str, budget: int, rejected: Sequence[str]) -> list[str]:
    parts = [f"## Current skill\n{skill.strip() or '(empty)'}",
             f"## Edit budget\nAt most {budget} edits per minibatch; fewer is fine."]
    if rejected:
        parts.append("## Edits already tried and rejected by validation (do not propose "
                     "them again)\n" + "\n".join(f"- {r}" for r in rejected))
    return parts


def _tasks(batch: Sequence[Trajectory]) -> str:
    return "\n\n---\n\n".join(f"### Task {t.task}\n{t.text}" for t in batch)


def _prompt(source: Source, skill: str, batch: Sequence[Trajectory], budget: int,
            rejected: Sequence[str]) -> CompletionRequest:
    parts = _header(skill, budget, rejected)
    label = "Failed" if source is Source.FAILURE else "Solved"
    parts.append(f"## {label} tasks ({len(batch)})\n" + _tasks(batch))
    parts.append(REPLY_FORMAT)
    schema = {"type": "object", "properties": {"edits": edit_schema(budget)},
              "required": ["edits"]}
    return CompletionRequest(messages=(Message.system(REFLECT_SYSTEM[source]),
                                       Message.user("\n\n".join(parts))),
                             max_tokens=1024, temperature=0.0, purpose=f"reflect-{source}",
                             json_schema=schema)


def _packed_prompt(jobs: Sequence[tuple[str, Source, Sequence[Trajectory]]], skill: str,
                   budget: int, rejected: Sequence[str]) -> CompletionRequest:
    parts = _header(skill, budget, rejected)
    for mb, source, batch in jobs:
        label = "Failed" if source is Source.FAILURE else "Solved"
        parts.append(f"## Minibatch {mb}: {label} tasks ({len(batch)})\n" + _tasks(batch))
    parts.append(PACKED_FORMAT)
    ids = [mb for mb, _, _ in jobs]
    schema = {"type": "object", "properties": {"minibatches": {
        "type": "object", "properties": {mb: edit_schema(budget) for mb in ids},
        "required": ids, "additionalProperties": False}}, "required": ["minibatches"]}
    return CompletionRequest(messages=(Message.system(PACKED_SYSTEM),
                                       Message.user("\n\n".join(parts))),
                             max_tokens=1024 * min(4, len(jobs)), temperature=0.0,
                             purpose="reflect-packed", json_schema=schema)


def parse_edits(text: str, source: Source, size: int, budget: int,
                stage: str) -> tuple[list[Edit], list[Failure]]:
    """The edits of a reply and a failure per unusable part (the whole reply, or an edit)."""
    try:
        value = JsonReplyParser().parse(text).value
    except BadResponse as exc:
        return [], [Failure(FailureKind.UNPARSABLE, stage, f"{exc}; reply {text[:160]!r}")]
    return edits_of(value, source, size, budget, stage)


def edits_of(value: Any, source: Source, size: int, budget: int,
             stage: str) -> tuple[list[Edit], list[Failure]]:
    raw = value.get("edits") if isinstance(value, dict) else value
    if not isinstance(raw, list):
        return [], [Failure(FailureKind.UNPARSABLE, stage,
                            f"reply has no 'edits' list: {json.dumps(value)[:160]}")]
    edits: list[Edit] = []
    failures: list[Failure] = []
    for i, d in enumerate(raw[:budget]):
        try:
            e = Edit.from_dict(d, source=source, support=size)
        except BadResponse as exc:
            failures.append(Failure(FailureKind.INVALID_EDIT, stage, f"edit {i}: {exc}"))
            continue
        copied = [t for t in (e.content, e.anchor) if t.strip().lower() in PLACEHOLDERS]
        if copied:
            failures.append(Failure(FailureKind.INVALID_EDIT, stage,
                                    f"edit {i}: copies the reply format's placeholder "
                                    f"{copied[0]!r}"))
            continue
        edits.append(e.with_support(min(e.support, size)))
    return edits, failures


def _parse_packed(text: str, jobs: Sequence[tuple[str, Source, Sequence[Trajectory]]],
                  budget: int) -> tuple[list[tuple[Edit, ...]], list[Failure]]:
    """One proposal per minibatch of a packed reply; a missing one is a recorded failure."""
    try:
        value = JsonReplyParser().parse(text).value
    except BadResponse as exc:
        return [()] * len(jobs), [Failure(FailureKind.UNPARSABLE, "reflect[packed]",
                                          f"{exc}; reply {text[:160]!r}")]
    got = value.get("minibatches") if isinstance(value, dict) else None
    if not isinstance(got, dict):
        return [()] * len(jobs), [Failure(
            FailureKind.UNPARSABLE, "reflect[packed]",
            f"reply has no 'minibatches' object: {json.dumps(value)[:160]}")]
    proposals: list[tuple[Edit, ...]] = []
    failures: list[Failure] = []
    for mb, src, batch in jobs:
        stage = f"reflect[{mb}]"
        if mb not in got:
            failures.append(Failure(FailureKind.UNPARSABLE, stage,
                                    f"the reply has no entry for minibatch {mb}"))
            proposals.append(())
            continue
        edits, bad = edits_of({"edits": got[mb]} if isinstance(got[mb], list) else got[mb],
                              src, len(batch), budget, stage)
        proposals.append(tuple(edits))
        failures += bad
    return proposals, failures


def reflect(client: LLMClient, skill: str, trajectories: Sequence[Trajectory], *,
            minibatch_size: int, budget: int, seed: int, rejected: Sequence[str] = (),
            concurrency: int = 4, include_successes: bool = True,
            packed: bool = False) -> ReflectResult:
    """Edits proposed on the failed and (optionally) solved ``trajectories``.

    One call per minibatch, or with ``packed`` one call for all of them (the
    skill, the instructions and the memory sent once; one edit list per
    minibatch back, so the proposals and their sources are the same). A call
    that fails (BackendError after the client's retries) raises: an outage
    stops the step; it is not an empty proposal.
    """
    jobs: list[tuple[str, Source, list[Trajectory]]] = []
    failed = [t for t in trajectories if not t.solved]
    jobs += [(f"F{i + 1}", Source.FAILURE, b)
             for i, b in enumerate(minibatches(failed, minibatch_size, seed))]
    if include_successes:
        solved = [t for t in trajectories if t.solved]
        jobs += [(f"S{i + 1}", Source.SUCCESS, b)
                 for i, b in enumerate(minibatches(solved, minibatch_size, seed + 1))]
    if not jobs:
        return ReflectResult((), ())
    if packed:
        reply = client.complete(_packed_prompt(jobs, skill, budget, rejected))
        props, fails = _parse_packed(reply.text, jobs, budget)
        return ReflectResult(tuple(props), tuple(fails))
    requests = [_prompt(src, skill, b, budget, rejected) for _, src, b in jobs]
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(jobs)))) as pool:
        replies = list(pool.map(client.complete, requests))
    proposals: list[tuple[Edit, ...]] = []
    failures: list[Failure] = []
    for (mb, src, batch), reply in zip(jobs, replies, strict=True):
        got, bad = parse_edits(reply.text, src, len(batch), budget, f"reflect[{mb}]")
        proposals.append(tuple(got))
        failures += bad
    return ReflectResult(tuple(proposals), tuple(failures))
