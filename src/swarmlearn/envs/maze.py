"""Maze: a grid with hidden walls, locked doors, keys and pits; reach the exit.

Dependency structure (targets are the four directions and ``here``)::

    Look(dir) ─► Move(dir)                    (looking first is optional, but shows pits)
    Move … ─► PickUp(here) ─► Unlock(dir) ─► Move(dir)   (a door needs a key)

A ``size`` × ``size`` maze (a random spanning tree, plus ``loops`` extra
openings) whose walls are hidden until looked at or bumped into. The path
to the exit crosses ``doors`` locked doors; each needs a key, lying in a
cell reachable before it (often off the path). ``pits`` cells off the way
(never on the route to a key or the exit, never beyond the exit) are
deadly: moving into one fails the task — ``Look`` shows them. Contexts are
what the worker sees from where it stands (its own map): per direction
``unknown``, ``open`` (not yet visited), ``backtrack`` (visited, and on the
way back to the nearest unexplored lead), ``visited``, ``wall``, ``door`` /
``unlockable`` (a key is held), ``pit`` or ``exit``; for ``here``, ``key``
or ``empty``. A move is useful if it enters a new cell or backtracks. Distractor actions
never help and cost steps.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import ClassVar

from swarmlearn._config import check_range
from swarmlearn.core.actions import Action, ActionResult, ActionSpec
from swarmlearn.core.environment import BaseEnvironment
from swarmlearn.envs._maze_layout import (
    HERE,
    STEPS,
    Cell,
    Edge,
    Layout,
    State,
    edge,
    generate,
    step,
)

__all__ = ["MazeConfig", "MazeEnv"]

DISTRACTORS = ("Wait", "Shout", "Knock", "DrawMap", "CheckCompass", "Rest")


@dataclass(frozen=True, kw_only=True, slots=True)
class MazeConfig:
    size: int = 4
    doors: int = 1
    pits: int = 1
    loops: float = 0.1
    distractors: int = 2

    def __post_init__(self) -> None:
        check_range("size", self.size, lo=3, hi=12)
        check_range("doors", self.doors, lo=0, hi=min(3, self.size - 2))
        check_range("pits", self.pits, lo=0, hi=self.size - 2)
        check_range("loops", self.loops, lo=0.0, hi=0.5)
        check_range("distractors", self.distractors, lo=0, hi=len(DISTRACTORS))


class MazeEnv(BaseEnvironment):
    kind: ClassVar[str] = "maze"
    sequential: ClassVar[bool] = True  # one walker: the workers take turns
    contexts: ClassVar[tuple[str, ...]] = (
        "exit", "unlockable", "key", "open", "unknown", "backtrack",
        "visited", "door", "empty", "wall", "pit",
    )
    settled: ClassVar[tuple[str, ...]] = ("visited", "door", "empty", "wall", "pit")
    optional_actions: ClassVar[tuple[str, ...]] = DISTRACTORS

    def __init__(self, config: MazeConfig | None = None) -> None:
        super().__init__()
        self.config = config or MazeConfig()
        self.layout = Layout(self.config.size, (0, 0), (0, 0), set(), set(), set(), set())
        self.pos: Cell = (0, 0)
        self._visited: set[Cell] = set()
        self._known: dict[Edge, str] = {}  # edge → "wall" | "open" | "door", as seen
        self._seen: dict[Cell, str] = {}  # cell → "pit" | "exit" | "key", as seen
        self._picked: set[Cell] = set()
        self._opened: set[Edge] = set()
        self._distractors: list[str] = []
        self._optimal = 1

    def _setup(self) -> None:
        cfg = self.config
        self.layout = lay = generate(self.rng, size=cfg.size, doors=cfg.doors, pits=cfg.pits,
                                     loops=cfg.loops)
        self.pos = lay.start
        self._visited = {lay.start}
        self._seen = {}
        self._known = {  # the maze's outer walls are no secret
            edge(c, step(c, d)): "wall"
            for c in lay.cells() for d in STEPS if not lay.inside(step(c, d))
        }
        self._picked, self._opened = set(), set()
        self._distractors = self.rng.sample(DISTRACTORS, cfg.distractors)
        self._optimal = len(lay.plan(self._state()))
        self._discover("position", self._where(self.pos))
        self._refresh()

    def _state(self) -> State:
        return (self.pos, frozenset(self._picked), frozenset(self._opened))

    def solution(self) -> tuple[Action, ...]:
        """The shortest solving sequence from the current state (for tests and oracles)."""
        return tuple(self.layout.plan(self._state()))

    def _optimal_steps(self) -> int:
        return self._optimal

    def _progress(self) -> float:
        return max(0.0, 1.0 - len(self.layout.plan(self._state())) / self._optimal)

    # -- visible state --------------------------------------------------------------
    def _where(self, cell: Cell) -> str:
        return f"{cell[0]},{cell[1]}"

    def _truth(self, d: str) -> str:
        e = edge(self.pos, step(self.pos, d))
        if e in self.layout.doors and e not in self._opened:
            return "door"
        return "open" if e in self.layout.passages else "wall"

    def _is_lead(self, cell: Cell) -> bool:
        """Something is left to do at visited ``cell``, as far as the swarm can see."""
        if self._seen.get(cell) == "key":
            return True
        held = len(self._picked) > len(self._opened)
        for d in STEPS:
            nxt = step(cell, d)
            known = self._known.get(edge(cell, nxt))
            if known is None or (known == "door" and held):
                return True
            if known == "open" and nxt not in self._visited and self._seen.get(nxt) != "pit":
                return True
        return False

    def _lead_distance(self) -> dict[Cell, int]:
        """Steps from each visited cell to the nearest lead, over passages known to be open."""
        dist = {c: 0 for c in self._visited if self._is_lead(c)}
        queue = deque(dist)
        while queue:
            cell = queue.popleft()
            for d in STEPS:
                nxt = step(cell, d)
                if (nxt in self._visited and nxt not in dist
                        and self._known.get(edge(cell, nxt)) == "open"):
                    dist[nxt] = dist[cell] + 1
                    queue.append(nxt)
        return dist

    def _direction_context(self, d: str, lead: dict[Cell, int]) -> str:
        nxt = step(self.pos, d)
        known = self._known.get(edge(self.pos, nxt))
        if known is None or known == "wall":
            return known or "unknown"
        if known == "door":
            return "unlockable" if len(self._picked) > len(self._opened) else "door"
        seen = self._seen.get(nxt)
        if seen in ("pit", "exit"):
            return seen
        if nxt not in self._visited:
            return "open"
        far = len(self._visited)
        return "backtrack" if lead.get(nxt, far) < lead.get(self.pos, far) else "visited"

    def _refresh(self) -> None:
        lead = self._lead_distance()
        for d in STEPS:
            self._set_context(d, self._direction_context(d, lead))
        loose = self.pos in self.layout.keys and self.pos not in self._picked
        self._set_context(HERE, "key" if loose else "empty")

    def render_text(self) -> str:
        marks = {"pit": "O", "exit": "E", "key": "k"}
        rows = []
        for y in range(self.config.size):
            row = ""
            for x in range(self.config.size):
                cell = (x, y)
                mark = "@" if cell == self.pos else marks.get(self._seen.get(cell, ""), "")
                row += mark or ("." if cell in self._visited else "?")
            rows.append(row)
        around = ", ".join(f"{d}: {self.context(d)}" for d in STEPS)
        held = len(self._picked) - len(self._opened)
        return "\n".join([
            f"Task: {self.task_text()}", "Map (@ you, . visited, ? unknown, k key, O pit, E exit):",
            *rows, f"Around you: {around}; here: {self.context(HERE)}",
            f"Keys held: {held}", f"Actions taken: {self.steps}",
        ])

    # -- actions ---------------------------------------------------------------------
    def _specs(self) -> tuple[ActionSpec, ...]:
        dirs = tuple(STEPS)
        specs = [
            ActionSpec("Look", "Look in a direction: wall, passage, door, and what lies beyond.",
                       dirs),
            ActionSpec("Move", "Move one cell in a direction.", dirs),
            ActionSpec("PickUp", "Pick up a key lying here.", (HERE,), ("Move",)),
            ActionSpec("Unlock", "Unlock a door in a direction with a key held.", dirs,
                       ("PickUp",)),
        ]
        specs.extend(ActionSpec(name, f"{name}.") for name in self._distractors)
        return tuple(specs)

    def task_text(self) -> str:
        doors = f" {self.config.doors} locked door(s) need keys found in the maze." \
            if self.config.doors else ""
        return (
            f"Find the exit of a {self.config.size}x{self.config.size} maze whose walls are "
            f"hidden.{doors} Pits are deadly: look before you move."
        )

    def _apply(self, action: Action) -> ActionResult:
        name, t = action.name, action.target
        if name == "Look":
            return self._look(t)
        if name == "Move":
            return self._move(t)
        if name == "PickUp":
            return self._pick_up()
        if name == "Unlock":
            return self._unlock(t)
        self._charge(0.2)
        return ActionResult(False, output=f"{name}: nothing happens")

    def _look(self, d: str) -> ActionResult:
        if self.context(d) != "unknown":
            return ActionResult(False, output=f"{d}: already seen ({self.context(d)})")
        nxt = step(self.pos, d)
        kind = self._truth(d)
        self._known[edge(self.pos, nxt)] = kind
        beyond = ""
        if kind == "open":
            content = "exit" if nxt == self.layout.exit else "pit" if nxt in self.layout.pits else (
                "key" if nxt in self.layout.keys and nxt not in self._picked else "")
            if content:
                self._seen[nxt] = content
                self._discover(f"cell {self._where(nxt)}", content)
                beyond = f", {content} beyond"
        self._refresh()
        # useful when it shows a way on (an opening, a door) or a danger; a wall is a dead end
        return ActionResult(kind != "wall", output=f"{d}: {kind}{beyond}")

    def _move(self, d: str) -> ActionResult:
        toward_lead = self.context(d) == "backtrack"
        nxt = step(self.pos, d)
        kind = self._truth(d)
        self._known[edge(self.pos, nxt)] = kind
        if kind != "open":
            self._charge(0.1)
            self._refresh()
            blocked = "a locked door blocks the way" if kind == "door" else "bumped into a wall"
            return ActionResult(False, error=f"Move({d}): {blocked}")
        self.pos = nxt
        self._discover("position", self._where(nxt))
        if nxt in self.layout.pits:
            self._fail(f"fell into a pit at {self._where(nxt)}")
            return ActionResult(False, error=f"Move({d}): fell into a pit")
        if nxt == self.layout.exit:
            self._solve()
            return ActionResult(True, output=f"Move({d}): reached the exit",
                                discoveries=("exit=reached",))
        new = nxt not in self._visited
        self._visited.add(nxt)
        if nxt in self.layout.keys and nxt not in self._picked:
            self._seen[nxt] = "key"
        self._refresh()
        return ActionResult(new or toward_lead, output=f"Move({d}): now at {self._where(nxt)}"
                            + ("" if new else " (visited before)"))

    def _pick_up(self) -> ActionResult:
        if self.context(HERE) != "key":
            return ActionResult(False, output="PickUp: nothing here")
        self._picked.add(self.pos)
        self._seen.pop(self.pos, None)
        self._discover("keys_held", str(len(self._picked) - len(self._opened)))
        self._refresh()
        return ActionResult(True, output="PickUp: got a key", discoveries=("key=picked",))

    def _unlock(self, d: str) -> ActionResult:
        kind = self._truth(d)
        if kind != "door":
            self._charge(0.2)
            return ActionResult(False, error=f"Unlock({d}): no door there")
        door = edge(self.pos, step(self.pos, d))
        self._known[door] = "door"
        if len(self._picked) <= len(self._opened):
            self._refresh()
            return ActionResult(False, error=f"Unlock({d}): locked, you need a key")
        self._opened.add(door)
        self._known[door] = "open"
        self._discover("keys_held", str(len(self._picked) - len(self._opened)))
        self._refresh()
        return ActionResult(True, output=f"Unlock({d}): the door opens",
                            discoveries=(f"door {d}=opened",))
