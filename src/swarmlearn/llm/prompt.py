"""The one place that defines what an LLM worker reads and how it answers.

The LLM worker builds its request here, parses the reply here, and the LoRA
trainer builds its training examples here (``build_messages`` + ``format_reply``),
so a model is always trained on exactly the prompt it will be asked.

The reply is a JSON object ``{"action": "<Name>(<target>)"}`` whose
``action`` is constrained by the JSON schema to the candidate actions of
this tick (llama.cpp compiles the schema to a grammar), so even a small
model can only name a real action. A reply that still fails validation is
repaired with json-repair, matched leniently (case, spacing, a missing
target) or rejected; the parser counts each outcome.

Layout: what stays the same comes first, what changes last. llama.cpp reuses a
slot's KV cache for the longest common prefix of the previous prompt and the
next one, so every token before the first difference costs nothing::

    system:  the role, the reply format, the skill       same for the whole run
    user:    the usual order of work, the task            same for the whole task
             the targets' state, the action count         changes by a line per action
             the manager's guidance                       changes per tick
             this worker's last actions                   changes per worker and tick
             the available actions                        changes per worker and tick
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from swarmlearn.core.actions import Action, Candidate
from swarmlearn.core.events import ActionEvent
from swarmlearn.errors import BadResponse
from swarmlearn.llm._json import JsonReplyParser
from swarmlearn.llm._types import Message

__all__ = [
    "PROMPT_VERSION",
    "REPLY_FORMAT",
    "PromptInput",
    "action_label",
    "action_schema",
    "build_messages",
    "format_reply",
    "guidance_schema",
    "parse_action",
    "plan_schema",
]

PROMPT_VERSION = 2  # 2: stable parts first (prefix reuse); the reply format in the system text

SYSTEM = (
    "You are a worker in a team solving a task step by step. Each turn you pick exactly one "
    "action from the list of available actions. Prefer actions that make progress on the "
    "task; avoid repeating actions that did nothing."
)
REPLY_FORMAT = 'Answer with JSON: {"action": "<one of the available actions>"}'


def action_label(action: Action) -> str:
    """How an action is written to and by the model: ``Name(target)`` or ``Name()``."""
    return f"{action.name}({action.target})"


@dataclass(frozen=True, kw_only=True, slots=True)
class PromptInput:
    """Everything a decision prompt shows."""

    state: str  # the environment's text rendering
    candidates: Sequence[Candidate]
    guidance: str = ""
    skill: str = ""  # the skill document (markdown), empty by default
    plan: Sequence[str] = ()  # the usual order of action kinds, if known
    history: Sequence[ActionEvent] = ()  # this worker's recent actions, oldest first


def _history_lines(history: Sequence[ActionEvent]) -> list[str]:
    lines = []
    for e in history:
        what = e.result.error or e.result.output or ("ok" if e.result.success else "no effect")
        lines.append(f"- {e.action}({e.target}) -> {what[:80]}")
    return lines


def build_messages(p: PromptInput) -> tuple[Message, ...]:
    """The chat messages of one decision, stable parts first (see the module docstring)."""
    system = f"{SYSTEM}\n{REPLY_FORMAT}"
    if p.skill.strip():
        system += f"\n\n# Skill\n{p.skill.strip()}"
    parts = []
    if p.plan:
        parts.append("Usual order of work: " + " -> ".join(p.plan))
    parts.append(p.state.strip())
    if p.guidance:
        parts.append(f"Manager: {p.guidance}")
    if p.history:
        parts.append("Your last actions:\n" + "\n".join(_history_lines(p.history)))
    parts.append("Available actions:\n" + "\n".join(
        f"- {action_label(c.action)}" + (f"  [{c.context}]" if c.context else "")
        for c in p.candidates))
    return (Message.system(system), Message.user("\n\n".join(parts)))


def action_schema(candidates: Sequence[Candidate]) -> dict[str, Any]:
    """The JSON schema of a reply: ``action`` must be one of the candidates."""
    labels = sorted({action_label(c.action) for c in candidates})
    return {
        "type": "object",
        "properties": {"action": {"type": "string", "enum": labels}},
        "required": ["action"],
        "additionalProperties": False,
    }


def format_reply(action: Action) -> str:
    """The reply a model should give for ``action`` (the SFT target)."""
    return json.dumps({"action": action_label(action)})


_LABEL = re.compile(r"^\s*([A-Za-z_][\w\-]*)\s*(?:\(\s*([^)]*?)\s*\))?\s*$")


def _lenient(label: str, candidates: Sequence[Candidate]) -> Action | None:
    """Match ``label`` to a candidate ignoring case and spaces; a lone name picks its only
    target."""
    m = _LABEL.match(label)
    if not m:
        return None
    name, target = m.group(1).lower(), (m.group(2) or "").lower()
    hits = [c.action for c in candidates if c.action.name.lower() == name
            and (c.action.target.lower() == target or (not target and m.group(2) is None))]
    return hits[0] if len(hits) == 1 or (hits and target) else None


def parse_action(text: str, candidates: Sequence[Candidate],
                 parser: JsonReplyParser | None = None) -> tuple[Action, str]:
    """The action a reply names, and how it was read: ``valid``, ``repaired`` or ``lenient``.

    Raises :class:`BadResponse` when no candidate can be read from the reply.
    """
    parser = parser or JsonReplyParser()
    reply = parser.parse(text)  # raises BadResponse when neither JSON nor repairable
    value = reply.value.get("action") if isinstance(reply.value, Mapping) else None
    if not isinstance(value, str):
        raise BadResponse(f"reply has no 'action' string: {text[:120]!r}")
    by_label = {action_label(c.action): c.action for c in candidates}
    if value in by_label:
        return by_label[value], "repaired" if reply.repaired else "valid"
    found = _lenient(value, candidates)
    if found is not None:
        return found, "lenient"
    raise BadResponse(f"reply names no available action: {value[:80]!r}")


def guidance_schema(targets: Sequence[str]) -> dict[str, Any]:
    """The manager's reply: up to three targets to focus on and a short advice."""
    focus: dict[str, Any] = {"type": "array", "items": {"type": "string", "enum": list(targets)},
                             "maxItems": 3}
    if not targets:
        focus = {"type": "array", "maxItems": 0}
    return {
        "type": "object",
        "properties": {"focus": focus, "advice": {"type": "string", "maxLength": 160}},
        "required": ["focus", "advice"],
        "additionalProperties": False,
    }


def plan_schema(action_names: Sequence[str]) -> dict[str, Any]:
    """A plan: the action kinds in the order they should usually be done."""
    return {
        "type": "object",
        "properties": {"order": {"type": "array", "items": {"type": "string",
                                                            "enum": list(action_names)},
                                 "minItems": 1, "maxItems": len(action_names)}},
        "required": ["order"],
        "additionalProperties": False,
    }
