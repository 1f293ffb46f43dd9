"""Helpers for the backend tests: regops in-process and as a subprocess, state files, tags,
the PostgreSQL switch and the basic-auth server's handle."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from regops.cli import cli
from tests.support.servers import FAST_HTTP_ENV, MlflowServer

POSTGRES_ENV = "REGOPS_TEST_POSTGRES_URI"

# The environment variables through which MLflow's client takes credentials.
REGOPS_BIN = str(Path(sys.executable).with_name("regops"))  # the console script users run
CREDENTIAL_VARS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")


def regops(uri: str, state_dir: Path, *args: str) -> Result:
    """`regops ARGS --tracking-uri URI --state-dir DIR` in-process (credentials from os.environ)."""
    return CliRunner().invoke(cli, [*args, "--tracking-uri", uri, "--state-dir", str(state_dir)])


def regops_process(
    uri: str, state_dir: Path, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.Popen[str]:
    """Start `regops ARGS` as its own process (a second reconciler is a second process).

    stdout and stderr are separate pipes (`out, err = proc.communicate()`): a document on
    stdout is parsed alone, whatever a racing run makes regops say on stderr."""
    full = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARS}
    full.pop("MLFLOW_TRACKING_URI", None)
    full.update(FAST_HTTP_ENV)
    full.update(env or {})
    return subprocess.Popen(
        [REGOPS_BIN, *args, "--tracking-uri", uri, "--state-dir", str(state_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full,
    )


def write_state(state_dir: Path, text: str, name: str = "models.yaml") -> Path:
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / name
    path.write_text(text, encoding="utf-8")
    return path


def client(uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def registry_dump(uri: str, names: list[str]) -> dict[str, Any]:
    """Everything a reconcile may touch, per model: stages, aliases, description, all tags."""
    c = client(uri)
    out: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        for name in names:
            m = c.get_registered_model(name)
            versions = c.search_model_versions(f"name = '{name}'")
            out[name] = {
                "description": m.description,
                "aliases": {a: str(v) for a, v in m.aliases.items()},
                "tags": dict(m.tags),
                "versions": {
                    str(v.version): {"stage": v.current_stage, "tags": dict(v.tags)}
                    for v in versions
                },
            }
    return out


@contextmanager
def environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for a block (for code outside a test's monkeypatch)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def leaks(secrets: list[str], **texts: str) -> list[str]:
    """Where any of `secrets` appears among `texts` (name -> text)."""
    return sorted({where for where, text in texts.items() for s in secrets if s and s in text})


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@dataclass
class AuthServer:
    """A real `mlflow server --app-name basic-auth` and its admin's credentials."""

    server: MlflowServer
    admin_user: str
    admin_password: str

    @property
    def url(self) -> str:
        return self.server.url

    def admin_env(self) -> dict[str, str]:
        return {
            "MLFLOW_TRACKING_USERNAME": self.admin_user,
            "MLFLOW_TRACKING_PASSWORD": self.admin_password,
        }

    def create_user(self, name: str, grants: dict[str, str] | None = None) -> str:
        """Create a user (as admin) with permissions per model; returns its password."""
        from mlflow.server import get_app_client

        password = secrets.token_urlsafe(18)
        with environ(self.admin_env()):
            admin = get_app_client("basic-auth", tracking_uri=self.url)
            admin.create_user(name, password)
            for model, permission in (grants or {}).items():
                admin.grant_user_permission(name, "registered_model", model, permission)
        return password
