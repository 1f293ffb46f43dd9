"""The Action's own script (scripts/regops-action.sh), run as its steps run it: values in
the environment, outputs in $GITHUB_OUTPUT, regops on a real sqlite registry.

The Action as a whole (install, comment, issue, snapshot) runs under act in
test_act_scenarios.py, through this repository's workflows (`uses: ./`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from tests.support.paths import ROOT, SCHEMAS
from tests.support.servers import make_registry

SCRIPT = ROOT / "scripts" / "regops-action.sh"
STATE = """apiVersion: regops/v1
models:
  Act_Model:
    versions:
      "1": {stage: %s}
"""


def step(
    cwd: Path, what: str, **env: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    out = cwd / "github_output"
    out.write_text("")
    summary = cwd / "summary.md"
    full_env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "GITHUB_OUTPUT": str(out),
        "GITHUB_STEP_SUMMARY": str(summary),
        **env,
    }
    done = subprocess.run(
        ["bash", str(SCRIPT), what], cwd=cwd, env=full_env,
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    outputs = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    return done, outputs


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "registry-state").mkdir()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    make_registry(uri, {"Act_Model": 1})
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    return tmp_path


def registry_env(repo: Path) -> dict[str, str]:
    return {"MLFLOW_TRACKING_URI": f"sqlite:///{repo / 'mlflow.db'}", "COMMAND": "plan"}


def test_plan_with_changes_reports_pending_and_writes_a_schema_valid_plan(repo: Path) -> None:
    # In the state-dir input's folder: registry-state/ (empty) would plan nothing.
    (repo / "elsewhere").mkdir()
    (repo / "elsewhere" / "m.yaml").write_text(STATE % "Staging")
    done, out = step(repo, "run", **registry_env(repo), STATE_DIR="elsewhere")
    assert done.returncode == 0, done.stderr
    assert out["exit-code"] == "2"
    assert out["changes-pending"] == "true"
    plan = json.loads((repo / out["plan-json"]).read_text())
    jsonschema.validate(plan, json.loads((SCHEMAS / "plan.schema.json").read_text()))
    assert "Staging" in (repo / out["report"]).read_text()


def test_an_invalid_state_file_is_exit_code_1_and_the_step_itself_still_succeeds(
    repo: Path,
) -> None:
    # The step must succeed so the comment still goes out; the verdict step fails the job.
    (repo / "registry-state" / "m.yaml").write_text(STATE % "Prod")
    done, out = step(repo, "run", **registry_env(repo))
    assert done.returncode == 0, done.stderr
    assert out["exit-code"] == "1"
    assert out["changes-pending"] == "false"
    assert "plan-json" not in out
    assert "m.yaml" in (repo / "report.md").read_text()


def test_apply_reconciles_then_plan_is_in_sync(repo: Path) -> None:
    (repo / "registry-state" / "m.yaml").write_text(STATE % "Staging")
    env = {**registry_env(repo), "COMMAND": "apply"}
    done, out = step(repo, "run", **env)
    assert (done.returncode, out["exit-code"]) == (0, "0"), done.stderr
    assert "Staging" in (repo / "summary.md").read_text()
    done, out = step(repo, "run", **registry_env(repo))
    assert (out["exit-code"], out["changes-pending"]) == ("0", "false")


@pytest.mark.parametrize(
    ("what", "env", "message"),
    [
        ("run", {"COMMAND": "destroy"}, "is not one of plan, apply, drift, snapshot"),
        ("install", {"VERSION": "1.0; rm -rf ~"}, "is not a version"),
        ("install", {"VERSION": "", "ACTION_PATH": ""}, "ACTION_PATH"),
        ("nothing", {}, "usage"),
    ],
    ids=["unknown-command", "version-injection", "no-action-path", "no-subcommand"],
)
def test_bad_input_is_refused_by_name(
    tmp_path: Path, what: str, env: dict[str, str], message: str
) -> None:
    done, out = step(tmp_path, what, **env)
    assert done.returncode == 1
    assert message in done.stderr
    assert out == {}


def test_the_env_input_plans_that_environment_and_without_it_regops_refuses_to_guess(
    repo: Path,
) -> None:
    (repo / "regops.yaml").write_text(
        "apiVersion: regops/v1\nenvironments:\n"
        f"  dev:\n    tracking_uri: sqlite:///{repo / 'mlflow.db'}\n"
        "    state_dir: registry-state/dev\n"
    )
    (repo / "registry-state" / "dev").mkdir()
    (repo / "registry-state" / "dev" / "m.yaml").write_text(STATE % "Staging")
    env = {"COMMAND": "plan", "MLFLOW_TRACKING_URI": ""}
    done, out = step(repo, "run", **env, ENV_NAME="dev")
    assert (done.returncode, out["exit-code"], out["changes-pending"]) == (0, "2", "true")
    assert "Staging" in (repo / "report.md").read_text()
    # Environments declared and none named: a usage error (64), which the verdict fails.
    done, out = step(repo, "run", **env)
    assert (out["exit-code"], out["changes-pending"]) == ("64", "false")
