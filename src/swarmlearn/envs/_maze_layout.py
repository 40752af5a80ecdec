"""Maze layouts: a random grid maze with doors, keys and pits, and its shortest plan.

A layout is a random spanning tree of the grid (carved depth-first from the
start corner) plus a few extra openings (``loops``) that never lead around a
door. The exit lies at least half the tree's depth away; the doors sit on
the path to it, each key in a cell reachable before its door (off the path
when possible); pits take cells that no route to a key or the exit needs,
and never lie beyond the exit.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass

from swarmlearn.core.actions import Action
from swarmlearn.errors import EnvironmentError_

__all__ = ["HERE", "STEPS", "Cell", "Edge", "Layout", "State", "edge", "generate", "step"]

Cell = tuple[int, int]
Edge = tuple[Cell, Cell]
State = tuple[Cell, frozenset[Cell], frozenset[Edge]]  # position, keys picked, doors opened

STEPS: dict[str, Cell] = {"north": (0, -1), "south": (0, 1), "east": (1, 0), "west": (-1, 0)}
HERE = "here"
MAX_TRIES = 100


def edge(a: Cell, b: Cell) -> Edge:
    """The passage (or wall) between two neighbouring cells, in either order."""
    return (a, b) if a <= b else (b, a)


def step(cell: Cell, direction: str) -> Cell:
    dx, dy = STEPS[direction]
    return (cell[0] + dx, cell[1] + dy)


@dataclass(slots=True)
class Layout:
    size: int
    start: Cell
    exit: Cell
    passages: set[Edge]  # open edges, doors included
    doors: set[Edge]
    keys: set[Cell]
    pits: set[Cell]

    def cells(self) -> list[Cell]:
        return [(x, y) for y in range(self.size) for x in range(self.size)]

    def inside(self, cell: Cell) -> bool:
        return 0 <= cell[0] < self.size and 0 <= cell[1] < self.size

    def _moves(self, state: State) -> list[tuple[Action, State]]:
        cell, picked, opened = state
        out: list[tuple[Action, State]] = []
        if cell in self.keys and cell not in picked:
            out.append((Action("PickUp", HERE), (cell, picked | {cell}, opened)))
        held = len(picked) - len(opened)
        for d in STEPS:
            nxt = step(cell, d)
            e = edge(cell, nxt)
            if e in self.doors and e not in opened:
                if held > 0:
                    out.append((Action("Unlock", d), (cell, picked, opened | {e})))
            elif e in self.passages and nxt not in self.pits:
                out.append((Action("Move", d), (nxt, picked, opened)))
        return out

    def plan(self, start: State) -> list[Action]:
        """The shortest action sequence from ``start`` to the exit (breadth-first)."""
        prev: dict[State, tuple[State, Action] | None] = {start: None}
        queue = deque([start])
        while queue:
            state = queue.popleft()
            if state[0] == self.exit:
                plan: list[Action] = []
                back = prev[state]
                while back is not None:
                    plan.append(back[1])
                    back = prev[back[0]]
                return plan[::-1]
            for action, nxt in self._moves(state):
                if nxt not in prev:
                    prev[nxt] = (state, action)
                    queue.append(nxt)
        raise EnvironmentError_("maze: the exit is unreachable")  # pragma: no cover


def generate(rng: random.Random, *, size: int, doors: int, pits: int, loops: float) -> Layout:
    """A random layout; retried (with the same generator) until keys and pits find room."""
    for _ in range(MAX_TRIES):
        layout = _try(rng, size, doors, pits, loops)
        if layout is not None:
            return layout
    raise EnvironmentError_(  # pragma: no cover - the config ranges make this impractical
        f"maze: no layout with {doors} door(s) and {pits} pit(s) in {MAX_TRIES} tries"
    )


def _try(rng: random.Random, size: int, doors: int, pits: int, loops: float) -> Layout | None:
    start = (0, 0)
    lay = Layout(size, start, start, _spanning_tree(rng, size, start), set(), set(), set())
    parent, dist = _tree_bfs(lay)
    far = max(dist.values())
    lay.exit = rng.choice([c for c in lay.cells() if 2 * dist[c] >= far + 1])
    path = _path(parent, start, lay.exit)
    if len(path) - 2 < doors:
        return None
    at = sorted(rng.sample(range(1, len(path) - 1), doors))
    lay.doors = {edge(path[i], path[i + 1]) for i in at}
    behind = _doors_behind(lay, parent, dist)
    for j in range(doors):
        free = [c for c in lay.cells()
                if behind[c] <= j and c not in (start, lay.exit, *lay.keys)]
        lay.keys.add(rng.choice([c for c in free if c not in path] or free))
    _add_loops(rng, lay, behind, loops)
    needed = set(path).union(*(_path(parent, start, key) for key in lay.keys))
    room = [c for c in lay.cells()
            if c not in needed and lay.exit not in _path(parent, start, c)[:-1]]
    if len(room) < pits:
        return None
    lay.pits = set(rng.sample(room, pits))
    return lay


def _path(parent: dict[Cell, Cell], start: Cell, cell: Cell) -> list[Cell]:
    """The tree path from ``start`` to ``cell``, both included."""
    path = [cell]
    while path[-1] != start:
        path.append(parent[path[-1]])
    return path[::-1]


def _spanning_tree(rng: random.Random, size: int, start: Cell) -> set[Edge]:
    def inside(c: Cell) -> bool:
        return 0 <= c[0] < size and 0 <= c[1] < size

    edges: set[Edge] = set()
    seen, stack = {start}, [start]
    while stack:
        cell = stack[-1]
        nbrs = [c for d in STEPS if inside(c := step(cell, d)) and c not in seen]
        if not nbrs:
            stack.pop()
            continue
        nxt = rng.choice(nbrs)
        edges.add(edge(cell, nxt))
        seen.add(nxt)
        stack.append(nxt)
    return edges


def _tree_bfs(lay: Layout) -> tuple[dict[Cell, Cell], dict[Cell, int]]:
    parent: dict[Cell, Cell] = {}
    dist = {lay.start: 0}
    queue = deque([lay.start])
    while queue:
        cell = queue.popleft()
        for d in STEPS:
            nxt = step(cell, d)
            if nxt not in dist and edge(cell, nxt) in lay.passages:
                dist[nxt], parent[nxt] = dist[cell] + 1, cell
                queue.append(nxt)
    return parent, dist


def _doors_behind(lay: Layout, parent: dict[Cell, Cell], dist: dict[Cell, int]) -> dict[Cell, int]:
    """For each cell, how many doors stand between it and the start (in the tree)."""
    behind = {lay.start: 0}
    for cell in sorted(parent, key=lambda c: dist[c]):
        up = parent[cell]
        behind[cell] = behind[up] + (edge(cell, up) in lay.doors)
    return behind


def _add_loops(rng: random.Random, lay: Layout, behind: dict[Cell, int], loops: float) -> None:
    """Open extra walls inside a region (never around a door)."""
    for cell in lay.cells():
        for d in ("east", "south"):
            nxt = step(cell, d)
            e = edge(cell, nxt)
            if (lay.inside(nxt) and e not in lay.passages
                    and rng.random() < loops and behind[cell] == behind[nxt]):
                lay.passages.add(e)
