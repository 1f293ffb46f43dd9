"""Who applied what, from which commit: the audit stamps written on each changed version."""

from __future__ import annotations

import getpass
import os
from datetime import datetime, timezone
from pathlib import Path

from regops import gitio

COMMIT_TAG = "regops.commit"
APPLIED_AT_TAG = "regops.applied_at"
ACTOR_TAG = "regops.actor"
STATE_FILE_TAG = "regops.state_file"


def _git(args: list[str], cwd: Path) -> str | None:
    """stdout of a git command (through the one git adapter), or None."""
    out = gitio.text(args, cwd, timeout=10)
    return (out or "").strip() or None


def commit_of(state_file: Path) -> str:
    """The commit whose version of `state_file` is being applied.

    The last commit that touched the file, marked `+uncommitted` when the working
    copy differs from it; in CI without history, the workflow's commit.
    """
    cwd = state_file.parent if state_file.parent.is_dir() else Path.cwd()
    sha = _git(["log", "-1", "--format=%H", "--", state_file.name], cwd)
    if sha is None:
        return os.environ.get("GITHUB_SHA", "unknown")
    dirty = _git(["status", "--porcelain", "--", state_file.name], cwd)
    return f"{sha}+uncommitted" if dirty else sha


def actor() -> str:
    """Who is applying: the CI actor, else REGOPS_ACTOR, else the git user, else the OS user."""
    for var in ("REGOPS_ACTOR", "GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILD_REQUESTEDFOR"):
        if os.environ.get(var):
            return os.environ[var]
    name = _git(["config", "user.name"], Path.cwd())
    email = _git(["config", "user.email"], Path.cwd())
    if name and email:
        return f"{name} <{email}>"
    try:
        return name or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def stamp_tags(state_file: str, *, commit: str, who: str, at: str) -> dict[str, str]:
    return {
        COMMIT_TAG: commit,
        APPLIED_AT_TAG: at,
        ACTOR_TAG: who,
        STATE_FILE_TAG: state_file,
    }
