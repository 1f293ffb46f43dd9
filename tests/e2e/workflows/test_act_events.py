"""An alias moved outside git reaches the drift workflow in seconds: the real chain.

`mlflow server` (webhooks allowed to loopback) -> `regops relay` on 127.0.0.1 -> the fake
GitHub API records the repository_dispatch -> that dispatch, as GitHub would deliver it,
runs drift.yml under act -> the one "Registry drift" issue. Prints each leg's time.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from regops.cli import cli
from tests.support.act import REPO, Sandbox
from tests.support.relay import SECRET, WINDOW, start_relay, stop
from tests.support.servers import MlflowServer, make_registry

pytestmark = [pytest.mark.act, pytest.mark.server]

STATE = """\
apiVersion: regops/v1
models:
  Wf_Event:
    versions:
      "2": {aliases: [champion]}
"""


def test_an_alias_moved_outside_git_opens_the_drift_issue_through_the_relay(
    sandbox: Sandbox, act_registry: MlflowServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    uri = act_registry.url
    make_registry(uri, {"Wf_Event": 2})
    sandbox.write_state(STATE)
    sandbox.commit("desired")
    sandbox.push()
    monkeypatch.chdir(sandbox.work)
    applied = CliRunner().invoke(cli, ["reconcile", "--tracking-uri", uri])
    assert applied.exit_code == 0, applied.output

    relay = start_relay(tmp_path, sandbox.github.proxy, repository=REPO)
    try:
        env = {"REGOPS_WEBHOOK_SECRET": SECRET}
        args = ["webhooks", "install", "--tracking-uri", uri, "--url", f"{relay.url}/mlflow"]
        installed = CliRunner().invoke(cli, args, env=env)
        assert installed.exit_code == 0, installed.output
        time.sleep(2)  # MLflow's webhook cache (MLFLOW_WEBHOOK_CACHE_TTL=1 here)

        fake = sandbox.github.fake
        started = time.monotonic()
        MlflowClient(tracking_uri=uri, registry_uri=uri).set_registered_model_alias(
            "Wf_Event", "champion", "1"
        )  # someone moves the alias in the MLflow UI
        deadline = started + 30
        while not fake.dispatches and time.monotonic() < deadline:
            time.sleep(0.01)
        assert fake.dispatches, relay.logs()
        arrived, body, _headers = fake.dispatches[0]
        assert body["event_type"] == "mlflow.model_version_alias.created"
        assert body["client_payload"]["model"] == "Wf_Event"
        time.sleep(WINDOW + 0.2)
        assert len(fake.dispatches) == 1

        # GitHub's repository_dispatch event: `action` is the event_type.
        event = {
            "action": body["event_type"],
            "client_payload": body["client_payload"],
            "repository": {"full_name": REPO, "default_branch": "main"},
        }
        run = sandbox.act("repository_dispatch", "drift.yml", event)
        finished = time.monotonic()
        assert run.job("drift") == "succeeded", run.output[-4000:]
    finally:
        assert stop(relay) == 0
    [issue] = fake.issues("open")
    assert issue["title"] == "Registry drift"
    assert "drift: changed outside git" in issue["body"]
    assert "registry event mlflow.model_version_alias.created, model Wf_Event" in run.output
    print(
        f"\nalias moved -> dispatch at GitHub: {(arrived - started) * 1000:.0f} ms; "
        f"dispatch -> drift issue (act run on this host): {finished - arrived:.1f} s; "
        f"total {finished - started:.1f} s (the scheduled check runs every 6 h)"
    )
    host_port = sandbox.registry_url.split("://", 1)[1]
    for secret in (sandbox.registry_url, host_port, sandbox.token, SECRET):
        assert sandbox.published(secret) == [], f"{secret!r} was published"


def test_an_evidence_tag_dispatch_proposes_the_version_without_training(
    sandbox: Sandbox, act_registry: MlflowServer
) -> None:
    uri = act_registry.url
    sandbox.write_state("apiVersion: regops/v1\nmodels: {}\n")
    sandbox.commit("no models yet")
    sandbox.push()
    make_registry(uri, {"Wf_Evidence": 1})
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.set_model_version_tag("Wf_Evidence", "1", "validation_status", "passed")
    client.set_model_version_tag("Wf_Evidence", "1", "smoke_test_status", "passed")

    def event(tag: str) -> dict[str, object]:  # what regops relay sends for the last tag
        return {
            "action": "mlflow.model_version_tag.set",
            "client_payload": {
                "model": "Wf_Evidence",
                "version": "1",
                "tag": tag,
                "delivery_id": "d-1",
                "events": 1,
                "versions": ["1"],
            },
            "repository": {"full_name": REPO, "default_branch": "main"},
        }

    other = sandbox.act("repository_dispatch", "train.yml", event("owner_note"))
    assert "evidence" not in other.jobs or other.jobs["evidence"] != "succeeded"
    assert "train" not in other.jobs or other.jobs["train"] != "succeeded"
    assert sandbox.github.fake.pulls() == []  # not an evidence tag: nothing proposed

    run = sandbox.act("repository_dispatch", "train.yml", event("smoke_test_status"))
    assert run.job("evidence") == "succeeded", run.output[-6000:]
    assert run.job("propose") == "succeeded", run.output[-6000:]
    assert "train" not in run.jobs or run.jobs["train"] != "succeeded"  # nothing trained
    [pr] = sandbox.github.fake.pulls("open")
    assert pr["head"]["ref"] == "regops/candidates"
    assert "`Wf_Evidence` version 1" in pr["body"]
