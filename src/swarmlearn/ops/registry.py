"""A mirror of the store's artifact lifecycle in MLflow's model registry.

The store's ``artifacts`` table stays the one source of truth; MLflow shows
it. Each lineage (kind, scope) is a registered model
(:func:`model_name`: ``swarmlearn.<kind>.<scope>``); each version that
reached the gate (evaluating, promoted, rejected, retired) is a model
version, in store order, with its lineage and gate numbers as tags
(``swarmlearn.artifact_id``, ``swarmlearn.version``, ``swarmlearn.state``,
``swarmlearn.parent``, ``swarmlearn.inputs``, ``swarmlearn.gate.*`` …) and
its payload logged to a run of the ``swarmlearn-registry`` experiment (the
version's source). The aliases ``champion`` and ``challenger`` are set to
match the store's, or removed when the store has none — so after a rollback
MLflow's UI shows what is live.

:meth:`RegistryMirror.sync` reconciles one lineage (or all) and can run any
time: it is idempotent. :class:`MirrorObserver` calls it after every
lifecycle step (``lifecycle.add_observer``) on its own thread, so an MLflow
outage never slows or stops the lifecycle; it retries and reports the
outage once, and the next sync catches up.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from swarmlearn.ops.tracking import require_mlflow

if TYPE_CHECKING:
    from swarmlearn.lifecycle import Lifecycle
    from swarmlearn.store import ArtifactRecord, LogRecord, Store

__all__ = ["MIRRORED_STATES", "MirrorObserver", "RegistryMirror", "SyncReport", "model_name"]

logger = logging.getLogger(__name__)

MIRRORED_STATES = frozenset({"evaluating", "promoted", "rejected", "retired"})
ALIASES = ("champion", "challenger")
REGISTRY_EXPERIMENT = "swarmlearn-registry"
_TAG_LEN = 5_000


def model_name(kind: str, scope: str) -> str:
    """The registered model of a lineage: ``swarmlearn.<kind>.<scope>`` in MLflow-safe
    characters (``troubleshooting[heldout]`` → ``troubleshooting-heldout``)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{kind}.{scope}").strip("-")
    return f"swarmlearn.{safe}"


@dataclass(slots=True)
class SyncReport:
    models: int = 0
    created: list[str] = field(default_factory=list)  # "name/vN"
    retagged: int = 0
    aliases: dict[str, str | None] = field(default_factory=dict)  # "name@alias" → version


def _tags(rec: ArtifactRecord) -> dict[str, str]:
    meta = rec.meta
    lineage = meta.get("lineage") if isinstance(meta.get("lineage"), Mapping) else {}
    tags = {"swarmlearn.artifact_id": str(rec.id), "swarmlearn.version": str(rec.version),
            "swarmlearn.kind": rec.kind, "swarmlearn.scope": rec.name,
            "swarmlearn.state": rec.status, "swarmlearn.sha256": rec.sha256,
            "swarmlearn.format_version": str(rec.format_version)}
    if lineage:
        tags["swarmlearn.parent"] = str(lineage.get("parent"))
        tags["swarmlearn.code_version"] = str(lineage.get("code_version", ""))
        tags["swarmlearn.inputs"] = json.dumps(lineage.get("inputs", {}))[:_TAG_LEN]
    gate = meta.get("gate")
    if isinstance(gate, Mapping):
        tags["swarmlearn.gate.reason"] = str(gate.get("reason", ""))[:_TAG_LEN]
        for key in ("promote", "wins", "losses", "ties", "p_value", "alpha"):
            tags[f"swarmlearn.gate.{key}"] = str(gate.get(key))
        for side in ("champion", "challenger"):
            s = gate.get(side)
            if isinstance(s, Mapping):
                tags[f"swarmlearn.gate.{side}_success_rate"] = str(s.get("success_rate"))
                tags[f"swarmlearn.gate.{side}_cost_per_solve"] = str(s.get("cost_per_solve"))
    for key in ("retired", "failure"):
        if key in meta:
            tags[f"swarmlearn.{key}"] = str(meta[key])[:_TAG_LEN]
    return tags


def _numbers(data: Any, prefix: str) -> dict[str, float]:
    out: dict[str, float] = {}
    if isinstance(data, Mapping):
        for k, v in data.items():
            if isinstance(v, int | float) and not isinstance(v, bool):
                out[f"{prefix}{k}"] = float(v)
    return out


class RegistryMirror:
    """Reconciles MLflow's registry with the store's lifecycle (module docstring)."""

    def __init__(self, store: Store, *, tracking_uri: str, registry_uri: str | None = None,
                 artifact_location: str | None = None) -> None:
        require_mlflow()
        from mlflow.tracking import MlflowClient

        self.store = store
        self.client = MlflowClient(tracking_uri=tracking_uri,
                                   registry_uri=registry_uri or tracking_uri)
        self._artifact_location = artifact_location
        self._experiment: str | None = None

    def sync(self, kind: str | None = None, scope: str | None = None) -> SyncReport:
        """Make MLflow match the store for one lineage, or every lineage of ``kind`` / all."""
        report = SyncReport()
        lineages = sorted({(r.kind, r.name) for r in self.store.artifacts(kind, scope,
                                                                          payload=False)})
        for k, s in lineages:
            self._sync_one(k, s, report)
        return report

    def _sync_one(self, kind: str, scope: str, report: SyncReport) -> None:
        name = model_name(kind, scope)
        records = sorted(self.store.artifacts(kind, scope, payload=False),
                         key=lambda r: r.version)
        records = [r for r in records if r.status in MIRRORED_STATES]
        if not records:
            return
        self._ensure_model(name, kind, scope)
        report.models += 1
        mirrored = {mv.tags.get("swarmlearn.artifact_id"): mv
                    for mv in self.client.search_model_versions(f"name='{name}'")}
        versions: dict[int, str] = {}
        for rec in records:
            mv = mirrored.get(str(rec.id))
            if mv is None:
                mv = self._create_version(name, rec)
                report.created.append(f"{name}/v{mv.version}")
            elif mv.tags.get("swarmlearn.state") != rec.status:
                for key, value in _tags(rec).items():
                    if mv.tags.get(key) != value:
                        self.client.set_model_version_tag(name, mv.version, key, value)
                report.retagged += 1
            versions[rec.id] = str(mv.version)
        live = {a.alias: a.artifact_id for a in self.store.aliases(kind, scope)}
        current = {a: str(v) for a, v in (self.client.get_registered_model(name).aliases
                                          or {}).items()}
        for alias in ALIASES:
            target = versions.get(live[alias]) if alias in live else None
            if target is not None and current.get(alias) != target:
                self.client.set_registered_model_alias(name, alias, target)
            elif target is None and alias in current:
                self.client.delete_registered_model_alias(name, alias)
            report.aliases[f"{name}@{alias}"] = target

    def _ensure_model(self, name: str, kind: str, scope: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
        except MlflowException:
            self.client.create_registered_model(
                name, tags={"swarmlearn.kind": kind, "swarmlearn.scope": scope},
                description=f"swarmlearn {kind} artifacts of {scope}; mirrored from the "
                            f"store at {self.store.url} (the store is the source of truth)")

    def _experiment_id(self) -> str:
        if self._experiment is None:
            found = self.client.get_experiment_by_name(REGISTRY_EXPERIMENT)
            self._experiment = (found.experiment_id if found is not None else
                                self.client.create_experiment(
                                    REGISTRY_EXPERIMENT,
                                    artifact_location=self._artifact_location))
        return self._experiment

    def _create_version(self, name: str, rec: ArtifactRecord) -> Any:
        from mlflow.entities import Metric, Param

        full = self.store.get_artifact_by_id(rec.id)
        found = rec.meta.get("lineage")
        lineage: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        tags = _tags(rec)
        run = self.client.create_run(self._experiment_id(), run_name=f"{name} v{rec.version}",
                                     tags={"swarmlearn.artifact_id": str(rec.id),
                                           "swarmlearn.kind": rec.kind,
                                           "swarmlearn.scope": rec.name})
        rid = run.info.run_id
        params = {f"config.{k}": str(v)[:6000]
                  for k, v in (lineage.get("config") or {}).items()}
        metrics = {**_numbers(lineage.get("metrics"), "lineage."),
                   **_numbers(rec.meta.get("gate"), "gate.")}
        gate = rec.meta.get("gate")
        if isinstance(gate, Mapping):
            for side in ("champion", "challenger"):
                metrics.update(_numbers(gate.get(side), f"gate.{side}."))
        self.client.log_batch(rid, params=[Param(k, v) for k, v in list(params.items())[:100]],
                              metrics=[Metric(k, v, int(rec.created * 1000), 0)
                                       for k, v in metrics.items()])
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "artifact"
            path.mkdir()
            (path / "payload.bin").write_bytes(full.payload or b"")
            (path / "meta.json").write_text(json.dumps(dict(rec.meta), indent=2, default=str))
            self.client.log_artifacts(rid, str(path), "artifact")
        self.client.set_terminated(rid)
        return self.client.create_model_version(
            name, f"{run.info.artifact_uri}/artifact", run_id=rid, tags=tags,
            description=f"{rec.kind}/{rec.name} v{rec.version} (store artifact {rec.id})")


class MirrorObserver:
    """A lifecycle observer that syncs the lineage of each step on its own thread.

    The MLflow client is made on the first step (a command that never moves
    an artifact never imports MLflow). Steps that come while a sync runs are
    coalesced; a failed sync is retried with a growing pause and the outage
    is logged once.
    """

    def __init__(self, *, tracking_uri: str, artifact_location: str | None = None,
                 retry_min: float = 1.0, retry_max: float = 60.0) -> None:
        self.tracking_uri = tracking_uri
        self.artifact_location = artifact_location
        self.retry_min, self.retry_max = retry_min, retry_max
        self.failures = 0
        self.synced = 0
        self._due: dict[tuple[str, str], Store] = {}
        self._cond = threading.Condition()
        self._mirrors: dict[int, RegistryMirror] = {}
        self._thread: threading.Thread | None = None
        self._closed = False
        self._busy = False

    def __call__(self, life: Lifecycle, record: LogRecord) -> None:
        with self._cond:
            self._due[(record.kind, record.scope)] = life.store
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="mlflow-registry",
                                                daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def _mirror(self, store: Store) -> RegistryMirror:
        mirror = self._mirrors.get(id(store))
        if mirror is None:
            mirror = RegistryMirror(store, tracking_uri=self.tracking_uri,
                                    artifact_location=self.artifact_location)
            self._mirrors[id(store)] = mirror
        return mirror

    def _loop(self) -> None:
        delay = 0.0
        while True:
            with self._cond:
                while not self._due and not self._closed:
                    self._cond.wait()
                if not self._due:
                    return
                if delay:
                    self._cond.wait(delay)
                due, self._due = self._due, {}
                self._busy = True
            failed = {}
            for (kind, scope), store in due.items():
                try:
                    self._mirror(store).sync(kind, scope)
                    self.synced += 1
                except Exception as exc:  # an MLflow outage: keep it due, report once
                    failed[(kind, scope)] = store
                    if self.failures == 0:
                        logger.warning("MLflow registry at %s unreachable (%s: %s); the "
                                       "mirror retries, the store is unaffected",
                                       self.tracking_uri, type(exc).__name__,
                                       str(exc).splitlines()[0][:200] if str(exc) else "")
                    self.failures += 1
            with self._cond:
                for key, store in failed.items():
                    self._due.setdefault(key, store)
                self._busy = False
                self._cond.notify_all()
            if failed:
                delay = min(max(2 * delay, self.retry_min), self.retry_max)
            else:
                if delay and self.failures:
                    logger.warning("MLflow registry at %s is back; the mirror caught up",
                                   self.tracking_uri)
                    self.failures = 0
                delay = 0.0

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until no sync is due (False on timeout: MLflow still away)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._due and not self._busy, timeout)

    def close(self, timeout: float = 10.0) -> None:
        self.flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
