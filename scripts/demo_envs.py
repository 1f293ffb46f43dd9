"""`make demo-envs`: one state repository, two environments, a model promoted across them.

Plays, in a scratch git repository (.demo-envs/) with two embedded registries
(sqlite:///dev.db and sqlite:///prod.db, no server): declare the environments in
regops.yaml -> train in dev -> evidence -> propose to dev's Staging and reconcile dev
-> promote dev's version to prod by one state edit (`dev@1`) -> `plan --all-envs`
(the PR comment) -> reconcile prod (copy with artifacts and lineage, then stage and
alias) -> reconcile again (nothing: the copy is found by its lineage) -> predict
from prod -> history with the lineage. Every step is a command a person would type.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRATCH = ROOT / ".demo-envs"
BIN = Path(sys.executable).parent
BOLD, DIM, RESET = ("\033[1m", "\033[2m", "\033[0m") if sys.stdout.isatty() else ("", "", "")
XGB = "Accident_Prediction_XGBoost"

ENV = {
    **os.environ,
    "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    # What CI would take from each GitHub environment's secrets; here two local files.
    "MLFLOW_DEV_TRACKING_URI": "sqlite:///dev.db",
    "MLFLOW_PROD_TRACKING_URI": "sqlite:///prod.db",
    "PYTHONWARNINGS": "ignore",
    "GIT_CONFIG_NOSYSTEM": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}
for var in ("MLFLOW_TRACKING_URI", "DAGSHUB_REPO", "REGOPS_CONFIG"):
    ENV.pop(var, None)
DEV = {"MLFLOW_TRACKING_URI": "sqlite:///dev.db"}  # for the workload's own CLI
PROD = {"MLFLOW_TRACKING_URI": "sqlite:///prod.db"}

CONFIG = """\
apiVersion: regops/v1
environments:
  dev:
    tracking_uri: ${MLFLOW_DEV_TRACKING_URI}    # read from the environment, never written
    state_dir: registry-state/dev
  prod:
    tracking_uri: ${MLFLOW_PROD_TRACKING_URI}
    state_dir: registry-state/prod
"""
DEV_STATE = """\
apiVersion: regops/v1
policy:
  stages:
    Staging:
      require_tags: {smoke_test_status: passed}
models: {}
"""
PROD_STATE = """\
apiVersion: regops/v1
policy:
  stages:
    Production:
      max_versions: 1
      require_from: [Staging, Production]      # dev's Staging counts for a copy
      require_tags: {validation_status: passed, smoke_test_status: passed}
models:
  %s:
    versions:
      dev@1: {stage: Production, aliases: [champion]}   # the copy of dev's version 1
"""


def banner(text: str) -> None:
    print(f"\n{BOLD}== {text} =={RESET}", flush=True)


def run(cmd: str, *, ok: tuple[int, ...] = (0,), env: dict[str, str] | None = None) -> str:
    shown = " ".join(f"{k}={v}" for k, v in (env or {}).items())
    print(f"{DIM}$ {shown + ' ' if shown else ''}{cmd}{RESET}", flush=True)
    proc = subprocess.run(
        shlex.split(cmd), cwd=SCRATCH, env={**ENV, **(env or {})}, capture_output=True, text=True
    )
    out = "\n".join(
        line
        for line in (proc.stdout + proc.stderr).rstrip().splitlines()
        if " INFO mlflow" not in line  # sqlite schema creation chatter
    )
    if out:
        print(out, flush=True)
    if proc.returncode not in ok:
        print(f"\n`{cmd}` exited {proc.returncode}; the demo stops here.", file=sys.stderr)
        sys.exit(1)
    return proc.stdout


def write(rel: str, text: str) -> None:
    path = SCRATCH / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"{DIM}# {rel}{RESET}\n{text.rstrip()}", flush=True)


def commit(message: str) -> None:
    run("git add regops.yaml registry-state")
    run(f"git commit -q -m {shlex.quote(message)}")


def main() -> int:
    if SCRATCH.exists():
        shutil.rmtree(SCRATCH)
    SCRATCH.mkdir()
    for item in ("config", "examples"):
        shutil.copytree(ROOT / item, SCRATCH / item)
    run("git init -q -b main")
    run("git config user.name 'Demo Maintainer'")
    run("git config user.email maintainer@example.com")

    banner("1. Declare two environments: each a registry and a state directory")
    write("regops.yaml", CONFIG)
    write("registry-state/dev/models.yaml", DEV_STATE)
    write("registry-state/prod/models.yaml", "apiVersion: regops/v1\nmodels: {}\n")
    commit("Declare dev and prod")
    run("regops validate")
    run("regops plan", ok=(64,))  # which environment? regops does not guess

    banner("2. Train in dev; the pipeline registers, with its evidence")
    run("accident train --models xgboost --sample 4000 --max-trees 60", env=DEV)
    run("accident validate --all-new", env=DEV)
    run("accident smoke-test --all-new", env=DEV)

    banner("3. dev: propose version 1 as Staging (a pull request), apply on merge")
    run(f"regops --env dev transition --model-name {XGB} --version 1 --stage Staging")
    commit("Stage XGBoost v1 in dev")
    run("regops --env dev reconcile")

    banner("4. prod: promote dev's version 1 by one state edit")
    write("registry-state/prod/models.yaml", PROD_STATE % XGB)
    commit("Promote dev's XGBoost v1 to prod")
    run("regops plan --all-envs --format markdown", ok=(0,))  # the PR comment, both sections

    banner("5. prod: reconcile copies it (artifacts, evidence, lineage), then stage and alias")
    run("regops --env prod reconcile")
    run("regops --env prod reconcile")  # nothing: the copy is found by its lineage
    run("regops plan --all-envs --detailed-exitcode")

    banner("6. Serve from prod")
    run(f"regops --env prod get-model --model-name {XGB} --stage Production")
    run(
        f"accident predict examples/test_features.json --model-name {XGB} --stage Production",
        env=PROD,
    )

    banner("7. Where did prod's version come from?")
    run(f"regops --env prod history {XGB}")
    print(f"\nDone. The scratch repository is {SCRATCH} (remove it with `rm -rf .demo-envs`).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
