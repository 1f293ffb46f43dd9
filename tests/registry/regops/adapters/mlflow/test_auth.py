"""regops against an authenticated server (`mlflow server --app-name basic-auth`).

Credentials come only from the environment (MLFLOW_TRACKING_USERNAME/PASSWORD) and
never appear in output, plan files or tags. Permissions in MLflow's basic auth:
EDIT may change stages, set/move aliases, descriptions and tags; deleting an alias
needs MANAGE.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from click.testing import Result

from tests.support.backends import AuthServer, environ, leaks, registry_dump, regops, write_state
from tests.support.servers import make_registry

pytestmark = pytest.mark.server


def state(models: dict[str, dict[str, str]]) -> str:
    """{model: {version: "{stage: X, aliases: [...]}"}} -> state file text."""
    lines = ["apiVersion: regops/v1", "models:"]
    for name, versions in models.items():
        lines += [f"  {name}:", "    versions:"]
        lines += [f'      "{v}": {spec}' for v, spec in versions.items()]
    return "\n".join(lines) + "\n"


def login(monkeypatch: pytest.MonkeyPatch, user: str, password: str) -> list[str]:
    """Use these credentials (from the environment only); returns the strings that must not leak."""
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    return [password, basic]


def seed(auth: AuthServer, models: dict[str, int], **kw: object) -> None:
    with environ(auth.admin_env()):
        make_registry(auth.url, models, **kw)  # type: ignore[arg-type]


def dump(auth: AuthServer, names: list[str]) -> dict[str, object]:
    with environ(auth.admin_env()):
        return registry_dump(auth.url, names)


def outcome_lines(result: Result) -> list[str]:
    return [
        line.strip()
        for line in result.output.splitlines()
        if line[:8].strip() in ("applied", "failed", "skipped")
    ]


def test_editor_reconciles_the_model_it_may_edit(
    auth_server: AuthServer, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(auth_server, {"AuthEdit": 3}, stage_of={("AuthEdit", "2"): "Staging"})
    password = auth_server.create_user("editor", {"AuthEdit": "EDIT"})
    secret = login(monkeypatch, "editor", password)
    write_state(
        state_dir,
        state(
            {
                "AuthEdit": {
                    "1": "{stage: Archived}",
                    "2": "{stage: Production, aliases: [champion]}",
                    "3": "{stage: Staging, aliases: [challenger]}",
                }
            }
        ),
    )

    planned = regops(auth_server.url, state_dir, "plan", "--out", "plan.json")
    assert planned.exit_code == 0, planned.output
    done = regops(auth_server.url, state_dir, "reconcile", "--plan", "plan.json")
    assert done.exit_code == 0, done.output
    assert "Reconcile: 5 applied, 0 failed, 0 skipped." in done.output
    in_sync = regops(auth_server.url, state_dir, "plan", "--detailed-exitcode")
    assert in_sync.exit_code == 0, in_sync.output

    live = dump(auth_server, ["AuthEdit"])
    assert live["AuthEdit"]["aliases"] == {"champion": "2", "challenger": "3"}  # type: ignore[index]
    assert not leaks(
        secret,
        plan_output=planned.output,
        plan_file=Path("plan.json").read_text(),
        reconcile_output=done.output,
        tags=json.dumps(live),
    )


def test_read_only_user_gets_a_permission_error_and_the_rest_is_skipped(
    auth_server: AuthServer, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(auth_server, {"AuthOk": 2, "AuthRO": 2})
    write_state(
        state_dir,
        state(
            {
                "AuthOk": {"1": "{stage: Staging, aliases: [champion]}"},
                "AuthRO": {"1": "{stage: Staging}", "2": "{stage: Staging, aliases: [challenger]}"},
            }
        ),
    )
    before = dump(auth_server, ["AuthOk", "AuthRO"])

    # A user with READ only (the server's default permission): the first write is refused,
    # named, and every later change is reported as not attempted; nothing changes. One
    # writer, so which model is tried first is fixed (with several, each model in flight
    # when the first refusal comes is refused too: test_parallel.py).
    reader_pw = auth_server.create_user("reader")
    secret = login(monkeypatch, "reader", reader_pw)
    refused = regops(auth_server.url, state_dir, "reconcile", "--parallel", "1")
    assert refused.exit_code == 1, refused.output
    assert outcome_lines(refused) == [
        "failed  AuthOk: version 1 stage: None -> Staging  (permission denied: the credentials "
        "in use may not change AuthOk version 1)",
        "skipped  AuthOk: alias champion: set on version 1  "
        "(not attempted: an earlier change failed (AuthOk))",
        "skipped  AuthRO: version 1 stage: None -> Staging  "
        "(not attempted: an earlier change failed (AuthOk))",
        "skipped  AuthRO: version 2 stage: None -> Staging  "
        "(not attempted: an earlier change failed (AuthOk))",
        "skipped  AuthRO: alias challenger: set on version 2  "
        "(not attempted: an earlier change failed (AuthOk))",
    ]
    assert "Reconcile: 0 applied, 1 failed, 4 skipped." in refused.output
    assert dump(auth_server, ["AuthOk", "AuthRO"]) == before

    # EDIT on one model, READ on the other: the first model lands, the second is refused
    # at its first change and the report says exactly which part was applied.
    partial_pw = auth_server.create_user("partial", {"AuthOk": "EDIT"})
    secret += login(monkeypatch, "partial", partial_pw)
    partial = regops(auth_server.url, state_dir, "reconcile", "--format", "json", "--parallel", "1")
    assert partial.exit_code == 1, partial.output
    result = json.loads(partial.stdout)["result"]
    assert [(o["change"]["model"], o["status"]) for o in result["outcomes"]] == [
        ("AuthOk", "applied"),
        ("AuthOk", "applied"),
        ("AuthRO", "failed"),
        ("AuthRO", "skipped"),
        ("AuthRO", "skipped"),
    ]
    failed = result["outcomes"][2]
    assert failed["error"] == (
        "permission denied: the credentials in use may not change AuthRO version 1"
    )
    assert result["records_written"] == ["AuthOk"]
    after = dump(auth_server, ["AuthOk", "AuthRO"])
    assert after["AuthRO"] == before["AuthRO"]
    rest = regops(auth_server.url, state_dir, "plan", "--detailed-exitcode")
    assert rest.exit_code == 2
    assert "AuthOk" not in rest.output.split("State:")[1]  # only AuthRO is left to do
    assert not leaks(
        secret,
        refused=refused.output,
        partial=partial.output,
        plan=rest.output,
        tags=json.dumps(after),
    )


def test_deleting_an_alias_needs_manage(
    auth_server: AuthServer, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(auth_server, {"AuthAlias": 2})
    with environ(auth_server.admin_env()):
        from tests.support.backends import client

        client(auth_server.url).set_registered_model_alias("AuthAlias", "stale", "1")
    write_state(state_dir, state({"AuthAlias": {"1": "{stage: Staging}"}}))

    edit_pw = auth_server.create_user("alias-editor", {"AuthAlias": "EDIT"})
    secret = login(monkeypatch, "alias-editor", edit_pw)
    denied = regops(auth_server.url, state_dir, "reconcile")
    assert denied.exit_code == 1
    assert outcome_lines(denied) == [
        "applied  AuthAlias: version 1 stage: None -> Staging",
        "failed  AuthAlias: alias stale: removed from version 1  (permission denied: the "
        "credentials in use may not change AuthAlias version 1 "
        "(deleting an alias needs MANAGE permission))",
    ]

    manage_pw = auth_server.create_user("alias-manager", {"AuthAlias": "MANAGE"})
    secret += login(monkeypatch, "alias-manager", manage_pw)
    done = regops(auth_server.url, state_dir, "reconcile")
    assert done.exit_code == 0, done.output
    assert regops(auth_server.url, state_dir, "plan", "--detailed-exitcode").exit_code == 0
    assert not leaks(secret, denied=denied.output, done=done.output)


def test_bad_or_missing_credentials_are_clear_and_never_echoed(
    auth_server: AuthServer, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_state(state_dir, state({"AuthNobody": {"1": "{stage: Staging}"}}))
    wrong = "not-the-password-" + auth_server.admin_password[:6]
    secret = login(monkeypatch, auth_server.admin_user, wrong) + [auth_server.admin_password]
    bad = regops(auth_server.url, state_dir, "plan")
    assert bad.exit_code == 1
    assert "could not read the registry" in bad.output
    assert "401" in bad.output
    assert "not authenticated" in bad.output

    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
    anonymous = regops(auth_server.url, state_dir, "plan")
    assert anonymous.exit_code == 1
    assert "not authenticated" in anonymous.output

    # Credentials embedded in the URI (e.g. from MLFLOW_TRACKING_URI) are masked everywhere,
    # also in the error when the server cannot be reached.
    host = auth_server.url.split("://", 1)[1]
    in_uri = regops(f"http://admin:{wrong}@{host}", state_dir, "plan")
    unreachable = regops(f"http://admin:{wrong}@127.0.0.1:9", state_dir, "plan")
    assert unreachable.exit_code == 1
    assert "http://***@127.0.0.1:9" in unreachable.output
    assert not leaks(
        secret,
        bad=bad.output,
        anonymous=anonymous.output,
        in_uri=in_uri.output,
        unreachable=unreachable.output,
    )
