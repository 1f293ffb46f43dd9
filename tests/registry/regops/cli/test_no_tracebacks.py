"""Every traceback class found becomes exit 1 or 64 with a message: odd but plausible
inputs to each command, run through the CLI on real git and a real sqlite registry.

And the handler's last line of defence: RecursionError, OverflowError and MemoryError
raised anywhere below a command are exit 1 with a message, never exit 70."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from regops.cli import RegopsGroup
from tests.support.repo import Repo, regops, write_state

STATE = """\
apiVersion: regops/v1
models:
  Fraud:
    owners: ["@acme/fraud"]
    versions:
      "1": {stage: Staging}
"""


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_uri: str) -> Path:
    """A git repository with one committed state file; a real (empty) sqlite registry."""
    root = tmp_path / "repo"
    r = Repo(root)
    monkeypatch.chdir(root)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_uri)
    write_state(root / "registry-state", STATE, "fraud.yaml")
    (root / "candidates.json").write_text('[{"model": "Fraud", "version": "1"}]\n')
    (root / "a-file").write_text("not a directory\n")
    r.commit("Declare Fraud", who="alice")
    return root


def codeowners_is_a_directory(root: Path) -> None:
    (root / ".github" / "CODEOWNERS").mkdir(parents=True)


def nothing(_root: Path) -> None:
    return None


# (args, prepare, exit code, what the message must say)
CASES: list[tuple[list[str], Callable[[Path], None], int, str]] = [
    # history --at at the ends of the calendar, and numbers that are not times
    (["history", "--git-only", "--at", "0001-01-01"], nothing, 0, "No commit touched"),
    (["history", "--git-only", "--at", "0001-01-01T00:00:00"], nothing, 0, "No commit touched"),
    (  # the time is written as ISO 8601 says, year 1 included (strftime wrote "1-01-01")
        ["history", "--git-only", "--at", "0001-01-01", "--format", "json"],
        nothing,
        0,
        '"at": "0001-01-01T23:59:59Z"',  # a bare date: the end of that day
    ),
    (
        ["history", "--git-only", "--at", "0001-01-01T00:00+01:00"],
        nothing,
        64,
        "--at '0001-01-01T00:00+01:00': out of range once converted to UTC",
    ),
    (["history", "--git-only", "--at", "9999-12-31"], nothing, 0, "stage Staging"),
    (["history", "--git-only", "--at", "9999-12-31T23:59:59"], nothing, 0, "stage Staging"),
    (["history", "--git-only", "--at", "9999-12-31T23:59:59Z"], nothing, 0, "stage Staging"),
    (
        ["history", "--git-only", "--at", "9999-12-31T23:59:59-05:00"],
        nothing,
        64,
        "out of range once converted to UTC (years 1 to 9999)",
    ),
    (["history", "--at", "9999-12-31"], nothing, 0, "stage Staging"),  # with the registry
    (
        ["history", "--git-only", "--at", "99999999999999999999999"],
        nothing,
        64,
        "expected an ISO 8601 time",
    ),
    (["history", "--git-only", "--at", "1700000000"], nothing, 64, "expected an ISO 8601 time"),
    (["history", "--git-only", "--at", "-1700000000"], nothing, 64, "expected an ISO 8601 time"),
    (["history", "--git-only", "--at", "+10000-01-01"], nothing, 64, "expected an ISO 8601"),
    (["history", "--git-only", "--at", "0000-01-01"], nothing, 64, "expected an ISO 8601 time"),
    (["history", "--git-only", "--at", ""], nothing, 64, "expected an ISO 8601 time"),
    # a CODEOWNERS that cannot be written (tests run as root: a directory or a path under a file)
    (["codeowners"], codeowners_is_a_directory, 1, "CODEOWNERS: it is a directory"),
    (["codeowners", "--file", "a-file/CODEOWNERS"], nothing, 1, "cannot write a-file/CODEOWNERS"),
    # a bad --stage to propose is a usage error, as it is to transition
    (
        ["propose", "--candidates", "candidates.json", "--stage", "Bogus", "--body", "b.md"],
        nothing,
        64,
        "Invalid value for '--stage': 'Bogus' is not one of 'None', 'Staging'",
    ),
    (
        ["transition", "--model-name", "Fraud", "--version", "1", "--stage", "Bogus"],
        nothing,
        64,
        "Invalid value for '--stage'",
    ),
    # tracking URIs that MLflow cannot parse or open
    (["list-models", "--tracking-uri", "http://[::1"], nothing, 1, "not a URI (Invalid IPv6 URL)"),
    (["plan", "--tracking-uri", "sqlite:///registry-state"], nothing, 1, "is a directory"),
    (
        ["list-models", "--tracking-uri", "sqlite:///a-file/sub/mlflow.db"],
        nothing,
        1,
        "a-file is not a directory",
    ),
]


@pytest.mark.parametrize(
    ("args", "prepare", "exit_code", "says"), CASES, ids=[" ".join(c[0]) for c in CASES]
)
def test_odd_input_is_an_error_not_a_traceback(
    repo: Path, args: list[str], prepare: Callable[[Path], None], exit_code: int, says: str
) -> None:
    prepare(repo)
    result = regops(*args)
    assert "Traceback" not in result.output
    assert "unexpected internal error" not in result.output
    assert result.exit_code == exit_code, result.output
    assert says in result.output


def test_propose_with_a_good_stage_still_edits(repo: Path) -> None:
    result = regops(
        "propose", "--candidates", "candidates.json", "--stage", "Production", "--body", "b.md"
    )
    assert result.exit_code == 0, result.output
    assert "Fraud v1 -> Production" in result.output
    assert '"1": {stage: Production}' in (repo / "registry-state" / "fraud.yaml").read_text()


def _nest(depth: int) -> object:
    return [] if depth == 0 else [_nest(depth - 1)]


def _recursion() -> None:
    _nest(10**6)


def _overflow() -> None:
    float(10**400)


def _memory() -> None:
    raise MemoryError  # what a real allocation failure raises; allocating one here would swap


@pytest.mark.parametrize(
    ("raise_it", "says"),
    [
        (_recursion, "error: the input is nested too deeply to read (RecursionError)"),
        (_overflow, "error: a number or a date in the input is out of range (OverflowError: "),
        (_memory, "error: out of memory: the input is too large to read (MemoryError)"),
    ],
    ids=["RecursionError", "OverflowError", "MemoryError"],
)
def test_the_handler_turns_limits_into_exit_1(raise_it: Callable[[], None], says: str) -> None:
    group = RegopsGroup()

    @group.command()
    def boom() -> None:
        raise_it()

    result = CliRunner().invoke(group, ["boom"])
    assert result.exit_code == 1, result.output
    assert says in result.output
    assert "Traceback" not in result.output
    assert "unexpected internal error" not in result.output
