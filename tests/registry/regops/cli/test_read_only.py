"""Read-only commands never create a registry: a `sqlite:///PATH` whose file does not exist
is read as an empty registry, with a warning naming the path, and nothing is left on disk
(no database, no mlruns, no journal). Only a command that writes creates one, and says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.repo import EMPTY_STATE, Repo, regops, write_state

STATE = """\
apiVersion: regops/v1
models:
  Fraud:
    versions:
      "1": {stage: Staging}
"""


def tree(root: Path) -> set[str]:
    """Every path under `root`, git's own bookkeeping left out."""
    return {
        str(p.relative_to(root)) for p in root.rglob("*") if ".git" not in p.relative_to(root).parts
    }


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Repo:
    """A git repository holding one state file, committed; the working directory."""
    root = tmp_path / "repo"
    root.mkdir()
    monkeypatch.chdir(root)
    r = Repo(root)
    write_state(root / "registry-state", EMPTY_STATE)
    (root / "out").mkdir()
    r.commit("Declare nothing yet", who="alice")
    return r


TYPO = "sqlite:///typo.db"  # relative to the working directory, as people type it


@pytest.mark.parametrize(
    ("args", "uri", "exit_code"),
    [
        (["plan"], TYPO, 0),
        (["plan", "--format", "json"], "ABS", 0),
        (["reconcile", "--dry-run"], TYPO, 0),
        (["reconcile"], TYPO, 0),  # nothing to write: nothing created either
        (["list-models"], TYPO, 0),
        (["list-models", "--format", "json"], "ABS", 0),
        (["list-versions", "--model-name", "Fraud"], TYPO, 1),  # no such model: its usual error
        (["get-model", "--model-name", "Fraud", "--alias", "champion"], TYPO, 1),
        (["snapshot", "--out", "out/live.json"], TYPO, 0),
        (["export"], TYPO, 0),
        (["export", "--output", "out/exported"], "ABS", 0),
        (["history"], None, 0),  # the default URI: sqlite:///mlflow.db, here
        (["history", "Fraud"], TYPO, 0),
        (["history", "--at", "2026-01-01T00:00Z"], None, 0),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else str(v),
)
def test_a_read_only_command_leaves_no_registry_behind(
    repo: Repo, tmp_path: Path, args: list[str], uri: str | None, exit_code: int
) -> None:
    if uri == "ABS":
        uri = f"sqlite:///{tmp_path / 'nowhere' / 'typo.db'}"
    before = tree(tmp_path)
    result = regops(*args, *(["--tracking-uri", uri] if uri else []))
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    named = uri.removeprefix("sqlite:///") if uri else "mlflow.db"
    assert f"warning: no registry at {named}: the sqlite file does not exist" in result.stderr
    assert "read as an empty registry, and nothing was created" in result.stderr
    made = tree(tmp_path) - before
    assert made <= {"repo/out/live.json", "repo/out/exported"}, made
    assert not any(n.endswith((".db", ".db-journal")) or "mlruns" in n for n in made)
    assert not Path("typo.db").exists()
    assert not Path("mlflow.db").exists()


def test_the_snapshot_of_a_missing_registry_is_empty(repo: Repo) -> None:
    result = regops("snapshot", "--out", "out/live.json", "--tracking-uri", TYPO)
    assert result.exit_code == 0, result.output
    text = (repo.root / "out" / "live.json").read_text()
    assert '"models": {}' in text or '"models":{}' in text


def test_an_existing_registry_gets_no_warning(repo: Repo, sqlite_uri: str) -> None:
    result = regops("list-models", "--tracking-uri", sqlite_uri)
    assert result.exit_code == 0, result.output
    assert "no registry at" not in result.output


def test_a_declared_model_against_a_missing_registry_is_reported_not_created(
    repo: Repo, tmp_path: Path
) -> None:
    write_state(repo.root / "registry-state", STATE)
    before = tree(tmp_path)
    result = regops("reconcile", "--tracking-uri", TYPO)
    assert result.exit_code == 1, result.output
    assert "warning: no registry at typo.db" in result.stderr
    assert "Fraud" in result.output
    assert tree(tmp_path) == before
