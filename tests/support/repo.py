"""Builders shared by the state-editing and history tests: state text, line diffs, real git."""

from __future__ import annotations

import difflib
import os
import shutil
import subprocess
import warnings
from pathlib import Path

from click.testing import CliRunner, Result
from mlflow import MlflowClient

from regops.cli import cli

# Deliberately untidy in the ways people write YAML: odd spacing, both quote
# styles, flow and block maps, comments everywhere. Edits must leave all of it be.
STATE = """\
# yaml-language-server: $schema=../schemas/registry-state.schema.json
#
# Desired state of the fraud models.
apiVersion: regops/v1
policy:
  unlisted_versions: ignore   # versions not listed here are left alone
  drift:   correct              # out-of-band changes are reverted
  stages:
    Production:
      max_versions: 1
      require_from: [ Staging, Production ]
    Staging: {}
models:
  # Fraud scores, retrained weekly.
  Fraud:
    description: 'Fraud scores: gradient boosting'
    versions:
      "1": {stage: Archived}        # the first one
      "2": {stage: Production, aliases: [ champion ]}
      '3': {stage: Staging, aliases: [challenger], run_id: abc123}

      "9":
        stage: None   # block style, kept as is
  # Churn has one version.
  Churn:
    versions:
      "1": {stage: Staging}
"""

# regops.yaml with two environments, their URIs from REGOPS_T_DEV_URI / REGOPS_T_PROD_URI.
ENVS_CONFIG = """\
apiVersion: regops/v1
environments:
  dev:
    tracking_uri: ${REGOPS_T_DEV_URI}
    state_dir: registry-state/dev
  prod:
    tracking_uri: ${REGOPS_T_PROD_URI}
    state_dir: registry-state/prod
"""


# Alias era: champion (protected) and challenger, gated by tags; Fraud v1 and v2 hold them.
ALIAS_STATE = """\
# yaml-language-server: $schema=../schemas/registry-state.schema.json
apiVersion: regops/v1
policy:
  use_stages: false            # alias-only
  aliases:
    champion:
      require_tags: {validation_status: passed, smoke_test_status: passed}
      require_from: [challenger]
      protected: true
    challenger:
      require_tags: {validation_status: passed}
models:
  Fraud:
    owners: ["@acme/ml-platform", "@alice"]
    versions:
      "1": {aliases: [champion]}
      "2": {aliases: [challenger]}
"""

PASSED = {"validation_status": "passed", "smoke_test_status": "passed"}


EMPTY_STATE = """\
# yaml-language-server: $schema=../schemas/registry-state.schema.json
apiVersion: regops/v1
models: {}
"""


def write_state(state_dir: Path, text: str = STATE, name: str = "models.yaml") -> Path:
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / name
    path.write_bytes(text.encode("utf-8"))
    return path


def line_diff(before: str, after: str) -> tuple[list[str], list[str]]:
    """(removed lines, added lines) between two texts; everything else is identical."""
    removed: list[str] = []
    added: list[str] = []
    old, new = before.split("\n"), after.split("\n")
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new).get_opcodes():
        if tag != "equal":
            removed += old[i1:i2]
            added += new[j1:j2]
    return removed, added


def regops(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


# ---- git, for real ---------------------------------------------------------------------------

PEOPLE = {
    "alice": ("Alice Adams", "alice@example.com"),
    "bob": ("Bob Brown", "bob@example.com"),
    "carol": ("Carol Cruz", "carol@example.com"),
    "dave": ("Dave Diaz", "dave@example.com"),
    "erin": ("Erin Evans", "erin@example.com"),
}


class Repo:
    """A scratch git repository; each commit is made by a named person at a fixed time."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.clock = 1_700_000_000
        root.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main", who="alice")

    def git(self, *args: str, who: str = "alice") -> str:
        name, email = PEOPLE[who]
        self.clock += 60
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email,
            "GIT_AUTHOR_DATE": f"{self.clock} +0000",
            "GIT_COMMITTER_DATE": f"{self.clock} +0000",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        out = subprocess.run(
            ["git", "-c", "commit.gpgsign=false", *args],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()

    def commit(self, message: str, who: str) -> str:
        self.git("add", "-A", who=who)
        self.git("commit", "-q", "-m", message, who=who)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")


def client(uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def tag_version(uri: str, version: str, tags: dict[str, str], name: str = "Fraud") -> None:
    for key, value in tags.items():
        client(uri).set_model_version_tag(name, version, key, value)


def live_stage(uri: str, name: str, version: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return str(client(uri).get_model_version(name, version).current_stage)


def copy_registry(template: Path, dest_dir: Path) -> str:
    """A private copy of a prepared sqlite registry: creating one costs seconds, copying nothing."""
    dest = dest_dir / "mlflow.db"
    shutil.copyfile(template, dest)
    return f"sqlite:///{dest}"
