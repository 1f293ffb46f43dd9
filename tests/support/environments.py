"""Two environments (dev, prod) in one git repository, each its own sqlite registry: the
promotion-by-copy tests build on it."""

from __future__ import annotations

import shutil
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from regops.cli import cli
from tests.support.repo import ENVS_CONFIG, client

DEV_STATE = """\
apiVersion: regops/v1
models:
  Fraud:
    versions:
      "1": {stage: Staging}
"""
PROD_STATE = """\
apiVersion: regops/v1
policy:
  stages:
    Production:
      require_from: [Staging, Production]
      require_tags: {validation_status: passed}
models:
  Fraud:
    versions:
      dev@1: {stage: Production, aliases: [champion]}
"""


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-c", "user.name=Tester", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def log_model(uri: str, name: str, content: str, tags: dict[str, str]) -> str:
    """Register a version whose artifacts are a small model directory; returns its number."""
    c = client(uri)
    exp = c.get_experiment_by_name("Default")
    exp_id = exp.experiment_id if exp else "0"
    run_ = c.create_run(exp_id)
    local = Path(c.tracking_uri.removeprefix("sqlite:///")).parent / f"model-{run_.info.run_id}"
    local.mkdir()
    (local / "MLmodel").write_text(f"flavor: test\ncontent: {content}\n")
    c.log_artifacts(run_.info.run_id, str(local), "model")
    c.set_terminated(run_.info.run_id)
    if not c.search_registered_models(f"name = '{name}'"):
        c.create_registered_model(name)
    mv = c.create_model_version(
        name, f"{run_.info.artifact_uri}/model", run_id=run_.info.run_id, tags=tags
    )
    return str(mv.version)


@dataclass
class Repo:
    root: Path
    dev: str
    prod: str

    def write(self, rel: str, text: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def commit(self, message: str) -> str:
        git(self.root, "add", "-A")
        git(self.root, "commit", "-qm", message)
        return git(self.root, "rev-parse", "HEAD")

    def versions(self, uri: str, name: str) -> dict[str, object]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return {str(v.version): v for v in client(uri).search_model_versions(f"name='{name}'")}


def two_environments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, template: Path) -> Repo:
    """A git repository declaring dev and prod, each its own sqlite registry (a copy of
    `template`, an empty migrated one); dev holds Fraud v1 in Staging."""
    root = tmp_path / "repo"
    root.mkdir()
    uris = {}
    for env in ("dev", "prod"):
        shutil.copyfile(template, tmp_path / f"{env}.db")
        uris[env] = f"sqlite:///{tmp_path / f'{env}.db'}"
        monkeypatch.setenv(f"REGOPS_T_{env.upper()}_URI", uris[env])
    monkeypatch.chdir(root)
    git(root, "init", "-q")
    r = Repo(root, uris["dev"], uris["prod"])
    r.write("regops.yaml", ENVS_CONFIG)
    r.write("registry-state/dev/fraud.yaml", DEV_STATE)
    r.write("registry-state/prod/fraud.yaml", PROD_STATE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        log_model(r.dev, "Fraud", "dev-v1", {"validation_status": "passed", "regops.held": "x"})
        client(r.dev).transition_model_version_stage("Fraud", "1", "Staging")
    r.commit("declare dev and prod")
    return r
