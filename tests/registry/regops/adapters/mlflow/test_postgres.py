"""regops against an MLflow server whose backend store is a real PostgreSQL."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from tests.support.backends import client, registry_dump, regops, write_state
from tests.support.servers import MlflowServer, make_registry

pytestmark = pytest.mark.server

STATE = """\
apiVersion: regops/v1
policy:
  stages:
    Production: {max_versions: 1, require_from: [Staging, Production]}
models:
  PgFraud:
    description: Fraud scores, on PostgreSQL
    versions:
      "1": {stage: Archived}
      "2": {stage: Production, aliases: [champion]}
      "3": {stage: Staging, aliases: [challenger]}
  PgChurn:
    versions:
      "1": {stage: Staging, aliases: [champion]}
"""


def test_plan_reconcile_then_in_sync(pg_server: MlflowServer, state_dir: Path) -> None:
    uri = pg_server.url
    make_registry(
        uri,
        {"PgFraud": 3, "PgChurn": 1},
        stage_of={("PgFraud", "2"): "Staging", ("PgFraud", "3"): "Staging"},
    )
    write_state(state_dir, STATE)

    pending = regops(uri, state_dir, "plan", "--detailed-exitcode")
    assert pending.exit_code == 2, pending.output
    assert "Plan: 7 to apply, 0 blocked, 0 drift." in pending.output

    done = regops(uri, state_dir, "reconcile")
    assert done.exit_code == 0, done.output
    assert "Reconcile: 7 applied, 0 failed, 0 skipped." in done.output
    live = registry_dump(uri, ["PgFraud", "PgChurn"])
    fraud = live["PgFraud"]
    assert [fraud["versions"][v]["stage"] for v in "123"] == ["Archived", "Production", "Staging"]
    assert fraud["aliases"] == {"champion": "2", "challenger": "3"}
    assert fraud["description"] == "Fraud scores, on PostgreSQL"
    stamp = json.loads(fraud["versions"]["2"]["tags"]["regops.audit"])
    assert stamp["state_file"] == "registry-state/models.yaml"
    assert stamp["stage"] == "Production"

    in_sync = regops(uri, state_dir, "plan", "--detailed-exitcode")
    assert in_sync.exit_code == 0, in_sync.output
    again = regops(uri, state_dir, "reconcile", "--format", "json")
    assert again.exit_code == 0
    assert json.loads(again.stdout)["result"] is None  # nothing left to write
    assert registry_dump(uri, ["PgFraud", "PgChurn"]) == live


def test_drift_exits_3_then_is_corrected(pg_server: MlflowServer, state_dir: Path) -> None:
    uri = pg_server.url
    make_registry(uri, {"PgDrift": 2}, stage_of={("PgDrift", "1"): "Staging"})
    write_state(
        state_dir,
        "apiVersion: regops/v1\nmodels:\n  PgDrift:\n    versions:\n"
        '      "1": {stage: Production, aliases: [champion]}\n'
        '      "2": {stage: Staging}\n',
    )
    assert regops(uri, state_dir, "reconcile").exit_code == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        client(uri).transition_model_version_stage("PgDrift", "1", "Archived")
        client(uri).set_registered_model_alias("PgDrift", "champion", "2")

    drift = regops(uri, state_dir, "plan", "--detailed-exitcode")
    assert drift.exit_code == 3, drift.output
    assert "version 1 stage: Archived -> Production  [drift: changed outside git, corrected]" in (
        drift.output
    )
    assert "alias champion: version 2 -> 1  [drift: changed outside git, corrected]" in (
        drift.output
    )
    fixed = regops(uri, state_dir, "reconcile")
    assert fixed.exit_code == 0, fixed.output
    assert regops(uri, state_dir, "plan", "--detailed-exitcode").exit_code == 0


def test_regops_on_the_database_directly(postgres_uri: str, state_dir: Path) -> None:
    """Without a server: the tracking URI is the PostgreSQL URI itself; its password is masked."""
    make_registry(postgres_uri, {"PgDirect": 2})
    write_state(
        state_dir,
        'apiVersion: regops/v1\nmodels:\n  PgDirect:\n    versions:\n      "2": {stage: Staging}\n',
    )
    password = postgres_uri.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    planned = regops(postgres_uri, state_dir, "plan", "--detailed-exitcode", "--out", "plan.json")
    assert planned.exit_code == 2, planned.output
    assert "Registry: postgresql+psycopg2://***@127.0.0.1" in planned.output
    done = regops(postgres_uri, state_dir, "reconcile")
    assert done.exit_code == 0, done.output
    leaked = [
        where
        for where, text in {
            "plan output": planned.output,
            "plan file": Path("plan.json").read_text(),
            "reconcile output": done.output,
            "tags": json.dumps(registry_dump(postgres_uri, ["PgDirect"])),
        }.items()
        if password in text
    ]
    assert not leaked, f"database password leaked into: {leaked}"
    assert regops(postgres_uri, state_dir, "plan", "--detailed-exitcode").exit_code == 0
