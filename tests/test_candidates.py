"""`make candidates`: the versions of the last training run that passed both gates."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.support import make_registry

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "passed_candidates.py"


def test_lists_only_versions_with_both_gates_passed(
    tmp_path: Path, sqlite_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    make_registry(sqlite_uri, {"A": 2, "B": 1})
    client = MlflowClient(tracking_uri=sqlite_uri, registry_uri=sqlite_uri)
    for name, version, smoke in (("A", "2", "passed"), ("B", "1", "failed")):
        client.set_model_version_tag(name, version, "validation_status", "passed")
        client.set_model_version_tag(name, version, "smoke_test_status", smoke)
    manifest = tmp_path / "last_training.json"
    trained = [
        {"registered_model": "A", "version": 2},
        {"registered_model": "B", "version": "1"},
        {"registered_model": "C", "version": 1},
    ]
    manifest.write_text(json.dumps({"models": trained}))
    out = tmp_path / "candidates.txt"
    main = runpy.run_path(str(SCRIPT))["main"]
    args = ["--manifest", str(manifest), "--out", str(out), "--tracking-uri", sqlite_uri]
    assert main(args) == 0
    assert out.read_text() == "A 2\n"
    err = capsys.readouterr().err
    assert "B v1: left out (smoke_test_status=failed)" in err
    assert "C v1: not in the registry" in err
    assert "1 of 3 candidate(s) passed" in err


def test_without_a_manifest_it_says_to_train(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main = runpy.run_path(str(SCRIPT))["main"]
    assert main(["--manifest", str(tmp_path / "missing.json")]) == 1
    assert "run `accident train`" in capsys.readouterr().err
