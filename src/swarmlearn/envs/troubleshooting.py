"""Troubleshooting: several services, one faulty; find it, diagnose it, restart it.

Dependency structure (per service)::

    CheckStatus ─► ReadLogs ─────┐
                └► AnalyzeMetrics ┴─► Diagnose ─► Restart

Success only when the faulty service is restarted after a correct diagnosis.
Restarting a healthy service costs (score penalty); ``max_wrong_restarts``
of them cause an outage (Failure). Healthy services may show warnings
(``noise``) that look like faults until their logs and metrics are read.
Distractor actions never help and cost steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from swarmlearn._config import check_range
from swarmlearn.core.actions import Action, ActionResult, ActionSpec
from swarmlearn.core.environment import BaseEnvironment, pick

__all__ = ["TroubleshootingConfig", "TroubleshootingEnv"]

SERVICES = (
    "api",
    "auth",
    "db",
    "cache",
    "queue",
    "search",
    "billing",
    "gateway",
    "storage",
    "mailer",
    "scheduler",
    "metrics",
    "cdn",
    "payments",
    "users",
    "inventory",
)

# fault → (log line, metric reading)
FAULTS: dict[str, tuple[str, str]] = {
    "memory_leak": ("OOMKilled: container exceeded its memory limit", "memory 97% and rising"),
    "connection_pool": ("E1040 too many connections", "p99 latency 4.2s, pool 100/100"),
    "disk_full": ("ENOSPC: no space left on device", "disk 100% used"),
    "deadlock": ("lock wait timeout exceeded; try restarting transaction", "throughput 0 req/s"),
    "cert_expired": ("x509: certificate has expired", "TLS handshake errors 100%"),
}

# distractor name → takes a service target
DISTRACTORS: tuple[tuple[str, bool], ...] = (
    ("PingGateway", False),
    ("FlushDNS", False),
    ("ClearCache", True),
    ("RotateCredentials", True),
    ("CheckCalendar", False),
    ("ReindexSearch", False),
    ("ScaleUp", True),
    ("RunBackup", False),
)


@dataclass(frozen=True, kw_only=True, slots=True)
class TroubleshootingConfig:
    services: int = 5
    distractors: int = 3
    noise: float = 0.25
    evidence: int = 1
    max_wrong_restarts: int = 3

    def __post_init__(self) -> None:
        check_range("services", self.services, lo=2, hi=64)
        check_range("distractors", self.distractors, lo=0, hi=len(DISTRACTORS))
        check_range("noise", self.noise, lo=0.0, hi=1.0)
        check_range("evidence", self.evidence, lo=1, hi=2)
        check_range("max_wrong_restarts", self.max_wrong_restarts, lo=1, hi=100)


class TroubleshootingEnv(BaseEnvironment):
    kind: ClassVar[str] = "troubleshooting"
    contexts: ClassVar[tuple[str, ...]] = (
        "diagnosed",
        "evidence",
        "degraded",
        "warning",
        "unchecked",
        "healthy",
        "restarted",
    )
    settled: ClassVar[tuple[str, ...]] = ("healthy", "restarted")
    optional_actions: ClassVar[tuple[str, ...]] = tuple(name for name, _ in DISTRACTORS)

    def __init__(self, config: TroubleshootingConfig | None = None) -> None:
        super().__init__()
        self.config = config or TroubleshootingConfig()
        self.services: list[str] = []
        self.faulty = ""
        self.fault = ""
        self._warning: set[str] = set()
        self._evidence: dict[str, set[str]] = {}
        self._distractors: list[tuple[str, bool]] = []
        self._wrong_restarts = 0

    def _setup(self) -> None:
        cfg = self.config
        self.services = pick(self.rng, SERVICES, cfg.services)
        self.faulty = self.rng.choice(self.services)
        self.fault = self.rng.choice(sorted(FAULTS))
        self._warning = {
            s for s in self.services if s != self.faulty and self.rng.random() < cfg.noise
        }
        self._evidence = {s: set() for s in self.services}
        self._distractors = self.rng.sample(DISTRACTORS, cfg.distractors)
        self._wrong_restarts = 0
        for s in self.services:
            self._set_context(s, "unchecked")

    def _specs(self) -> tuple[ActionSpec, ...]:
        svc = tuple(self.services)
        specs = [
            ActionSpec("CheckStatus", "Show a service's health status.", svc),
            ActionSpec(
                "ReadLogs", "Scan a checked service's recent error logs.", svc, ("CheckStatus",)
            ),
            ActionSpec(
                "AnalyzeMetrics", "Analyze a checked service's metrics.", svc, ("CheckStatus",)
            ),
            ActionSpec(
                "Diagnose",
                "Name the fault of a service from the evidence gathered.",
                svc,
                ("ReadLogs", "AnalyzeMetrics"),
            ),
            ActionSpec(
                "Restart",
                "Restart a service (fixes a diagnosed fault; costly if healthy).",
                svc,
                ("Diagnose",),
            ),
        ]
        for name, targeted in self._distractors:
            specs.append(ActionSpec(name, f"{name} (maintenance task).", svc if targeted else ()))
        return tuple(specs)

    def task_text(self) -> str:
        return (
            f"One of {len(self.services)} services is faulty. Find it, diagnose the fault from "
            "its logs or metrics, then restart it. Restarting a healthy service causes an outage."
        )

    def _optimal_steps(self) -> int:
        return 3 + self.config.evidence

    def _progress(self) -> float:
        stage = {"unchecked": 0.0, "degraded": 0.25, "evidence": 0.5, "diagnosed": 0.75}
        return stage.get(self.context(self.faulty), 0.0)

    def _apply(self, action: Action) -> ActionResult:
        name, s = action.name, action.target
        if name == "CheckStatus":
            return self._check(s)
        if name in ("ReadLogs", "AnalyzeMetrics"):
            return self._inspect(name, s)
        if name == "Diagnose":
            return self._diagnose(s)
        if name == "Restart":
            return self._restart(s)
        self._charge(0.2)
        return ActionResult(False, output=f"{name}: done, nothing changed")

    def _check(self, s: str) -> ActionResult:
        if self.context(s) != "unchecked":
            return ActionResult(False, output=f"{s}: status already known ({self.context(s)})")
        status = "degraded" if s == self.faulty else "warning" if s in self._warning else "healthy"
        self._discover(f"{s}.status", status)
        self._set_context(s, status)
        return ActionResult(True, output=f"{s}: {status}", discoveries=(f"{s}.status={status}",))

    def _inspect(self, name: str, s: str) -> ActionResult:
        ctx = self.context(s)
        if ctx == "unchecked":
            return ActionResult(False, error=f"{name}({s}): check the service's status first")
        if ctx in ("healthy", "restarted"):
            return ActionResult(False, output=f"{s}: nothing unusual")
        source = "logs" if name == "ReadLogs" else "metrics"
        if source in self._evidence[s]:
            return ActionResult(False, output=f"{s}: {source} already read")
        self._evidence[s].add(source)
        if s != self.faulty:  # a suspect's clean reading is news too: it helps rule it out
            reading = (
                "WARN slow request (1 occurrence)" if source == "logs" else "within normal range"
            )
            self._discover(f"{s}.{source}", reading)
            if len(self._evidence[s]) >= self.config.evidence:
                self._set_context(s, "healthy")
            return ActionResult(
                True, output=f"{s} {source}: {reading}", discoveries=(f"{s}.{source}={reading}",)
            )
        reading = FAULTS[self.fault][0 if source == "logs" else 1]
        self._discover(f"{s}.{source}", reading)
        if len(self._evidence[s]) >= self.config.evidence:
            self._set_context(s, "evidence")
        return ActionResult(
            True, output=f"{s} {source}: {reading}", discoveries=(f"{s}.{source}={reading}",)
        )

    def _diagnose(self, s: str) -> ActionResult:
        ctx = self.context(s)
        if ctx == "diagnosed":
            return ActionResult(False, output=f"{s}: already diagnosed ({self.fault})")
        if ctx != "evidence":
            return ActionResult(False, error=f"Diagnose({s}): not enough evidence")
        self._discover(f"{s}.diagnosis", self.fault)
        self._set_context(s, "diagnosed")
        return ActionResult(
            True, output=f"{s}: {self.fault}", discoveries=(f"{s}.diagnosis={self.fault}",)
        )

    def _restart(self, s: str) -> ActionResult:
        if s == self.faulty and self.context(s) == "diagnosed":
            self._set_context(s, "restarted")
            self._solve(penalty=0.25 * self._wrong_restarts)
            return ActionResult(
                True, output=f"{s}: restarted, {self.fault} fixed", discoveries=(f"{s}.fixed=yes",)
            )
        self._charge(1.0)
        if s == self.faulty:
            return ActionResult(
                False, error=f"{s}: restarted, but the fault returns (not diagnosed)"
            )
        self._wrong_restarts += 1
        self._discover("wrong_restarts", str(self._wrong_restarts))
        if self._wrong_restarts >= self.config.max_wrong_restarts:
            self._fail(f"{self._wrong_restarts} healthy services restarted: outage")
        return ActionResult(False, error=f"{s}: healthy service restarted (brief outage)")
