"""This checkout as a user gets it: its files copied out, to build wheels or to serve as
a hooks repository (tests/e2e/test_wheels.py, tests/e2e/test_precommit_hooks.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.support.paths import ROOT


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a tool that must not see this checkout's src on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1", **extra}


def run(*args: str | Path, cwd: Path | None = None, timeout: float = 600) -> str:
    out = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env=clean_env(),
    )  # fmt: skip
    assert out.returncode == 0, f"{args}\n{out.stdout}\n{out.stderr}"
    return out.stdout


def copy_checkout(dest: Path) -> None:
    """The checkout's files (tracked and new, not ignored), symlinks kept as symlinks: a
    stale build/ or egg-info of the checkout never comes along."""
    listed = run("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=ROOT)
    for rel in filter(None, listed.split("\0")):
        src = ROOT / rel
        if not src.is_symlink() and not src.exists():
            continue  # deleted in the working tree, not yet committed
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            target.symlink_to(src.readlink())
        else:
            shutil.copy2(src, target)
