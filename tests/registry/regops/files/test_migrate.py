"""`regops migrate-to-aliases`: the rewrite, byte for byte, and the plan it leads to."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from regops.cli import cli
from tests.support.paths import ROOT
from tests.support.repo import STATE, client, line_diff, live_stage, write_state
from tests.support.servers import make_registry

REPO_STATE = ROOT / "registry-state" / "accident_prediction.yaml"
MAP = ("--map", "Production=champion", "--map", "Staging=challenger")


def regops(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_the_repositorys_own_state_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "registry-state").mkdir()
    shutil.copy(REPO_STATE, tmp_path / "registry-state")
    before = REPO_STATE.read_text()
    result = regops("migrate-to-aliases", *MAP)
    assert result.exit_code == 0, result.output
    after = (tmp_path / "registry-state" / REPO_STATE.name).read_text()
    removed, added = line_diff(before, after)
    assert removed == [
        "  stages:",
        "    Production:",
        "      max_versions: 1",
        "      require_from: [Staging, Production]",
        "    Staging:",
    ]
    assert added == [
        "  use_stages: false",
        "  aliases:",
        "    champion:",
        "      require_from: [challenger, Staging, Production]",
        "    challenger:",
    ]
    # Every other line is the same bytes, in the same order (comments included).
    kept = [line for line in before.split("\n") if line not in removed]
    assert [line for line in after.split("\n") if line not in added] == kept
    assert regops("validate").exit_code == 0
    again = regops("migrate-to-aliases", *MAP)
    assert again.exit_code == 0, again.output
    assert "nothing to migrate" in again.output
    assert (tmp_path / "registry-state" / REPO_STATE.name).read_text() == after


def test_versions_and_policies_keep_their_comments(tmp_path: Path) -> None:
    path = write_state(tmp_path / "state")
    result = regops("migrate-to-aliases", "--state-dir", str(tmp_path / "state"), *MAP)
    assert result.exit_code == 0, result.output
    after = path.read_text()
    removed, added = line_diff(STATE, after)
    assert '      "1": {}                       # the first one' in added
    assert '      "1": {aliases: [challenger]}' in added  # Churn v1 was in Staging
    assert "  # Churn has one version." in after  # hung on the deleted stage line
    assert "# Fraud scores, retrained weekly." in after
    assert "  drift:   correct              # out-of-band changes are reverted" in after
    assert not [line for line in after.split("\n") if "stage:" in line]
    assert "Churn v1: stage Staging -> alias challenger" in result.output
    assert "Fraud v2: stage Production -> no alias (keeps champion)" in result.output


def test_dry_run_writes_nothing_and_bad_maps_are_usage_errors(tmp_path: Path) -> None:
    path = write_state(tmp_path / "state")
    state = ("--state-dir", str(tmp_path / "state"))
    result = regops("migrate-to-aliases", *state, *MAP, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Dry run: nothing was written." in result.output
    assert path.read_text() == STATE
    for bad in ("Prod=champion", "Production=latest", "Production", "Production=a b"):
        result = regops("migrate-to-aliases", *state, "--map", bad)
        assert result.exit_code == 64, (bad, result.output)
    result = regops("migrate-to-aliases", *state, "--map", "Production=x", "--map", "Staging=x")
    assert result.exit_code == 64
    assert path.read_text() == STATE


def test_keep_stages_adds_aliases_beside_them(tmp_path: Path) -> None:
    path = write_state(tmp_path / "state")
    result = regops("migrate-to-aliases", "--state-dir", str(tmp_path / "state"), "--keep-stages")
    assert result.exit_code == 0, result.output
    after = path.read_text()
    assert '      "1": {stage: Staging, aliases: [challenger]}' in after
    assert "  stages:" in after
    assert "use_stages" not in after
    assert "    challenger: {}" in after


def test_the_migrated_plan_moves_aliases_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_uri: str
) -> None:
    """Live: v2 in Production, v3 and v4 in Staging, no aliases. After the migration the
    plan sets champion on 2 and challenger on 4 (gated, passing on the live stages) and
    leaves every stage where it is."""
    monkeypatch.chdir(tmp_path)
    make_registry(
        sqlite_uri,
        {"Fraud": 4},
        stage_of={
            ("Fraud", "2"): "Production",
            ("Fraud", "3"): "Staging",
            ("Fraud", "4"): "Staging",
        },
    )
    for v in "234":
        client(sqlite_uri).set_model_version_tag("Fraud", v, "validation_status", "passed")
    write_state(
        tmp_path / "registry-state",
        """\
apiVersion: regops/v1
policy:
  stages:
    Production: {require_from: [Staging, Production], require_tags: {validation_status: passed}}
    Staging: {require_tags: {validation_status: passed}}
models:
  Fraud:
    versions:
      "1": {stage: None}
      "2": {stage: Production}
      "3": {stage: Staging}
      "4": {stage: Staging}
""",
    )
    uri = ("--tracking-uri", sqlite_uri)
    assert regops("plan", *uri, "--detailed-exitcode").exit_code == 0  # in sync with stages
    result = regops("migrate-to-aliases", *uri, *MAP)
    assert result.exit_code == 0, result.output
    assert "Fraud alias challenger: v4 (newest of the versions in the stage" in result.output
    planned = regops("plan", *uri)
    assert planned.exit_code == 0, planned.output
    assert "+ alias champion: set on version 2" in planned.output
    assert "ok   require_from: version 2 holds Production: may take champion" in planned.output
    assert "+ alias challenger: set on version 4" in planned.output
    assert "stage:" not in planned.output
    assert regops("reconcile", *uri).exit_code == 0
    model = client(sqlite_uri).get_registered_model("Fraud")
    assert {a: str(v) for a, v in model.aliases.items()} == {"champion": "2", "challenger": "4"}
    assert [live_stage(sqlite_uri, "Fraud", v) for v in "1234"] == [
        "None",
        "Production",
        "Staging",
        "Staging",
    ]
    assert regops("plan", *uri, "--detailed-exitcode").exit_code == 0
