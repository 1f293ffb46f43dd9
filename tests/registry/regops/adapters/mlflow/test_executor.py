"""plan -> reconcile -> plan against a real registry: in-process sqlite and a real server."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from mlflow import MlflowClient

from regops.adapters.mlflow.executor import apply
from regops.adapters.mlflow.registry import MlflowRegistry
from regops.cli import cli
from regops.core.plan import OutcomeStatus
from regops.core.planner import diff
from regops.files.loader import load_state
from tests.support.servers import MlflowServer, make_registry, start_mlflow_server

STATE = """\
# yaml-language-server: $schema=../schemas/registry-state.schema.json
apiVersion: regops/v1
policy:
  stages:
    Production: {max_versions: 1, require_from: [Staging, Production]}
models:
  Fraud:
    description: Fraud scores
    versions:
      "1": {stage: Archived}
      "2": {stage: Production, aliases: [champion]}
      "3": {stage: Staging, aliases: [challenger]}
  Churn:
    versions:
      "1": {stage: Staging, aliases: [champion]}
"""


def regops(uri: str, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--tracking-uri", uri, "--state-dir", "registry-state"])


def client(uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def stage(uri: str, name: str, version: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return str(client(uri).get_model_version(name, version).current_stage)


@pytest.fixture
def seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_uri: str) -> str:
    """A sqlite registry with Fraud (3 versions, 2 and 3 already in Staging) and Churn (1)."""
    monkeypatch.chdir(tmp_path)
    make_registry(
        sqlite_uri,
        {"Fraud": 3, "Churn": 1, "Unmanaged": 1},
        stage_of={("Fraud", "2"): "Staging", ("Fraud", "3"): "Staging"},
    )
    (tmp_path / "registry-state").mkdir()
    (tmp_path / "registry-state" / "models.yaml").write_text(STATE)
    return sqlite_uri


def test_plan_reconcile_then_in_sync(seeded: str) -> None:
    first = regops(seeded, "plan", "--detailed-exitcode")
    assert first.exit_code == 2, first.output
    assert "Plan: 7 to apply, 0 blocked, 0 drift." in first.output

    applied = regops(seeded, "reconcile")
    assert applied.exit_code == 0, applied.output
    assert "Reconcile: 7 applied, 0 failed, 0 skipped." in applied.output
    assert [stage(seeded, "Fraud", v) for v in "123"] == ["Archived", "Production", "Staging"]
    model = client(seeded).get_registered_model("Fraud")
    assert {a: str(v) for a, v in model.aliases.items()} == {"champion": "2", "challenger": "3"}
    assert model.description == "Fraud scores"
    tags = client(seeded).get_model_version("Fraud", "2").tags
    # One stamp per changed version: a single JSON tag, readable in the MLflow UI.
    assert [k for k in tags if k.startswith("regops.")] == ["regops.audit"]
    stamp = json.loads(tags["regops.audit"])
    assert {"commit", "at", "actor", "state_file"} <= set(stamp)
    assert stamp["state_file"] == "registry-state/models.yaml"
    assert (stamp["stage"], stamp["aliases"], stamp["held"]) == (
        "Production",
        ["champion"],
        ["@champion", "Production"],
    )
    assert json.loads(model.tags["regops.applied"])["2"] == ["Production", "champion"]
    assert "Unmanaged" not in json.dumps(client(seeded).get_registered_model("Unmanaged").tags)

    again = regops(seeded, "plan", "--detailed-exitcode")
    assert again.exit_code == 0, again.output
    assert "No changes. Registry in sync" in again.output
    second = regops(seeded, "reconcile", "--format", "json")
    assert second.exit_code == 0
    assert json.loads(second.stdout)["result"] is None  # nothing to write, nothing written


def test_out_of_band_change_is_drift_then_corrected(seeded: str) -> None:
    assert regops(seeded, "reconcile").exit_code == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        client(seeded).transition_model_version_stage("Fraud", "2", "Archived")
    drift = regops(seeded, "plan", "--detailed-exitcode")
    assert drift.exit_code == 3, drift.output
    assert "version 2 stage: Archived -> Production  [drift: changed outside git, corrected]" in (
        drift.output
    )
    assert regops(seeded, "reconcile").exit_code == 0
    assert stage(seeded, "Fraud", "2") == "Production"
    assert regops(seeded, "plan", "--detailed-exitcode").exit_code == 0


def test_export_then_plan_is_empty(seeded: str, tmp_path: Path) -> None:
    exported = regops(seeded, "export", "--output", str(tmp_path / "adopted"))
    assert exported.exit_code == 0, exported.output
    assert sorted(p.name for p in (tmp_path / "adopted").iterdir()) == [
        "Churn.yaml",
        "Fraud.yaml",
        "Unmanaged.yaml",
    ]
    result = CliRunner().invoke(
        cli, ["plan", "--detailed-exitcode", "--tracking-uri", seeded, "--state-dir", "adopted"]
    )
    assert result.exit_code == 0, result.output
    refused = regops(seeded, "export", "--output", str(tmp_path / "adopted"))
    assert refused.exit_code == 1
    assert "refusing to overwrite" in refused.output


def test_saved_plan_applies_and_a_stale_one_is_refused(seeded: str, tmp_path: Path) -> None:
    saved = regops(seeded, "plan", "--out", "plan.json")
    assert saved.exit_code == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        client(seeded).transition_model_version_stage("Churn", "1", "Production")
    stale = regops(seeded, "reconcile", "--plan", "plan.json")
    assert stale.exit_code == 1
    assert "the live registry changed since this plan was made" in stale.output
    assert stage(seeded, "Fraud", "1") == "None"  # nothing written

    assert regops(seeded, "plan", "--out", "plan.json").exit_code == 0
    fresh = regops(seeded, "reconcile", "--plan", "plan.json")
    assert fresh.exit_code == 0, fresh.output
    assert stage(seeded, "Fraud", "2") == "Production"


def test_bad_file_or_failed_gate_changes_nothing(seeded: str, tmp_path: Path) -> None:
    before = MlflowRegistry(seeded).snapshot()
    state = tmp_path / "registry-state" / "models.yaml"
    state.write_text(STATE.replace("aliases: [challenger]", "aliases: [latest]"))
    bad = regops(seeded, "reconcile")
    assert bad.exit_code == 1
    assert "registry-state/models.yaml:12: alias 'latest' is reserved" in bad.output

    state.write_text(
        STATE.replace('"1": {stage: Staging, aliases: [champion]}', '"1": {stage: Production}')
    )
    blocked = regops(seeded, "reconcile")
    assert blocked.exit_code == 1
    assert "FAIL require_from: live stage is None; Production requires one of" in blocked.output
    assert MlflowRegistry(seeded).snapshot() == before


def test_reconcile_one_model_and_dry_run(seeded: str) -> None:
    dry = regops(seeded, "reconcile", "--dry-run")
    assert dry.exit_code == 0
    assert stage(seeded, "Fraud", "2") == "Staging"
    only = regops(seeded, "reconcile", "--model", "Churn")
    assert only.exit_code == 0, only.output
    assert stage(seeded, "Churn", "1") == "Staging"
    assert stage(seeded, "Fraud", "2") == "Staging"
    unknown = regops(seeded, "reconcile", "--model", "Nope")
    assert unknown.exit_code == 64
    assert "not in the state files: Nope (managed: Churn, Fraud)" in unknown.output


def test_read_only_views(seeded: str) -> None:
    assert regops(seeded, "reconcile").exit_code == 0
    listed = regops(seeded, "list-models", "--format", "json")
    rows = {r["model"]: r for r in json.loads(listed.stdout)["models"]}
    assert rows["Fraud"]["stages"] == {"Archived": ["1"], "Production": ["2"], "Staging": ["3"]}
    versions = regops(seeded, "list-versions", "--model-name", "Fraud")
    assert versions.exit_code == 0
    assert "2        Production  champion" in versions.output
    got = regops(seeded, "get-model", "--model-name", "Fraud", "--stage", "Production")
    assert "uri:                models:/Fraud/2" in got.output
    by_alias = regops(seeded, "get-model", "--model-name", "Fraud", "--alias", "challenger")
    assert "version:            3" in by_alias.output
    missing = regops(seeded, "get-model", "--model-name", "Fraud", "--alias", "nope")
    assert missing.exit_code == 1
    assert "Fraud has no alias 'nope' (aliases: challenger, champion)" in missing.output
    assert regops(seeded, "get-model", "--model-name", "Fraud").exit_code == 64


@pytest.mark.server
def test_rest_server_plan_reconcile_in_sync(
    mlflow_server: MlflowServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    uri = mlflow_server.url
    names = {"RestA": 3, "RestB": 2}
    make_registry(uri, names, stage_of={("RestA", "2"): "Staging", ("RestA", "3"): "Staging"})
    (tmp_path / "registry-state").mkdir()
    (tmp_path / "registry-state" / "m.yaml").write_text(
        STATE.replace("Fraud", "RestA").replace("Churn", "RestB")
    )
    assert regops(uri, "plan", "--detailed-exitcode").exit_code == 2
    done = regops(uri, "reconcile")
    assert done.exit_code == 0, done.output
    aliases = client(uri).get_registered_model("RestA").aliases
    assert {a: str(v) for a, v in aliases.items()} == {"champion": "2", "challenger": "3"}
    assert regops(uri, "plan", "--detailed-exitcode").exit_code == 0


class _DyingRegistry(MlflowRegistry):
    """A real registry whose server is killed after `budget` version-tag writes."""

    def __init__(self, server: MlflowServer, budget: int) -> None:
        super().__init__(server.url)
        self.server, self.budget = server, budget

    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        if self.budget == 0:
            self.server.kill()
        self.budget -= 1
        super().set_version_tag(name, version, key, value)


@pytest.mark.server
def test_server_stopped_midway_reports_then_rerun_converges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    server = start_mlflow_server(tmp_path / "srv")
    try:
        make_registry(
            server.url,
            {"Fraud": 3, "Churn": 1},
            stage_of={("Fraud", "2"): "Staging", ("Fraud", "3"): "Staging"},
        )
        (tmp_path / "registry-state").mkdir()
        (tmp_path / "registry-state" / "m.yaml").write_text(STATE)
        desired = load_state(Path("registry-state"))
        dying = _DyingRegistry(server, budget=2)  # dies while stamping the 3rd change
        p = diff(desired, dying.snapshot(list(desired.models)))
        stamps = {m: {"regops.commit": "c1"} for m in p.models}
        result = apply(p, dying, stamps, sleep=lambda _s: None)
        statuses = [o.status for o in result.outcomes]
        assert OutcomeStatus.FAILED in statuses
        assert statuses[-1] == OutcomeStatus.SKIPPED
        failed = next(o for o in result.outcomes if o.status == OutcomeStatus.FAILED)
        assert failed.error
        landed = sum(1 for o in result.outcomes if o.status == "applied")

        server.restart()
        rerun = regops(server.url, "reconcile")
        assert rerun.exit_code == 0, rerun.output
        remaining = int(rerun.output.split("Reconcile: ")[1].split(" applied")[0])
        assert remaining <= len(p.actionable) - landed  # nothing applied twice
        assert regops(server.url, "plan", "--detailed-exitcode").exit_code == 0
    finally:
        server.stop()
