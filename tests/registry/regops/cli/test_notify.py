"""`notify:` in regops.yaml, end to end on a real in-process sqlite registry: receivers on
127.0.0.1 record what reconcile (applied, blocked, failed) and the drift check (drift)
send; JSON bodies are checked against schemas/notification.schema.json, signatures are
verified, and no secret appears in any body. `plan` alone never sends."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import threading
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tests.support.paths import SCHEMAS
from tests.support.repo import client, regops, write_state

NOTIFY_SECRET = "notify-signing-key-5d1e"  # noqa: S105 - a test secret: the tests look for it
HOOK_TOKEN = "hooktoken-T0P5ECRET"  # noqa: S105 - part of the Slack URL (a secret too)


class Receiver:
    """An HTTP receiver on 127.0.0.1 recording (headers, body) of each POST."""

    def __init__(self, status: int = 200) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                n = int(self.headers.get("Content-Length") or 0)
                outer.got.append(
                    ({k.lower(): v for k, v in self.headers.items()}, self.rfile.read(n))
                )
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(b) for _h, b in self.got]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


CONFIG = """\
apiVersion: regops/v1
notify:
  - url: ${SLACK_WEBHOOK_URL}
    format: slack
    on: [applied, blocked, drift, failed]
  - url: ${OPS_HOOK_URL}/hook
    format: json
    secret: ${REGOPS_NOTIFY_SECRET}
    on: [applied, blocked, drift]
"""

STATE = """\
apiVersion: regops/v1
policy:
  use_stages: false
  aliases:
    champion:
      require_tags: {validation_status: passed}
models:
  Notify_Model:
    versions:
      "1": {aliases: [champion]}
"""


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    slack, ops = Receiver(), Receiver()
    yield slack, ops
    slack.close()
    ops.close()


@pytest.fixture
def repo(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sqlite_uri: str,
    receivers: tuple[Receiver, Receiver],
) -> str:
    slack, ops = receivers
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "regops.yaml").write_text(CONFIG)
    write_state(tmp_path / "registry-state", STATE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_uri)
    monkeypatch.setenv("SLACK_WEBHOOK_URL", f"{slack.url}/services/{HOOK_TOKEN}")
    monkeypatch.setenv("OPS_HOOK_URL", ops.url)
    monkeypatch.setenv("REGOPS_NOTIFY_SECRET", NOTIFY_SECRET)
    monkeypatch.setenv("REGOPS_REGISTRY_NAME", "production")
    c = client(sqlite_uri)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c.create_registered_model("Notify_Model")
        c.create_model_version("Notify_Model", source="s3://x/1", run_id=None)
        c.create_model_version("Notify_Model", source="s3://x/2", run_id=None)
        c.set_model_version_tag("Notify_Model", "1", "validation_status", "passed")
    return sqlite_uri


def said(result: Any) -> str:
    """Everything a command printed, stdout and stderr."""
    return str(result.stdout) + str(result.stderr)


def check_json(ops: Receiver, event: str) -> dict[str, Any]:
    validator = Draft202012Validator(
        json.loads((SCHEMAS / "notification.schema.json").read_text()),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )
    assert ops.got, "nothing sent to the json receiver"
    headers, body = ops.got[-1]
    validator.validate(json.loads(body))
    expected = "sha256=" + hmac.new(NOTIFY_SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-regops-signature"], expected)
    doc = json.loads(body)
    assert doc["event"] == event
    return doc


def no_secret_anywhere(*receivers: Receiver) -> None:
    for r in receivers:
        for headers, body in r.got:
            text = body.decode() + json.dumps(headers)
            assert NOTIFY_SECRET not in text
            assert HOOK_TOKEN not in text


def test_reconcile_notifies_applied_to_slack_and_signed_json(
    repo: str, receivers: tuple[Receiver, Receiver]
) -> None:
    slack, ops = receivers
    result = regops("reconcile")
    assert result.exit_code == 0, result.output
    doc = check_json(ops, "applied")
    assert doc["registry"] == "production"
    assert doc["items"] == [
        {"model": "Notify_Model", "version": "1", "text": "alias champion: set on version 1"}
    ]
    assert len(slack.got) == 1
    message = slack.bodies()[0]
    assert "regops applied changes" in message["text"]
    assert message["blocks"][0]["text"]["type"] == "mrkdwn"
    assert "notified http://127.0.0.1 (applied)" in said(result)
    no_secret_anywhere(slack, ops)


def test_plan_never_sends_and_the_drift_check_sends_drift(
    repo: str, receivers: tuple[Receiver, Receiver]
) -> None:
    slack, ops = receivers
    assert regops("reconcile").exit_code == 0
    slack.got.clear()
    ops.got.clear()
    client(repo).set_registered_model_alias("Notify_Model", "champion", "2")  # outside git
    plain = regops("plan", "--detailed-exitcode")
    assert plain.exit_code == 3, plain.output
    assert slack.got == []
    assert ops.got == []
    checked = regops("plan", "--detailed-exitcode", "--notify-drift")
    assert checked.exit_code == 3, checked.output
    doc = check_json(ops, "drift")
    assert doc["items"][0]["model"] == "Notify_Model"
    assert "outside git" in doc["items"][0]["text"]
    assert "found drift" in slack.bodies()[-1]["text"]
    no_secret_anywhere(slack, ops)


def test_a_blocked_plan_is_notified(
    repo: str, receivers: tuple[Receiver, Receiver], tmp_path: Path
) -> None:
    slack, ops = receivers
    write_state(tmp_path / "registry-state", STATE.replace('"1": {aliases', '"2": {aliases'))
    result = regops("reconcile")
    assert result.exit_code == 1, result.output
    doc = check_json(ops, "blocked")
    assert doc["items"][0]["version"] == "2"
    assert "validation_status" in doc["items"][0]["text"]
    assert "refused to apply" in slack.bodies()[-1]["text"]
    no_secret_anywhere(slack, ops)


def test_an_undeliverable_notification_never_fails_the_apply(
    repo: str, receivers: tuple[Receiver, Receiver], monkeypatch: pytest.MonkeyPatch, dead_port: int
) -> None:
    monkeypatch.setenv("OPS_HOOK_URL", f"http://127.0.0.1:{dead_port}")
    monkeypatch.delenv("SLACK_WEBHOOK_URL")
    result = regops("--format", "json", "reconcile")
    assert result.exit_code == 0, result.output
    assert str(client(repo).get_model_version_by_alias("Notify_Model", "champion").version) == "1"
    assert "warning: notification to http://127.0.0.1 (applied) failed: ConnectionError" in (
        said(result)
    )
    assert "SLACK_WEBHOOK_URL" in said(result)  # which variable was missing
    assert NOTIFY_SECRET not in said(result)
    assert json.loads(result.stdout)["notifications"][1]["ok"] is False


def test_a_config_with_only_notify_needs_no_env_and_bad_entries_are_refused(
    repo: str, tmp_path: Path
) -> None:
    assert regops("validate").exit_code == 0
    (tmp_path / "regops.yaml").write_text(
        "apiVersion: regops/v1\nnotify:\n  - url: x\n    format: teams\n    secret: plain\n"
        "    on: [applied]\n"
    )
    result = regops("plan")
    assert result.exit_code == 1
    assert "regops.yaml:4" in said(result)  # format: teams, at its line
    assert "a notify secret must name a variable" in said(result)


def test_a_failed_change_is_notified_with_its_error_masked(
    repo: str, receivers: tuple[Receiver, Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`failed`: the outcome of a write the registry refused (built here as the executor
    reports it), whose error quotes a URI with a password."""
    from regops import api
    from regops.adapters.mlflow.executor import ApplyResult, Outcome
    from regops.core.plan import Change, ChangeKind, OutcomeStatus
    from regops.settings import Settings

    slack, ops = receivers
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pw-hunter2-secret")
    change = Change("Notify_Model", "1", ChangeKind.ALIAS_SET, None, "1", alias="champion")
    error = "POST https://bot:pw-hunter2-secret@mlflow.example.com/api failed: 503"
    result = ApplyResult((Outcome(change, OutcomeStatus.FAILED, error=error),))
    plan = api.plan(Settings(tracking_uri_flag=repo))
    sent = api.notify_reconcile(Settings(tracking_uri_flag=repo), plan, result)
    assert [(d.kind, d.ok) for d in sent] == [("failed", True)]  # ops is not subscribed
    text = slack.bodies()[-1]["text"]
    assert "could not apply every change" in text
    assert "503" in text
    assert "pw-hunter2-secret" not in json.dumps(slack.bodies())
    assert ops.got == []
