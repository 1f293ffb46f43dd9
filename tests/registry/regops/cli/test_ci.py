"""The commands CI steps call: plan --report / --live, snapshot, candidates, propose.

Against a real sqlite registry (and an address nothing listens on for the
unreachable case); judged by the files written, the exit codes and the registry.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner, Result
from mlflow import MlflowClient

from regops.cli import cli
from tests.support.paths import ROOT
from tests.support.servers import make_registry

SNAPSHOT_SCHEMA = json.loads((ROOT / "schemas" / "snapshot.schema.json").read_text())

STATE = """\
apiVersion: regops/v1
policy:
  stages:
    Production:
      require_tags: {validation_status: passed}
models:
  Fraud:
    versions:
      "1": {stage: Staging}
      "2": {stage: Production}
"""


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_uri: str) -> str:
    monkeypatch.chdir(tmp_path)
    make_registry(sqlite_uri, {"Fraud": 2, "Other": 1})
    (tmp_path / "registry-state").mkdir()
    (tmp_path / "registry-state" / "fraud.yaml").write_text(STATE)
    return sqlite_uri


def tag(uri: str, name: str, version: str, key: str, value: str) -> None:
    MlflowClient(tracking_uri=uri, registry_uri=uri).set_model_version_tag(
        name, version, key, value
    )


def test_snapshot_is_schema_valid_and_holds_no_uri(repo: str, tmp_path: Path) -> None:
    res = run("snapshot", "--out", "snap.json", "--tracking-uri", repo, "--registry-name", "prod")
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "snap.json").read_text())
    jsonschema.validate(doc, SNAPSHOT_SCHEMA)
    assert doc["registry"] == "prod"
    assert sorted(doc["models"]) == ["Fraud", "Other"]
    assert repo not in (tmp_path / "snap.json").read_text()
    assert str(tmp_path) not in (tmp_path / "snap.json").read_text()  # no db path, no sources


def test_plan_against_a_snapshot_equals_the_live_plan(repo: str, tmp_path: Path) -> None:
    tag(repo, "Fraud", "2", "validation_status", "passed")
    assert run("snapshot", "--out", "snap.json", "--tracking-uri", repo).exit_code == 0
    live = run("plan", "--tracking-uri", repo, "--format", "json")
    offline = run("plan", "--live", "snap.json", "--format", "json")
    assert live.exit_code == offline.exit_code == 0, live.output + offline.output
    a, b = json.loads(live.stdout), json.loads(offline.stdout)
    assert a["changes"] == b["changes"]
    assert len(a["changes"]) == 2
    assert a["live_fingerprint"] == b["live_fingerprint"]


def test_fork_report_says_it_came_from_the_snapshot_with_its_age(repo: str, tmp_path: Path) -> None:
    assert run("snapshot", "--out", "snap.json", "--tracking-uri", repo,
               "--registry-name", "production").exit_code == 0  # fmt: skip
    doc = json.loads((tmp_path / "snap.json").read_text())
    doc["created_at"] = "2020-01-01T00:00:00Z"  # an old snapshot: the age shows it
    (tmp_path / "snap.json").write_text(json.dumps(doc))
    res = run("plan", "--live", "snap.json", "--report", "report.md")
    assert res.exit_code == 1  # version 2 -> Production is blocked by its gate
    report = (tmp_path / "report.md").read_text()
    assert report.startswith("<!-- regops-plan -->\n")
    assert "registry `production`" in report
    assert "snapshot taken 2020-01-01T00:00:00Z" in report
    assert " d " in report.split("snapshot taken", 1)[1].split("\n")[0]  # days old
    assert "❌ require_tags: validation_status is missing" in report


def test_an_edited_snapshot_is_refused(repo: str, tmp_path: Path) -> None:
    assert run("snapshot", "--out", "snap.json", "--tracking-uri", repo).exit_code == 0
    doc = json.loads((tmp_path / "snap.json").read_text())
    doc["models"]["Fraud"]["versions"]["2"]["tags"]["validation_status"] = "passed"
    (tmp_path / "snap.json").write_text(json.dumps(doc))
    res = run("plan", "--live", "snap.json", "--report", "report.md")
    assert res.exit_code == 1
    assert "does not match its live_fingerprint" in res.output
    assert "no usable registry snapshot" in (tmp_path / "report.md").read_text()


def test_missing_snapshot_is_reported_not_called_invalid_state(repo: str, tmp_path: Path) -> None:
    res = run("plan", "--live", "nope.json", "--report", "report.md")
    assert res.exit_code == 1
    report = (tmp_path / "report.md").read_text()
    assert "no usable registry snapshot" in report
    assert "invalid" not in report


def test_invalid_state_report_names_file_and_line(repo: str, tmp_path: Path) -> None:
    (tmp_path / "registry-state" / "fraud.yaml").write_text(STATE.replace("Staging}", "Stagin}"))
    res = run("plan", "--tracking-uri", repo, "--report", "report.md")
    assert res.exit_code == 1
    report = (tmp_path / "report.md").read_text()
    assert "the state files are invalid" in report
    assert "registry-state/fraud.yaml:9:" in report
    assert report.count("```") % 2 == 0  # every fence closed


def test_invalid_state_is_reported_first_when_the_registry_is_unreachable_too(
    repo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dead_port: int
) -> None:
    # plan starts reading the registry before it loads the state files (they overlap):
    # the state error is still the one reported, not the registry's.
    (tmp_path / "registry-state" / "fraud.yaml").write_text(STATE.replace("Staging}", "Stagin}"))
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    dead = f"http://127.0.0.1:{dead_port}"
    res = run("plan", "--tracking-uri", dead, "--report", "report.md")
    assert res.exit_code == 1
    assert "registry-state/fraud.yaml:9:" in res.output
    report = (tmp_path / "report.md").read_text()
    assert "the state files are invalid" in report
    assert "could not read the registry" not in report


def test_unreachable_registry_report_says_so_without_the_uri(
    repo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dead_port: int
) -> None:
    secret_uri = f"http://robot:hunter22@127.0.0.1:{dead_port}"
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    env = {"MLFLOW_TRACKING_URI": secret_uri, "REGOPS_REGISTRY_NAME": "production"}
    res = run("plan", "--report", "report.md", "--out", "plan.json", env=env)
    assert res.exit_code == 1
    report = (tmp_path / "report.md").read_text()
    assert "could not read the registry · registry `production`" in report
    assert "State files: 1 file(s) valid" in report  # validation passed: not an invalid state
    for secret in (secret_uri, "hunter22", "robot", secret_uri.split("@")[1]):
        assert secret not in report


def test_report_and_plan_file_name_the_registry_not_its_uri(repo: str, tmp_path: Path) -> None:
    tag(repo, "Fraud", "2", "validation_status", "passed")
    res = run("plan", "--tracking-uri", repo, "--report", "r.md", "--out", "plan.json",
              "--registry-name", "staging-registry", "--detailed-exitcode")  # fmt: skip
    assert res.exit_code == 2, res.output  # changes pending
    assert json.loads((tmp_path / "plan.json").read_text())["registry"] == "staging-registry"
    assert "mlflow.db" not in (tmp_path / "r.md").read_text()


def manifest(tmp_path: Path, rows: list[tuple[str, object]]) -> Path:
    path = tmp_path / "last_training.json"
    models = [{"registered_model": n, "version": v} for n, v in rows]
    path.write_text(json.dumps({"models": models}))
    return path


def test_candidates_lists_versions_that_passed_both_gates(repo: str, tmp_path: Path) -> None:
    for name, version, smoke in (("Fraud", "2", "passed"), ("Other", "1", "failed")):
        tag(repo, name, version, "validation_status", "passed")
        tag(repo, name, version, "smoke_test_status", smoke)
    m = manifest(tmp_path, [("Fraud", 2), ("Other", "1"), ("Gone", 1)])
    res = run("candidates", "--manifest", str(m), "--out", "c.json", "--tracking-uri", repo)
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "c.json").read_text()) == [{"model": "Fraud", "version": "2"}]
    assert "Other v1: left out (smoke_test_status=failed)" in res.output
    assert "Gone v1: not in the registry" in res.output
    assert "1 of 3 candidate(s) passed" in res.output


def test_candidates_without_a_manifest_is_an_error(repo: str, tmp_path: Path) -> None:
    res = run("candidates", "--manifest", "missing.json", "--tracking-uri", repo)
    assert res.exit_code == 1
    assert "no training manifest" in res.output


def test_propose_edits_the_state_and_names_models_in_the_body(repo: str, tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text(
        '[{"model":"Fraud","version":"3"},{"model":"Other","version":"1"}]'
    )
    res = run("propose", "--candidates", "c.json", "--body", "pr.md")
    assert res.exit_code == 0, res.output
    state = (tmp_path / "registry-state" / "fraud.yaml").read_text()
    assert '"3": {stage: Staging}' in state
    body = (tmp_path / "pr.md").read_text()
    assert "- `Fraud` version 3" in body
    assert "- `Other` version 1" in body


def test_propose_writes_nothing_when_one_edit_is_refused(repo: str, tmp_path: Path) -> None:
    before = (tmp_path / "registry-state" / "fraud.yaml").read_text()
    (tmp_path / "c.json").write_text(
        '[{"model":"Fraud","version":"3"},{"model":"Fraud","version":"x"}]'
    )
    res = run("propose", "--candidates", "c.json", "--body", "pr.md")
    assert res.exit_code != 0
    assert (tmp_path / "registry-state" / "fraud.yaml").read_text() == before
    assert not (tmp_path / "pr.md").exists()


def test_ci_without_a_registry_secret_fails_instead_of_planning_a_local_default(
    repo: str, tmp_path: Path
) -> None:
    env = {"REGOPS_REQUIRE_REGISTRY": "true", "REGOPS_REGISTRY_NAME": "production"}
    res = run("plan", "--report", "report.md", env=env)
    assert res.exit_code == 1
    assert "no registry configured" in res.output
    assert "could not read the registry" in (tmp_path / "report.md").read_text()
