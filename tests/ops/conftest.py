"""An embedded MLflow store (sqlite) shared by the ops tests of one run: creating its
schema takes seconds, so it is made once."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    root: Path = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    MlflowClient(uri).search_experiments()  # creates the schema
    return uri


@pytest.fixture(scope="session")
def mlflow_artifacts(mlflow_uri: str) -> str:
    return str(Path(mlflow_uri.removeprefix("sqlite:///")).parent / "mlruns")
