"""Actions, the candidates a worker chooses among, and what an action returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["Action", "ActionResult", "ActionSpec", "Candidate"]


class Action(NamedTuple):
    """One concrete action: a name, an optional target and string arguments.

    A NamedTuple: cheap to build and hash, immutable, usable as a dict key.
    """

    name: str
    target: str = ""
    args: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> str:
        """``name`` or ``name:target`` — the identity learners count by."""
        return f"{self.name}:{self.target}" if self.target else self.name

    def __str__(self) -> str:
        return f"{self.name}({self.target})" if self.target else f"{self.name}()"


class Candidate(NamedTuple):
    """An action a worker may take now, with what is known of its target.

    ``context`` is the visible state of the target (``"unchecked"``,
    ``"degraded"``, ``"diagnosed"`` …) — information any worker could see,
    never the environment's hidden state. Learners count (context, action).
    """

    action: Action
    context: str = ""


class ActionResult(NamedTuple):
    """What an action did: success, text output, an error, and new facts.

    ``success`` means the action was useful (made progress or found something
    new); learners count it. ``invalid`` marks an action the environment does
    not know (unknown name or target) — e.g. a malformed LLM reply.
    """

    success: bool
    output: str = ""
    error: str = ""
    discoveries: tuple[str, ...] = ()
    invalid: bool = False


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """An action kind of an environment's action set.

    ``after`` lists the action kinds that must have been done on the same
    target for this one to be useful: the environment's documented (static)
    dependency graph, which planners fall back to.
    """

    name: str
    description: str
    targets: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
