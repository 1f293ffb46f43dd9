"""`regops webhooks install|list` on a real in-process sqlite registry (and through --env),
and `regops relay`'s usage errors: exit 64 with a clear message, never a traceback."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from regops.cli import cli

SECRET = "webhook-secret-for-cli-tests"  # noqa: S105


@pytest.fixture(autouse=True)
def _loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow (in-process here) accepts only https URLs that resolve to public addresses
    unless told otherwise; the relay's URL in these tests is on 127.0.0.1."""
    monkeypatch.setenv("MLFLOW_WEBHOOK_ALLOWED_SCHEMES", "http,https")
    monkeypatch.setenv("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS", "true")


RELAY_URL = "http://127.0.0.1:9/mlflow"


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def said(result: Result) -> str:
    return str(result.stdout) + str(result.stderr)


def test_install_is_idempotent_and_list_never_shows_the_secret(
    sqlite_uri: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_uri)
    monkeypatch.setenv("REGOPS_WEBHOOK_SECRET", SECRET)
    empty = run("webhooks", "list")
    assert empty.exit_code == 0, said(empty)
    assert empty.stdout.strip() == "no webhooks registered"
    url = "https://relay.example.com/mlflow"
    first = run("webhooks", "install", "--url", url)
    assert first.exit_code == 0, said(first)
    assert (
        "webhook regops-relay created: https://relay.example.com/mlflow (5 events)" in first.stdout
    )
    moved = run("--format", "json", "webhooks", "install", "--url", url + "2")
    assert json.loads(moved.stdout)["action"] == "updated"
    same = run("--format", "json", "webhooks", "install", "--url", url + "2")
    assert json.loads(same.stdout)["action"] == "unchanged"
    listed = run("webhooks", "list", "--format", "json")
    hooks = json.loads(listed.stdout)["webhooks"]
    assert len(hooks) == 1
    assert hooks[0]["url"] == url + "2"
    assert hooks[0]["events"] == sorted(
        [
            "model_version.created",
            "model_version_alias.created",
            "model_version_alias.deleted",
            "model_version_tag.deleted",
            "model_version_tag.set",
        ]
    )
    for r in (first, moved, same, listed, run("webhooks", "list")):
        assert SECRET not in said(r)


def test_install_needs_the_secret_and_an_http_url(
    sqlite_uri: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_uri)
    monkeypatch.delenv("REGOPS_WEBHOOK_SECRET", raising=False)
    r = run("webhooks", "install", "--url", "https://relay.example.com/mlflow")
    assert r.exit_code == 64
    assert "set REGOPS_WEBHOOK_SECRET" in said(r)
    monkeypatch.setenv("REGOPS_WEBHOOK_SECRET", SECRET)
    r = run("webhooks", "install", "--url", "ftp://relay.example.com/mlflow")
    assert r.exit_code == 64
    assert "--url must be the relay's http(s) URL" in said(r)
    assert "Traceback" not in said(r)


def test_env_picks_the_registry(
    sqlite_uri: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "regops.yaml").write_text(
        "apiVersion: regops/v1\nenvironments:\n  prod:\n    tracking_uri: ${T_PROD_URI}\n"
        "    state_dir: registry-state/prod\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("T_PROD_URI", sqlite_uri)
    monkeypatch.setenv("REGOPS_WEBHOOK_SECRET", SECRET)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    no_env = run("webhooks", "list")
    assert no_env.exit_code == 64
    assert "pick one with --env NAME" in said(no_env)
    r = run("--env", "prod", "webhooks", "install", "--url", RELAY_URL)
    assert r.exit_code == 0, said(r)
    listed = run("webhooks", "list", "--env", "prod", "--format", "json")
    assert [h["name"] for h in json.loads(listed.stdout)["webhooks"]] == ["regops-relay"]


@pytest.mark.parametrize(
    ("env", "args", "message"),
    [
        ({}, [], "regops relay needs REGOPS_WEBHOOK_SECRET, GITHUB_TOKEN, GITHUB_REPOSITORY"),
        (
            {"REGOPS_WEBHOOK_SECRET": "s", "GITHUB_TOKEN": "t", "GITHUB_REPOSITORY": "no-slash"},
            [],
            "GITHUB_REPOSITORY must be OWNER/NAME",
        ),
        (
            {"REGOPS_WEBHOOK_SECRET": "s", "GITHUB_TOKEN": "t", "GITHUB_REPOSITORY": "o/r"},
            ["--listen", "localhost"],
            "--listen must be HOST:PORT",
        ),
        (
            {
                "REGOPS_WEBHOOK_SECRET": "s",
                "GITHUB_TOKEN": "t",
                "GITHUB_REPOSITORY": "o/r",
                "GITHUB_API_URL": "file:///etc",
            },
            [],
            "GITHUB_API_URL must be an http(s) URL",
        ),
    ],
    ids=["nothing-set", "bad-repository", "bad-listen", "bad-api-url"],
)
def test_relay_usage_errors(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], args: list[str], message: str
) -> None:
    for k in ("REGOPS_WEBHOOK_SECRET", "GITHUB_TOKEN", "GITHUB_REPOSITORY", "GITHUB_API_URL"):
        monkeypatch.delenv(k, raising=False)
    r = run("relay", *args, env=env)
    assert r.exit_code == 64
    assert message in said(r)
    assert "Traceback" not in said(r)


def test_mlflows_refusal_of_a_private_url_is_a_clear_error(
    sqlite_uri: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_uri)
    monkeypatch.setenv("REGOPS_WEBHOOK_SECRET", SECRET)
    monkeypatch.delenv("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS")
    monkeypatch.delenv("MLFLOW_WEBHOOK_ALLOWED_SCHEMES")
    r = run("webhooks", "install", "--url", RELAY_URL)
    assert r.exit_code == 1
    assert "error: registering the webhook failed" in said(r)
    assert "Traceback" not in said(r)
