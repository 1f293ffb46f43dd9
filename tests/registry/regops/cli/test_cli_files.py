"""Files and formats through the CLI, judged by their effects: filesystem errors name the
path and leave nothing half-written; `--apply` says what happened to the file and to the
registry; every command honours --format and every renderer escapes what it shows."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from mlflow import MlflowClient

from regops.cli import cli
from tests.support.servers import make_registry

STATE = """\
apiVersion: regops/v1
policy:
  stages:
    Production:
      max_versions: 1
      require_tags: {validation_status: passed}
models:
  Fraud:
    versions:
      "1": {stage: Staging}
"""


def regops(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def client(uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def stages(uri: str, name: str) -> dict[str, str]:
    return {
        str(v.version): v.current_stage
        for v in client(uri).search_model_versions(f"name = '{name}'")
    }


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_uri: str) -> str:
    monkeypatch.chdir(tmp_path)
    make_registry(sqlite_uri, {"Fraud": 2}, stage_of={("Fraud", "1"): "Staging"})
    (tmp_path / "registry-state").mkdir()
    (tmp_path / "registry-state" / "models.yaml").write_text(STATE)
    return sqlite_uri


@contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """A directory nobody can write into, root included (root ignores mode bits)."""
    if os.geteuid() != 0:
        directory.chmod(0o555)
        try:
            yield
        finally:
            directory.chmod(0o755)
        return
    chattr = shutil.which("chattr")
    assert chattr, "chattr (e2fsprogs) is needed to make a directory read-only for root"
    subprocess.run([chattr, "+i", str(directory)], check=True)
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(directory)], check=True)


def assert_clean_error(result: Result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.output, result.output


# ---- class 10: filesystem errors ------------------------------------------------------------


def test_editing_a_read_only_state_dir_names_the_path_and_changes_nothing(
    repo: str, tmp_path: Path
) -> None:
    state = tmp_path / "registry-state"
    before = (state / "models.yaml").read_bytes()
    with read_only(state):
        result = regops("transition", "--model-name", "Fraud", "--version", "2",
                        "--stage", "Staging")  # fmt: skip
        assert_clean_error(result, "cannot write registry-state/models.yaml", "nothing was written")
        assert sorted(p.name for p in state.iterdir()) == ["models.yaml"]  # no temp file left
    assert (state / "models.yaml").read_bytes() == before


def test_plan_out_into_a_missing_directory_fails_before_reading_the_registry(repo: str) -> None:
    result = regops("plan", "--tracking-uri", repo, "--out", "missing/plan.json")
    assert_clean_error(result, "cannot write missing/plan.json: directory missing does not exist")
    assert not Path("missing").exists()
    ok = regops("plan", "--tracking-uri", repo, "--out", "plan.json")
    assert ok.exit_code == 0, ok.output
    assert json.loads(Path("plan.json").read_text())["format_version"] == "1"


def test_export_writes_nothing_when_one_name_cannot_be_a_file(repo: str, tmp_path: Path) -> None:
    long_name = "M" * 256  # a name state files allow; no filesystem takes a 261-byte file name
    make_registry(repo, {long_name: 1, "Aaa": 1})
    result = regops("export", "--tracking-uri", repo, "--output", "exported")
    assert_clean_error(result, "the file name is longer than this filesystem allows",
                       "nothing was written")  # fmt: skip
    assert not Path("exported").exists()
    # One model that fits: written whole, and nothing else is left behind.
    ok = regops("export", "--tracking-uri", repo, "--output", "exported", "--model", "Fraud")
    assert ok.exit_code == 0, ok.output
    assert sorted(p.name for p in Path("exported").iterdir()) == ["Fraud.yaml"]


def test_export_into_a_read_only_directory_writes_nothing(repo: str, tmp_path: Path) -> None:
    out = tmp_path / "exported"
    out.mkdir()
    with read_only(out):
        result = regops("export", "--tracking-uri", repo, "--output", str(out))
        assert_clean_error(result, f"cannot write {out}/Fraud.yaml", "nothing was written")
    assert list(out.iterdir()) == []


# ---- class 11: --apply says what happened -------------------------------------------------------


def test_apply_blocked_by_a_gate_says_the_file_was_edited_and_nothing_applied(
    repo: str, tmp_path: Path
) -> None:
    result = regops("promote", "--tracking-uri", repo, "--model-name", "Fraud",
                    "--version", "1", "--stage", "Production", "--apply")  # fmt: skip
    assert_clean_error(
        result,
        "registry-state/models.yaml: Fraud v1: stage Staging -> Production",
        "require_tags",  # the plan with the failed gate is shown
        "registry-state/models.yaml: edited, and the edit is kept",
        "registry: nothing applied: a promotion gate blocks the change",
    )
    assert "stage: Production" in (tmp_path / "registry-state" / "models.yaml").read_text()
    assert stages(repo, "Fraud") == {"1": "Staging", "2": "None"}

    args = ["--version", "2", "--stage", "Production", "--apply", "--format", "json"]
    as_json = regops("transition", "--tracking-uri", repo, "--model-name", "Fraud", *args)
    assert as_json.exit_code == 1
    doc = json.loads(as_json.stdout)
    assert doc["ok"] is False
    assert doc["changed"] is True
    assert "registry: nothing applied" in doc["outcome"]
    assert doc["plan"]["summary"]["blocked"] == 1


def test_apply_that_lands_says_so(repo: str) -> None:
    result = regops("transition", "--tracking-uri", repo, "--model-name", "Fraud",
                    "--version", "2", "--stage", "Staging", "--apply")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "edited, and the edit is kept" in result.output
    assert "registry: 1 change(s) applied" in result.output
    assert stages(repo, "Fraud")["2"] == "Staging"


def test_apply_against_an_unreachable_registry_says_the_edit_is_kept(
    repo: str, tmp_path: Path
) -> None:
    bad = f"sqlite:///{tmp_path}/no/such/dir/mlflow.db"
    result = regops("transition", "--tracking-uri", bad, "--model-name", "Fraud",
                    "--version", "2", "--stage", "Staging", "--apply")  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "edited, and the edit is kept" in result.output
    assert "registry: nothing applied" in result.output
    assert '"2": {stage: Staging}' in (tmp_path / "registry-state" / "models.yaml").read_text()


# ---- class 12: formats, escaping, saved plans -------------------------------------------


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_every_command_honours_format(repo: str, fmt: str) -> None:
    subprocess.run(["git", "init", "-q"], check=True)
    subprocess.run(["git", "-c", "user.name=a", "-c", "user.email=a@b", "add", "-A"], check=True)
    subprocess.run(["git", "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-qm", "s"],
                   check=True)  # fmt: skip
    commands = [
        ["validate"],
        ["plan"],
        ["export"],
        ["history", "--git-only"],
        ["list-models"],
        ["list-versions", "--model-name", "Fraud"],
        ["get-model", "--model-name", "Fraud", "--stage", "Staging"],
        ["alias", "--model-name", "Fraud", "--version", "1", "--alias", "challenger"],
    ]
    for args in commands:
        result = regops(*args, "--tracking-uri", repo, "--format", fmt)
        assert result.exit_code == 0, (args, result.output)
        out = result.output
        if fmt == "json":
            json.loads(out)
        elif fmt == "markdown":
            assert "|" in out or "```" in out or out.startswith("###"), (args, out)
        else:
            with pytest.raises(ValueError):
                json.loads(out)


def test_validate_json_lists_every_problem(repo: str, tmp_path: Path) -> None:
    (tmp_path / "registry-state" / "models.yaml").write_text(
        STATE.replace('"1": {stage: Staging}', '"01": {stage: Staging, aliases: [latest]}')
    )
    result = regops("validate", "--format", "json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["valid"] is False
    assert [(p["line"], p["message"][:20]) for p in doc["problems"]] == [
        (10, "alias 'latest' is re"),
        (10, "version key '01' mus"),
    ]


def test_markdown_plan_escapes_what_it_shows(repo: str, tmp_path: Path) -> None:
    state = tmp_path / "registry-state" / "models.yaml"
    state.write_text(STATE.replace("  Fraud:\n", "  Fraud:\n    description: 'a | b `c` <img>'\n"))
    result = regops("plan", "--tracking-uri", repo, "--format", "markdown")
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if line.startswith("| ~")]
    assert len(rows) == 1, result.output
    # Five cells: the pipe in the description does not open a sixth.
    assert rows[0].replace("\\|", "").count("|") == 6, rows[0]
    assert "\\<img>" in result.output  # HTML shown as text, not rendered


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2]", "not a regops plan file (a JSON array, not an object)"),
        ('"plan"', "not a regops plan file (a JSON string, not an object)"),
        ("{not json", "not a regops plan file (not JSON"),
        ('{"format_version": "1", "changes": "all"}', "not a valid regops plan"),
    ],
    ids=["list", "string", "garbage", "schema"],
)
def test_reconcile_refuses_a_plan_file_that_is_not_a_plan(
    repo: str, content: str, message: str
) -> None:
    Path("plan.json").write_text(content)
    result = regops("reconcile", "--tracking-uri", repo, "--plan", "plan.json")
    assert_clean_error(result, f"plan.json: {message}")
    assert stages(repo, "Fraud") == {"1": "Staging", "2": "None"}


def test_a_saved_plan_that_validates_is_applied(repo: str, tmp_path: Path) -> None:
    (tmp_path / "registry-state" / "models.yaml").write_text(
        STATE.replace('"1": {stage: Staging}', '"1": {stage: Staging}\n      "2": {stage: Staging}')
    )
    assert regops("plan", "--tracking-uri", repo, "--out", "plan.json").exit_code == 0
    result = regops("reconcile", "--tracking-uri", repo, "--plan", "plan.json")
    assert result.exit_code == 0, result.output
    assert stages(repo, "Fraud")["2"] == "Staging"


def test_out_onto_a_fifo_is_refused_and_the_fifo_left_as_it_was(repo: str) -> None:
    # The atomic rename would replace a device or FIFO with a plain file (as root, even
    # /dev/null); regops refuses before reading the registry.
    os.mkfifo("plan.pipe")
    result = regops("plan", "--tracking-uri", repo, "--out", "plan.pipe")
    assert_clean_error(result, "cannot write plan.pipe: it is not a regular file")
    assert Path("plan.pipe").is_fifo()
