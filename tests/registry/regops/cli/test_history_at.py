"""`regops history --at TIME`: real git (a promotion and its revert), real registry stamps."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from regops.cli import cli
from tests.support.repo import ALIAS_STATE, PASSED, Repo, client, tag_version, write_state
from tests.support.servers import make_registry


def regops(uri: str, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--tracking-uri", uri])


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: UP017


class Story:
    """c1 champion+challenger on v1; c2 challenger -> v2; c3 champion -> v2 (PR #7);
    c4 reverts c3, not reconciled yet. Commits are dated in the last hour; each but
    the revert is reconciled (stamped) right away, that is: after all of them."""

    def __init__(self, root: Path, uri: str) -> None:
        self.uri = uri
        self.repo = Repo(root)
        self.repo.clock = int(time.time()) - 3600
        make_registry(uri, {"Fraud": 2})
        tag_version(uri, "1", PASSED)
        tag_version(uri, "2", PASSED)
        client(uri).set_registered_model_alias("Fraud", "challenger", "1")
        state = ALIAS_STATE.replace('"2": {aliases: [challenger]}', '"2": {}').replace(
            '"1": {aliases: [champion]}', '"1": {aliases: [champion, challenger]}'
        )
        write_state(root / "registry-state", state)
        self.c1 = self.step("Initial state", "alice")
        self.edit("2", "challenger")
        self.c2 = self.step("challenger: Fraud v2", "bob")
        self.edit("2", "champion")
        self.c3 = self.step("champion: Fraud v2 (#7)", "carol")
        self.repo.git("revert", "--no-edit", self.c3, who="dave")
        self.c4 = self.repo.head()

    def edit(self, version: str, alias: str) -> None:
        result = regops(self.uri, "alias", "--model-name", "Fraud", "--version", version,
                        "--alias", alias)  # fmt: skip
        assert result.exit_code == 0, result.output

    def step(self, message: str, who: str) -> str:
        sha = self.repo.commit(message, who=who)
        applied = regops(self.uri, "reconcile")
        assert applied.exit_code == 0, applied.output
        return sha

    def committed(self, sha: str) -> int:
        return int(self.repo.git("log", "-1", "--format=%ct", sha))


@pytest.fixture
def story(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_uri: str) -> Story:
    root = tmp_path / "repo"  # the registry (tmp_path/mlflow.db) stays outside it
    root.mkdir()
    monkeypatch.chdir(root)
    return Story(root, sqlite_uri)


def at(story: Story, when: str, *args: str) -> dict:  # type: ignore[type-arg]
    result = regops(story.uri, "history", "--at", when, "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def held(doc: dict) -> dict[str, tuple[str, str, str]]:  # type: ignore[type-arg]
    return {
        f"{h['kind']} {h['name']}": (h["version"], h["short"], h["applied"]["status"])
        for h in doc["holdings"]
    }


def test_between_two_commits(story: Story) -> None:
    doc = at(story, iso(story.committed(story.c2) + 30), "Fraud")
    assert doc["commit"] == story.c2
    # Both were reconciled only after this moment. v1's stamp says when; v2 was
    # re-stamped by c3's reconcile since, so when c2 took effect is not known exactly.
    assert held(doc) == {
        "alias champion": ("1", story.c1[:7], "not_yet"),
        "alias challenger": ("2", story.c2[:7], "unknown"),
    }
    challenger, champion = doc["holdings"]  # by alias name
    assert champion["applied"]["detail"].startswith("not yet applied (applied later, ")
    assert challenger["applied"]["detail"].startswith("applied by ")


def test_now_after_an_unapplied_revert(story: Story) -> None:
    doc = at(story, iso(int(time.time()) + 5))
    assert doc["commit"] == story.c4
    assert (
        held(doc)
        == {
            "alias champion": ("1", story.c4[:7], "pending"),  # the revert is not reconciled
            "alias challenger": ("2", story.c2[:7], "in_effect"),
        }
    )
    challenger = next(h for h in doc["holdings"] if h["name"] == "challenger")
    assert challenger["applied"]["detail"].startswith("in effect (applied before ")
    assert challenger["author"] == "Bob Brown"


def test_the_promotion_with_its_pr_in_text_and_markdown(story: Story) -> None:
    when = iso(story.committed(story.c3) + 1)
    text = regops(story.uri, "history", "--at", when)
    assert text.exit_code == 0, text.output
    assert f"Desired state from commit {story.c3[:7]} (PR #7)" in text.output
    assert f"alias champion         v2     from {story.c3[:7]} PR #7 (Carol Cruz," in text.output
    md = regops(story.uri, "history", "--at", when, "--format", "markdown")
    assert md.exit_code == 0, md.output
    assert "| `Fraud` | alias champion | 2 |" in md.output


def test_before_any_commit_and_bad_times(story: Story) -> None:
    doc = at(story, "2001-01-01")
    assert (doc["commit"], doc["holdings"]) == (None, [])
    bad = regops(story.uri, "history", "--at", "yesterday")
    assert bad.exit_code == 64
    assert "expected an ISO 8601 time" in bad.output


def test_stages_too_from_git_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = Repo(tmp_path)
    monkeypatch.chdir(tmp_path)
    write_state(tmp_path / "registry-state")  # helpers_edit.STATE: stages and aliases
    first = repo.commit("Stages", who="alice")
    path = tmp_path / "registry-state" / "models.yaml"
    path.write_text(path.read_text().replace('"1": {stage: Staging}', '"1": {stage: Production}'))
    repo.commit("Churn v1 to Production (#3)", who="bob")
    result = CliRunner().invoke(
        cli, ["history", "--at", iso(repo.clock + 3600), "--git-only", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    got = {(h["model"], h["kind"], h["name"], h["version"], h["pr"]) for h in doc["holdings"]}
    assert got == {
        ("Churn", "stage", "Production", "1", 3),
        ("Fraud", "stage", "Archived", "1", None),
        ("Fraud", "stage", "Production", "2", None),
        ("Fraud", "stage", "Staging", "3", None),
        ("Fraud", "alias", "champion", "2", None),
        ("Fraud", "alias", "challenger", "3", None),
    }
    assert {h["applied"]["status"] for h in doc["holdings"]} == {"unknown"}
    assert doc["registry"]["read"] is False
    fraud = [h["commit"] for h in doc["holdings"] if h["model"] == "Fraud"]
    assert set(fraud) == {first}
