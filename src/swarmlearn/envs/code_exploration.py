"""Code exploration: a failing test; follow its traceback through the imports to the bug.

Dependency structure::

    ListDir(tests) ─► RunTest(test) ─► OpenFile(m1) ─► FollowImport(m1) ─► OpenFile(m2) ─► …
        ─► OpenFile(bug) ─► FollowImport(bug) ─► GrepSymbol(bug) ─► ReportBug(bug)

A repository of source modules and tests with an import graph. One test
fails; its traceback runs through a chain of ``depth`` modules, the last of
which holds the bug. Running the failing test names the first frame (a
*suspect*); ``FollowImport`` on an opened suspect reveals the next frame,
or, on the bug's module, that the traceback ends there (*origin*), and
grepping the failing symbol there *locates* the faulty line. The bug is
reachable only by following that chain: grepping elsewhere finds mere
mentions of the symbol (the bug's own module included, until it is
reached), and modules outside the chain mention it too (``noise``).

A report must cite a line the symbol was grepped at. Reporting a module
where grep found a mere mention is a wrong report: it costs, and
``max_wrong_reports`` of them fail the task. Reports that cite no line are
refused at a smaller cost, as is a report on the bug's module that cites a
mere mention (not counted). Distractor actions never help and cost steps.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import ClassVar

from swarmlearn._config import check_range
from swarmlearn.core.actions import Action, ActionResult, ActionSpec
from swarmlearn.core.environment import BaseEnvironment, pick

__all__ = ["CodeExplorationConfig", "CodeExplorationEnv"]

MODULES = (
    "parser", "lexer", "models", "storage", "client", "server", "config", "utils",
    "cache", "auth", "render", "router", "schema", "codec", "events", "tasks",
    "metrics", "plugins", "session", "pool", "retry", "queue", "index", "export",
)
TESTS = (
    "test_api", "test_cli", "test_e2e", "test_io", "test_models", "test_smoke",
    "test_regression", "test_perf",
)
SYMBOLS = (
    "parse_header", "decode_frame", "resolve_path", "load_schema", "merge_config",
    "flush_buffer", "compute_offset", "normalize_key",
)
DIRS = ("src", "tests")

DISTRACTORS = (
    "RunLinter", "GitLog", "FormatCode", "ReadChangelog", "CheckCoverage", "UpdateDeps",
)


@dataclass(frozen=True, kw_only=True, slots=True)
class CodeExplorationConfig:
    modules: int = 6
    tests: int = 3
    depth: int = 2
    distractors: int = 2
    noise: float = 0.3
    max_wrong_reports: int = 3

    def __post_init__(self) -> None:
        check_range("modules", self.modules, lo=2, hi=len(MODULES))
        check_range("tests", self.tests, lo=1, hi=len(TESTS))
        check_range("depth", self.depth, lo=1, hi=self.modules)
        check_range("distractors", self.distractors, lo=0, hi=len(DISTRACTORS))
        check_range("noise", self.noise, lo=0.0, hi=1.0)
        check_range("max_wrong_reports", self.max_wrong_reports, lo=1, hi=100)


@dataclass(slots=True)
class _Module:
    """What the swarm has done to one module (its context is derived from this)."""

    listed: bool = False
    suspect: bool = False  # named by a traceback frame
    opened: bool = False
    cleared: bool = False  # followed: the traceback goes on elsewhere
    origin: bool = False  # followed: the traceback ends here
    grep: str = ""  # "", "mentions", "no-match", "located"

    def context(self) -> str:
        if self.grep == "located":
            return "located"
        if self.origin:
            return "origin"
        if self.cleared:
            return "cleared"
        if self.suspect:
            return "inspected" if self.opened else "suspect"
        if self.grep:
            return self.grep
        if self.opened:
            return "opened"
        return "unopened" if self.listed else "unlisted"


class CodeExplorationEnv(BaseEnvironment):
    kind: ClassVar[str] = "code_exploration"
    contexts: ClassVar[tuple[str, ...]] = (
        "located", "origin", "inspected", "suspect", "unrun", "unlisted",
        "unopened", "mentions", "opened", "no-match", "listed", "passing", "failing", "cleared",
    )
    settled: ClassVar[tuple[str, ...]] = ("listed", "passing", "failing", "cleared")
    optional_actions: ClassVar[tuple[str, ...]] = DISTRACTORS

    def __init__(self, config: CodeExplorationConfig | None = None) -> None:
        super().__init__()
        self.config = config or CodeExplorationConfig()
        self.modules: list[str] = []
        self.tests: list[str] = []
        self.imports: dict[str, list[str]] = {}  # file → modules it imports
        self.chain: list[str] = []  # traceback frames below the failing test; bug last
        self.failing = ""
        self.symbol = ""
        self.mentions: set[str] = set()
        self._mods: dict[str, _Module] = {}
        self._distractors: list[str] = []
        self._wrong_reports = 0

    @property
    def bug(self) -> str:
        return self.chain[-1]

    def _setup(self) -> None:
        cfg, rng = self.config, self.rng
        self.modules = pick(rng, MODULES, cfg.modules)
        self.tests = pick(rng, TESTS, cfg.tests)
        self.chain = rng.sample(self.modules, cfg.depth)
        self.failing = rng.choice(self.tests)
        self.symbol = rng.choice(SYMBOLS)
        self.imports = self._import_graph()
        callers = self.chain[-2:]  # the bug's module and the frame that calls into it
        self.mentions = {m for m in self.modules if m in callers or rng.random() < cfg.noise}
        self._mods = {m: _Module() for m in self.modules}
        self._distractors = rng.sample(DISTRACTORS, cfg.distractors)
        self._wrong_reports = 0
        for name in (*DIRS, *self.tests, *self.modules):
            self._set_context(name, "unlisted")

    def _import_graph(self) -> dict[str, list[str]]:
        """The traceback chain as imports, plus random extra imports (noise edges)."""
        rng = self.rng
        graph: dict[str, list[str]] = {}
        for f in (*self.tests, *self.modules):
            others = [m for m in self.modules if m != f]
            graph[f] = rng.sample(others, min(len(others), rng.randint(1, 2)))
        links = [self.failing, *self.chain]
        for src, dst in itertools.pairwise(links):
            if dst not in graph[src]:
                graph[src].insert(rng.randrange(len(graph[src]) + 1), dst)
        return graph

    def _specs(self) -> tuple[ActionSpec, ...]:
        mods, tests = tuple(self.modules), tuple(self.tests)
        specs = [
            ActionSpec("ListDir", "List a directory of the repository.", DIRS),
            ActionSpec("RunTest", "Run one test file; a failure shows a traceback.", tests,
                       ("ListDir",)),
            ActionSpec("OpenFile", "Read a module: its imports and code.", mods),
            ActionSpec("FollowImport", "Follow the failing traceback from an opened module "
                       "to its next frame.", mods, ("OpenFile",)),
            ActionSpec("GrepSymbol", "Search a module for the failing symbol.", mods,
                       ("FollowImport",)),
            ActionSpec("ReportBug", "Report the module holding the bug (wrong reports cost).",
                       mods, ("GrepSymbol",)),
        ]
        specs.extend(ActionSpec(name, f"{name} (housekeeping).") for name in self._distractors)
        return tuple(specs)

    def task_text(self) -> str:
        return (
            f"A test fails in a repository of {len(self.modules)} modules and "
            f"{len(self.tests)} test files. List the tests, run them, follow the failing "
            "traceback through the imports to the module where it ends, grep the failing symbol "
            "there and report that module. Wrong reports cost."
        )

    def _optimal_steps(self) -> int:
        return 4 + 2 * self.config.depth

    def _progress(self) -> float:
        test = self.context(self.failing)
        done = (self.context("tests") == "listed") + (test == "failing")
        for m in self.chain:
            state = self._mods[m]
            done += state.opened + (state.cleared or state.origin) + (state.grep == "located")
        return done / self._optimal_steps()

    def solution(self) -> tuple[Action, ...]:
        """The shortest solving sequence, from the hidden state (for tests and oracles)."""
        frames = [a for m in self.chain for a in (Action("OpenFile", m), Action("FollowImport", m))]
        return (
            Action("ListDir", "tests"), Action("RunTest", self.failing), *frames,
            Action("GrepSymbol", self.bug), Action("ReportBug", self.bug),
        )

    def _apply(self, action: Action) -> ActionResult:
        name, t = action.name, action.target
        if name == "ListDir":
            return self._list(t)
        if name == "RunTest":
            return self._run(t)
        if name == "OpenFile":
            return self._open(t)
        if name == "FollowImport":
            return self._follow(t)
        if name == "GrepSymbol":
            return self._grep(t)
        if name == "ReportBug":
            return self._report(t)
        self._charge(0.2)
        return ActionResult(False, output=f"{name}: done, nothing changed")

    def _update(self, m: str) -> None:
        self._set_context(m, self._mods[m].context())

    def _list(self, d: str) -> ActionResult:
        if self.context(d) == "listed":
            return ActionResult(False, output=f"{d}/: already listed")
        self._set_context(d, "listed")
        files = self.tests if d == "tests" else self.modules
        for f in files:
            if d == "tests":
                self._set_context(f, "unrun")
            else:
                self._mods[f].listed = True
                self._update(f)
        listing = ", ".join(f"{f}.py" for f in files)
        self._discover(f"{d}.files", listing)
        return ActionResult(True, output=f"{d}/: {listing}", discoveries=(f"{d}.files={listing}",))

    def _run(self, t: str) -> ActionResult:
        ctx = self.context(t)
        if ctx == "unlisted":
            return ActionResult(False, error=f"RunTest({t}): no such file (list tests/ first)")
        if ctx != "unrun":
            return ActionResult(False, output=f"{t}: already run ({ctx})")
        if t != self.failing:
            self._set_context(t, "passing")
            return ActionResult(False, output=f"{t}: passed")
        self._set_context(t, "failing")
        first = self.chain[0]
        failure = f"AssertionError in {self.symbol}(), first frame {first}.py"
        self._discover(f"{t}.failure", failure)
        self._discover("symbol", self.symbol)
        self._mods[first].suspect = True
        self._update(first)
        return ActionResult(True, output=f"{t}: FAILED, {failure}",
                            discoveries=(f"{t}.failure={failure}",))

    def _open(self, m: str) -> ActionResult:
        state = self._mods[m]
        if not (state.listed or state.suspect):
            return ActionResult(False, error=f"OpenFile({m}): no such file (list src/ first)")
        if state.opened:
            return ActionResult(False, output=f"{m}.py: already open")
        state.opened = True
        self._update(m)
        imports = ", ".join(self.imports[m])
        self._discover(f"{m}.imports", imports)
        return ActionResult(state.suspect, output=f"{m}.py imports {imports}",
                            discoveries=(f"{m}.imports={imports}",))

    def _follow(self, m: str) -> ActionResult:
        state = self._mods[m]
        if not state.opened:
            return ActionResult(False, error=f"FollowImport({m}): open the file first")
        if not state.suspect or state.cleared or state.origin:
            return ActionResult(False, output=f"{m}.py: not on the failing traceback's path")
        if m == self.bug:
            state.origin = True
            self._update(m)
            self._discover(f"{m}.traceback", "ends here")
            return ActionResult(True, output=f"{m}.py: the traceback ends here",
                                discoveries=(f"{m}.traceback=ends here",))
        state.cleared = True
        self._update(m)
        nxt = self.chain[self.chain.index(m) + 1]
        self._mods[nxt].suspect = True
        self._update(nxt)
        self._discover(f"{m}.next_frame", nxt)
        return ActionResult(True, output=f"{m}.py: traceback continues in {nxt}.py",
                            discoveries=(f"{m}.next_frame={nxt}",))

    def _grep(self, m: str) -> ActionResult:
        if self.fact("symbol") is None:
            return ActionResult(False, error="GrepSymbol: no failing symbol known (run the tests)")
        state = self._mods[m]
        if not (state.listed or state.suspect):
            return ActionResult(False, error=f"GrepSymbol({m}): no such file (list src/ first)")
        if state.grep and not (state.origin and state.grep == "mentions"):
            return ActionResult(False, output=f"{m}.py: already searched ({state.grep})")
        if state.origin:
            state.grep = "located"
            self._update(m)
            where = f"{m}.py: def {self.symbol}"
            self._discover(f"{m}.bug", where)
            return ActionResult(True, output=f"{where} (the faulty line)",
                                discoveries=(f"{m}.bug={where}",))
        state.grep = "mentions" if m in self.mentions else "no-match"
        self._update(m)
        return ActionResult(False, output=f"{m}.py: {state.grep} of {self.symbol}")

    def _report(self, m: str) -> ActionResult:
        if self._mods[m].grep == "located":
            self._solve(penalty=0.25 * self._wrong_reports)
            return ActionResult(True, output=f"{m}.py: bug confirmed and reported",
                                discoveries=(f"{m}.reported=yes",))
        if m == self.bug and self._mods[m].grep:
            self._charge(1.0)
            return ActionResult(False, error=f"{m}.py: the cited line is not the fault "
                                "(follow the traceback here first)")
        if self._mods[m].grep != "mentions":
            self._charge(0.5)
            return ActionResult(False, error=f"ReportBug({m}): triage refused, no line cited "
                                "(grep the failing symbol there first)")
        self._charge(1.0)
        self._wrong_reports += 1
        self._discover("wrong_reports", str(self._wrong_reports))
        if self._wrong_reports >= self.config.max_wrong_reports:
            self._fail(f"{self._wrong_reports} wrong bug reports: closed as invalid")
        return ActionResult(False, error=f"{m}.py: report closed, the bug is not there")
