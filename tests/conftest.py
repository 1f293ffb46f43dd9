"""Shared fixtures: a real sqlite registry per test, one real `mlflow server` per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import FAST_HTTP_ENV, MlflowServer, start_mlflow_server

for _k, _v in FAST_HTTP_ENV.items():
    os.environ.setdefault(_k, _v)


@pytest.fixture
def sqlite_uri(tmp_path: Path) -> str:
    """A fresh in-process sqlite registry (the embedded default)."""
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """One real `mlflow server` subprocess for the session (startup takes ~10 s)."""
    server = start_mlflow_server(tmp_path_factory.mktemp("mlflow-server"))
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's tracking URI or DagsHub repo."""
    for var in ("MLFLOW_TRACKING_URI", "DAGSHUB_REPO", "MLFLOW_REGISTRY_URI", "GITHUB_ACTOR"):
        monkeypatch.delenv(var, raising=False)
