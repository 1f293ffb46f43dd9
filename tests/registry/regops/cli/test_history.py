"""History: real git (several authors, a merged PR, a squash, a revert) joined with real stamps."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from regops.adapters.history_git import parse_state
from regops.core.audit import ACTOR_TAG, APPLIED_AT_TAG, COMMIT_TAG
from regops.core.timeline import Change, diff_states, pr_number
from tests.support.repo import Repo, client, copy_registry, live_stage, regops
from tests.support.servers import make_registry

STATE = """\
apiVersion: regops/v1
policy:
  stages:
    Production: {max_versions: 1}
models:
  Fraud:
    versions:
      "1": {stage: Production, aliases: [champion]}
      "2": {stage: Staging}
      "3": {stage: None}
  # Churn is kept apart from Fraud, so the PRs below touch separate hunks.
  Churn:
    versions:
      "1": {stage: None}
"""


def edit(*args: str) -> None:
    result = regops(*args)
    assert result.exit_code == 0, result.output


class Story:
    """alice declares the state; bob's PR #12 (merged by carol) promotes v2; dave's squashed
    PR #13 stages Churn v1; erin reverts PR #12."""

    def __init__(self, repo: Repo, uri: str) -> None:
        self.repo, self.uri = repo, uri
        (repo.root / "registry-state").mkdir()
        (repo.root / "registry-state" / "state.yaml").write_text(STATE)
        self.initial = repo.commit("Declare Fraud and Churn", who="alice")
        repo.git("checkout", "-q", "-b", "bob/promote", who="bob")
        edit("promote", "--model-name", "Fraud", "--stage", "Production", "--version", "2")
        edit("alias", "--model-name", "Fraud", "--version", "2", "--alias", "champion")
        self.branch = repo.commit("Promote Fraud v2 to Production", who="bob")
        repo.git("checkout", "-q", "main", who="carol")
        repo.git(
            "merge", "--no-ff", "-q", "-m", "Merge pull request #12 from bob/promote",
            "bob/promote", who="carol",
        )  # fmt: skip
        self.merge = repo.head()

    def squash_and_revert(self) -> None:
        edit("transition", "--model-name", "Churn", "--version", "1", "--stage", "Staging")
        self.squash = self.repo.commit("Stage Churn v1 (#13)", who="dave")
        self.repo.git("revert", "-m", "1", "--no-edit", self.merge, who="erin")
        self.revert = self.repo.head()

    def reconcile(self) -> None:
        result = regops("reconcile", "--tracking-uri", self.uri)
        assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def registry_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("registry") / "mlflow.db"
    make_registry(f"sqlite:///{db}", {"Fraud": 3, "Churn": 1})
    return db


@pytest.fixture
def story(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry_template: Path) -> Story:
    repo = Repo(tmp_path / "repo")
    monkeypatch.chdir(repo.root)
    monkeypatch.setenv("REGOPS_ACTOR", "ci-bot")
    return Story(repo, copy_registry(registry_template, tmp_path))


def history_json(*args: str) -> dict:  # type: ignore[type-arg]
    result = regops("history", "--format", "json", *args)
    assert result.exit_code == 0, result.output
    doc: dict = json.loads(result.stdout)  # type: ignore[type-arg]
    assert doc["format_version"] == "1"
    return doc


def changes(entry: dict) -> list[tuple[str, str, str | None, str | None]]:  # type: ignore[type-arg]
    return [
        (c["model"], c["alias"] or f"v{c['version']}", c["before"], c["after"])
        for c in entry["changes"]
    ]


# ---- the git side ----------------------------------------------------------------------------


def test_each_commit_with_its_author_pr_and_changes(story: Story) -> None:
    story.squash_and_revert()
    doc = history_json("--git-only")
    assert doc["registry"] == {"read": False, "uri": None, "error": "not requested"}
    entries = doc["entries"]
    assert [e["commit"] for e in entries] == [
        story.revert,
        story.squash,
        story.merge,
        story.initial,
    ]
    revert, squash, merge, initial = entries
    assert (revert["author"]["name"], revert["pr"], revert["reverts"]) == (
        "Erin Evans",
        None,
        story.merge,
    )
    assert changes(revert) == [
        ("Fraud", "v1", "Archived", "Production"),
        ("Fraud", "v2", "Production", "Staging"),
        ("Fraud", "champion", "2", "1"),
    ]
    assert (squash["author"]["name"], squash["pr"]) == ("Dave Diaz", 13)
    assert changes(squash) == [("Churn", "v1", "None", "Staging")]
    assert (merge["author"]["name"], merge["pr"]) == ("Carol Cruz", 12)
    assert merge["merged_commits"] == [story.branch]
    assert merge["merged_authors"] == ["Bob Brown <bob@example.com>"]
    assert changes(merge) == [
        ("Fraud", "v1", "Production", "Archived"),
        ("Fraud", "v2", "Staging", "Production"),
        ("Fraud", "champion", "1", "2"),
    ]
    assert initial["author"]["name"] == "Alice Adams"
    assert ("Fraud", "v1", None, "Production") in changes(initial)


def test_filter_by_model_and_version(story: Story) -> None:
    story.squash_and_revert()
    doc = history_json("Fraud", "--version", "2", "--git-only")
    assert [e["commit"] for e in doc["entries"]] == [story.revert, story.merge, story.initial]
    assert all(
        c["version"] == "2" or c["before"] == "2" for e in doc["entries"] for c in e["changes"]
    )
    assert history_json("Churn", "--git-only")["entries"][0]["pr"] == 13


def test_text_answers_who_when_which_pr(story: Story) -> None:
    result = regops("history", "Fraud", "--version", "2", "--git-only")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Registry: not read (not requested)" in out
    assert f"{story.merge[:7]}  " in out
    assert "PR #12  Carol Cruz <carol@example.com>; authored by Bob Brown <bob@example.com>" in out
    assert "Fraud v2 stage: Staging -> Production" in out


# ---- joined with the registry -----------------------------------------------------------------


def test_reconciled_changes_show_when_and_by_whom(story: Story) -> None:
    story.reconcile()  # applies the merged PR #12
    assert live_stage(story.uri, "Fraud", "2") == "Production"
    story.squash_and_revert()  # not reconciled yet
    doc = history_json("Fraud", "--tracking-uri", story.uri)
    assert doc["registry"]["read"] is True
    revert, merge, initial = doc["entries"]
    assert {c["applied"]["status"] for c in revert["changes"]} == {"pending"}
    for c in merge["changes"]:
        applied = c["applied"]
        assert applied["status"] == "applied", c
        assert applied["actor"] == "ci-bot"
        assert (
            applied["commit"] == story.branch
        )  # reconcile stamps the commit that last touched the file
        assert applied["at"].endswith("Z")
    status = {(c["alias"] or c["version"]): c["applied"]["status"] for c in initial["changes"]}
    # v1 and v2 were re-stamped by PR #12's reconcile; v3 never needed a write.
    assert status == {
        "1": "superseded",
        "2": "superseded",
        "3": "in_effect",
        "champion": "superseded",
    }

    story.reconcile()  # the rollback
    assert live_stage(story.uri, "Fraud", "1") == "Production"
    doc = history_json("--tracking-uri", story.uri)
    revert, squash, merge, _initial = doc["entries"]
    assert {c["applied"]["status"] for c in revert["changes"]} == {"applied"}
    assert {c["applied"]["status"] for c in merge["changes"]} == {"superseded"}
    # Churn v1 went to Staging in the same reconcile, stamped with the newer commit.
    assert [c["applied"]["status"] for c in squash["changes"]] == ["superseded"]
    text = regops("history", "Fraud", "--version", "2", "--tracking-uri", story.uri).output
    assert "applied " in text
    assert "by ci-bot" in text


def test_stamps_set_by_hand_are_read(story: Story) -> None:
    """Stamps from any writer count, full or short sha, with the actor and time they carry."""
    c = client(story.uri)
    c.set_model_version_tag("Fraud", "2", COMMIT_TAG, story.merge[:12])
    c.set_model_version_tag("Fraud", "2", APPLIED_AT_TAG, "2026-01-02T03:04:05Z")
    c.set_model_version_tag("Fraud", "2", ACTOR_TAG, "octocat")
    result = regops("history", "Fraud", "--version", "2", "--tracking-uri", story.uri)
    assert result.exit_code == 0, result.output
    line = next(
        x for x in result.output.split("\n") if "Fraud v2 stage: Staging -> Production" in x
    )
    assert line.rstrip().endswith("applied 2026-01-02T03:04:05Z by octocat")


def test_registry_unreachable_shows_the_git_side_and_says_so(story: Story, dead_port: int) -> None:
    uri = f"http://127.0.0.1:{dead_port}"
    result = regops("history", "Fraud", "--tracking-uri", uri)
    assert result.exit_code == 0, result.output
    assert "Registry: not read (cannot reach the MLflow registry at" in result.output
    assert "PR #12" in result.output


def test_outside_a_git_repository_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "registry-state").mkdir()
    result = regops("history", "--git-only")
    assert result.exit_code == 1
    assert "not in a git repository" in result.output


def test_markdown(story: Story) -> None:
    result = regops("history", "--format", "markdown", "--git-only")
    assert result.exit_code == 0, result.output
    assert "| Commit | Date | Author | PR | Change | Applied |" in result.output
    assert "| #12 | Fraud v2 stage: Staging -> Production |" in result.output


# ---- the pure parts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "pr"),
    [
        ("Merge pull request #12 from bob/promote", 12),
        ("Promote Fraud v2 (#13)", 13),
        ('Revert "Promote Fraud v2 (#13)" (#14)', 14),
        ("Fix #15 in the docs", None),
        ("Merge branch 'main' into bob/promote", None),
    ],
    ids=["merge", "squash", "reverted-squash", "mention", "plain-merge"],
)
def test_pr_number(subject: str, pr: int | None) -> None:
    assert pr_number(subject) == pr


V = dict[str, tuple[str | None, tuple[str, ...]]]


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (
            {"1": ("Staging", ())},
            {"1": ("Production", ())},
            [("stage", "1", "Staging", "Production", None)],
        ),
        ({}, {"1": ("Staging", ())}, [("stage", "1", None, "Staging", None)]),
        ({"1": ("Staging", ())}, {}, [("stage", "1", "Staging", None, None)]),
        ({"1": (None, ("a",))}, {"1": (None, ())}, [("alias", "1", "1", None, "a")]),
        ({"1": (None, ())}, {"1": (None, ("a",))}, [("alias", "1", None, "1", "a")]),
        ({"1": (None, ("a",)), "2": (None, ())}, {"1": (None, ()), "2": (None, ("a",))},
         [("alias", "2", "1", "2", "a")]),
        ({"1": ("Staging", ("a",))}, {"1": ("Staging", ("a",))}, []),
    ],
    ids=["stage", "declared", "undeclared", "alias-removed", "alias-set", "alias-moved", "same"],
)  # fmt: skip
def test_diff_states(before: V, after: V, expected: list[tuple[str, ...]]) -> None:
    got = diff_states({"M": before} if before else {}, {"M": after} if after else {})
    assert [(c.kind, c.version, c.before, c.after, c.alias) for c in got] == expected
    assert all(isinstance(c, Change) and c.model == "M" for c in got)


def test_parse_state_is_lenient_and_refuses_aliases() -> None:
    assert parse_state(b"models: {M: {versions: {1: {stage: Staging}}}}") == {
        "M": {"1": ("Staging", ())}
    }
    assert parse_state(b"apiVersion: [") is None
    assert parse_state(b"a: &x [1]\nb: *x\n") is None
    assert parse_state(b"- just a list") == {}


# ---- anything git can hold ----------------------------------------------------------------------

HOSTILE_STATES = {
    # YAML 1.1 would read these names as True, None and 15
    "names YAML types": "apiVersion: regops/v1\nmodels:\n"
    '  "on": {versions: {"1": {stage: Staging}}}\n'
    "  null: {versions: {'1': {stage: Production}}}\n  017: {versions: {'2': {stage: None}}}\n",
    "an invalid date": "apiVersion: regops/v1\nmodels:\n  Fraud:\n    versions:\n"
    '      "1": {stage: Archived, run_id: 2024-13-45}\n',
    "a bad explicit tag": "apiVersion: regops/v1\nmodels:\n  Fraud:\n    versions:\n"
    '      "1": {stage: !!int abc}\n',
    "very deep nesting": "apiVersion: regops/v1\nmodels: " + "[" * 100_000 + "]" * 100_000 + "\n",
    "a YAML bomb": "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n",
    "not UTF-8": "apiVersion: regops/v1\nmodels: {}\n# caf\xe9\n",
}


def _commit_bytes(repo: Repo, raw: bytes, message: bytes, who: str = "alice") -> str:
    (repo.root / "registry-state" / "state.yaml").write_bytes(raw)
    repo.git("add", "-A", who=who)
    msg = repo.root.parent / "msg.txt"
    msg.write_bytes(message)
    repo.git("commit", "-q", "-F", str(msg), who=who)
    return repo.head()


def _commit_with_invalid_date(repo: Repo) -> str:
    """A commit object whose author and committer dates git itself cannot parse."""
    tree = repo.git("write-tree")
    parent = repo.head()
    body = (
        f"tree {tree}\nparent {parent}\n"
        "author Mallory <m@example.com> 99999999999999999999 +9999\n"
        "committer Mallory <m@example.com> not-a-date\n\nA commit with an invalid date\n"
    ).encode()
    sha = subprocess.run(
        ["git", "hash-object", "-t", "commit", "-w", "--literally", "--stdin"],
        cwd=repo.root, input=body, capture_output=True, check=True,
    ).stdout.decode().strip()  # fmt: skip
    repo.git("update-ref", "refs/heads/main", sha)
    repo.git("reset", "-q", "--hard", sha)
    return sha


def test_history_never_crashes_on_what_git_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = Repo(tmp_path / "repo")
    monkeypatch.chdir(repo.root)
    (repo.root / "registry-state").mkdir()
    (repo.root / "registry-state" / "state.yaml").write_text(STATE)
    repo.commit("Declare Fraud", who="alice")
    for i, (what, text) in enumerate(HOSTILE_STATES.items()):
        raw = text.encode("latin-1") if what == "not UTF-8" else text.encode()
        # Separators and control characters a message may hold, and bytes that are not UTF-8.
        message = f"Commit {what}\x1f\x1e\x00end"[: -len("\x00end")].encode() + b" \xff\x1b[31m"
        _commit_bytes(repo, raw, message + f"\n\nbody {i}\x1f\n".encode(), who="bob")
    (repo.root / "registry-state" / "state.yaml").write_text(STATE)
    repo.git("add", "-A")
    _commit_with_invalid_date(repo)

    for fmt in ("text", "markdown", "json"):
        result = regops("history", "--git-only", "--format", fmt)
        assert result.exit_code == 0, result.output
        assert "Traceback" not in result.output
        assert "\x1b" not in result.output  # escape sequences are shown, not obeyed
    doc = history_json("--git-only")
    subjects = [e["subject"] for e in doc["entries"]]
    assert subjects[0] == "A commit with an invalid date"
    assert len(doc["entries"]) == len(HOSTILE_STATES) + 2
    # Names YAML 1.1 would type are kept as written, in history as everywhere.
    names = next(e for e in doc["entries"] if e["subject"].startswith("Commit names YAML types"))
    assert {c["model"] for c in names["changes"]} >= {"on", "null", "017"}
    for what in ("very deep nesting", "a YAML bomb", "not UTF-8"):
        entry = next(e for e in doc["entries"] if e["subject"].startswith(f"Commit {what}"))
        assert "unreadable at this commit: state.yaml" in entry["note"], entry
    # The invalid date and the bad tag are read as their text, not refused: history shows them.
    dated = next(e for e in doc["entries"] if e["subject"].startswith("Commit an invalid date"))
    assert ("Fraud", "v1", None, "Archived") in changes(dated)


def test_edit_commands_and_history_agree_on_names_yaml_would_type(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = Repo(tmp_path / "repo")
    monkeypatch.chdir(repo.root)
    (repo.root / "registry-state").mkdir()
    (repo.root / "registry-state" / "state.yaml").write_text(HOSTILE_STATES["names YAML types"])
    repo.commit("Declare models named on, null and 017", who="alice")
    for name in ("on", "null", "017"):
        edit("transition", "--model-name", name, "--version", "1", "--stage", "Archived")
    text = (repo.root / "registry-state" / "state.yaml").read_text()
    assert text.splitlines()[2:] == [  # the models edited in place, none added
        '  "on": {versions: {"1": {stage: Archived}}}',
        "  null: {versions: {'1': {stage: Archived}}}",
        "  017: {versions: {'1': {stage: Archived}, '2': {stage: None}}}",
    ]
    repo.commit("Archive them", who="bob")
    result = regops("validate")
    assert result.exit_code == 0, result.output
    doc = history_json("--git-only")
    assert changes(doc["entries"][0]) == [
        ("017", "v1", None, "Archived"),
        ("null", "v1", "Production", "Archived"),
        ("on", "v1", "Staging", "Archived"),
    ]


def test_shallow_clone_says_history_is_cut_short(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = Repo(tmp_path / "origin")
    (repo.root / "registry-state").mkdir()
    (repo.root / "registry-state" / "state.yaml").write_text(STATE)
    repo.commit("Declare Fraud", who="alice")
    monkeypatch.chdir(repo.root)
    edit("promote", "--model-name", "Fraud", "--stage", "Production", "--version", "2")
    repo.commit("Promote Fraud v2", who="bob")
    edit("transition", "--model-name", "Fraud", "--version", "3", "--stage", "Staging")
    repo.commit("Stage Fraud v3", who="carol")
    clone = tmp_path / "clone"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "2", f"file://{repo.root}", str(clone)], check=True
    )
    monkeypatch.chdir(clone)
    result = regops("history", "--git-only")
    assert result.exit_code == 0, result.output
    assert "history is cut short" in result.output
    assert "git fetch --unshallow" in result.output
    assert "fetch-depth: 0" in result.output
    doc = history_json("--git-only")
    assert "git fetch --unshallow" in doc["truncated"]
    newest, boundary = doc["entries"]
    assert changes(newest) == [("Fraud", "v3", "None", "Staging")]
    # The oldest commit here is not shown as declaring everything from nothing.
    assert boundary["changes"] == []
    assert "not in this clone" in boundary["note"]
    # `--at` replays what is here, so it says so too: v2's promotion is beyond the cut.
    at = regops("history", "--git-only", "--at", "2999-01-01")
    assert at.exit_code == 0, at.output
    assert "history is cut short" in at.output
    at_doc = json.loads(
        regops("history", "--git-only", "--at", "2999-01-01", "--format", "json").stdout
    )
    assert "git fetch --unshallow" in at_doc["truncated"]
    # A full clone says nothing of the kind.
    monkeypatch.chdir(repo.root)
    assert history_json("--git-only")["truncated"] is None
    full_at = regops("history", "--git-only", "--at", "2999-01-01", "--format", "json").stdout
    assert json.loads(full_at)["truncated"] is None
