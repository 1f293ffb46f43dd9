"""The core on the lowest and highest Python we promise (3.10 and 3.13).

`nox -s core` makes one venv per interpreter, installs the reconciler alone
(`pip install -e .`, the light core: no training stack) plus pytest and hypothesis,
and runs the unit and sqlite integration tests that need nothing more. The
interpreters come from pyenv (`pyenv root`/versions/3.10.13, 3.13.0); under CI=true
a missing one is an error, not a skip (nox's --error-on-missing-interpreters default).

`make test` runs it; `make test-pythons` runs it alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import nox

PYTHONS = ("3.10.13", "3.13.0")
# Tests that need only the core install (mlflow-skinny + sqlite); the `server` ones
# start a full `mlflow server`, which the core does not install. A path here that does
# not exist fails the session naming it (a moved test file must be moved here too).
CORE_TESTS = (
    "tests/unit/regops/files/test_loader.py",
    "tests/unit/regops/files/test_loader_fast_path.py",
    "tests/unit/regops/core/test_planner.py",
    "tests/registry/regops/files/test_hostile.py",
    "tests/registry/regops/files/test_edit.py",
    "tests/registry/regops/cli/test_history.py",
    "tests/registry/regops/adapters/mlflow/test_executor.py",
    "tests/registry/regops/cli/test_cli_files.py",
    "tests/registry/regops/core/test_freeze.py",  # parses UTC instants: differs across Pythons
    "tests/unit/regops/core/test_webhooks.py",  # the relay's signature, replay and coalescing logic
    "tests/unit/regops/core/test_notify.py",
)

HERE = Path(__file__).resolve().parent

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["core"]


def _pyenv_root() -> Path:
    exe = shutil.which("pyenv")
    if exe:
        out = subprocess.run([exe, "root"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            return Path(out.stdout.strip())
    return Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))


def _interpreter(version: str) -> str:
    """The pyenv interpreter's absolute path (nox reports it missing if it is not there)."""
    short = ".".join(version.split(".")[:2])
    return str(_pyenv_root() / "versions" / version / "bin" / f"python{short}")


def missing_tests(paths: Sequence[str], root: Path = HERE) -> list[str]:
    """The test paths (relative to `root`) that are not files, in the order given."""
    return [p for p in paths if not (root / p).is_file()]


@nox.session(python=[_interpreter(v) for v in PYTHONS])
def core(session: nox.Session) -> None:
    """The core install and its tests on one interpreter."""
    missing = missing_tests(CORE_TESTS)
    if missing:  # before any install: a stale list fails at once
        session.error(
            "noxfile.py CORE_TESTS names test files that do not exist: " + ", ".join(missing)
        )
    session.install("-q", "-e", ".", "pytest>=8", "hypothesis>=6.100")
    # The core install must not have pulled in the training stack.
    session.run(
        "python",
        "-c",
        "import importlib.util as u, sys; "
        "heavy = [m for m in ('sklearn', 'pandas', 'xgboost', 'accident_prediction') "
        "if u.find_spec(m)]; "
        "sys.exit(f'training stack in the core install: {heavy}' if heavy else 0)",
    )
    session.run(
        "python",
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-m",
        "not server and not slow and not e2e",
        *session.posargs,
        *CORE_TESTS,
    )
