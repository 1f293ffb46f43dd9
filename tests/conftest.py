"""Shared fixtures: a real sqlite registry per test, one real `mlflow server` per session."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import FAST_HTTP_ENV, MlflowServer, refused_port, start_mlflow_server

for _k, _v in FAST_HTTP_ENV.items():
    os.environ.setdefault(_k, _v)


@pytest.fixture(scope="session")
def _empty_registry_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, fully migrated MLflow sqlite database, made once (migrations take seconds)."""
    from mlflow import MlflowClient

    db = tmp_path_factory.mktemp("template") / "mlflow.db"
    uri = f"sqlite:///{db}"
    MlflowClient(tracking_uri=uri, registry_uri=uri).search_registered_models()
    return db


@pytest.fixture
def sqlite_uri(tmp_path: Path, _empty_registry_db: Path) -> str:
    """A fresh in-process sqlite registry (the embedded default), private to the test."""
    db = tmp_path / "mlflow.db"
    shutil.copyfile(_empty_registry_db, db)
    return f"sqlite:///{db}"


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """One real `mlflow server` subprocess for the session (startup takes ~10 s)."""
    server = start_mlflow_server(tmp_path_factory.mktemp("mlflow-server"))
    yield server
    server.stop()


@pytest.fixture
def dead_port() -> Iterator[int]:
    """A 127.0.0.1 port held bound, never listening, for the whole test: a registry URL
    on it is refused every time, and no other process can take it meanwhile."""
    with refused_port() as port:
        yield port


@pytest.fixture(autouse=True)
def _forget_remembered_secrets() -> Iterator[None]:
    """Each test starts with the secrets one process of `regops` would have seen: none.

    `tracking` remembers every password it meets in a URI for the life of the process (one
    command). In-process tests would otherwise share them: a hypothesis-generated password
    such as 'lite' masked the 'sqlite' of a later test's expected message, by chance.
    """
    from regops.adapters import tracking

    before = set(tracking._seen_secrets)
    yield
    tracking._seen_secrets.clear()
    tracking._seen_secrets.update(before)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's tracking URI or DagsHub repo."""
    for var in ("MLFLOW_TRACKING_URI", "DAGSHUB_REPO", "MLFLOW_REGISTRY_URI", "GITHUB_ACTOR"):
        monkeypatch.delenv(var, raising=False)
