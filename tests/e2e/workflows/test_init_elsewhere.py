"""`regops init` in another team's repository, from the live registry to its first applied PR.

The repository starts empty (nothing of regops in it) beside a real `mlflow server`
holding a registered model. `regops init --action acme/regops@v1` adopts the registry
and writes the workflows; nothing else is written by hand. A pull request points an
alias: the scaffolded plan workflow comments its plan through the Action; the merge
runs the scaffolded apply workflow, which moves the alias on the server, and a second
apply writes nothing. act serves `acme/regops@v1` from a copy of this repository.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.act import ACTION_REF, Sandbox, git, pr_payload, push_payload
from tests.support.servers import MlflowServer, make_registry, start_mlflow_server

pytestmark = [pytest.mark.act, pytest.mark.server]


@pytest.fixture(scope="module")
def act_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """This story's own registry, in place of the workflow tests' shared one: `regops init`
    adopts every model it finds, and the other act tests leave theirs in the shared one
    (which ones depends on the order the files run in)."""
    server = start_mlflow_server(tmp_path_factory.mktemp("init-registry"))
    yield server
    server.stop()


def regops(cwd: Path, uri: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The `regops` a user runs, in `cwd`, with the registry's URI in the environment."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_DISABLE_TELEMETRY": "true"}
    return subprocess.run(
        [sys.executable, "-m", "regops", *args],
        cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def aliases(uri: str, name: str) -> dict[str, str]:
    from mlflow import MlflowClient

    return dict(MlflowClient(tracking_uri=uri, registry_uri=uri).get_registered_model(name).aliases)


def test_init_then_a_pull_request_is_planned_and_its_merge_applied(
    adopting: Sandbox, act_registry: MlflowServer
) -> None:
    box, uri, name = adopting, act_registry.url, "Wf_Initialised"
    walls: dict[str, float] = {}
    start = time.monotonic()
    make_registry(uri, {name: 2})
    walls["registry"] = time.monotonic() - start

    start = time.monotonic()
    init = regops(box.work, uri, "init", "--action", ACTION_REF)
    assert init.returncode == 0, init.stdout + init.stderr
    walls["init"] = time.monotonic() - start
    written = sorted(git(box.work, "ls-files", "--others").splitlines())
    assert written == [
        ".github/CODEOWNERS",
        ".github/workflows/regops-apply.yml",
        ".github/workflows/regops-drift.yml",
        ".github/workflows/regops-plan.yml",
        ".pre-commit-config.yaml",
        f"registry-state/{name}.yaml",
    ], written
    assert f"uses: {ACTION_REF}" in (box.work / ".github/workflows/regops-plan.yml").read_text()
    assert regops(box.work, uri, "validate").returncode == 0
    adopted = regops(box.work, uri, "plan")  # the adopted state is the registry's
    assert "No changes. Registry in sync" in adopted.stdout, adopted.stdout + adopted.stderr
    again = regops(box.work, uri, "init", "--action", ACTION_REF, "--format", "json")
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["changed"] is False  # idempotent: nothing rewritten
    box.commit("Manage the model registry with regops")
    box.push()

    # The pull request: champion on version 2, written by regops' own editing command.
    git(box.work, "switch", "-q", "-c", "feature")
    edit = regops(
        box.work, uri, "alias", "--model-name", name, "--version", "2", "--alias", "champion"
    )
    assert edit.returncode == 0, edit.stdout + edit.stderr
    sha = box.commit("champion: version 2")
    box.push("feature")
    box.github.fake.add_pull(7, "feature")
    plan = box.act("pull_request", "regops-plan.yml", pr_payload(7, sha))
    walls["plan (act)"] = plan.seconds
    assert plan.job("plan") == "succeeded", plan.output[-6000:]
    [comment] = box.github.fake.comments_on(7)
    assert "alias champion: set on version 2" in comment["body"], comment["body"]
    assert name in comment["body"]
    assert any("alias champion: set on version 2" in s for s in plan.summaries)
    assert aliases(uri, name) == {}  # a plan writes nothing

    # The merge: the push to main runs the apply workflow, then once more.
    git(box.work, "switch", "-q", "main")
    git(box.work, "merge", "-q", "--ff-only", "feature")
    box.push()
    first = box.act("push", "regops-apply.yml", push_payload(sha))
    walls["apply (act)"] = first.seconds
    assert first.job("apply") == "succeeded", first.output[-6000:]
    assert aliases(uri, name) == {"champion": "2"}
    assert any("alias champion: set on version 2" in s for s in first.summaries)
    second = box.act("push", "regops-apply.yml", push_payload(sha))
    walls["second apply (act)"] = second.seconds
    assert second.job("apply") == "succeeded", second.output[-6000:]
    assert any("No changes" in s for s in second.summaries), second.summaries
    assert aliases(uri, name) == {"champion": "2"}
    for secret in (box.registry_url, box.token):
        assert box.published(secret) == []
    print("wall times: " + ", ".join(f"{k} {v:.1f}s" for k, v in walls.items()))
