"""One guarded reading of repository files, for every command that reads them.

A fork's pull request writes the state files and `regops.yaml`: a file may be an
alias bomb, oversize, nested thousands deep, a symlink out of the checkout, a FIFO,
or carry a name meant for CODEOWNERS (a newline, a glob). Every entry point that
reads state files (validate, plan, reconcile, the editing commands, migrate-to-
aliases, codeowners, propose, env loading) refuses each with exit 1 and a message,
in a process capped in memory and time, and leaves every file as it was. `history`
reads old commits from git: it shows them as unreadable or refused, bounded.
"""

from __future__ import annotations

import json
import os
import resource
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regops.files.loader import MAX_DEPTH, MAX_FILE_BYTES, NAME_CHARS, STATE_FILE_NAME, name_problem
from tests.support.paths import FIXTURES
from tests.support.repo import Repo
from tests.support.servers import make_registry

HOSTILE = FIXTURES / "hostile"
REGOPS = str(Path(sys.executable).with_name("regops"))
MEMORY_CAP_BYTES = 1 << 30  # address space of one regops process: an expanded bomb dies here
TIMEOUT_S = 60  # a FIFO opened for reading would block forever; validate takes < 1 s
FRAUD = """\
apiVersion: regops/v1
models:
  Fraud:
    owners: ["@acme/fraud"]
    versions:
      "1": {stage: Production}
"""
SECRET = "hunter2-outside-the-repository"


@dataclass
class Run:
    code: int
    out: str  # stdout then stderr
    stdout: str = ""


def regops(args: list[str], cwd: Path) -> Run:
    """`regops ARGS` in a process capped at MEMORY_CAP_BYTES and TIMEOUT_S."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP_BYTES, MEMORY_CAP_BYTES))

    proc = subprocess.run(
        [REGOPS, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        preexec_fn=cap,  # only sets a limit in the child
        env={**os.environ, "REGOPS_CONFIG": ""},
        check=False,
    )
    return Run(proc.returncode, proc.stdout + proc.stderr, proc.stdout)


# ---- hostile state files: each kind makes registry-state/<name> in the repository -----------


def _bomb(state: Path, outside: Path) -> tuple[str, str]:
    (state / "m.yaml").write_bytes((HOSTILE / "bomb_billion_laughs.yaml").read_bytes())
    return "m.yaml", "YAML aliases (*name) are not allowed"


def _oversize(state: Path, outside: Path) -> tuple[str, str]:
    # 2.5 MB of what looks like a valid state file (migrate spent 39 s and 450 MB on it)
    body = "".join(f'      "{i}": {{stage: Archived}}\n' for i in range(1, 100_000))
    (state / "m.yaml").write_text("apiVersion: regops/v1\nmodels:\n  Big:\n    versions:\n" + body)
    assert (state / "m.yaml").stat().st_size > 2 * MAX_FILE_BYTES
    return "m.yaml", f"file is larger than {MAX_FILE_BYTES} bytes"


def _deep(state: Path, outside: Path) -> tuple[str, str]:
    (state / "m.yaml").write_text("apiVersion: regops/v1\nmodels: " + "[" * 50_000 + "]" * 50_000)
    return "m.yaml", f"nested deeper than {MAX_DEPTH} levels"


def _symlink_out(state: Path, outside: Path) -> tuple[str, str]:
    target = outside / "secret.yaml"
    target.write_text(FRAUD.replace("Fraud:", "Other:") + f"# {SECRET}\n")
    (state / "m.yaml").symlink_to(target)
    return "m.yaml", "it is a symlink to"


def _fifo(state: Path, outside: Path) -> tuple[str, str]:
    os.mkfifo(state / "m.yaml")
    return "m.yaml", "it is a FIFO (named pipe), not a regular file"


def _bad_name(state: Path, outside: Path) -> tuple[str, str]:
    # A tab and a newline: as a CODEOWNERS line this made a stranger owner of everything.
    (state / "x\t@evil\n*.yaml").write_text(FRAUD.replace("Fraud:", "Other:"))
    return "x\\t@evil\\n*.yaml", "state file name 'x\\t@evil\\n*.yaml' is not allowed"


KINDS: dict[str, Callable[[Path, Path], tuple[str, str]]] = {
    "bomb": _bomb,
    "oversize": _oversize,
    "deep": _deep,
    "symlink_out": _symlink_out,
    "fifo": _fifo,
    "bad_name": _bad_name,
}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> str:
    db = tmp_path_factory.mktemp("guards-registry") / "mlflow.db"
    uri = f"sqlite:///{db}"
    make_registry(uri, {"Fraud": 2})
    return uri


def _entry_points(root: Path, uri: str) -> dict[str, list[str]]:
    (root / "cand.json").write_text(json.dumps([{"model": "Fraud", "version": "2"}]))
    fraud = ["--model-name", "Fraud", "--version", "2"]
    return {
        "validate": ["validate"],
        "plan": ["plan", "--tracking-uri", uri],
        "reconcile": ["reconcile", "--tracking-uri", uri],
        "transition": ["transition", *fraud, "--stage", "Staging"],
        "promote": ["promote", *fraud, "--stage", "Staging"],
        "archive": ["archive", *fraud],
        "alias": ["alias", *fraud, "--alias", "challenger"],
        "migrate-to-aliases": ["migrate-to-aliases"],
        "codeowners": ["codeowners"],
        "propose": [
            "propose", "--candidates", "cand.json", "--body", "body.md", "--stage", "Staging"
        ],
    }  # fmt: skip


NO_MLFLOW = ("validate", "transition", "alias", "migrate-to-aliases", "codeowners")


def _snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every entry under `root` (git's own files aside): its type bits and its bytes."""
    out: dict[str, tuple[int, bytes]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames:
            p = Path(dirpath) / name
            mode = p.lstat().st_mode
            data = b""
            if stat.S_ISLNK(mode):
                data = str(p.readlink()).encode()
            elif stat.S_ISREG(mode):
                data = p.read_bytes()
            out[str(p.relative_to(root))] = (stat.S_IFMT(mode), data)
    return out


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_entry_point_refuses_every_hostile_state_file(
    kind: str, registry: str, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    Repo(root)
    outside = tmp_path / "outside"
    outside.mkdir()
    state = root / "registry-state"
    state.mkdir()
    (state / "fraud.yaml").write_text(FRAUD)
    shown, message = KINDS[kind](state, outside)
    (root / ".github").mkdir()
    (root / ".github" / "CODEOWNERS").write_text("* @acme/maintainers\n")
    entry_points = _entry_points(root, registry)
    before = _snapshot(root)
    outside_before = _snapshot(outside)
    for command, args in entry_points.items():
        if kind == "oversize" and command not in NO_MLFLOW:
            continue  # the same guard; spares four mlflow imports
        run = regops(args, root)
        where = f"{command} on {kind}"
        assert run.code == 1, f"{where} exited {run.code}:\n{run.out[-3000:]}"
        assert f"registry-state/{shown}:" in run.out, f"{where}:\n{run.out[-3000:]}"
        assert message in run.out, f"{where}:\n{run.out[-3000:]}"
        assert "Traceback" not in run.out, f"{where}:\n{run.out[-3000:]}"
        assert SECRET not in run.out, where
        assert "\t@evil" not in run.out, where  # a name is never printed raw
        assert _snapshot(root) == before, f"{where} changed a file"
    assert _snapshot(outside) == outside_before


def test_a_state_dir_symlinked_out_of_the_repository_is_refused(
    registry: str, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    Repo(root)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "fraud.yaml").write_text(FRAUD + f"# {SECRET}\n")
    (root / "registry-state").symlink_to(elsewhere)
    before = _snapshot(elsewhere)
    for command, args in _entry_points(root, registry).items():
        if command not in NO_MLFLOW:
            continue
        run = regops(args, root)
        assert run.code == 1, f"{command}: {run.out}"
        assert "registry-state:0: state directory refused: it is a symlink to" in run.out, run.out
        assert "outside the repository" in run.out
        assert SECRET not in run.out
    history = regops(["history"], root)
    assert history.code == 1, history.out
    assert "registry-state:0: state directory refused: it is a symlink to" in history.out
    assert _snapshot(elsewhere) == before


def test_symlinks_inside_the_repository_stay_allowed(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    Repo(root)
    (root / "shared").mkdir()
    (root / "shared" / "fraud.yaml").write_text(FRAUD)
    (root / "envs").mkdir()
    (root / "envs" / "prod").symlink_to(root / "shared")
    (root / "registry-state").mkdir()
    (root / "registry-state" / "fraud.yaml").symlink_to("../shared/fraud.yaml")
    for state_dir in ("registry-state", "envs/prod"):
        run = regops(["validate", "--state-dir", state_dir], root)
        assert run.code == 0, run.out
    run = regops(["codeowners"], root)
    assert run.code == 0, run.out
    text = (root / ".github" / "CODEOWNERS").read_text()
    # the link (where it points) and the file it reads (what it says) are both owned
    assert "/registry-state/fraud.yaml @acme/fraud\n" in text
    assert "/shared/fraud.yaml @acme/fraud\n" in text


# ---- regops.yaml: the same guards when environments are loaded -------------------------------

CONFIG = (
    "apiVersion: regops/v1\nenvironments:\n  dev: {tracking_uri: x, state_dir: registry-state}\n"
)


@pytest.mark.parametrize("kind", ["bomb", "oversize", "deep", "symlink_out", "fifo"])
def test_a_hostile_regops_yaml_is_refused(kind: str, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    Repo(root)
    (root / "registry-state").mkdir()
    (root / "registry-state" / "fraud.yaml").write_text(FRAUD)
    config = root / "regops.yaml"
    expected = {
        "bomb": "YAML aliases (*name) are not allowed",
        "oversize": f"file is larger than {MAX_FILE_BYTES} bytes",
        "deep": f"nested deeper than {MAX_DEPTH} levels",
        "symlink_out": "it is a symlink to",
        "fifo": "it is a FIFO (named pipe), not a regular file",
    }[kind]
    if kind == "bomb":
        config.write_text(CONFIG + "x: &a [1]\ny: *a\n")
    elif kind == "oversize":
        config.write_text(CONFIG + "#" * (MAX_FILE_BYTES + 10) + "\n")
    elif kind == "deep":
        config.write_text(CONFIG + "x: " + "[" * 50_000 + "]" * 50_000 + "\n")
    elif kind == "symlink_out":
        (tmp_path / "elsewhere.yaml").write_text(CONFIG + f"# {SECRET}\n")
        config.symlink_to(tmp_path / "elsewhere.yaml")
    else:
        os.mkfifo(config)
    before = _snapshot(root)
    for args in (["validate"], ["codeowners"], ["transition", "--model-name", "Fraud",
                 "--version", "2", "--stage", "Staging"]):  # fmt: skip
        run = regops(args, root)
        assert run.code == 1, run.out
        assert "regops.yaml:" in run.out, run.out
        assert expected in run.out, run.out
        assert SECRET not in run.out
        assert "Traceback" not in run.out
    assert _snapshot(root) == before


def test_a_state_dir_in_regops_yaml_must_stay_in_the_repository(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    Repo(root)
    (root / "regops.yaml").write_text(CONFIG.replace("registry-state", "../elsewhere"))
    run = regops(["validate"], root)
    assert run.code == 1, run.out
    assert "regops.yaml:3: environment dev: state_dir '../elsewhere' must be a relative path" in (
        run.out
    )


# ---- history: old commits are read through the same caps, never followed -------------------


def test_history_shows_hostile_commits_as_unreadable_or_refused(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    repo = Repo(root)
    state = root / "registry-state"
    state.mkdir()
    (state / "fraud.yaml").write_text(FRAUD)
    repo.commit("fraud", "alice")
    _bomb(state, tmp_path)
    (state / "big.yaml").write_bytes(b"#" * (MAX_FILE_BYTES + 10))
    (state / "deep.yaml").write_text("models: " + "[" * 50_000 + "]" * 50_000)
    (state / "x\t@evil\n*.yaml").write_text(FRAUD.replace("Fraud:", "Other:"))
    repo.commit("hostile", "bob")
    run = regops(["history", "--format", "json"], root)
    assert run.code == 0, run.out
    doc = json.loads(run.stdout)  # stderr may carry a warning about the registry
    note = doc["entries"][0]["note"]
    assert "unreadable at this commit: big.yaml, deep.yaml, m.yaml" in note, note
    assert "refused at this commit (not a state file name regops accepts): x\\t@evil\\n*.yaml" in (
        note
    )
    assert all(c["model"] != "Other" for e in doc["entries"] for c in e["changes"])


# ---- state file names and CODEOWNERS ---------------------------------------------------------

REFUSED_NAMES = [
    "*.yaml",
    "#x.yaml",
    "!x.yaml",
    "[ab].yaml",
    "a?.yaml",
    "a b.yaml",
    "a\tb.yaml",
    "a\nb.yaml",
    "a\\b.yaml",
    "-x.yaml",
    ".x.yaml",
    "a\u202eb.yaml",
    "caf\u00e9.yaml",
    "x\t@evil\n*.yaml",
    "a\x1b[31m.yaml",
]


@pytest.mark.parametrize("name", REFUSED_NAMES, ids=[ascii(n) for n in REFUSED_NAMES])
def test_validate_refuses_a_state_file_name_outside_the_character_set(
    name: str, tmp_path: Path
) -> None:
    state = tmp_path / "registry-state"
    state.mkdir()
    (state / name).write_text(FRAUD)
    run = regops(["validate"], tmp_path)
    assert run.code == 1, run.out
    escaped = "".join(c if " " <= c <= "~" and c != "\\" else ascii(c)[1:-1] for c in name)
    assert f"registry-state/{escaped}:1: state file name {ascii(name)} is not allowed" in run.out
    assert NAME_CHARS in run.out
    for raw in ("\x1b", "\t", "\u202e"):
        assert raw not in run.out


def _matches(root: Path, rule: str, paths: list[str]) -> set[str]:
    """The paths a gitignore-style `rule` matches (CODEOWNERS follows gitignore rules), by
    git itself: `git check-ignore --no-index` with the rule as the only .gitignore line."""
    (root / ".gitignore").write_text(rule + "\n")
    proc = subprocess.run(
        ["git", "check-ignore", "--no-index", "-v", "-n", "-z", "--stdin"],
        cwd=root,
        input="\0".join(paths) + "\0",
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr
    fields = proc.stdout.split("\0")
    # -v -n -z: source, line, pattern, path per path; an unmatched path has an empty source
    return {fields[i + 3] for i in range(0, len(fields) - 3, 4) if fields[i]}


def _decoys(name: str) -> list[str]:
    stem = name.rsplit(".", 1)[0]
    others = [
        "a.yaml",
        "b.yml",
        "*.yaml",
        "registry-state.yaml",
        f"x{name}",
        f"{stem}x.yaml",
        f"{stem}.yaml.bak",
        name.upper() if name.upper() != name else name.lower(),
    ]
    return [
        *(f"registry-state/{o}" for o in dict.fromkeys(others) if o != name),
        name,
        f"other/{name}",
        f"registry-state/sub/{name}",
        f"x/registry-state/{name}",
    ]


def _check_rule_matches_exactly_its_file(root: Path, name: str) -> None:
    """`regops codeowners`' rule for a state file `name` matches that file only, among
    decoys beside it and elsewhere, by git's own matcher."""
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "registry-state").mkdir()
    (root / "registry-state" / name).write_text(FRAUD)
    from regops.files.codeowners import patterns, rules
    from regops.files.loader import load_state

    cwd = Path.cwd()
    os.chdir(root)
    try:
        lines, problems = rules(load_state(Path("registry-state")), root)
    finally:
        os.chdir(cwd)
    assert lines == [f"/registry-state/{name} @acme/fraud"], lines
    assert not problems
    assert patterns(root / "registry-state" / name, root) == [f"/registry-state/{name}"]
    rule = lines[0].split(" ")[0]
    candidates = [f"registry-state/{name}", *_decoys(name)]
    assert _matches(root, rule, candidates) == {f"registry-state/{name}"}, rule


@pytest.mark.parametrize(
    "name", ["a.yaml", "Fraud.yml", "x-1_2.3.yaml", "0.yaml", "a..yaml", "A.YAML.yaml"]
)
def test_each_codeowners_rule_matches_its_one_file(name: str, tmp_path: Path) -> None:
    _check_rule_matches_exactly_its_file(tmp_path, name)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=st.from_regex(STATE_FILE_NAME, fullmatch=True).filter(lambda n: len(n) < 60))
def test_any_allowed_name_gets_a_rule_matching_exactly_its_file(
    name: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    _check_rule_matches_exactly_its_file(tmp_path_factory.mktemp("rule"), name)


@settings(max_examples=300, deadline=None)
@given(name=st.text(min_size=1, max_size=40))
def test_a_name_is_allowed_only_if_it_needs_no_escaping(name: str) -> None:
    """Whatever the name: allowed only when made of the documented characters (so nothing
    CODEOWNERS, gitignore, markdown or a terminal reads specially can pass)."""
    allowed = name_problem(name) is None
    plain = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
    assert allowed == (
        set(name) <= plain
        and name[0] not in ".-"
        and name.endswith((".yaml", ".yml"))
        and len(name) <= 255  # a file name of 255 bytes: the longest most filesystems take
    )


def test_codeowners_refuses_a_state_dir_whose_path_needs_escaping(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    Repo(root)
    state = root / "my state#1"
    state.mkdir()
    (state / "fraud.yaml").write_text(FRAUD)
    run = regops(["codeowners", "--state-dir", "my state#1"], root)
    assert run.code == 1, run.out
    assert "cannot write a CODEOWNERS rule for my state#1/fraud.yaml" in run.out
    assert not (root / ".github").exists()


def test_codeowners_refuses_a_fifo_or_symlink_out_as_codeowners(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    Repo(root)
    (root / "registry-state").mkdir()
    (root / "registry-state" / "fraud.yaml").write_text(FRAUD)
    (root / ".github").mkdir()
    os.mkfifo(root / ".github" / "CODEOWNERS")
    run = regops(["codeowners"], root)
    assert run.code == 1, run.out
    assert "it is a FIFO (named pipe), not a regular file; nothing was written" in run.out
    (root / ".github" / "CODEOWNERS").unlink()
    (tmp_path / "victim").write_text("* @acme/maintainers\n")
    (root / ".github" / "CODEOWNERS").symlink_to(tmp_path / "victim")
    run = regops(["codeowners"], root)
    assert run.code == 1, run.out
    assert f"leads to {tmp_path / 'victim'}, outside the repository" in run.out
    assert (tmp_path / "victim").read_text() == "* @acme/maintainers\n"
    (root / ".github" / "CODEOWNERS").unlink()
    (root / ".github").rmdir()
    (tmp_path / "victim-dir").mkdir()
    (root / ".github").symlink_to(tmp_path / "victim-dir")
    run = regops(["codeowners"], root)
    assert run.code == 1, run.out
    assert "outside the repository" in run.out
    assert list((tmp_path / "victim-dir").iterdir()) == []


def test_migrate_refuses_an_alias_bomb_without_expanding_it(tmp_path: Path) -> None:
    """The case that ran out of memory: now the same error as validate, bounded."""
    state = tmp_path / "registry-state"
    state.mkdir()
    for bomb in sorted(HOSTILE.glob("bomb_*.yaml")):
        (state / bomb.name).write_bytes(bomb.read_bytes())
    run = regops(["migrate-to-aliases"], tmp_path)
    assert run.code == 1, run.out
    for bomb in sorted(HOSTILE.glob("bomb_*.yaml")):
        assert f"registry-state/{bomb.name}:" in run.out, run.out
    assert run.out.count("YAML aliases (*name) are not allowed") == 4
    for bomb in sorted(HOSTILE.glob("bomb_*.yaml")):
        assert (state / bomb.name).read_bytes() == bomb.read_bytes()


def test_an_edit_refuses_a_new_model_file_name_outside_the_character_set(tmp_path: Path) -> None:
    state = tmp_path / "registry-state"
    state.mkdir()
    (state / "fraud.yaml").write_text(FRAUD)
    run = regops(
        ["transition", "--model-name", "New", "--version", "1", "--stage", "Staging",
         "--new-model-file", "#new.yaml"],
        tmp_path,
    )  # fmt: skip
    assert run.code == 1, run.out
    assert "state file name '#new.yaml' is not allowed" in run.out
    assert sorted(p.name for p in state.iterdir()) == ["fraud.yaml"]
