"""Two environments on two real `mlflow server`s, each with its own artifact store.

dev is sqlite-backed; prod is PostgreSQL-backed (REGOPS_TEST_POSTGRES_URI; on a laptop
without it prod falls back to sqlite, under CI=true its absence fails). A model is
trained and registered in dev, promoted to prod by a state edit (`dev@1`), served from
prod with `accident predict`, and `history` shows its lineage. Then: a re-run copies
nothing; a server cut mid-copy (before the version lands, and after it landed with its
answer lost) converges on re-run without a duplicate; and a dev login that may not
write to prod is refused with a clear message.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from accident_prediction.cli import main as accident_cli
from regops.cli import cli as regops_cli
from regops.core.lineage import LINEAGE_TAG, Lineage
from tests.support.backends import POSTGRES_ENV, AuthServer, environ, in_ci, leaks
from tests.support.environments import Repo, git
from tests.support.paths import ROOT
from tests.support.proxy import AFTER, BEFORE, FaultProxy, Write
from tests.support.repo import client
from tests.support.servers import MlflowServer, start_mlflow_server

pytestmark = pytest.mark.server

LR = "Accident_Prediction_Logistic_Regression"
CONFIG = """\
apiVersion: regops/v1
environments:
  dev:
    tracking_uri: ${MLFLOW_DEV_TRACKING_URI}
    state_dir: registry-state/dev
  prod:
    tracking_uri: ${MLFLOW_PROD_TRACKING_URI}
    state_dir: registry-state/prod
    credentials:
      username: ${MLFLOW_PROD_TRACKING_USERNAME}
      password: ${MLFLOW_PROD_TRACKING_PASSWORD}
"""
PROD_POLICY = """\
apiVersion: regops/v1
policy:
  stages:
    Production:
      require_from: [Staging, Production]
      require_tags: {smoke_test_status: passed}
models:
"""


def regops(*args: str) -> Result:
    return CliRunner().invoke(regops_cli, list(args))


def accident(*args: str) -> Result:
    result = CliRunner().invoke(accident_cli, list(args))
    assert result.exit_code == 0, result.output
    return result


def server_with_store(work: Path, backend_uri: str | None = None) -> MlflowServer:
    """A server that proxies its own artifact store (`--artifacts-destination`)."""
    return start_mlflow_server(
        work,
        backend_uri=backend_uri,
        extra_args=[
            "--artifacts-destination",
            str(work / "store"),
            "--default-artifact-root",  # the last one wins: artifacts go through the server
            "mlflow-artifacts:/",
        ],
    )


@pytest.fixture(scope="module")
def prod_backend() -> Iterator[str | None]:
    """A fresh PostgreSQL database for prod, or None (sqlite) on a laptop without one."""
    base = os.environ.get(POSTGRES_ENV, "").strip()
    if not base:
        if in_ci():
            pytest.fail(f"{POSTGRES_ENV} is not set: prod must run on PostgreSQL in CI")
        yield None
        return
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    db = f"regops_envs_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{db}"'))
    try:
        yield make_url(base).set(database=db).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class Servers:
    dev: MlflowServer
    prod: MlflowServer
    dev_store: Path
    prod_store: Path


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory, prod_backend: str | None
) -> Iterator[Servers]:
    dev_work, prod_work = tmp_path_factory.mktemp("dev"), tmp_path_factory.mktemp("prod")
    dev = server_with_store(dev_work)
    try:
        prod = server_with_store(prod_work, prod_backend)
    except Exception:
        dev.stop()
        raise
    yield Servers(dev, prod, dev_work / "store", prod_work / "store")
    dev.stop()
    prod.stop()


@pytest.fixture(scope="module")
def trained(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> str:
    """`accident train` (small) registers LR v1 in dev; `accident smoke-test` adds evidence."""
    work = tmp_path_factory.mktemp("train")
    for item in ("config", "examples"):
        shutil.copytree(ROOT / item, work / item)
    cwd = Path.cwd()
    os.chdir(work)
    try:
        with environ({"MLFLOW_TRACKING_URI": servers.dev.url}):
            accident("train", "--models", "logistic_regression", "--sample", "2000")
            accident("smoke-test", "--model-name", LR, "--version", "1")
    finally:
        os.chdir(cwd)
    return str(work)


@pytest.fixture
def repo(servers: Servers, trained: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Repo:
    root = tmp_path / "repo"
    root.mkdir()
    monkeypatch.chdir(root)
    monkeypatch.setenv("MLFLOW_DEV_TRACKING_URI", servers.dev.url)
    monkeypatch.setenv("MLFLOW_PROD_TRACKING_URI", servers.prod.url)
    monkeypatch.setenv("MLFLOW_PROD_TRACKING_USERNAME", "unused")  # prod here needs no login
    monkeypatch.setenv("MLFLOW_PROD_TRACKING_PASSWORD", "unused")
    for item in ("config", "examples"):
        shutil.copytree(ROOT / item, root / item)
    git(root, "init", "-q")
    r = Repo(root, servers.dev.url, servers.prod.url)
    r.write("regops.yaml", CONFIG)
    r.write(
        "registry-state/dev/lr.yaml",
        f'apiVersion: regops/v1\nmodels:\n  {LR}:\n    versions:\n      "1": {{stage: Staging}}\n',
    )
    r.write("registry-state/prod/models.yaml", "apiVersion: regops/v1\nmodels: {}\n")
    r.commit("dev and prod")
    result = regops("--env", "dev", "reconcile")
    assert result.exit_code == 0, result.output
    return r


def promote(repo: Repo, target: str, source: str = "dev@1") -> str:
    """The state edit that promotes dev's version 1 to prod as `target`."""
    repo.write(
        "registry-state/prod/models.yaml",
        PROD_POLICY
        + f"  {target}:\n    versions:\n"
        + f"      {source}: {{stage: Production, aliases: [champion]}}\n",
    )
    return repo.commit(f"Promote dev's {source} to prod as {target}")


def test_trained_in_dev_promoted_to_prod_served_from_prod(servers: Servers, repo: Repo) -> None:
    commit = promote(repo, LR)
    plan = regops("plan", "--all-envs", "--detailed-exitcode")
    assert plan.exit_code == 2, plan.output
    assert f"+ copy dev {LR} v1 -> prod (new version)" in plan.output
    assert "ok   require_tags: smoke_test_status=passed" in plan.output

    result = regops("--env", "prod", "reconcile")
    assert result.exit_code == 0, result.output
    assert f"applied  {LR}: copy dev {LR} v1 -> prod (new version)  (new version 1)" in (
        result.output
    )
    (mv,) = repo.versions(servers.prod.url, LR).values()
    dev_mv = repo.versions(servers.dev.url, LR)["1"]
    lineage = Lineage.parse(mv.tags[LINEAGE_TAG])  # type: ignore[attr-defined]
    assert lineage == Lineage("dev", LR, "1", dev_mv.run_id, commit)  # type: ignore[attr-defined]
    assert mv.current_stage == "Production"  # type: ignore[attr-defined]
    assert mv.tags["smoke_test_status"] == "passed"  # type: ignore[attr-defined]
    # prod's files are in prod's own artifact store, not dev's
    prod_run = mv.run_id  # type: ignore[attr-defined]
    assert list(servers.prod_store.rglob(f"*{prod_run}*")), "no artifacts in prod's store"
    assert not list(servers.dev_store.rglob(f"*{prod_run}*"))

    # served from prod, by the workload's own CLI
    with environ({"MLFLOW_TRACKING_URI": servers.prod.url}):
        out = accident(
            "predict", "examples/test_features.json", "--model-name", LR, "--stage", "Production"
        ).stdout
    served = json.loads(out)  # stdout: the predictions document only
    assert str(served["model"]["version"]) == "1", served
    assert served["predictions"], served

    hist = regops("--env", "prod", "history", LR)
    assert hist.exit_code == 0, hist.output
    assert f"{LR} v1 <- dev {LR} v1 (run {dev_mv.run_id}, asked for by commit {commit[:7]})" in (  # type: ignore[attr-defined]
        hist.output
    )

    # idempotence: nothing planned, nothing written, no second copy
    again = regops("plan", "--all-envs", "--detailed-exitcode")
    assert again.exit_code == 0, again.output
    assert regops("--env", "prod", "reconcile").exit_code == 0
    assert list(repo.versions(servers.prod.url, LR)) == ["1"]


def _is_create(w: Write) -> bool:
    return w.path.split("?")[0].endswith("/model-versions/create")


@pytest.mark.parametrize("when", [BEFORE, AFTER], ids=["before-create-lands", "answer-lost"])
def test_a_cut_mid_copy_converges_without_a_duplicate(
    servers: Servers, repo: Repo, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    target = f"LR_cut_{when}"
    proxy = FaultProxy(servers.prod.url, cut_on=_is_create, cut_when=when).start()
    try:
        monkeypatch.setenv("MLFLOW_PROD_TRACKING_URI", proxy.url)
        promote(repo, target, source=f"dev/{LR}@1")
        first = regops("--env", "prod", "reconcile")
        assert first.exit_code == 1, first.output
        assert f"failed  {target}: copy dev {LR} v1 -> prod (new version)" in first.output
        landed = [w for w in proxy.writes if _is_create(w) and w.status is not None]
        assert len(landed) == (1 if when == AFTER else 0)

        proxy.revive()
        second = regops("--env", "prod", "reconcile")
        assert second.exit_code == 0, second.output
        assert regops("--env", "prod", "plan", "--detailed-exitcode").exit_code == 0
    finally:
        proxy.stop()
    found = repo.versions(servers.prod.url, target)
    assert list(found) == ["1"], "copied twice"
    assert found["1"].current_stage == "Production"  # type: ignore[attr-defined]
    creates = [w for w in proxy.writes if _is_create(w) and w.status is not None and w.status < 400]
    assert len(creates) == 1
    # the files uploaded before the cut were used, not uploaded a second time
    runs = client(servers.prod.url).search_runs(
        [client(servers.prod.url).get_experiment_by_name("regops-copies").experiment_id],
        filter_string=f"tags.`regops.copy_key` = 'dev/{LR}@1'",
    )
    assert len(runs) == 1


def test_a_dev_login_that_cannot_write_prod_is_refused_clearly(
    servers: Servers, repo: Repo, auth_server: AuthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with environ(auth_server.admin_env()):
        client(auth_server.url).create_registered_model(LR)  # prod's model, owned by admin
    dev_password = auth_server.create_user("dev-bot")  # default permission: READ
    monkeypatch.setenv("MLFLOW_PROD_TRACKING_URI", auth_server.url)
    monkeypatch.setenv("MLFLOW_PROD_TRACKING_USERNAME", "dev-bot")
    monkeypatch.setenv("MLFLOW_PROD_TRACKING_PASSWORD", dev_password)
    promote(repo, LR)
    result = regops("--env", "prod", "reconcile")
    assert result.exit_code == 1, result.output
    assert (
        "permission denied: the credentials for prod ($MLFLOW_PROD_TRACKING_USERNAME, "
        f"$MLFLOW_PROD_TRACKING_PASSWORD) may not create versions of {LR} in prod's registry"
        in result.output
    )
    assert not leaks([dev_password], output=result.output)
    with environ(auth_server.admin_env()):
        assert repo.versions(auth_server.url, LR) == {}
        exp = client(auth_server.url).get_experiment_by_name("regops-copies")
        assert exp is None, "files were uploaded before the refusal"
