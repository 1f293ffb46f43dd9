"""The workflows, executed end to end under act: judged by what they did.

Each test plays one story against a real `mlflow server` (the registry), a fake of the
GitHub API behind the real `gh`, and a bare git remote; then looks at the comments,
issues and pull requests, the registry, the pushed branches and each job's status.
No test reads the workflow text. Every test ends by checking that no secret (the
registry URI, its host and port, the token) reached a comment, issue, pull request,
job summary or artifact.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from regops.cli import cli
from tests.support.act import (
    ROOT,
    Sandbox,
    git,
    pr_payload,
    push_payload,
    state,
)
from tests.support.servers import MlflowServer, make_registry

pytestmark = [pytest.mark.act, pytest.mark.server]

GATED = "policy:\n  stages:\n    Production:\n      require_tags: {validation_status: passed}\n"


def client(uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def stages(uri: str, name: str) -> dict[str, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        found = client(uri).search_model_versions(f"name = '{name}'")
    return {str(v.version): v.current_stage for v in found}


def registry_dump(uri: str, name: str) -> list[Any]:
    """Everything about a model's versions a write could change (stage, tags)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        found = client(uri).search_model_versions(f"name = '{name}'")
    return sorted((str(v.version), v.current_stage, sorted(v.tags.items())) for v in found)


def assert_no_secret(box: Sandbox) -> None:
    host_port = box.registry_url.split("://", 1)[1]
    for secret in (box.registry_url, host_port, box.token):
        assert box.published(secret) == [], f"{secret!r} was published"


def new_model(act_registry: MlflowServer, name: str, versions: int = 2) -> str:
    make_registry(act_registry.url, {name: versions})
    return name


def start_pr(box: Sandbox, base_state: str, pr_state: str, number: int = 7) -> str:
    box.write_state(base_state)
    box.commit("base")
    box.push()
    git(box.work, "switch", "-q", "-c", "feature")
    box.write_state(pr_state)
    sha = box.commit("change the desired state")
    box.push("feature")
    box.github.fake.add_pull(number, "feature")
    return sha


# ---------------------------------------------------------------------------------------


def test_pr_gets_one_plan_comment_that_the_next_push_updates(
    sandbox: Sandbox, act_registry: MlflowServer
) -> None:
    name = new_model(act_registry, "Wf_Staged")
    sha = start_pr(
        sandbox, state({name: {"1": "None"}}), state({name: {"1": "None", "2": "Staging"}})
    )
    first = sandbox.act("pull_request", "registry-plan.yml", pr_payload(7, sha))
    assert first.job("plan") == "succeeded", first.output[-4000:]
    [comment] = sandbox.github.fake.comments_on(7)
    assert "version 2 stage: None -> Staging" in comment["body"]
    assert "registry `production`" in comment["body"]
    # It links the history page the apply workflow publishes ($REGOPS_HISTORY_URL).
    assert "/actions/workflows/registry-apply.yml)" in comment["body"]
    assert "The registry's history" in comment["body"]

    sandbox.write_state(state({name: {"1": "None", "2": "Production"}}))
    sha = sandbox.commit("rather Production")
    second = sandbox.act("pull_request", "registry-plan.yml", pr_payload(7, sha))
    assert second.job("plan") == "succeeded", second.output[-4000:]
    [again] = sandbox.github.fake.comments_on(7)
    assert again["id"] == comment["id"]  # the same comment, updated
    assert "version 2 stage: None -> Production" in again["body"]
    assert sha[:12] in again["body"]
    assert any("version 2 stage: None -> Production" in s for s in second.summaries)
    assert any('"changes"' in a for a in second.artifacts)  # the JSON plan artifact
    assert stages(act_registry.url, name) == {"1": "None", "2": "None"}  # a plan writes nothing
    assert_no_secret(sandbox)


def test_a_gate_blocked_promotion_fails_the_job_and_names_the_gate(
    sandbox: Sandbox, act_registry: MlflowServer
) -> None:
    name = new_model(act_registry, "Wf_Gated")
    sha = start_pr(sandbox, state({name: {}}, GATED), state({name: {"2": "Production"}}, GATED))
    run = sandbox.act("pull_request", "registry-plan.yml", pr_payload(7, sha))
    assert run.job("plan") == "failed"
    [comment] = sandbox.github.fake.comments_on(7)
    assert "a promotion gate blocks" in comment["body"]
    assert "❌ require_tags: validation_status is missing" in comment["body"]
    assert_no_secret(sandbox)


def test_merge_applies_to_the_real_server_and_a_second_apply_writes_nothing(
    sandbox: Sandbox, act_registry: MlflowServer
) -> None:
    name = new_model(act_registry, "Wf_Merged", versions=3)
    sandbox.write_state(state({name: {"1": "Archived", "2": "Production", "3": "Staging"}}))
    sha = sandbox.commit("merge: promote")
    sandbox.push()
    first = sandbox.act("push", "registry-apply.yml", push_payload(sha))
    assert first.job("reconcile") == "succeeded", first.output[-4000:]
    assert stages(act_registry.url, name) == {"1": "Archived", "2": "Production", "3": "Staging"}
    after_first = registry_dump(act_registry.url, name)
    stamps = [json.loads(v) for _, _, tags in after_first for k, v in tags if k == "regops.audit"]
    assert stamps
    assert all(s["commit"] == sha for s in stamps), stamps
    # The apply published the history page (make history-page, an artifact), naming the
    # registry as reports do (assert_no_secret below: never its URI).
    pages = [a for a in first.artifacts if 'id="regops-meta"' in a]
    assert len(pages) == 1, first.output[-4000:]
    assert '"uri":"production"' in pages[0]
    assert json.dumps(name) in pages[0]

    second = sandbox.act("push", "registry-apply.yml", push_payload(sha))
    assert second.job("reconcile") == "succeeded", second.output[-4000:]
    assert registry_dump(act_registry.url, name) == after_first  # nothing written
    assert any("No changes" in s for s in second.summaries), second.summaries

    # The trusted workflow published a snapshot of the registry: schema-valid, no URI.
    text = git(sandbox.origin, "show", "regops-snapshot:snapshot.json")
    doc = json.loads(text)
    jsonschema.validate(doc, json.loads((ROOT / "schemas" / "snapshot.schema.json").read_text()))
    assert doc["registry"] == "production"
    assert doc["models"][name]["versions"]["2"]["stage"] == "Production"
    assert act_registry.url.split("://")[1] not in text
    assert_no_secret(sandbox)


def test_drift_keeps_one_issue_open_while_it_lasts_and_closes_it_once_reconciled(
    sandbox: Sandbox, act_registry: MlflowServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = new_model(act_registry, "Wf_Drift")
    sandbox.write_state(state({name: {"1": "Archived", "2": "Production"}}))
    sandbox.commit("desired")
    sandbox.push()
    monkeypatch.chdir(sandbox.work)
    applied = CliRunner().invoke(cli, ["reconcile", "--tracking-uri", act_registry.url])
    assert applied.exit_code == 0, applied.output
    with warnings.catch_warnings():  # someone clicks in the MLflow UI
        warnings.simplefilter("ignore", FutureWarning)
        client(act_registry.url).transition_model_version_stage(name, "2", "Archived")

    schedule = {"schedule": "23 */6 * * *"}
    for _ in range(2):  # found, then found again by the next scheduled run
        run = sandbox.act("schedule", "drift.yml", schedule)
        assert run.job("drift") == "succeeded", run.output[-4000:]
        [issue] = sandbox.github.fake.issues("open")
        assert issue["title"] == "Registry drift"
        assert "drift: changed outside git" in issue["body"]
    assert len(sandbox.github.fake.issues()) == 1

    fixed = CliRunner().invoke(cli, ["reconcile", "--tracking-uri", act_registry.url])
    assert fixed.exit_code == 0, fixed.output
    run = sandbox.act("schedule", "drift.yml", schedule)
    assert run.job("drift") == "succeeded", run.output[-4000:]
    assert sandbox.github.fake.issues("open") == []
    [closed] = sandbox.github.fake.issues("closed")
    assert "in sync with git again" in sandbox.github.fake.comments_on(closed["number"])[-1]["body"]
    assert_no_secret(sandbox)


class Canary:
    """An HTTP listener standing where a secret registry URI points: it counts requests."""

    def __init__(self) -> None:
        hits = self.hits = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                hits.append(self.path)
                self.send_response(500)
                self.end_headers()

            do_POST = do_GET  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def fork_pr(box: Sandbox, number: int) -> str:
    """A fork's change, as GitHub exposes it: refs/pull/N/head on the base repository;
    the work tree is back on main (pull_request_target runs the base branch)."""
    fork_sha = box.commit("a fork's change")
    git(box.work, "push", "-q", "origin", f"HEAD:refs/pull/{number}/head")
    git(box.work, "switch", "-q", "main")
    box.github.fake.add_pull(number, "fork")
    return fork_sha


def test_a_fork_pr_is_planned_from_the_published_snapshot_with_no_secret_in_reach(
    sandbox: Sandbox, act_registry: MlflowServer
) -> None:
    name = new_model(act_registry, "Wf_Fork")
    sandbox.write_state(state({name: {"1": "Staging"}}))
    sha = sandbox.commit("merged")
    sandbox.push()
    apply = sandbox.act("push", "registry-apply.yml", push_payload(sha))  # publishes a snapshot
    assert apply.job("reconcile") == "succeeded", apply.output[-4000:]

    git(sandbox.work, "switch", "-q", "-c", "fork")
    sandbox.write_state(state({name: {"1": "Staging", "2": "Staging"}}))
    fork_sha = fork_pr(sandbox, 8)

    canary = Canary()  # whatever the jobs could reach as a "secret" registry, they never call
    try:
        secrets = {"MLFLOW_TRACKING_URI": canary.url, "MLFLOW_TRACKING_TOKEN": sandbox.token}
        payload = pr_payload(8, fork_sha, fork=True)
        run = sandbox.act("pull_request_target", "registry-plan-fork.yml", payload,
                          secrets=secrets)  # fmt: skip
        # The same fork's pull_request event: the workflow with the registry login skips it.
        same = sandbox.act("pull_request", "registry-plan.yml", payload, secrets=secrets)
    finally:
        canary.close()
    # Two jobs: `plan` (read-only, no secret) wrote the report; `comment` posted it.
    assert run.job("plan") == "succeeded", run.output[-4000:]
    assert run.job("comment") == "succeeded", run.output[-4000:]
    assert "plan" not in same.jobs, same.output[-4000:]
    assert canary.hits == []
    [comment] = sandbox.github.fake.comments_on(8)
    assert "Planned against the registry snapshot taken" in comment["body"]
    assert " min old)" in comment["body"]
    assert "version 2 stage: None -> Staging" in comment["body"]
    assert fork_sha[:12] in comment["body"]  # the head commit the event named
    assert any("version 2 stage: None -> Staging" in s for s in run.summaries)
    assert stages(act_registry.url, name) == {"1": "Staging", "2": "None"}
    assert sandbox.published(canary.url.split("://")[1]) == []
    assert_no_secret(sandbox)


def test_a_fork_pr_state_file_that_is_a_symlink_is_refused_not_read(
    sandbox: Sandbox, act_registry: MlflowServer
) -> None:
    """The fork's files are data: a symlink in registry-state/ (here to a file outside the
    repository that regops would happily parse) stops the plan; nothing of it is read."""
    name = new_model(act_registry, "Wf_ForkLink")
    sandbox.write_state(state({name: {"1": "Staging"}}))
    sha = sandbox.commit("merged")
    sandbox.push()
    apply = sandbox.act("push", "registry-apply.yml", push_payload(sha))  # publishes a snapshot
    assert apply.job("reconcile") == "succeeded", apply.output[-4000:]

    outside = sandbox.tmp / "outside.yaml"
    outside.write_text(state({"Outside_Secret_Model": {"1": "Production"}}))
    git(sandbox.work, "switch", "-q", "-c", "fork")
    (sandbox.work / "registry-state" / "leak.yaml").symlink_to(outside)
    fork_sha = fork_pr(sandbox, 9)
    assert not (sandbox.work / "registry-state" / "leak.yaml").exists()  # main has no link

    run = sandbox.act("pull_request_target", "registry-plan-fork.yml",
                      pr_payload(9, fork_sha, fork=True))  # fmt: skip
    assert run.job("plan") == "failed", run.output[-4000:]
    assert "registry-state/leak.yaml: not a regular file in pull request #9" in run.output
    assert run.job("comment") == "succeeded", run.output[-4000:]
    [comment] = sandbox.github.fake.comments_on(9)
    assert "the job failed before it could report" in comment["body"]
    assert sandbox.published("Outside_Secret_Model") == []
    assert_no_secret(sandbox)


def test_an_unreachable_registry_fails_fast_and_says_so(
    sandbox: Sandbox, act_registry: MlflowServer
) -> None:
    name = "Wf_Unreachable"
    sha = start_pr(sandbox, state({name: {}}), state({name: {"1": "Staging"}}))
    # A port held bound and never listening refuses every connection, and no server
    # started meanwhile (another test's) can take it, as it could a port merely free.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{held.getsockname()[1]}"
        secrets = {"MLFLOW_TRACKING_URI": dead, "MLFLOW_TRACKING_TOKEN": sandbox.token}
        start = time.monotonic()
        run = sandbox.act("pull_request", "registry-plan.yml", pr_payload(7, sha), secrets=secrets)
        took = time.monotonic() - start
    assert run.job("plan") == "failed"
    assert took < 180, f"took {took:.0f}s to give up on an unreachable registry"
    [comment] = sandbox.github.fake.comments_on(7)
    assert "could not read the registry · registry `production`" in comment["body"]
    assert "State files: 1 file(s) valid" in comment["body"]  # not "invalid state files"
    assert sandbox.published(dead.split("://")[1]) == []
    assert_no_secret(sandbox)


def test_a_failed_install_is_reported_as_such_not_as_invalid_state(
    sandbox: Sandbox, act_registry: MlflowServer
) -> None:
    sha = start_pr(sandbox, state({"Wf_Install": {}}), state({"Wf_Install": {"1": "Staging"}}))
    run = sandbox.act("pull_request", "registry-plan.yml", pr_payload(7, sha), index_down=True)
    assert run.job("plan") == "failed"
    [comment] = sandbox.github.fake.comments_on(7)
    assert "the job failed before it could report" in comment["body"]
    assert "invalid" not in comment["body"]
    assert "actions/runs/" in comment["body"]  # where to look
    assert_no_secret(sandbox)


@pytest.mark.slow
def test_training_on_schedule_and_on_dispatch_keeps_one_proposal_pr(
    sandbox: Sandbox, act_registry: MlflowServer
) -> None:
    sandbox.write_state("apiVersion: regops/v1\nmodels: {}\n")
    sandbox.commit("no models yet")
    sandbox.push()
    # Tiny training through the Makefile's TRAIN_ARGS (read from the environment).
    tiny = {"TRAIN_ARGS": "--models logistic_regression --sample 3000"}
    model = "Accident_Prediction_Logistic_Regression"

    # GitHub's real schedule payload: no repository object at all.
    first = sandbox.act("schedule", "train.yml", {"schedule": "0 4 * * 1"}, env=tiny)
    assert first.job("train") == "succeeded", first.output[-6000:]
    assert first.job("propose") == "succeeded", first.output[-6000:]
    [pr] = sandbox.github.fake.pulls("open")
    assert pr["head"]["ref"] == "regops/candidates"
    assert pr["base"]["ref"] == "main"
    v1 = max(int(v) for v in stages(act_registry.url, model))
    assert f"`{model}` version {v1}" in pr["body"]
    proposed = git(sandbox.origin, "show", "regops/candidates:registry-state/models.yaml")
    assert f'"{v1}": {{stage: Staging}}' in proposed or f"'{v1}':" in proposed

    dispatch = {"inputs": {"models": "logistic_regression"}}
    second = sandbox.act("workflow_dispatch", "train.yml", dispatch, env=tiny)
    assert second.job("propose") == "succeeded", second.output[-6000:]
    [again] = sandbox.github.fake.pulls("open")
    assert again["number"] == pr["number"]  # the one proposal, updated
    v2 = max(int(v) for v in stages(act_registry.url, model))
    assert v2 == v1 + 1
    assert f"`{model}` version {v2}" in again["body"]
    assert_no_secret(sandbox)
