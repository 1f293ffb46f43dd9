"""The whole GitOps story against a real `mlflow server`, in a temporary git repository.

Each step runs the commands the workflows run (train.yml, registry-plan.yml,
registry-apply.yml, drift.yml) and a person would type: train small candidates,
gather evidence, propose by pull request, plan, merge and apply, apply again
(nothing), promote by editing the file, a blocked promotion, an out-of-band
change caught as drift (exit 3), `git revert` as the rollback, and `history`
naming the commits, pull requests and authors.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from mlflow import MlflowClient

from accident_prediction.cli import main as accident_cli
from regops.cli import cli as regops_cli
from tests.support.paths import ROOT
from tests.support.servers import MlflowServer

XGB, LOGREG = "Accident_Prediction_XGBoost", "Accident_Prediction_Logistic_Regression"
PEOPLE = {
    "bot": ("regops-bot", "bot@example.com"),
    "alice": ("Alice Reviewer", "alice@example.com"),
    "bob": ("Bob Owner", "bob@example.com"),
    "carol": ("Carol Oncall", "carol@example.com"),
    "maint": ("Maintainer", "maint@example.com"),
}


def git(repo: Path, *args: str, who: str = "maint") -> str:
    name, email = PEOPLE[who]
    env = {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(repo.parent),
        "PATH": "/usr/bin:/bin",
    }
    out = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def regops(*args: str) -> Result:
    return CliRunner().invoke(regops_cli, list(args))


def accident(*args: str) -> Result:
    result = CliRunner().invoke(accident_cli, list(args))
    assert result.exit_code == 0, result.output
    return result


def stage_and_aliases(uri: str, name: str) -> tuple[dict[str, str], dict[str, str]]:
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        versions = client.search_model_versions(f"name = '{name}'")
    stages = {str(v.version): v.current_stage for v in versions}
    aliases = {a: str(v) for a, v in client.get_registered_model(name).aliases.items()}
    return stages, aliases


def apply_after_merge() -> Result:
    """registry-apply.yml: reconcile; a failure fails the job."""
    result = regops("reconcile", "--format", "markdown")
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.e2e
@pytest.mark.server
def test_gitops_story(
    mlflow_server: MlflowServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = mlflow_server.url
    repo = tmp_path / "repo"
    repo.mkdir()
    for item in ("registry-state", "config", "examples"):
        shutil.copytree(ROOT / item, repo / item)
    monkeypatch.chdir(repo)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("REGOPS_ACTOR", "github-actions[bot]")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "Initial state: gates, no models")

    # train.yml: train -> validate -> smoke-test -> propose the passing versions as Staging.
    small = ["--sample", "4000", "--max-trees", "60"]
    accident("train", "--models", "xgboost", "logistic_regression", *small)
    assert "passed" in accident("validate", "--all-new").output
    assert "passed" in accident("smoke-test", "--all-new").output
    git(repo, "checkout", "-q", "-b", "regops/propose-1")
    for model in (XGB, LOGREG):
        assert (
            regops(
                "transition", "--model-name", model, "--version", "1", "--stage", "Staging"
            ).exit_code
            == 0
        )
    git(repo, "commit", "-q", "-am", "Propose trained candidates as Staging", who="bot")

    # registry-plan.yml on the pull request: markdown plan, JSON artifact, exit 2 = changes.
    pr_plan = regops("plan", "--format", "markdown", "--out", "plan.json", "--detailed-exitcode")
    assert pr_plan.exit_code == 2, pr_plan.output
    assert "version 1 stage: None -> Staging" in pr_plan.output
    assert "✅ require_tags: validation_status=passed" in pr_plan.output
    assert json.loads(Path("plan.json").read_text())["summary"]["to_apply"] == 2
    Path("plan.json").unlink()

    # Merge, then registry-apply.yml; a second apply writes nothing.
    git(repo, "checkout", "-q", "main")
    git(
        repo,
        "merge",
        "-q",
        "--no-ff",
        "regops/propose-1",
        "-m",
        "Merge pull request #1 from acme/regops/propose-1",
    )
    assert "2 applied, 0 failed" in apply_after_merge().output
    again = regops("reconcile", "--format", "json")
    assert again.exit_code == 0
    assert json.loads(again.stdout)["result"] is None
    assert regops("plan", "--detailed-exitcode").exit_code == 0

    # PR #2 (Alice): XGBoost v1 to Production with the champion alias, by editing the file.
    regops("promote", "--model-name", XGB, "--stage", "Production", "--version", "1")
    regops("alias", "--model-name", XGB, "--version", "1", "--alias", "champion")
    git(repo, "commit", "-q", "-am", "Promote XGBoost v1 to Production (#2)", who="alice")
    apply_after_merge()
    served = json.loads(
        accident(
            "predict", "examples/test_features.json", "--model-name", XGB, "--stage", "Production"
        ).stdout
    )
    assert served["model"]["version"] == "1"

    # A new candidate; promoting it straight to Production is blocked by require_from.
    accident("train", "--models", "xgboost", *small)
    accident("validate", "--all-new")
    accident("smoke-test", "--all-new")
    regops("promote", "--model-name", XGB, "--stage", "Production", "--version", "2")
    blocked = regops("plan", "--detailed-exitcode")
    assert blocked.exit_code == 1
    assert "FAIL require_from: live stage is None; Production requires one of" in blocked.output
    assert regops("reconcile").exit_code == 1
    assert stage_and_aliases(uri, XGB)[0]["2"] == "None"  # nothing written
    git(repo, "checkout", "--", "registry-state")

    # PR #3 (bot) stages v2; PR #4 (Bob) promotes it, archives v1, moves champion.
    regops("transition", "--model-name", XGB, "--version", "2", "--stage", "Staging")
    git(repo, "commit", "-q", "-am", "Propose XGBoost v2 as Staging (#3)", who="bot")
    apply_after_merge()
    regops("promote", "--model-name", XGB, "--stage", "Production", "--version", "2")
    regops("archive", "--model-name", XGB, "--version", "1")
    regops("alias", "--model-name", XGB, "--version", "2", "--alias", "champion")
    git(repo, "commit", "-q", "-am", "Promote XGBoost v2 (#4)", who="bob")
    promotion = git(repo, "rev-parse", "HEAD")
    apply_after_merge()
    assert stage_and_aliases(uri, XGB) == ({"1": "Archived", "2": "Production"}, {"champion": "2"})
    served = json.loads(
        accident("predict", "examples/test_features.json", "--use-mlflow-production").stdout
    )
    assert served["model"]["version"] == "2"

    # drift.yml: someone moves the alias in the UI -> exit 3; the next apply corrects it.
    MlflowClient(tracking_uri=uri, registry_uri=uri).set_registered_model_alias(
        XGB, "champion", "1"
    )
    drift = regops("plan", "--detailed-exitcode", "--format", "markdown")
    assert drift.exit_code == 3, drift.output
    assert "drift: changed outside git" in drift.output
    apply_after_merge()
    assert regops("plan", "--detailed-exitcode").exit_code == 0

    # Rollback: Carol reverts PR #4; applying restores v1 in Production.
    git(repo, "revert", "--no-edit", promotion, who="carol")
    apply_after_merge()
    assert stage_and_aliases(uri, XGB) == ({"1": "Production", "2": "Staging"}, {"champion": "1"})
    served = json.loads(
        accident(
            "predict", "examples/test_features.json", "--model-name", XGB, "--alias", "champion"
        ).stdout
    )
    assert served["model"]["version"] == "1"

    # history: who put which version where, through which PR, and when it took effect.
    doc = json.loads(regops("history", XGB, "--format", "json").stdout)
    entries = doc["entries"]
    assert doc["registry"]["read"] is True
    by_subject = {e["subject"]: e for e in entries}
    revert = next(e for e in entries if e["subject"].startswith("Revert"))
    assert revert["author"]["name"] == "Carol Oncall"
    assert revert["reverts"] == promotion
    assert {
        (c["version"], c["before"], c["after"]) for c in revert["changes"] if c["kind"] == "stage"
    } == {("1", "Archived", "Production"), ("2", "Production", "Staging")}
    assert all(c["applied"]["status"] == "applied" for c in revert["changes"])
    bob = by_subject["Promote XGBoost v2 (#4)"]
    assert (bob["pr"], bob["author"]["name"]) == (4, "Bob Owner")
    alice = by_subject["Promote XGBoost v1 to Production (#2)"]
    assert (alice["pr"], alice["author"]["name"]) == (2, "Alice Reviewer")
    merge = by_subject["Merge pull request #1 from acme/regops/propose-1"]
    assert merge["pr"] == 1
    text = regops("history", XGB).output
    assert "Carol Oncall" in text
    assert "PR #4" in text
    assert "github-actions[bot]" in text
