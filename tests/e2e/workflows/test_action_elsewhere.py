"""The Action adopted by another repository: `uses: acme/regops@v1`, run under act.

The adopting repository holds only its state file and one workflow; act serves the
Action from a copy of this repository (as GitHub would from its tag), which installs
regops from that checkout, plans, comments and reports its outputs to the next step.
"""

from __future__ import annotations

import platform

import pytest

from tests.support.act import ACTION_REF, Sandbox, git, pr_payload, state
from tests.support.servers import MlflowServer, make_registry

pytestmark = [pytest.mark.act, pytest.mark.server]

WORKFLOW = """name: registry-plan
on:
  pull_request:
    paths: ["registry-state/**"]
permissions: {}
jobs:
  plan:
    runs-on: ubuntu-latest
    permissions:
      contents: read
      pull-requests: write
    env:
      MLFLOW_TRACKING_URI: ${{ secrets.MLFLOW_TRACKING_URI }}
      MLFLOW_TRACKING_TOKEN: ${{ secrets.MLFLOW_TRACKING_TOKEN }}
      REGOPS_REQUIRE_REGISTRY: "true"
      REGOPS_REGISTRY_NAME: production
    steps:
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683
        with:
          persist-credentials: false
      - uses: actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065
        with:
          python-version: "PYTHON"
      - id: regops
        uses: ACTION
        with:
          command: plan
      - name: The Action's outputs
        env:
          CODE: ${{ steps.regops.outputs.exit-code }}
          PENDING: ${{ steps.regops.outputs.changes-pending }}
          PLAN: ${{ steps.regops.outputs.plan-json }}
        run: |
          echo "outputs: code=$CODE pending=$PENDING plan=$PLAN"
          test -s "$PLAN"
          test ! -e src/regops  # regops came from the Action's checkout, not from here
"""


@pytest.fixture
def adopter(adopting: Sandbox) -> Sandbox:
    """An adopting repository holding only what its team writes: one workflow."""
    (adopting.work / "registry-state").mkdir()
    flows = adopting.work / ".github" / "workflows"
    flows.mkdir(parents=True)
    text = WORKFLOW.replace("PYTHON", platform.python_version()).replace("ACTION", ACTION_REF)
    (flows / "registry-plan.yml").write_text(text)
    return adopting


def test_another_repository_uses_the_action_by_reference_and_gets_the_plan_comment(
    adopter: Sandbox, act_registry: MlflowServer
) -> None:
    name = "Wf_Adopted"
    make_registry(act_registry.url, {name: 2})
    adopter.write_state(state({name: {"1": "None"}}))
    adopter.commit("adopt regops")
    adopter.push()
    git(adopter.work, "switch", "-q", "-c", "feature")
    adopter.write_state(state({name: {"1": "None", "2": "Staging"}}))
    sha = adopter.commit("stage version 2")
    adopter.push("feature")
    adopter.github.fake.add_pull(7, "feature")

    run = adopter.act("pull_request", "registry-plan.yml", pr_payload(7, sha))
    assert run.job("plan") == "succeeded", run.output[-6000:]
    [comment] = adopter.github.fake.comments_on(7)
    assert "version 2 stage: None -> Staging" in comment["body"]
    assert "registry `production`" in comment["body"]
    assert any("version 2 stage: None -> Staging" in s for s in run.summaries)
    assert "outputs: code=2 pending=true plan=plan.json" in run.output
    for secret in (adopter.registry_url, adopter.token):
        assert adopter.published(secret) == []
