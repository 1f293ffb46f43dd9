"""Loader and `regops validate`: every bad file reports FILE:LINE: message, all at once."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from regops.cli import cli
from regops.errors import StateError
from regops.files.loader import load_state
from tests.support.paths import FIXTURES, ROOT

INVALID = sorted((FIXTURES / "invalid").glob("*.yaml"))
EXPECT = re.compile(r"^# expect: (\d+): (.*)$")


def expectations(path: Path) -> list[tuple[int, str]]:
    return [
        (int(m.group(1)), m.group(2))
        for line in path.read_text().splitlines()
        if (m := EXPECT.match(line))
    ]


@pytest.mark.parametrize("fixture", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_fixture_reports_each_problem_at_its_line(
    fixture: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "registry-state"
    state.mkdir()
    shutil.copy(fixture, state / fixture.name)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["validate"])
    assert result.exit_code == 1, result.output
    reported = [line for line in result.output.splitlines() if line.startswith("registry-state/")]
    wanted = expectations(fixture)
    assert wanted, f"{fixture.name} declares no '# expect:' lines"
    for line, message in wanted:
        prefix = f"registry-state/{fixture.name}:{line}: {message}"
        assert any(r.startswith(prefix) for r in reported), (
            f"missing {prefix!r} in:\n{result.output}"
        )
    assert len(reported) == len(wanted), result.output
    assert "nothing was changed" in result.output


def test_valid_fixtures_merge(tmp_path: Path) -> None:
    for f in (FIXTURES / "valid").glob("*.yaml"):
        shutil.copy(f, tmp_path / f.name)
    state = load_state(tmp_path)
    assert list(state.models) == ["Accident_Prediction_XGBoost", "Other_Model"]
    xgb = state.models["Accident_Prediction_XGBoost"]
    assert xgb.policy.drift == "warn"
    assert xgb.policy.unlisted_versions == "archive"
    assert xgb.versions["2"].aliases == ("champion",)
    assert xgb.versions["2"].run_id == "3f2a9c0d"
    assert xgb.versions["4"].stage is None
    assert state.models["Other_Model"].policy.drift == "correct"  # its file has no policy


def test_model_in_two_files_names_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = "apiVersion: regops/v1\nmodels:\n  M:\n    versions: {}\n"
    (tmp_path / "a.yaml").write_text(body)
    (tmp_path / "b.yaml").write_text("# second\n" + body)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StateError) as err:
        load_state(Path())
    assert str(err.value) == (
        "b.yaml:4: model M is also declared in a.yaml:3; declare each model in one file"
    )


def test_problems_in_several_files_are_reported_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for f in ("reserved_alias.yaml", "bad_api_version.yaml"):
        shutil.copy(FIXTURES / "invalid" / f, tmp_path / f)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StateError) as err:
        load_state(Path())
    assert [d.file for d in err.value.diagnostics] == [
        "bad_api_version.yaml",
        "reserved_alias.yaml",
        "reserved_alias.yaml",
    ]


def test_stage_on_a_registry_without_stages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(FIXTURES / "valid" / "full.yaml", tmp_path / "full.yaml")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        cli, ["validate", "--state-dir", ".", "--tracking-uri", "databricks-uc"]
    )
    assert result.exit_code == 1
    assert (
        "full.yaml:18: model Accident_Prediction_XGBoost version 1: this registry has no stages"
        in result.output
    )


def test_missing_state_dir_and_repo_state_is_valid(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["validate", "--state-dir", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "state directory not found" in result.output
    repo_state = ROOT / "registry-state"
    ok = CliRunner().invoke(cli, ["validate", "--state-dir", str(repo_state)])
    assert ok.exit_code == 0, ok.output


def test_validate_never_imports_mlflow_nor_the_registry_layers() -> None:
    import subprocess

    heavy = ["mlflow", "regops.api", "regops.adapters.mlflow.registry", "regops.cli.ci"]
    code = (
        "import sys; from click.testing import CliRunner; from regops.cli import cli;"
        "r = CliRunner().invoke(cli, ['validate', '--state-dir', 'registry-state']);"
        f"print(r.exit_code, *[m in sys.modules for m in {heavy!r}])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert out.stdout.split() == ["0"] + ["False"] * len(heavy)


def test_lazy_commands_table_matches_what_each_module_registers() -> None:
    import importlib

    import click

    from regops.cli import LAZY_COMMANDS

    for module, names in LAZY_COMMANDS.items():
        group = click.Group()
        importlib.import_module(module).register(group)
        assert sorted(group.commands) == sorted(names), module
    listed = cli.list_commands(click.Context(cli))
    assert {n for names in LAZY_COMMANDS.values() for n in names} <= set(listed)
    for name in listed:  # every listed command resolves (and shows in --help)
        assert cli.get_command(click.Context(cli), name) is not None, name
    help_text = CliRunner().invoke(cli, ["--help"]).output
    assert all(name in help_text for name in listed)


def test_usage_errors_exit_64() -> None:
    assert CliRunner().invoke(cli, ["plan", "--bogus"]).exit_code == 64
    assert CliRunner().invoke(cli, ["no-such-command"]).exit_code == 64


def test_core_names_are_the_state_schemas_patterns() -> None:
    """One definition of a valid name (regops.core.state), the schema's, never two."""
    import json

    from regops.core.state import ALIAS, MODEL_NAME, RESERVED_ALIAS, RUN_ID, VERSION_KEY
    from regops.files import SCHEMAS

    defs = json.loads((SCHEMAS / "registry-state.schema.json").read_text())["$defs"]
    whole = "^{}$(?!\\n)".format
    assert defs["alias"]["pattern"] == whole(ALIAS.pattern)
    assert defs["modelName"]["pattern"] == whole(MODEL_NAME.pattern)
    assert defs["version"]["properties"]["run_id"]["pattern"] == whole(RUN_ID.pattern)
    keys = json.dumps(defs)
    assert f'"pattern": "^({VERSION_KEY.pattern}|' in keys  # a version key, or a copy key
    assert [bool(RESERVED_ALIAS.fullmatch(a)) for a in ("latest", "V12", "v1x", "v1\n")] == [
        True,
        True,
        False,
        False,
    ]
