"""`suspend:` on an environment in regops.yaml: its plan says so, its reconcile refuses
(exit 1, naming the environment and the reason) and writes nothing; the other
environments are untouched. Two real in-process sqlite registries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.environments import Repo, run, two_environments
from tests.support.repo import ENVS_CONFIG, client

DEV_CHANGE = """\
apiVersion: regops/v1
models:
  Fraud:
    versions:
      "1": {stage: Production}
"""


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _empty_registry_db: Path) -> Repo:
    return two_environments(tmp_path, monkeypatch, _empty_registry_db)


def suspend(repo: Repo, value: str) -> None:
    repo.write(
        "regops.yaml",
        ENVS_CONFIG.replace(
            "    state_dir: registry-state/dev\n",
            f"    state_dir: registry-state/dev\n    suspend: {value}\n",
        ),
    )
    repo.write("registry-state/dev/fraud.yaml", DEV_CHANGE)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ('"incident 12: registry migration"', "incident 12: registry migration"),
        ("true", "no reason given"),
    ],
    ids=["reason", "true"],
)
def test_a_suspended_environment_refuses_reconcile(repo: Repo, value: str, reason: str) -> None:
    suspend(repo, value)
    notice = f"environment dev is suspended (regops.yaml:3): {reason}"
    result = run("--env", "dev", "reconcile")
    assert result.exit_code == 1, result.output
    assert f"{notice}; reconcile refuses to apply (nothing was changed)" in result.output
    assert client(repo.dev).get_model_version("Fraud", "1").current_stage == "Staging"
    # plan says so, in every format (text: on stderr as a warning), and still plans
    result = run("--env", "dev", "plan")
    assert result.exit_code == 0, result.output
    assert f"warning: {notice}: reconcile refuses to apply" in result.output
    assert "version 1 stage: Staging -> Production" in result.output
    doc = json.loads(run("--env", "dev", "plan", "--format", "json").stdout)
    assert f"{notice}: reconcile refuses to apply" in doc["warnings"]
    # --dry-run writes nothing anyway: it shows the plan
    assert run("--env", "dev", "reconcile", "--dry-run").exit_code == 0
    # the other environment is not suspended
    result = run("--env", "prod", "plan", "--format", "json")
    assert not any("suspended" in w for w in json.loads(result.stdout)["warnings"])


def test_suspend_false_and_bad_values(repo: Repo) -> None:
    suspend(repo, "false")
    result = run("--env", "dev", "reconcile")
    assert result.exit_code == 0, result.output
    assert client(repo.dev).get_model_version("Fraud", "1").current_stage == "Production"
    suspend(repo, "3")
    result = run("--env", "dev", "plan")
    assert result.exit_code == 1
    assert (
        "regops.yaml:6: environments.dev.suspend: must be true, false or the reason as text"
    ) in result.output
