"""`regops codeowners [--check]`: CODEOWNERS from the models' owners, other lines kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from regops.cli import cli
from tests.support.repo import Repo

FRAUD = """\
apiVersion: regops/v1
models:
  Fraud:
    owners: ["@acme/fraud", "@alice"]
    versions:
      "1": {aliases: [champion]}
"""
CHURN = """\
apiVersion: regops/v1
models:
  Churn:
    owners: ["@acme/growth"]
    versions: {}
"""
HUMAN = """\
# Humans wrote these.
*            @acme/maintainers
/docs/       @acme/docs
"""


def regops(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "repo"
    Repo(root)
    monkeypatch.chdir(root)
    (root / "registry-state").mkdir()
    (root / "registry-state" / "fraud.yaml").write_text(FRAUD)
    (root / "registry-state" / "churn.yaml").write_text(CHURN)
    (root / ".github").mkdir()
    (root / ".github" / "CODEOWNERS").write_text(HUMAN)
    return root


def test_write_keeps_other_lines_then_check_passes(repo: Path) -> None:
    assert regops("codeowners", "--check").exit_code == 1
    result = regops("codeowners")
    assert result.exit_code == 0, result.output
    text = (repo / ".github" / "CODEOWNERS").read_text()
    assert text.startswith(HUMAN)
    rules = [line for line in text.split("\n") if line.startswith("/registry-state/")]
    assert rules == [
        "/registry-state/churn.yaml @acme/growth",
        "/registry-state/fraud.yaml @acme/fraud @alice",
    ]
    # Last match wins in CODEOWNERS: the generated rules come after the human ones.
    assert text.index("/registry-state/") > text.index("/docs/")
    check = regops("codeowners", "--check")
    assert check.exit_code == 0, check.output
    assert "is up to date (2 rule(s))" in check.output


def test_check_fails_when_owners_change_and_rewrite_replaces_the_block(repo: Path) -> None:
    regops("codeowners")
    path = repo / ".github" / "CODEOWNERS"
    path.write_text(path.read_text() + "/later/ @acme/later\n")
    fraud = repo / "registry-state" / "fraud.yaml"
    fraud.write_text(fraud.read_text().replace('"@alice"', '"@bob"'))
    check = regops("codeowners", "--check")
    assert check.exit_code == 1
    assert ".github/CODEOWNERS is out of date: run `regops codeowners`" in check.output
    assert regops("codeowners").exit_code == 0
    text = path.read_text()
    assert "/registry-state/fraud.yaml @acme/fraud @bob" in text
    assert "@alice" not in text
    assert text.count("# BEGIN regops codeowners") == 1
    assert text.endswith("/later/ @acme/later\n")  # lines after the block are kept too
    assert regops("codeowners", "--check").exit_code == 0


def test_a_file_with_models_of_different_owners_is_reported(repo: Path) -> None:
    (repo / "registry-state" / "churn.yaml").unlink()
    (repo / "registry-state" / "fraud.yaml").write_text(FRAUD + CHURN.split("models:\n", 1)[1])
    result = regops("codeowners")
    assert result.exit_code == 0, result.output
    assert "registry-state/fraud.yaml holds models with different owners" in result.stderr
    assert "Churn: @acme/growth; Fraud: @acme/fraud @alice" in result.stderr
    text = (repo / ".github" / "CODEOWNERS").read_text()
    assert "/registry-state/fraud.yaml @acme/growth @acme/fraud @alice" in text


def test_no_owners_writes_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Repo(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "registry-state").mkdir()
    (tmp_path / "registry-state" / "m.yaml").write_text(
        FRAUD.replace('    owners: ["@acme/fraud", "@alice"]\n', "")
    )
    assert regops("codeowners").exit_code == 0
    assert not (tmp_path / ".github").exists()
    assert regops("codeowners", "--check").exit_code == 0


@pytest.mark.parametrize(
    "owner",
    [
        "#x@example.com",  # a CODEOWNERS comment: the owners after it would be dropped
        "a#b@example.com",
        "!x@example.com",
        "x@exa mple.com",
        "x@example.com\u202e",
        "x\x1b[2J@example.com",
        "@acme/../../x",
        "*@example.com",
    ],
    ids=repr,
)
def test_an_owner_that_codeowners_would_misread_is_refused(repo: Path, owner: str) -> None:
    state = repo / "registry-state" / "fraud.yaml"
    state.write_text(FRAUD.replace('"@alice"', f"{owner!r}".replace("'", '"')))
    before = (repo / ".github" / "CODEOWNERS").read_text()
    result = regops("codeowners")
    assert result.exit_code == 1, result.output
    assert "registry-state/fraud.yaml:4:" in result.output
    assert (repo / ".github" / "CODEOWNERS").read_text() == before


def test_a_plain_e_mail_owner_is_written_as_is(repo: Path) -> None:
    state = repo / "registry-state" / "fraud.yaml"
    state.write_text(FRAUD.replace('"@alice"', '"alice.o+ml@corp.example.com"'))
    result = regops("codeowners")
    assert result.exit_code == 0, result.output
    text = (repo / ".github" / "CODEOWNERS").read_text()
    assert "/registry-state/fraud.yaml @acme/fraud alice.o+ml@corp.example.com" in text
