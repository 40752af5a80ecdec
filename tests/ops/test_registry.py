"""ops.registry: the store's lifecycle mirrored in MLflow's model registry, aliases included."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from swarmlearn.lifecycle import Lifecycle, Lineage, Produced, TaskResult, add_observer, gate
from swarmlearn.ops.registry import MirrorObserver, RegistryMirror, model_name
from swarmlearn.store import SqlStore

pytestmark = pytest.mark.slow  # an MLflow store: seconds to create


def _won(better: bool) -> tuple[list[TaskResult], list[TaskResult]]:
    return ([TaskResult(i, not better, 5.0) for i in range(30)],
            [TaskResult(i, better, 5.0) for i in range(30)])


def _produce(life: Lifecycle, n: int, parent: int | None = None):  # type: ignore[no-untyped-def]
    return life.register(Produced(payload=f'{{"n": {n}}}'.encode(), summary={"n": n},
                                  lineage=Lineage(parent=parent, inputs={"sessions": [n]},
                                                  config={"lr": 0.1 * n},
                                                  metrics={"loss": 1.0 / n})))


def test_model_name_is_mlflow_safe() -> None:
    assert model_name("snapshot", "troubleshooting[heldout]") == (
        "swarmlearn.snapshot.troubleshooting-heldout")


def test_champion_follows_promotions_and_rollbacks(tmp_path: Path, mlflow_uri: str,
                                                   mlflow_artifacts: str) -> None:
    from mlflow.tracking import MlflowClient

    store = SqlStore(f"sqlite:///{tmp_path}/s.db")
    life = Lifecycle(store, "snapshot", "reg[one]")
    mirror = RegistryMirror(store, tracking_uri=mlflow_uri, artifact_location=mlflow_artifacts)
    client = MlflowClient(mlflow_uri)
    name = model_name("snapshot", "reg[one]")

    v1 = life.decide(life.start_evaluation(_produce(life, 1)), gate(*_won(True)))
    mirror.sync()
    assert client.get_model_version_by_alias(name, "champion").tags["swarmlearn.version"] == "1"

    v2 = life.start_evaluation(_produce(life, 2, parent=v1.id))
    mirror.sync()
    chal = client.get_model_version_by_alias(name, "challenger")
    assert chal.tags["swarmlearn.state"] == "evaluating" and chal.tags["swarmlearn.parent"] == str(
        v1.id)
    life.decide(v2, gate(*_won(True)))
    v3 = life.decide(life.start_evaluation(_produce(life, 3)), gate(*_won(False)))
    report = mirror.sync()
    champ = client.get_model_version_by_alias(name, "champion")
    assert champ.tags["swarmlearn.artifact_id"] == str(v2.id)
    rejected = next(mv for mv in client.search_model_versions(f"name='{name}'")
                if mv.tags["swarmlearn.artifact_id"] == str(v3.id))
    # the store's challenger is the last version evaluated, rejected or not
    assert report.aliases[f"{name}@challenger"] == str(rejected.version)
    assert str(client.get_registered_model(name).aliases["challenger"]) == str(rejected.version)
    assert rejected.tags["swarmlearn.state"] == "rejected"
    assert rejected.tags["swarmlearn.gate.promote"] == "False"
    assert float(rejected.tags["swarmlearn.gate.p_value"]) > 0.05
    run = client.get_run(rejected.run_id)
    assert run.data.params["config.lr"] == "0.30000000000000004"
    assert run.data.metrics["lineage.loss"] == pytest.approx(1 / 3)

    life.rollback("live success fell", automatic=True)
    mirror.sync()
    assert client.get_model_version_by_alias(name, "champion").tags["swarmlearn.version"] == "1"
    old = next(mv for mv in client.search_model_versions(f"name='{name}'")
           if mv.tags["swarmlearn.version"] == "2")
    assert old.tags["swarmlearn.state"] == "retired"
    life.rollback("again")  # the baseline: no champion, so no alias
    mirror.sync()
    assert "champion" not in client.get_registered_model(name).aliases
    again = mirror.sync()
    assert again.created == [] and again.retagged == 0  # idempotent
    store.close()


def test_observer_mirrors_each_step_in_the_background(
        tmp_path: Path, mlflow_uri: str, mlflow_artifacts: str) -> None:
    from mlflow.tracking import MlflowClient

    store = SqlStore(f"sqlite:///{tmp_path}/s.db")
    observer = MirrorObserver(tracking_uri=mlflow_uri, artifact_location=mlflow_artifacts)
    remove = add_observer(observer)
    try:
        life = Lifecycle(store, "profile", "obs")
        v1 = life.decide(life.start_evaluation(_produce(life, 1)), gate(*_won(True)))
        assert observer.flush(60)
        client = MlflowClient(mlflow_uri)
        name = model_name("profile", "obs")
        assert client.get_model_version_by_alias(name, "champion").tags[
            "swarmlearn.artifact_id"] == str(v1.id)
        v2 = life.decide(life.start_evaluation(_produce(life, 2)), gate(*_won(True)))
        assert observer.flush(60)
        assert client.get_model_version_by_alias(name, "champion").tags[
            "swarmlearn.artifact_id"] == str(v2.id)
    finally:
        remove()
        observer.close()
        store.close()


def test_observer_outage_is_reported_once_and_never_blocks(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    store = SqlStore(f"sqlite:///{tmp_path}/s.db")
    (tmp_path / "blocked").write_text("a file, not a directory")
    observer = MirrorObserver(tracking_uri=f"sqlite:///{tmp_path}/blocked/m.db",
                              retry_min=0.05, retry_max=0.1)
    remove = add_observer(observer)
    try:
        life = Lifecycle(store, "profile", "down")
        life.decide(life.start_evaluation(_produce(life, 1)), gate(*_won(True)))
        assert not observer.flush(1.0)
        assert life.champion() is not None  # the store moved on
    finally:
        remove()
        observer.close(0.1)
        store.close()
    msgs = [r.getMessage() for r in caplog.records if r.name == "swarmlearn.ops.registry"]
    assert observer.failures > 2 and len(msgs) == 1 and "unreachable" in msgs[0]
