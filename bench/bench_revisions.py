"""Benchmark: `regops validate` and `regops plan` from two revisions of this tree, side by side.

A restructuring (issue 18, the house) must not cost speed: `validate` stays under
0.3 s and `plan` at 20,000 versions within 5% of the revision before. Timed tests
cannot say that on a shared 2-CPU machine; this runs both revisions in one run,
alternating (base, head, base, head, ...), so load moves both alike, and prints the
medians and the ratio head / base.

1. `git worktree add` the base revision (default: the commit before the house,
   318f9c5) in a scratch directory; the head is this working tree.
2. One registry as bench_scale.py builds it (20 versions per model; a real
   `mlflow server` on sqlite, 4 workers): exported into state files, policy added,
   adoption recorded, 20 models edited as a pull request would (50 changes).
3. Each revision runs in a fresh process with the same venv and `PYTHONPATH` at its
   own `src` (PYTHONPATH comes before the venv's editable-install path), so only
   regops' code differs. Both plans must print the same summary line.

Run: .venv/bin/python bench/bench_revisions.py [--base REV] [--versions 20000]
         [--rounds 7]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import registry_seed  # noqa: E402
from bench_plan import POLICY, fmt_s, git  # noqa: E402
from bench_scale import (  # noqa: E402
    ALIAS,
    ARCHIVE,
    EXPECTED_CHANGES,
    N_VERSIONS,
    PROMOTE,
    VALIDATE_LIMIT,
    Run,
    model_name,
    run_measured,
    seed_adoption,
)

BASE = "318f9c5"  # main before issue 18's move
PLAN_TOLERANCE = 0.05  # head may be at most 5% slower than base
# The CLI of either revision: `regops.cli` was a module before the house, a package after;
# both expose main().
CLI = "import sys; sys.argv[0] = 'regops'; from regops.cli import main; main()"


def worktree(rev: str, where: Path) -> Path:
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(where), rev], check=True
    )
    return where


def build_registry(work: Path, versions: int) -> tuple[Any, Path]:
    """A started server and its edited, adopted state directory (bench_scale's recipe)."""
    from click.testing import CliRunner

    from regops import api
    from regops.cli import cli
    from regops.settings import Settings

    n_models = versions // N_VERSIONS
    names = [model_name(i) for i in range(n_models)]
    db = work / "server.db"
    registry_seed.seed_registry(db, names, N_VERSIONS)
    (server,) = registry_seed.start_servers([work], [db], 4)
    state = work / "state"
    res = CliRunner().invoke(cli, ["export", "--tracking-uri", server.url, "--output", str(state)])
    if res.exit_code != 0:
        server.stop()
        raise RuntimeError(f"regops export failed: {res.output[-800:]}")
    registry_seed.add_policy(state, POLICY)
    adoption = api.run_plan(Settings(tracking_uri_flag=server.url, state_dir=state))
    seed_adoption(db, dict(adoption.records))
    registry_seed.edit_state(state, names, N_VERSIONS, PROMOTE, ALIAS, ARCHIVE)
    git(state, "init", "-q")
    git(state, "add", ".")
    git(state, "commit", "-q", "-m", "exported, adopted, then 20 models edited")
    return server, state


def alternate(
    trees: dict[str, Path], args: list[str], rounds: int, env: dict[str, str]
) -> dict[str, list[Run]]:
    runs: dict[str, list[Run]] = {name: [] for name in trees}
    for _ in range(rounds):
        for name, tree in trees.items():
            run = run_measured(
                [sys.executable, "-c", CLI, *args],
                cwd=ROOT,
                env={**env, "PYTHONPATH": str(tree / "src")},
            )
            if run.code not in (0, 2):
                raise RuntimeError(f"{name}: regops {args[0]} exit {run.code}: {run.err[-600:]}")
            runs[name].append(run)
    return runs


def summary(run: Run) -> str:
    lines = [ln for ln in run.out.splitlines() if ln.strip()]
    return lines[-1] if lines else "?"


def table(title: str, runs: dict[str, list[Run]]) -> tuple[float, float]:
    base, head = (statistics.median(r.wall for r in runs[k]) for k in ("base", "head"))
    base_cpu, head_cpu = (statistics.median(r.cpu for r in runs[k]) for k in ("base", "head"))
    print(
        f"{title:<34}{fmt_s(base):>10}{fmt_s(head):>10}{head / base:>11.3f}"
        f"{fmt_s(base_cpu):>10}{fmt_s(head_cpu):>10}{head_cpu / base_cpu:>11.3f}"
    )
    return base, head


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--base", default=BASE, help="the revision to compare with (%(default)s)")
    parser.add_argument("--versions", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7, help="runs of each revision, alternating")
    args = parser.parse_args(argv)

    warnings.simplefilter("ignore", FutureWarning)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    os.environ["REGOPS_ACTOR"] = "regops-bench"
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    env = dict(os.environ)
    head_rev = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    print(
        f"bench_revisions: base {args.base} vs head {head_rev} (this tree); "
        f"{args.versions:,} versions; {args.rounds} runs each, alternating; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-revisions-") as scratch:
        tmp = Path(scratch)
        trees = {"base": worktree(args.base, tmp / "base"), "head": ROOT}
        try:
            t0 = time.perf_counter()
            (tmp / "registry").mkdir()
            server, state = build_registry(tmp / "registry", args.versions)
            print(f"registry built in {fmt_s(time.perf_counter() - t0)}", flush=True)
            try:
                validate = alternate(
                    trees,
                    ["validate", "--state-dir", str(ROOT / "registry-state")],
                    args.rounds * 2,
                    env,
                )
                plan_args = ["plan", "--tracking-uri", server.url, "--state-dir", str(state)]
                plan = alternate(trees, plan_args, args.rounds, env)
            finally:
                server.stop()
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tmp / "base")],
                check=False,
            )

    print()
    print(
        f"{'median of the runs':<34}{'base':>10}{'head':>10}{'head/base':>11}"
        f"{'base CPU':>10}{'head CPU':>10}{'CPU ratio':>11}"
    )
    print("-" * 96)
    _, v_head = table("regops validate (registry-state/)", validate)
    p_base, p_head = table(f"regops plan ({args.versions:,} versions)", plan)
    print("-" * 96)
    for name in ("base", "head"):
        print(
            f"{name} plan: {summary(plan[name][0])}; walls "
            + ", ".join(fmt_s(r.wall) for r in plan[name])
        )
    if summary(plan["base"][0]) != summary(plan["head"][0]):
        failures.append("the two revisions' plans differ")
    if f"{EXPECTED_CHANGES} to apply" not in summary(plan["head"][0]):
        failures.append(f"the plan is not the {EXPECTED_CHANGES} changes expected")
    if v_head >= VALIDATE_LIMIT:
        failures.append(f"validate {fmt_s(v_head)} >= {VALIDATE_LIMIT} s")
    if p_head > p_base * (1 + PLAN_TOLERANCE):
        failures.append(f"plan {p_head / p_base:.3f}x base > {1 + PLAN_TOLERANCE:.2f}x")
    print(
        "targets: validate < 0.3 s, plan within 5% of base: "
        + ("met" if not failures else "NOT met: " + "; ".join(failures))
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
