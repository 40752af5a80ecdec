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
from swarmlearn.errors import EnvironmentError_

__all__ = ["MazeConfig", "MazeEnv"]

Cell = tuple[int, int]
Edge = tuple[Cell, Cell]
State = tuple[Cell, frozenset[Cell], frozenset[Edge]]  # position, keys picked, doors opened

STEPS: dict[str, Cell] = {"north": (0, -1), "south": (0, 1), "east": (1, 0), "west": (-1, 0)}
HERE = "here"
MAX_TRIES = 100

DISTRACTORS = ("Wait", "Shout", "Knock", "DrawMap", "CheckCompass", "Rest")


def _edge(a: Cell, b: Cell) -> Edge:
    return (a, b) if a <= b else (b, a)


def _step(cell: Cell, direction: str) -> Cell:
    dx, dy = STEPS[direction]
    return (cell[0] + dx, cell[1] + dy)


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
    contexts: ClassVar[tuple[str, ...]] = (
        "exit", "unlockable", "key", "open", "unknown", "backtrack",
        "visited", "door", "empty", "wall", "pit",
    )
    settled: ClassVar[tuple[str, ...]] = ("visited", "door", "empty", "wall", "pit")
    optional_actions: ClassVar[tuple[str, ...]] = DISTRACTORS

    def __init__(self, config: MazeConfig | None = None) -> None:
        super().__init__()
        self.config = config or MazeConfig()
        self.start: Cell = (0, 0)
        self.exit: Cell = (0, 0)
        self.passages: set[Edge] = set()
        self.doors: set[Edge] = set()
        self.keys: set[Cell] = set()
        self.pits: set[Cell] = set()
        self.pos: Cell = (0, 0)
        self._visited: set[Cell] = set()
        self._known: dict[Edge, str] = {}  # edge → "wall" | "open" | "door", as seen
        self._seen: dict[Cell, str] = {}  # cell → "pit" | "exit" | "key", as seen
        self._picked: set[Cell] = set()
        self._opened: set[Edge] = set()
        self._distractors: list[str] = []
        self._optimal = 1

    # -- generation -------------------------------------------------------------
    def _setup(self) -> None:
        for _ in range(MAX_TRIES):
            if self._generate():
                break
        else:  # pragma: no cover - the config ranges make this practically impossible
            raise EnvironmentError_(f"maze: no valid layout for {self.config} in {MAX_TRIES} tries")
        self.pos = self.start
        self._visited = {self.start}
        self._seen = {}
        self._known = {  # the maze's outer walls are no secret
            _edge(c, _step(c, d)): "wall"
            for c in self._cells() for d in STEPS if not self._inside(_step(c, d))
        }
        self._picked, self._opened = set(), set()
        self._distractors = self.rng.sample(DISTRACTORS, self.config.distractors)
        self._optimal = len(self._plan(self._state()))
        self._discover("position", self._where(self.pos))
        self._refresh()

    def _cells(self) -> list[Cell]:
        n = self.config.size
        return [(x, y) for y in range(n) for x in range(n)]

    def _inside(self, cell: Cell) -> bool:
        return 0 <= cell[0] < self.config.size and 0 <= cell[1] < self.config.size

    def _generate(self) -> bool:
        """One random layout; False if pits or keys found no room (the caller retries)."""
        rng, cfg = self.rng, self.config
        self.passages = self._spanning_tree()
        parent, dist = self._tree_bfs()
        far = max(dist.values())
        self.exit = rng.choice([c for c in self._cells() if 2 * dist[c] >= far + 1])
        path = [self.exit]
        while path[-1] != self.start:
            path.append(parent[path[-1]])
        path.reverse()
        if len(path) - 2 < cfg.doors:
            return False
        at = sorted(rng.sample(range(1, len(path) - 1), cfg.doors))
        self.doors = {_edge(path[i], path[i + 1]) for i in at}
        behind = self._doors_behind(parent, dist)
        self.keys = set()
        for j in range(cfg.doors):
            free = [c for c in self._cells() if behind[c] <= j and c not in
                    (self.start, self.exit, *self.keys)]
            off_path = [c for c in free if c not in path]
            self.keys.add(rng.choice(off_path or free))
        self._add_loops(behind)
        needed = set(path)
        for key in self.keys:
            cell = key
            while cell != self.start:
                needed.add(cell)
                cell = parent[cell]
        room = [c for c in self._cells() if c not in needed and not self._beyond_exit(c, parent)]
        if len(room) < cfg.pits:
            return False
        self.pits = set(rng.sample(room, cfg.pits))
        return True

    def _beyond_exit(self, cell: Cell, parent: dict[Cell, Cell]) -> bool:
        """True if the tree path from the start to ``cell`` passes the exit (a useless pit)."""
        while cell != self.start:
            cell = parent[cell]
            if cell == self.exit:
                return True
        return False

    def _spanning_tree(self) -> set[Edge]:
        rng = self.rng
        edges: set[Edge] = set()
        seen, stack = {self.start}, [self.start]
        while stack:
            cell = stack[-1]
            nbrs = [c for d in STEPS if self._inside(c := _step(cell, d)) and c not in seen]
            if not nbrs:
                stack.pop()
                continue
            nxt = rng.choice(nbrs)
            edges.add(_edge(cell, nxt))
            seen.add(nxt)
            stack.append(nxt)
        return edges

    def _tree_bfs(self) -> tuple[dict[Cell, Cell], dict[Cell, int]]:
        parent: dict[Cell, Cell] = {}
        dist = {self.start: 0}
        queue = deque([self.start])
        while queue:
            cell = queue.popleft()
            for d in STEPS:
                nxt = _step(cell, d)
                if nxt not in dist and _edge(cell, nxt) in self.passages:
                    dist[nxt], parent[nxt] = dist[cell] + 1, cell
                    queue.append(nxt)
        return parent, dist

    def _doors_behind(self, parent: dict[Cell, Cell], dist: dict[Cell, int]) -> dict[Cell, int]:
        """For each cell, how many doors stand between it and the start (in the tree)."""
        behind = {self.start: 0}
        for cell in sorted(parent, key=lambda c: dist[c]):
            up = parent[cell]
            behind[cell] = behind[up] + (_edge(cell, up) in self.doors)
        return behind

    def _add_loops(self, behind: dict[Cell, int]) -> None:
        """Open extra walls inside a region (never around a door)."""
        for cell in self._cells():
            for d in ("east", "south"):
                nxt = _step(cell, d)
                edge = _edge(cell, nxt)
                if (self._inside(nxt) and edge not in self.passages
                        and self.rng.random() < self.config.loops and behind[cell] == behind[nxt]):
                    self.passages.add(edge)

    # -- planning -----------------------------------------------------------------
    def _state(self) -> State:
        return (self.pos, frozenset(self._picked), frozenset(self._opened))

    def _moves(self, state: State) -> list[tuple[Action, State]]:
        cell, picked, opened = state
        out: list[tuple[Action, State]] = []
        if cell in self.keys and cell not in picked:
            out.append((Action("PickUp", HERE), (cell, picked | {cell}, opened)))
        held = len(picked) - len(opened)
        for d in STEPS:
            nxt, edge = _step(cell, d), _edge(cell, _step(cell, d))
            if edge in self.doors and edge not in opened:
                if held > 0:
                    out.append((Action("Unlock", d), (cell, picked, opened | {edge})))
            elif edge in self.passages and nxt not in self.pits:
                out.append((Action("Move", d), (nxt, picked, opened)))
        return out

    def _plan(self, start: State) -> list[Action]:
        """The shortest action sequence from ``start`` to the exit (breadth-first)."""
        prev: dict[State, tuple[State, Action] | None] = {start: None}
        queue = deque([start])
        while queue:
            state = queue.popleft()
            if state[0] == self.exit:
                plan: list[Action] = []
                step = prev[state]
                while step is not None:
                    plan.append(step[1])
                    step = prev[step[0]]
                return plan[::-1]
            for action, nxt in self._moves(state):
                if nxt not in prev:
                    prev[nxt] = (state, action)
                    queue.append(nxt)
        raise EnvironmentError_("maze: the exit is unreachable")  # pragma: no cover

    def solution(self) -> tuple[Action, ...]:
        """The shortest solving sequence from the current state (for tests and oracles)."""
        return tuple(self._plan(self._state()))

    def _optimal_steps(self) -> int:
        return self._optimal

    def _progress(self) -> float:
        return max(0.0, 1.0 - len(self._plan(self._state())) / self._optimal)

    # -- visible state --------------------------------------------------------------
    def _where(self, cell: Cell) -> str:
        return f"{cell[0]},{cell[1]}"

    def _truth(self, d: str) -> str:
        nxt = _step(self.pos, d)
        edge = _edge(self.pos, nxt)
        if edge in self.doors and edge not in self._opened:
            return "door"
        return "open" if edge in self.passages else "wall"

    def _is_lead(self, cell: Cell) -> bool:
        """Something is left to do at visited ``cell``, as far as the swarm can see."""
        if self._seen.get(cell) == "key":
            return True
        held = len(self._picked) > len(self._opened)
        for d in STEPS:
            nxt = _step(cell, d)
            known = self._known.get(_edge(cell, nxt))
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
                nxt = _step(cell, d)
                if (nxt in self._visited and nxt not in dist
                        and self._known.get(_edge(cell, nxt)) == "open"):
                    dist[nxt] = dist[cell] + 1
                    queue.append(nxt)
        return dist

    def _direction_context(self, d: str, lead: dict[Cell, int]) -> str:
        nxt = _step(self.pos, d)
        known = self._known.get(_edge(self.pos, nxt))
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
        loose = self.pos in self.keys and self.pos not in self._picked
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
        nxt = _step(self.pos, d)
        kind = self._truth(d)
        self._known[_edge(self.pos, nxt)] = kind
        beyond = ""
        if kind == "open":
            content = "exit" if nxt == self.exit else "pit" if nxt in self.pits else (
                "key" if nxt in self.keys and nxt not in self._picked else "")
            if content:
                self._seen[nxt] = content
                self._discover(f"cell {self._where(nxt)}", content)
                beyond = f", {content} beyond"
        self._refresh()
        return ActionResult(True, output=f"{d}: {kind}{beyond}")

    def _move(self, d: str) -> ActionResult:
        toward_lead = self.context(d) == "backtrack"
        nxt = _step(self.pos, d)
        kind = self._truth(d)
        self._known[_edge(self.pos, nxt)] = kind
        if kind != "open":
            self._charge(0.1)
            self._refresh()
            blocked = "a locked door blocks the way" if kind == "door" else "bumped into a wall"
            return ActionResult(False, error=f"Move({d}): {blocked}")
        self.pos = nxt
        self._discover("position", self._where(nxt))
        if nxt in self.pits:
            self._fail(f"fell into a pit at {self._where(nxt)}")
            return ActionResult(False, error=f"Move({d}): fell into a pit")
        if nxt == self.exit:
            self._solve()
            return ActionResult(True, output=f"Move({d}): reached the exit",
                                discoveries=("exit=reached",))
        new = nxt not in self._visited
        self._visited.add(nxt)
        if nxt in self.keys and nxt not in self._picked:
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
        self._known[_edge(self.pos, _step(self.pos, d))] = "door"
        if len(self._picked) <= len(self._opened):
            self._refresh()
            return ActionResult(False, error=f"Unlock({d}): locked, you need a key")
        self._opened.add(_edge(self.pos, _step(self.pos, d)))
        self._known[_edge(self.pos, _step(self.pos, d))] = "open"
        self._discover("keys_held", str(len(self._picked) - len(self._opened)))
        self._refresh()
        return ActionResult(True, output=f"Unlock({d}): the door opens",
                            discoveries=(f"door {d}=opened",))
