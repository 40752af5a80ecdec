"""Internal diagnosis: an error code surfaces in one component; trace it to a config key.

Dependency structure (per component, then per error code)::

    ParseConfig ─► AnalyzeLog ─► TraceError ─(─► TraceError on the next component)*─► ApplyFix(code)

The error is logged by one component; tracing it may lead through
``depth - 1`` further components (each becomes *implicated*) before the
root-cause config key is found. The fix is applied to an error *code* (the
targets of ``ApplyFix`` are the codes of the system's runbook), and it must
match: fixing the injected code once it has been traced to its key solves
the task. Applying a fix for a code that was logged but not traced (a
transient code, or the real one before tracing) is a wrong fix: it costs,
and ``max_wrong_fixes`` of them fail the task (config churn). A code no
component reports is refused by the fix tool (it costs, nothing else).
Healthy components may log transient codes (``noise``) that look like the
fault until traced. Distractor actions never help and cost steps.

(``ActionSpec.after`` relates action kinds: ``TraceError`` runs on a
component, and the ``ApplyFix`` it enables targets the code it traced.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from swarmlearn._config import check_range
from swarmlearn.core.actions import Action, ActionResult, ActionSpec
from swarmlearn.core.environment import BaseEnvironment, pick

__all__ = ["InternalDiagnosisConfig", "InternalDiagnosisEnv"]

COMPONENTS = (
    "ingest", "parser", "scheduler", "indexer", "auth", "billing", "exporter", "notifier",
    "cache", "router", "planner", "uploader", "resolver", "validator", "reporter", "archiver",
)
CONFIG_KEYS = (
    "pool_size", "timeout_ms", "retries", "batch_size", "max_conns", "buffer_kb",
    "tls_mode", "queue_depth", "cache_ttl", "heartbeat_s", "shard_count", "charset",
)
KEYS_PER_COMPONENT = 3

# distractor name → takes a component target
DISTRACTORS: tuple[tuple[str, bool], ...] = (
    ("RestartDaemon", True), ("ClearTmpFiles", False), ("BumpVersion", False),
    ("RerunPipeline", False), ("RotateLogs", True), ("PingHealthcheck", True),
)


@dataclass(frozen=True, kw_only=True, slots=True)
class InternalDiagnosisConfig:
    components: int = 6
    depth: int = 2
    distractors: int = 2
    noise: float = 0.4
    max_wrong_fixes: int = 3

    def __post_init__(self) -> None:
        check_range("components", self.components, lo=2, hi=32)
        check_range("depth", self.depth, lo=1, hi=min(6, self.components))
        check_range("distractors", self.distractors, lo=0, hi=len(DISTRACTORS))
        check_range("noise", self.noise, lo=0.0, hi=1.0)
        check_range("max_wrong_fixes", self.max_wrong_fixes, lo=1, hi=100)


class InternalDiagnosisEnv(BaseEnvironment):
    kind: ClassVar[str] = "internal_diagnosis"
    contexts: ClassVar[tuple[str, ...]] = (
        "traced", "implicated", "erroring", "parsed", "unparsed",
        "logged", "unseen", "clean", "relay", "rooted", "transient", "fixed",
    )
    settled: ClassVar[tuple[str, ...]] = (
        "logged", "unseen", "clean", "relay", "rooted", "transient", "fixed",
    )
    optional_actions: ClassVar[tuple[str, ...]] = tuple(name for name, _ in DISTRACTORS)

    def __init__(self, config: InternalDiagnosisConfig | None = None) -> None:
        super().__init__()
        self.config = config or InternalDiagnosisConfig()
        self.components: list[str] = []
        self.codes: list[str] = []
        self.keys: dict[str, list[str]] = {}
        self.chain: list[str] = []  # surfacing component first, root cause last
        self.code = ""
        self.root_key = ""
        self.transient: dict[str, str] = {}  # healthy component → transient code it logs
        self._parsed: set[str] = set()
        self._analyzed: set[str] = set()
        self._distractors: list[tuple[str, bool]] = []
        self._wrong_fixes = 0

    def _setup(self) -> None:
        cfg, rng = self.config, self.rng
        self.components = pick(rng, COMPONENTS, cfg.components)
        numbers = rng.sample(range(1000, 10000), cfg.components + 1)
        self.codes = [f"E{n}" for n in numbers]
        self.keys = {c: rng.sample(CONFIG_KEYS, KEYS_PER_COMPONENT) for c in self.components}
        self.chain = rng.sample(self.components, cfg.depth)
        self.code = rng.choice(self.codes)
        self.root_key = rng.choice(self.keys[self.chain[-1]])
        others = [c for c in self.codes if c != self.code]
        self.transient = {
            c: rng.choice(others)
            for c in self.components
            if c not in self.chain and rng.random() < cfg.noise
        }
        self._parsed, self._analyzed = set(), set()
        self._distractors = rng.sample(DISTRACTORS, cfg.distractors)
        self._wrong_fixes = 0
        for c in self.components:
            self._set_context(c, "unparsed")
        for code in self.codes:
            self._set_context(code, "unseen")

    def _specs(self) -> tuple[ActionSpec, ...]:
        comps, codes = tuple(self.components), tuple(self.codes)
        specs = [
            ActionSpec("ParseConfig", "Read a component's config file (its keys).", comps),
            ActionSpec("AnalyzeLog", "Scan a parsed component's log for error codes.", comps,
                       ("ParseConfig",)),
            ActionSpec("TraceError", "Trace a logged or implicated error to its cause.", comps,
                       ("AnalyzeLog",)),
            ActionSpec("ApplyFix", "Apply the runbook fix for an error code (must match).",
                       codes, ("TraceError",)),
        ]
        for name, targeted in self._distractors:
            specs.append(ActionSpec(name, f"{name} (maintenance task).", comps if targeted else ()))
        return tuple(specs)

    def task_text(self) -> str:
        return (
            f"One of {len(self.components)} components raises an error code. Parse configs, "
            "analyze logs for codes, trace the code to the config key that causes it, then apply "
            "the fix for that code. Fixes for codes that were not traced cause config churn."
        )

    def _optimal_steps(self) -> int:
        return 3 + self.config.depth

    def _progress(self) -> float:
        surface = self.chain[0]
        done = (surface in self._parsed) + (surface in self._analyzed)
        done += sum(self.context(c) in ("relay", "rooted") for c in self.chain)
        return done / self._optimal_steps()

    def solution(self) -> tuple[Action, ...]:
        """The shortest solving sequence, from the hidden state (for tests and oracles)."""
        surface = self.chain[0]
        return (
            Action("ParseConfig", surface),
            Action("AnalyzeLog", surface),
            *(Action("TraceError", c) for c in self.chain),
            Action("ApplyFix", self.code),
        )

    def _apply(self, action: Action) -> ActionResult:
        name, t = action.name, action.target
        if name == "ParseConfig":
            return self._parse(t)
        if name == "AnalyzeLog":
            return self._analyze(t)
        if name == "TraceError":
            return self._trace(t)
        if name == "ApplyFix":
            return self._fix(t)
        self._charge(0.2)
        return ActionResult(False, output=f"{name}: done, nothing changed")

    def _parse(self, c: str) -> ActionResult:
        if c in self._parsed:
            return ActionResult(False, output=f"{c}: config already parsed")
        self._parsed.add(c)
        keys = ",".join(self.keys[c])
        self._discover(f"{c}.keys", keys)
        if self.context(c) == "unparsed":
            self._set_context(c, "parsed")
        return ActionResult(True, output=f"{c} config keys: {keys}",
                            discoveries=(f"{c}.keys={keys}",))

    def _analyze(self, c: str) -> ActionResult:
        if c not in self._parsed:
            return ActionResult(False, error=f"AnalyzeLog({c}): parse its config first (log path)")
        if c in self._analyzed:
            return ActionResult(False, output=f"{c}: log already analyzed")
        self._analyzed.add(c)
        code = self.code if c == self.chain[0] else self.transient.get(c)
        if code is None:
            if self.context(c) == "parsed":
                self._set_context(c, "clean")
            return ActionResult(False, output=f"{c}: log clean")
        self._discover(f"{c}.error", code)
        self._set_context(c, "erroring")
        if self.context(code) == "unseen":
            self._set_context(code, "logged")
        return ActionResult(code == self.code, output=f"{c}: ERROR {code}",
                            discoveries=(f"{c}.error={code}",))

    def _trace(self, c: str) -> ActionResult:
        ctx = self.context(c)
        if ctx not in ("erroring", "implicated"):
            return ActionResult(False, error=f"TraceError({c}): no error to trace ({ctx})")
        if c in self.transient:
            code = self.transient[c]
            self._set_context(c, "clean")
            self._set_context(code, "transient")
            self._discover(f"{code}.trace", "transient, retried successfully")
            return ActionResult(False, output=f"{c}: {code} is transient (retried successfully)")
        i = self.chain.index(c)
        if i + 1 < len(self.chain):
            nxt = self.chain[i + 1]
            self._set_context(c, "relay")
            self._set_context(nxt, "implicated")
            self._discover(f"{c}.trace", f"{self.code} raised in a call into {nxt}")
            return ActionResult(True, output=f"{c}: {self.code} raised in a call into {nxt}",
                                discoveries=(f"{c}.trace={nxt}",))
        cause = f"{c}.{self.root_key}"
        self._set_context(c, "rooted")
        self._set_context(self.code, "traced")
        self._discover(f"{c}.root_cause", self.root_key)
        self._discover(f"{self.code}.cause", cause)
        return ActionResult(True, output=f"{self.code} traced to config key {cause}",
                            discoveries=(f"{self.code}.cause={cause}",))

    def _fix(self, code: str) -> ActionResult:
        ctx = self.context(code)
        if ctx == "traced":
            self._set_context(code, "fixed")
            self._solve(penalty=0.25 * self._wrong_fixes)
            cause = self.fact(f"{code}.cause")
            return ActionResult(True, output=f"{code}: fixed {cause}",
                                discoveries=(f"{code}.fixed=yes",))
        if ctx == "unseen":
            self._charge(0.5)
            return ActionResult(False, error=f"ApplyFix({code}): no component reports {code}")
        self._charge(1.0)
        self._wrong_fixes += 1
        self._discover("wrong_fixes", str(self._wrong_fixes))
        if self._wrong_fixes >= self.config.max_wrong_fixes:
            self._fail(f"{self._wrong_fixes} wrong fixes applied: config churn")
        if code == self.code:
            return ActionResult(False, error=f"{code}: fix applied to a guessed key, error stays")
        return ActionResult(False, error=f"{code}: fix applied, nothing improved (wrong fix)")
