"""`make demo`: the whole GitOps story on the embedded default registry.

Plays, in a scratch git repository (.demo/) with a local sqlite:///mlflow.db and
no server: train the four models -> validate -> smoke-test (evidence tags) ->
propose the passing versions as Staging by editing the state file and committing
-> plan -> reconcile -> promote the best to Production by editing the state and
committing -> reconcile -> predict from Production -> history. Every step is a
command a person would type; the script only prints and runs them.

`--aliases` (`make demo-aliases`) plays the alias era instead: the state is first
moved off stages (`regops migrate-to-aliases`), candidates are proposed as
`challenger`, the best becomes `champion`, and serving follows `champion`.
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRATCH = ROOT / ".demo"
BIN = Path(sys.executable).parent
BOLD, DIM, RESET = ("\033[1m", "\033[2m", "\033[0m") if sys.stdout.isatty() else ("", "", "")


def banner(text: str) -> None:
    print(f"\n{BOLD}== {text} =={RESET}", flush=True)


def run(
    cmd: str, *, ok: tuple[int, ...] = (0,), env: dict[str, str] | None = None, quiet: bool = False
) -> str:
    """Run a command in the scratch repo, echoing it and its output (unless quiet)."""
    if not quiet:
        print(f"{DIM}$ {cmd}{RESET}", flush=True)
    proc = subprocess.run(
        shlex.split(cmd),
        cwd=SCRATCH,
        env={**ENV, **(env or {})},
        capture_output=True,
        text=True,
    )
    out = (proc.stdout + proc.stderr).rstrip()
    if out and (not quiet or proc.returncode not in ok):
        print(out, flush=True)
    if proc.returncode not in ok:
        print(f"\n`{cmd}` exited {proc.returncode}; the demo stops here.", file=sys.stderr)
        sys.exit(1)
    return proc.stdout


def commit(message: str, author: str) -> None:
    name, email = author.split(" <")
    env = {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email.rstrip(">"),
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email.rstrip(">"),
    }
    run("git add registry-state", env=env)
    run(f"git commit -q -m {shlex.quote(message)}", env=env)


ENV = {
    **os.environ,
    "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    "MLFLOW_TRACKING_URI": "sqlite:///mlflow.db",  # the embedded default, inside .demo/
    "PYTHONWARNINGS": "ignore",
    "GIT_CONFIG_NOSYSTEM": "1",
}
ENV.pop("DAGSHUB_REPO", None)
APPLY_JOB = {"REGOPS_ACTOR": "registry-apply (CI, after merge)"}  # who the audit stamps name


def main(argv: list[str]) -> int:
    aliases = "--aliases" in argv
    start = time.monotonic()
    if SCRATCH.exists():
        shutil.rmtree(SCRATCH)
    SCRATCH.mkdir()
    for item in ("registry-state", "config", "examples", "schemas"):
        shutil.copytree(ROOT / item, SCRATCH / item)
    banner("A scratch git repository whose registry-state/ is the source of truth")
    run("git init -q -b main")
    commit(
        "Initial registry state: policy and gates, no models yet",
        "Platform Team <platform@example.com>",
    )
    if aliases:
        banner("0. Off stages: the state moves to aliases (champion, challenger)")
        run("regops migrate-to-aliases --map Production=champion --map Staging=challenger")
        commit(
            "Move the registry off stages: aliases only (#0)",
            "Platform Team <platform@example.com>",
        )

    banner("1. CI trains the four candidates and registers one version each")
    run("accident train")

    banner("2. CI gathers evidence: validation against thresholds and the champion, smoke test")
    run("accident validate --all-new", ok=(0, 1))
    run("accident smoke-test --all-new", ok=(0, 1))

    role = "challenger" if aliases else "Staging"
    banner(f"3. CI proposes the versions that passed as {role}, by editing the state file")
    rows = list(csv.DictReader((SCRATCH / "data/metrics/model_comparison.csv").open()))
    passed = []
    for row in rows:
        name, version = row["registered_model"], row["version"]
        versions = json.loads(
            run(f"regops list-versions --model-name {name} --format json", quiet=True)
        )
        evidence = next(v for v in versions["versions"] if v["version"] == version)
        if evidence["validation_status"] == evidence["smoke_test_status"] == "passed":
            passed.append((name, version, float(row["roc_auc"])))
        else:
            print(f"{name} v{version} lacks passing evidence: not proposed")
    for name, version, _ in passed:
        if aliases:
            run(f"regops alias --model-name {name} --version {version} --alias challenger")
        else:
            run(f"regops transition --model-name {name} --version {version} --stage Staging")
    run("git diff --stat")
    commit(f"Propose freshly trained candidates as {role} (#1)", "regops-bot <bot@example.com>")

    banner("4. The pull request shows the plan; merging applies it")
    run("regops plan --detailed-exitcode", ok=(0, 2))
    run("regops reconcile", env=APPLY_JOB)

    target = "champion" if aliases else "Production"
    banner(f"5. A reviewer promotes the best model to {target} by editing the state")
    name, version, auc = max(passed, key=lambda p: p[2])
    print(f"best by test ROC-AUC: {name} v{version} ({auc:.3f})")
    if not aliases:
        run(f"regops promote --model-name {name} --stage Production --version {version}")
    run(f"regops alias --model-name {name} --version {version} --alias champion")
    run("git diff")
    commit(f"Promote {name} v{version} to {target} (#2)", "Alice Reviewer <alice@example.com>")
    run("regops plan --detailed-exitcode", ok=(0, 2))
    run("regops reconcile", env=APPLY_JOB)
    run("regops list-models")

    banner(f"6. Serving predicts from whatever {target} holds")
    if aliases:
        run(f"accident predict examples/test_features.json --model-name {name} --alias champion")
    else:
        run(f"accident predict examples/test_features.json --model-name {name} --stage Production")
    run("accident predict examples/test_features.json --use-best-model")

    banner("7. The audit trail: who changed what, through which PR, and when it took effect")
    run(f"regops history {name}")
    if aliases:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        run(f"regops history --at {now}")  # who holds champion and challenger, since when

    print(
        f"\nDemo finished in {time.monotonic() - start:.0f} s. Explore it: cd .demo && "
        "../.venv/bin/regops list-versions --model-name " + name
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
