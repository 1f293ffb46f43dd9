"""registry-environments.yml under act: two environments of regops.yaml (dev, prod), each
its own state directory, planned in one PR comment, applied one after the other on merge,
and watched for drift with one issue per environment; all through the repository's Action.

Both environments point at the one act registry (the variables regops.yaml names are the
job's secrets); each manages its own model, so what one environment does shows apart.
"""

from __future__ import annotations

import warnings

import pytest
from mlflow import MlflowClient

from regops.core.audit import Stamp
from tests.support.act import Sandbox, git, pr_payload, push_payload, state
from tests.support.servers import MlflowServer, make_registry

pytestmark = [pytest.mark.act, pytest.mark.server]

REGOPS_YAML = """apiVersion: regops/v1
environments:
  dev:
    tracking_uri: ${MLFLOW_DEV_TRACKING_URI}
    state_dir: registry-state/dev
  prod:
    tracking_uri: ${MLFLOW_PROD_TRACKING_URI}
    state_dir: registry-state/prod
"""
DEV, PROD = "Wf_Env_Dev", "Wf_Env_Prod"
SOFT_RULE = """policy:
  rules:
    - {name: no-changes-this-week, expr: 'false', level: soft}
"""


def stages(uri: str, name: str) -> dict[str, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        found = MlflowClient(uri, uri).search_model_versions(f"name = '{name}'")
    return {str(v.version): v.current_stage for v in found}


def test_two_environments_one_comment_applied_in_order_and_drift_per_environment(
    sandbox: Sandbox, act_registry: MlflowServer
) -> None:
    make_registry(act_registry.url, {DEV: 2, PROD: 2})
    secrets = {
        "MLFLOW_DEV_TRACKING_URI": act_registry.url,
        "MLFLOW_PROD_TRACKING_URI": act_registry.url,
        "MLFLOW_TRACKING_TOKEN": sandbox.token,
    }
    (sandbox.work / "regops.yaml").write_text(REGOPS_YAML)
    for env in ("dev", "prod"):
        (sandbox.work / "registry-state" / env).mkdir()
    sandbox.write_state(state({DEV: {"1": "None"}}), "dev/models.yaml")
    sandbox.write_state(state({PROD: {"1": "None"}}), "prod/models.yaml")
    sandbox.commit("two environments")
    sandbox.push()
    git(sandbox.work, "switch", "-q", "-c", "feature")
    sandbox.write_state(state({DEV: {"1": "None", "2": "Staging"}}), "dev/models.yaml")
    sandbox.write_state(state({PROD: {"1": "Production"}}), "prod/models.yaml")
    sha = sandbox.commit("stage in dev, promote in prod")
    sandbox.push("feature")
    sandbox.github.fake.add_pull(7, "feature")

    run = sandbox.act("pull_request", "registry-environments.yml", pr_payload(7, sha),
                      secrets=secrets)  # fmt: skip
    assert run.job("plan") == "succeeded", run.output[-6000:]
    [comment] = sandbox.github.fake.comments_on(7)
    assert "version 2 stage: None -> Staging" in comment["body"]  # dev's section
    assert "version 1 stage: None -> Production" in comment["body"]  # prod's section
    assert stages(act_registry.url, DEV) == {"1": "None", "2": "None"}  # a plan writes nothing

    git(sandbox.work, "switch", "-q", "main")
    git(sandbox.work, "merge", "-q", "--ff-only", "feature")
    sandbox.push()
    merged = git(sandbox.work, "rev-parse", "HEAD")
    run = sandbox.act("push", "registry-environments.yml", push_payload(merged), secrets=secrets)
    applies = {job: v for job, v in run.jobs.items() if job.startswith("apply")}
    assert sorted(applies.values()) == ["succeeded"] * 2, run.output[-6000:]
    assert stages(act_registry.url, DEV)["2"] == "Staging"
    assert stages(act_registry.url, PROD)["1"] == "Production"

    with warnings.catch_warnings():  # someone clicks in prod's MLflow UI
        warnings.simplefilter("ignore", FutureWarning)
        MlflowClient(act_registry.url, act_registry.url).transition_model_version_stage(
            PROD, "1", "Archived"
        )
    run = sandbox.act("schedule", "registry-environments.yml", {"schedule": "53 */6 * * *"},
                      secrets=secrets)  # fmt: skip
    drifts = {job: v for job, v in run.jobs.items() if job.startswith("drift")}
    assert sorted(drifts.values()) == ["succeeded"] * 2, run.output[-6000:]
    [issue] = sandbox.github.fake.issues("open")
    assert issue["title"] == "Registry drift (prod)"
    assert "drift" in issue["body"]

    # A soft rule in prod; PR #8 (which also restores prod's drifted v1) is merged with an
    # override label. Each environment's apply gets the labels: prod lets the rule through
    # (stamped with the label's author); dev, which has no such rule, applies without it.
    sandbox.write_state(state({DEV: {"1": "Staging", "2": "Staging"}}), "dev/models.yaml")
    sandbox.write_state(
        state({PROD: {"1": "Production", "2": "Staging"}}, SOFT_RULE), "prod/models.yaml"
    )
    merged = sandbox.commit("prod: v2 to Staging past the freeze rule")
    sandbox.push()
    sandbox.github.fake.merge_pull(8, merged, "Stage v2 in prod during the freeze")
    sandbox.github.fake.label(8, "regops-override:no-changes-this-week", "carol")
    run = sandbox.act("push", "registry-environments.yml", push_payload(merged), secrets=secrets)
    applies = {job: v for job, v in run.jobs.items() if job.startswith("apply")}
    assert sorted(applies.values()) == ["succeeded"] * 2, run.output[-6000:]
    assert stages(act_registry.url, DEV)["1"] == "Staging"
    assert stages(act_registry.url, PROD)["2"] == "Staging"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        tags = MlflowClient(act_registry.url, act_registry.url).get_model_version(PROD, "2").tags
    [(rule, reason, actor)] = {
        (r.rule, r.override_reason, r.override_actor)
        for r in (Stamp.from_tags(tags)[0] or Stamp()).rules
    }
    assert (rule, reason, actor) == (
        "no-changes-this-week",
        "PR #8: Stage v2 in prod during the freeze",
        "carol",
    )
    for secret in (act_registry.url, act_registry.url.split("://", 1)[1], sandbox.token):
        assert sandbox.published(secret) == [], f"{secret!r} was published"
