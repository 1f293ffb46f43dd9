"""A copy across environments moves only the source registry's artifacts: a dev version
whose `source` points outside dev's artifact store (a local path, `file://`, another
bucket, `..`, a run logged elsewhere) is refused by the prod reconcile before any write,
naming the model, version and source. Two real in-process sqlite registries."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import pytest

from regops.adapters.mlflow.copying import outside_store
from tests.support import environments as envs
from tests.support.environments import Repo, two_environments
from tests.support.repo import client


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _empty_registry_db: Path) -> Repo:
    """dev and prod, each its own sqlite registry; dev holds Fraud v1 (Staging)."""
    return two_environments(tmp_path, monkeypatch, _empty_registry_db)


PROD_COPIES_2 = """\
apiVersion: regops/v1
models:
  Fraud:
    versions:
      dev@2: {stage: Staging}
"""
ROOT = "/srv/mlruns"


@pytest.mark.parametrize(
    ("source", "location", "refused"),
    [
        ("/srv/mlruns/0/r/artifacts/model", "/srv/mlruns/0/r/artifacts/model", None),
        ("file:///srv/mlruns/0/r/model", "file:///srv/mlruns/0/r/model", None),
        ("file://localhost/srv/mlruns/1/m", "/srv/mlruns/1/m", None),
        ("runs:/abc/model", "/srv/mlruns/0/abc/artifacts/model", None),
        ("models:/m-123", "/srv/mlruns/0/models/m-123/artifacts", None),
        ("/etc", "/etc", "'/etc' lies outside"),
        ("file:///etc", "file:///etc", "'file:///etc' lies outside"),
        ("/srv/mlruns-other/x", "/srv/mlruns-other/x", "lies outside"),
        ("/srv/mlruns/../../etc", "/srv/mlruns/../../etc", "'..' segment"),
        ("/srv/mlruns/%2e%2e/secret", "/srv/mlruns/%2e%2e/secret", "'..' segment"),
        ("s3://other-bucket/model", "s3://other-bucket/model", "lies outside"),
        ("file://evil.example/srv/mlruns/0", "file://evil.example/srv/mlruns/0", "lies outside"),
        ("runs:/abc/model", "/home/ci/.ssh", "'/home/ci/.ssh' lies outside"),
        ("models:/Other/1", "s3://elsewhere/x", "'s3://elsewhere/x' lies outside"),
        ("runs:/abc/../../x", "/srv/mlruns/0/abc", "'..' segment"),
        # a source that names one place while the registry downloads from another
        ("/srv/mlruns/0/r/model", "/etc/passwd", "'/etc/passwd' lies outside"),
    ],
    ids=lambda v: str(v),
)
def test_outside_store_judges_where_the_files_are(
    source: str, location: str, refused: str | None
) -> None:
    why = outside_store(source, location, [ROOT])
    if refused is None:
        assert why is None
    else:
        assert why is not None
        assert refused in why


def test_a_bucket_root_takes_only_its_own_bucket() -> None:
    roots = ["s3://models/mlartifacts", "s3://models/team-a"]
    assert outside_store("runs:/r/m", "s3://models/team-a/3/r/artifacts/m", roots) is None
    assert outside_store("runs:/r/m", "s3://models/mlartifacts/0/r/m", roots) is None
    for loc in ("s3://models-other/team-a/x", "s3://models/secrets/x", "gs://models/team-a/x"):
        assert outside_store(loc, loc, roots) is not None
    assert outside_store("x", "x", []) == "the source registry's artifact root could not be read"


def digest(uri: str) -> str:
    return hashlib.sha256(Path(uri.removeprefix("sqlite:///")).read_bytes()).hexdigest()


def dev_version(repo: Repo, source: str, run_id: str | None = None) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        mv = client(repo.dev).create_model_version(
            "Fraud", source, run_id=run_id, tags={"validation_status": "passed"}
        )
    return str(mv.version)


def elsewhere(tmp_path: Path) -> Path:
    """A model directory on this machine, outside dev's artifact store."""
    d = tmp_path / "ci-machine" / "model"
    d.mkdir(parents=True)
    (d / "MLmodel").write_text("flavor: test\ncontent: secret-of-the-ci-machine\n")
    return d


@pytest.mark.parametrize(
    "kind", ["/etc", "file:///etc", "outside-root", "traversal", "run-elsewhere"]
)
def test_prod_refuses_a_dev_source_outside_devs_store(
    repo: Repo, tmp_path: Path, kind: str
) -> None:
    local = elsewhere(tmp_path)
    dev_root = client(repo.dev).get_experiment("0").artifact_location.removesuffix("/0")
    run_id = None
    if kind == "outside-root":
        source = str(local)
    elif kind == "traversal":
        source = f"{dev_root}/0/../../{'../' * 12}{str(local).lstrip('/')}"
    elif kind == "run-elsewhere":  # a run whose experiment keeps its files outside the root
        c = client(repo.dev)
        exp = c.create_experiment("mine", artifact_location=str(tmp_path / "ci-machine"))
        run = c.create_run(exp)
        c.log_artifacts(run.info.run_id, str(local), "model")
        run_id, source = run.info.run_id, f"runs:/{run.info.run_id}/model"
    else:
        source = kind
    assert dev_version(repo, source, run_id) == "2"
    repo.write("registry-state/prod/fraud.yaml", PROD_COPIES_2)
    repo.commit("prod takes dev v2")
    before = digest(repo.prod)

    result = envs.run("--env", "prod", "reconcile")

    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "refusing to copy dev Fraud v2 to prod Fraud: its source" in result.output
    shown = source if kind != "run-elsewhere" else f"runs:/{run_id}/model"
    assert repr(shown) in result.output
    assert "not in dev's artifact store" in result.output
    assert digest(repo.prod) == before  # not one write: no model, no run, no tag
    assert not client(repo.prod).search_registered_models()


def test_every_refused_copy_is_named_at_once(repo: Repo) -> None:
    assert dev_version(repo, "/etc") == "2"
    assert dev_version(repo, "s3://someone-elses-bucket/model") == "3"
    repo.write(
        "registry-state/prod/fraud.yaml",
        PROD_COPIES_2 + "      dev@3: {stage: None}\n",
    )
    repo.commit("prod takes dev v2 and v3")
    before = digest(repo.prod)
    result = envs.run("--env", "prod", "reconcile")
    assert result.exit_code == 1, result.output
    assert "dev Fraud v2 to prod Fraud: its source '/etc'" in result.output
    assert "dev Fraud v3 to prod Fraud: its source 's3://someone-elses-bucket/model'" in (
        result.output
    )
    assert digest(repo.prod) == before


def test_a_version_in_devs_store_still_copies(repo: Repo) -> None:
    result = envs.run("--env", "prod", "reconcile")
    assert result.exit_code == 0, result.output
    prod = repo.versions(repo.prod, "Fraud")
    assert list(prod) == ["1"]
    assert "refusing" not in result.output


def test_reconcile_creates_a_missing_registry_and_says_so(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = tmp_path / "new-prod.db"
    monkeypatch.setenv("REGOPS_T_PROD_URI", f"sqlite:///{fresh}")
    dry = envs.run("--env", "prod", "reconcile", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"warning: no registry at {fresh}" in dry.stderr
    assert not fresh.exists()

    result = envs.run("--env", "prod", "reconcile")
    assert result.exit_code == 0, result.output
    assert f"creating a new registry at {fresh}: the sqlite file did not exist" in result.stderr
    assert list(repo.versions(f"sqlite:///{fresh}", "Fraud")) == ["1"]


# ---- plan --live: the snapshot holds no other environment ----------------------------------


def test_plan_live_says_per_change_that_the_source_cannot_be_read(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    snap = envs.run("--env", "prod", "snapshot", "--out", "prod.json")
    assert snap.exit_code == 0, snap.output
    # A fork's plan has no login to dev (nor any need of one): dev is never read.
    monkeypatch.setenv("REGOPS_T_DEV_URI", "http://127.0.0.1:9")
    result = envs.run("--env", "prod", "plan", "--live", "prod.json", "--format", "json")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    doc = json.loads(result.stdout)
    why = (
        "dev Fraud v1 cannot be read from a snapshot: --live holds prod's registry only, "
        "not dev's; the copy, the source's evidence and the gates are checked when the plan "
        "reads both registries (regops plan --env prod)"
    )
    got = [(c["version"], c["kind"], c["alias"], c["action"], c["gates"]) for c in doc["changes"]]
    verdict = [{"gate": "source", "passed": False, "detail": why}]
    assert got == [
        ("dev@1", "copy", None, "blocked", verdict),
        ("dev@1", "stage", None, "blocked", verdict),
        ("dev@1", "alias_set", "champion", "blocked", verdict),
    ]
    text = envs.run("--env", "prod", "plan", "--live", "prod.json")
    assert text.exit_code == 1
    assert "cannot be read from a snapshot" in text.output


def test_plan_live_plans_a_copy_already_made_as_its_version(repo: Repo) -> None:
    assert envs.run("--env", "prod", "reconcile").exit_code == 0
    assert envs.run("--env", "prod", "snapshot", "--out", "prod.json").exit_code == 0
    result = envs.run("--env", "prod", "plan", "--live", "prod.json", "--detailed-exitcode")
    assert result.exit_code == 0, result.output
    assert "cannot be read" not in result.output
