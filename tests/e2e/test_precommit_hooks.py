"""The hooks of .pre-commit-hooks.yaml under the real `pre-commit` tool.

A copy of this checkout, committed in a scratch git repository, is the hooks repository
(as github.com/regops/regops is for a user); a second repository, set up by
`regops init`, points its .pre-commit-config.yaml at it. pre-commit builds the hook's
venv itself (`pip install` of the hooks repository: regops and its dependencies from the
package index, about 2 minutes here, once per test module). Then a commit of a bad state
file is refused with FILE:LINE, and a model's new owner not yet in CODEOWNERS too.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.packaging import clean_env, copy_checkout
from tests.support.repo import Repo, regops

pytestmark = pytest.mark.e2e

PRE_COMMIT = Path(sys.executable).parent / "pre-commit"
GOOD = """\
apiVersion: regops/v1
models:
  Fraud:
    versions:
      "1": {aliases: [champion]}
"""
BAD = """\
apiVersion: regops/v1
models:
  Fraud:
    versions:
      "1": {aliases: [latest]}
"""
OWNED = """\
apiVersion: regops/v1
models:
  Fraud:
    owners: ["@acme/fraud"]
    versions:
      "1": {aliases: [champion]}
"""


@pytest.fixture(scope="module")
def hooks_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """This checkout as a hooks repository: (its path, the commit to pin as `rev`)."""
    repo = Repo(tmp_path_factory.mktemp("hooks") / "regops")
    copy_checkout(repo.root)
    return repo.root, repo.commit("regops, as published", who="alice")


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")  # the hook venv, built once


def commit(repo: Repo, home: Path, message: str) -> tuple[int, str]:
    """`git commit` in `repo` with pre-commit's git hook installed: what a user runs.
    (exit code, all it printed: the hooks write to git's stderr)"""
    repo.git("add", "-A")
    out = subprocess.run(
        ["git", "-c", "commit.gpgsign=false", "commit", "-q", "-m", message],
        cwd=repo.root, capture_output=True, text=True, timeout=900,
        env=clean_env(
            PRE_COMMIT_HOME=str(home), GIT_AUTHOR_NAME="Bob", GIT_AUTHOR_EMAIL="bob@example.com",
            GIT_COMMITTER_NAME="Bob", GIT_COMMITTER_EMAIL="bob@example.com",
            GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1",
        ),
    )  # fmt: skip
    return out.returncode, out.stdout + out.stderr


def test_a_bad_state_file_is_refused_at_commit(
    hooks_repo: tuple[Path, str],
    pre_commit_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hooks, rev = hooks_repo
    repo = Repo(tmp_path / "models")
    monkeypatch.chdir(repo.root)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    init = regops("init", "--tracking-uri", f"sqlite:///{tmp_path / 'none.db'}")
    assert init.exit_code == 0, init.output
    config = repo.root / ".pre-commit-config.yaml"
    text = config.read_text()
    assert "- id: regops-validate" in text
    assert "- id: regops-codeowners" in text
    # Point the config that init wrote at the local copy, pinned to its commit.
    text = text.replace("https://github.com/regops/regops", str(hooks))
    config.write_text(re.sub(r"rev: \S+", f"rev: {rev}", text))
    assert f"rev: {rev}" in config.read_text()
    (repo.root / "registry-state" / "models.yaml").write_text(GOOD)
    subprocess.run(
        [PRE_COMMIT, "install"], cwd=repo.root, check=True, capture_output=True,
        env=clean_env(PRE_COMMIT_HOME=str(pre_commit_home)),
    )  # fmt: skip

    good_code, good = commit(repo, pre_commit_home, "Adopt regops")
    assert good_code == 0, good
    head = repo.head()
    assert "regops validate (state files)" in good
    assert "Passed" in good

    (repo.root / "registry-state" / "models.yaml").write_text(BAD)
    bad_code, bad = commit(repo, pre_commit_home, "Serve the latest")
    assert bad_code == 1, bad
    assert "registry-state/models.yaml:5: alias 'latest' is reserved" in bad, bad
    assert repo.head() == head  # refused: nothing committed

    # An owner named in the state but not in CODEOWNERS: the second hook refuses it.
    (repo.root / "registry-state" / "models.yaml").write_text(OWNED)
    stale_code, stale = commit(repo, pre_commit_home, "Fraud belongs to the fraud team")
    assert stale_code == 1, stale
    assert ".github/CODEOWNERS is out of date: run `regops codeowners`" in stale
    assert repo.head() == head
    assert regops("codeowners").exit_code == 0
    fixed_code, fixed = commit(repo, pre_commit_home, "Fraud belongs to the fraud team")
    assert fixed_code == 0, fixed
    assert repo.head() != head
