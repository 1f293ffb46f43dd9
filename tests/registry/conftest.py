"""Fixtures of the real-registry tests beyond tests/conftest.py's (sqlite_uri and
mlflow_server, which the end-to-end tests share): a PostgreSQL store, an authenticated
server, a scratch state directory.

PostgreSQL comes from REGOPS_TEST_POSTGRES_URI (`.ci/run` starts one and exports it).
Without it the PostgreSQL tests skip on a laptop and fail under CI=true: CI must
never pass by silently skipping a backend.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.backends import POSTGRES_ENV, AuthServer, in_ci
from tests.support.servers import MlflowServer, start_mlflow_server

# MLflow's client and server phone home for telemetry; with no network that only costs time.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

ENABLE_HINT = (
    f"set {POSTGRES_ENV}=postgresql+psycopg2://USER:PASSWORD@127.0.0.1:5432/DB "
    f'(a role allowed to CREATEDB), e.g. `export {POSTGRES_ENV}="$(.ci/start-postgres)"`'
)


def _unavailable(reason: str) -> None:
    if in_ci():
        pytest.fail(f"PostgreSQL backend tests cannot run in CI: {reason}; {ENABLE_HINT}")
    pytest.skip(f"PostgreSQL backend tests skipped: {reason}; to enable them, {ENABLE_HINT}")


@pytest.fixture(scope="session")
def postgres_uri() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test session (dropped afterwards)."""
    base = os.environ.get(POSTGRES_ENV, "").strip()
    if not base:
        _unavailable(f"{POSTGRES_ENV} is not set")
    try:
        import sqlalchemy as sa
        from sqlalchemy.engine import make_url

        admin = sa.create_engine(base, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
        db = f"regops_test_{secrets.token_hex(4)}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{db}"'))
    except Exception as exc:  # no driver, server down, bad credentials: say which
        _unavailable(f"cannot create a database at {POSTGRES_ENV}: {type(exc).__name__}")
    url = make_url(base).set(database=db)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="package")
def pg_server(
    postgres_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MlflowServer]:
    """A real `mlflow server` whose backend store is the PostgreSQL database."""
    server = start_mlflow_server(tmp_path_factory.mktemp("pg-server"), backend_uri=postgres_uri)
    yield server
    server.stop()


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `registry-state` directory in a scratch working directory."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "registry-state"
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    """Basic auth: every user may read every model (default READ); writes need a grant."""
    work = tmp_path_factory.mktemp("auth-server")
    admin_password = secrets.token_urlsafe(18)
    ini = work / "basic_auth.ini"
    ini.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{work / 'basic_auth.db'}\n"
        "admin_username = admin\n"
        f"admin_password = {admin_password}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        # Password hashing costs ~1 s a request on a small machine; cache verified logins.
        "auth_cache_ttl_seconds = 600\n",
        encoding="utf-8",
    )
    server = start_mlflow_server(
        work / "server",
        extra_args=["--app-name", "basic-auth"],
        env={
            "MLFLOW_AUTH_CONFIG_PATH": str(ini),
            "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(32),
        },
    )
    yield AuthServer(server, "admin", admin_password)
    server.stop()
