"""Golden outputs: every read command, in every format, on a small demo registry, the
valid fixtures and a few hostile files, compared byte for byte with tests/golden/.

Captured before the package was reorganised (issue 18), so a move that changes any
output fails here. Times, temporary paths and the sqlite file are normalised. After a
deliberate change of output, rewrite the files with REGOPS_UPDATE_GOLDEN=1 and review
the diff.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from regops.cli import cli
from tests.support.paths import FIXTURES, GOLDEN
from tests.support.servers import make_registry

FORMATS = ("text", "markdown", "json")
UPDATE = os.environ.get("REGOPS_UPDATE_GOLDEN") == "1"

# A handful of the hostile corpus, one of each family (the loader's errors are output too).
HOSTILE = (
    "alias_latest.yaml",
    "dup_model.yaml",
    "types_everywhere.yaml",
    "unicode_rtl_override_model.yaml",
    "bomb_billion_laughs.yaml",
    "version_octal.yaml",
)
MODEL = "Accident_Prediction_XGBoost"

# name -> command line (the global options are added by the test)
COMMANDS: dict[str, list[str]] = {
    "validate-full": ["validate"],
    "plan-full": ["plan"],
    "plan-full-detailed": ["plan", "--detailed-exitcode"],
    "list-models": ["list-models"],
    "list-versions": ["list-versions", "--model-name", MODEL],
    "get-model-stage": ["get-model", "--model-name", MODEL, "--stage", "Production"],
    "get-model-alias": ["get-model", "--model-name", "Fraud", "--alias", "champion"],
    "get-model-missing": ["get-model", "--model-name", "Nope", "--stage", "Production"],
    "export": ["export"],
    "export-model": ["export", "--model", "Fraud"],
    "history": ["history"],
    "history-model": ["history", MODEL],
    "history-git-only": ["history", "--git-only"],
    "reconcile-dry-run": ["reconcile", "--dry-run"],
}

_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2}|\+00:00)?"
)
_EPOCH_MS = re.compile(r"\b1[6-9]\d{11}\b")


def _git(repo: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Golden",
        "GIT_AUTHOR_EMAIL": "golden@example.com",
        "GIT_COMMITTER_NAME": "Golden",
        "GIT_COMMITTER_EMAIL": "golden@example.com",
        "GIT_AUTHOR_DATE": "2024-01-02T03:04:05+00:00",
        "GIT_COMMITTER_DATE": "2024-01-02T03:04:05+00:00",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_SYSTEM": os.devnull,
    }
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, _empty_registry_db: Path) -> Path:
    """A git repository holding tests/fixtures/valid/full.yaml, beside a sqlite registry
    whose live state differs from it (pending changes, an alias, evidence tags)."""
    root = tmp_path_factory.mktemp("golden")
    shutil.copyfile(_empty_registry_db, root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    make_registry(
        uri,
        {MODEL: 4, "Fraud": 2},
        stage_of={(MODEL, "1"): "Production", ("Fraud", "2"): "Staging"},
    )
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        client.set_registered_model_alias("Fraud", "champion", "1")
        client.set_model_version_tag(MODEL, "3", "validation_status", "passed")
        client.update_registered_model("Fraud", description="Card fraud")
    repo = root / "repo"
    (repo / "registry-state").mkdir(parents=True)
    # full.yaml pins version 2's run_id, which a demo version (no run) cannot match.
    text = (FIXTURES / "valid" / "full.yaml").read_text(encoding="utf-8")
    (repo / "registry-state" / f"{MODEL}.yaml").write_text(
        text.replace(", run_id: 3f2a9c0d", ""), encoding="utf-8"
    )
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "desired state")
    return root


def normalise(text: str, root: Path) -> str:
    text = text.replace(str(root), "<TMP>")
    text = _TIME.sub("<TIME>", text)
    return _EPOCH_MS.sub("<EPOCH_MS>", text)


def run(root: Path, cwd: Path, args: list[str], fmt: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    full = [*args, "--tracking-uri", uri, "--state-dir", "registry-state", "--format", fmt]
    result = CliRunner().invoke(cli, full)
    return normalise(
        f"exit: {result.exit_code}\n--- stdout\n{result.stdout}--- stderr\n{result.stderr}",
        root,
    )


def check(name: str, got: str) -> None:
    path = GOLDEN / f"{name}.txt"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(got, encoding="utf-8")
        return
    assert path.exists(), f"{path} missing: run with REGOPS_UPDATE_GOLDEN=1 and review it"
    assert got == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_demo_registry(demo: Path, command: str, fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    check(f"{command}.{fmt}", run(demo, demo / "repo", COMMANDS[command], fmt, monkeypatch))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "fixture",
    [f"valid/{p.name}" for p in sorted((FIXTURES / "valid").glob("*.yaml"))]
    + [f"hostile/{n}" for n in HOSTILE],
)
def test_fixture_files(
    demo: Path, tmp_path: Path, fixture: str, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """validate and plan on one fixture file (the loader's verdicts, the plan's diff)."""
    (tmp_path / "registry-state").mkdir()
    shutil.copyfile(FIXTURES / fixture, tmp_path / "registry-state" / Path(fixture).name)
    name = fixture.replace("/", "-").removesuffix(".yaml")
    for command in ("validate", "plan"):
        got = run(demo, tmp_path, [command], fmt, monkeypatch).replace(str(tmp_path), "<CASE>")
        check(f"file-{name}.{command}.{fmt}", got)


@pytest.mark.parametrize("fmt", FORMATS)
def test_snapshot_and_plan_offline(
    demo: Path, tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`snapshot --out FILE` (its report and the file), then `plan --live FILE` on it."""
    snap = tmp_path / "snap.json"
    got = run(demo, demo / "repo", ["snapshot", "--out", str(snap)], fmt, monkeypatch)
    got += "--- file\n" + normalise(snap.read_text(encoding="utf-8"), demo)
    check(f"snapshot.{fmt}", got.replace(str(tmp_path), "<CASE>"))
    got = run(demo, demo / "repo", ["plan", "--live", str(snap)], fmt, monkeypatch)
    check(f"plan-live.{fmt}", got.replace(str(tmp_path), "<CASE>"))
