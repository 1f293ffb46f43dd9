"""Benchmark: `regops plan` at 2,000, 20,000 and 100,000 versions, beside `gto show`.

One run, side by side. For each size (100 / 1,000 / 5,000 models x 20 versions):

1. Seed a real `mlflow server`'s sqlite file through MLflow's ORM rows before it
   starts (registry_seed.py, shared with bench_plan.py), start it (4 workers, MLflow's
   default, or --server-workers; no job runner) behind the counting proxy
   (counting_proxy.py).
2. `regops export` the registry into state files, add the usual policy, record the
   adoption (the `regops.applied` tag a first reconcile writes, seeded into the same
   sqlite file: over REST that first reconcile is one write per model), then edit the
   files as a pull request would (10 promotions, 5 aliases, 5 archivals: 50 changes).
3. Time `regops plan`: as the CLI in a fresh process (wall, REST calls, peak RSS of
   that process) and in-process (`api.run_plan`, with its parts: loading the state
   files, the registry snapshot).

Beside it, GTO (PyPI `gto`, in its own venv: .bench-venvs/gto, made on first use):
`gto show` on the equivalent git repository of tags (gto_repo.py: 20 registration tags
+ 2 stage tags per model, e.g. 22,000 tags for 1,000 models), wall and peak RSS.
Then `regops validate` on this repository's registry-state/ (fresh processes).

Run: .venv/bin/python bench/bench_scale.py [--sizes 2000,20000,100000]
         [--gto-sizes 2000,20000] [--repeats 3] [--profile 20000] [--keep]
Quick: .venv/bin/python bench/bench_scale.py --sizes 2000
(gto show runs by default at the sizes up to 20,000: at 110,000 tags it takes ~10 CPU
minutes here; ask for it with --gto-sizes 2000,20000,100000)
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.support: the real-server helpers the tests use

from tests.support.servers import FAST_HTTP_ENV  # noqa: E402

import registry_seed  # noqa: E402
from bench_plan import POLICY, cli_cmd, fmt_s, git, timed  # noqa: E402
from counting_proxy import CountingProxy  # noqa: E402
from gto_repo import build_gto_repo  # noqa: E402

N_VERSIONS = 20  # per model
DEFAULT_SIZES = (2_000, 20_000, 100_000)
GTO_VERSION = "1.10.1"
GTO_VENV = ROOT / ".bench-venvs" / "gto"
GTO_DEFAULT_MAX = 20_000
SERVER_WORKERS = 4  # `mlflow server`'s own default
TARGET_SIZE = 20_000  # the target: plan here >= 20x faster than gto show
TARGET_RATIO = 20
VALIDATE_LIMIT = 0.3  # seconds, `regops validate` on registry-state/
PROMOTE, ALIAS, ARCHIVE = range(0, 10), range(10, 15), range(15, 20)
EXPECTED_CHANGES = 50  # what edit_state's 20 edited models make the plan show
PLOT = ROOT / "bench" / "scale.png"


def model_name(i: int) -> str:
    return f"scale_model_{i:04d}"


# ------------------------------------------------------------------------ processes
@dataclass
class Run:
    """One process: exit code, wall, CPU and peak RSS (its own or a child's, the max)."""

    code: int
    wall: float
    cpu: float
    rss_mb: float
    out: str
    err: str
    timed_out: bool = False


# Runs the command and prints its rusage as JSON. A process's peak RSS counts the memory
# of the process it was forked from (Linux carries the old image's high-water mark
# across exec), so the command is forked from this small launcher, not from the bench.
LAUNCHER = """\
import json, os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, ru = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    json.dump({"code": os.waitstatus_to_exitcode(status), "cpu": ru.ru_utime + ru.ru_stime,
               "rss_kb": ru.ru_maxrss}, f)
"""


def run_measured(
    cmd: list[str], *, cwd: Path, env: dict[str, str], timeout: float | None = None
) -> Run:
    """Run `cmd` to its end: exit code, wall, and from wait4 its CPU time and peak RSS
    (Linux: the max of the process and of the children it waited for)."""
    import json

    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile("r", suffix=".json") as usage,
    ):
        launcher = [sys.executable, "-I", "-S", "-c", LAUNCHER, usage.name]
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [*launcher, *cmd], cwd=cwd, env=env, stdout=out, stderr=err, start_new_session=True
        )
        try:
            proc.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            timed_out = True
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        doc = json.loads(usage.read() or '{"code": -9, "cpu": 0, "rss_kb": 0}')
        return Run(
            code=int(doc["code"]),
            wall=wall,
            cpu=float(doc["cpu"]),
            rss_mb=doc["rss_kb"] / 1024,
            out=out.read().decode(errors="replace"),
            err=err.read().decode(errors="replace"),
            timed_out=timed_out,
        )


def median_run(runs: list[Run]) -> Run:
    """The run of median wall (its RSS is reported with it; the max RSS is close)."""
    return sorted(runs, key=lambda r: r.wall)[len(runs) // 2]


# ---------------------------------------------------------------------------- regops
@dataclass
class SizeResult:
    versions: int
    models: int
    seed: float = 0.0
    server_up: float = 0.0
    export: tuple[int, float] = (0, 0.0)
    cli: Run | None = None
    cli_calls: Counter[str] = field(default_factory=Counter)
    cli_rest: float = 0.0  # seconds per CLI run with a REST round-trip in flight (the server)
    server_cpu: float = 0.0  # CPU seconds the server's processes spent per CLI run
    cli_runs: list[Run] = field(default_factory=list)
    inproc: float = 0.0
    inproc_calls: Counter[str] = field(default_factory=Counter)
    load: float = 0.0
    snapshot: float = 0.0
    summary: str = ""
    changes: int = -1
    state_bytes: int = 0
    errors: list[str] = field(default_factory=list)


def group_cpu(pgid: int) -> float:
    """CPU seconds (user + system) of the live processes of a process group: the
    `mlflow server` and its workers (its own session, see tests.support)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:  # pgrp, after the state field
                total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def seed_adoption(db: Path, records: dict[str, str]) -> None:
    """The `regops.applied` tags a first reconcile writes, as ORM rows in one transaction
    (the server reads the same file; it keeps no cache of registry rows)."""
    from mlflow.store.model_registry.dbmodels.models import SqlRegisteredModelTag
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

    from regops.core.live import APPLIED_TAG

    store = SqlAlchemyStore(f"sqlite:///{db}")
    ws = store._with_workspace_field
    with store.ManagedSessionMaker(read_only=False) as session:
        session.add_all(
            ws(SqlRegisteredModelTag(name=name, key=APPLIED_TAG, value=value))
            for name, value in records.items()
        )
    store.engine.dispose()


def measure_size(
    versions: int, tmp: Path, env: dict[str, str], repeats: int, profile: bool, workers: int
) -> SizeResult:
    from click.testing import CliRunner

    from regops import api
    from regops.adapters.mlflow.registry import MlflowRegistry
    from regops.cli import cli
    from regops.settings import Settings

    n_models = versions // N_VERSIONS
    names = [model_name(i) for i in range(n_models)]
    r = SizeResult(versions=n_models * N_VERSIONS, models=n_models)
    work = tmp / f"v{versions}"
    work.mkdir()
    db = work / "server.db"
    _, r.seed = timed(lambda: registry_seed.seed_registry(db, names, N_VERSIONS))
    (server,), r.server_up = timed(lambda: registry_seed.start_servers([work], [db], workers))
    try:
        with CountingProxy(server.url) as proxy:
            state = work / "state"
            # Warm-up (unmeasured): the server's first-request setup and the client's imports.
            MlflowRegistry(proxy.url).snapshot([names[0]])

            with proxy.measure() as calls:
                res, t = timed(
                    lambda: CliRunner().invoke(
                        cli, ["export", "--tracking-uri", proxy.url, "--output", str(state)]
                    )
                )
            if res.exit_code != 0:
                raise RuntimeError(f"regops export failed at {versions}: {res.output[-800:]}")
            r.export = (sum(calls.values()), t)
            registry_seed.add_policy(state, POLICY)
            settings = Settings(tracking_uri_flag=proxy.url, state_dir=state)
            adoption = api.run_plan(settings)
            if adoption.changes or len(adoption.records) != n_models:
                r.errors.append(
                    f"{versions}: export + policy plans {len(adoption.changes)} changes, "
                    f"{len(adoption.records)} records (want 0 and {n_models})"
                )
            seed_adoption(db, dict(adoption.records))
            registry_seed.edit_state(state, names, N_VERSIONS, PROMOTE, ALIAS, ARCHIVE)
            git(state, "init", "-q")
            git(state, "add", ".")
            git(state, "commit", "-q", "-m", "exported, adopted, then 20 models edited")
            r.state_bytes = sum(p.stat().st_size for p in state.glob("*.yaml"))

            # The CLI in a fresh process, as CI runs it.
            args = ["plan", "--tracking-uri", proxy.url, "--state-dir", str(state)]
            cpu0 = group_cpu(server.proc.pid)
            with proxy.measure() as calls:
                r.cli_runs = [
                    run_measured([*cli_cmd(), *args], cwd=ROOT, env=env) for _ in range(repeats)
                ]
            r.server_cpu = (group_cpu(server.proc.pid) - cpu0) / repeats
            r.cli = median_run(r.cli_runs)
            r.cli_calls = Counter({k: v // repeats for k, v in calls.items()})
            r.cli_rest = calls.wall_in() / repeats
            for run in r.cli_runs:
                if run.code != 0:
                    r.errors.append(f"{versions}: regops plan exit {run.code}: {run.err[-500:]}")
            lines = [ln for ln in r.cli.out.splitlines() if ln.strip()]
            r.summary = lines[-1] if lines else "?"

            # In-process: the whole plan (calls counted on the first run), then its parts.
            walls = []
            with proxy.measure() as calls:
                plan, wall = timed(lambda: api.run_plan(settings))
            walls.append(wall)
            r.inproc_calls = calls
            r.changes = len(plan.changes)
            if r.changes != EXPECTED_CHANGES or plan.errors:
                r.errors.append(
                    f"{versions}: plan has {r.changes} changes (want {EXPECTED_CHANGES}), "
                    f"errors {list(plan.errors)[:3]}"
                )
            walls += [timed(lambda: api.run_plan(settings))[1] for _ in range(repeats - 1)]
            r.inproc = statistics.median(walls)
            r.load = statistics.median(
                timed(lambda: api.load_desired(settings))[1] for _ in range(repeats)
            )
            registry = MlflowRegistry(proxy.url)
            r.snapshot = statistics.median(
                timed(lambda: registry.snapshot(names))[1] for _ in range(repeats)
            )
            if profile:
                profile_plan(settings, versions)
    finally:
        server.stop()
    return r


def profile_plan(settings: Any, versions: int) -> None:
    """Where an in-process `regops plan` spends its time (cProfile, top functions)."""
    import cProfile
    import io
    import pstats

    from regops import api

    prof = cProfile.Profile()
    prof.enable()
    api.run_plan(settings)
    prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("cumulative").print_stats(30)
    stats.sort_stats("tottime").print_stats(20)
    print(f"\nPROFILE of api.run_plan at {versions:,} versions (cProfile)")
    print(buf.getvalue())


# ------------------------------------------------------------------------------- GTO
def ensure_gto(venv: Path) -> tuple[Path, str]:
    """`gto` from its own venv (GTO's dependencies are not ours); made on first use."""
    gto = venv / "bin" / "gto"
    if not gto.exists():
        shutil.rmtree(venv, ignore_errors=True)
        print(f"installing gto=={GTO_VERSION} into {venv} (once) ...", flush=True)
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", f"gto=={GTO_VERSION}"],
            check=True,
            capture_output=True,
        )
    out = subprocess.run([str(gto), "--version"], capture_output=True, text=True, check=True)
    return gto, out.stdout.strip().split()[-1]


@dataclass
class GtoResult:
    versions: int
    tags: int
    build: float
    show: Run
    rows: int


def measure_gto(gto: Path, versions: int, tmp: Path, timeout: float) -> GtoResult:
    n_models = versions // N_VERSIONS
    repo = tmp / f"gto{versions}"
    names = [model_name(i) for i in range(n_models)]
    tags, build = timed(
        lambda: build_gto_repo(
            repo, names, N_VERSIONS, {N_VERSIONS: "staging", N_VERSIONS - 1: "prod"}
        )
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = run_measured([str(gto), "show"], cwd=repo, env=env, timeout=timeout)
    rows = sum(1 for ln in run.out.splitlines() if model_name(0)[:-4] in ln)
    shutil.rmtree(repo, ignore_errors=True)
    return GtoResult(versions, tags, build, run, rows)


# ---------------------------------------------------------------------------- report
LINE = "-" * 119


def per_k(seconds: float, versions: int) -> str:
    return f"{seconds * 1000 / (versions / 1000):.0f} ms"


def report(
    results: list[SizeResult],
    gtos: dict[int, GtoResult],
    validate: list[Run],
    gto_version: str,
) -> list[str]:
    """Print the tables; return the call-count failures (deterministic, so exit 1)."""
    failures: list[str] = []
    print()
    print("PLAN at scale: `regops plan` against a real mlflow server (sqlite), 20 versions/model")
    print(LINE)
    head = f"{'versions':>9}{'models':>8}{'state':>9} |{'CLI wall':>10}{'CPU':>8}{'peak RSS':>10}"
    head += (
        f"{'calls':>6}{'in REST':>9}{'srv CPU':>9} |{'in-proc':>9}{'load':>8}{'snapshot':>10}"
        f" |{'per 1k v':>9}"
    )
    print(head)
    print(LINE)
    for r in results:
        assert r.cli is not None
        print(
            f"{r.versions:>9,}{r.models:>8,}{r.state_bytes / 1e6:>7.1f}MB |"
            f"{fmt_s(r.cli.wall):>10}{fmt_s(r.cli.cpu):>8}{r.cli.rss_mb:>7.0f} MB"
            f"{sum(r.cli_calls.values()):>6}{fmt_s(r.cli_rest):>9}{fmt_s(r.server_cpu):>9}"
            f" |{fmt_s(r.inproc):>9}"
            f"{fmt_s(r.load):>8}{fmt_s(r.snapshot):>10} |{per_k(r.cli.wall, r.versions):>9}"
        )
    print(LINE)
    print(
        "CLI: `regops plan` in a fresh process, median of its runs (wall, CPU and peak RSS of "
        "that process; REST calls per run, and the time with one in flight: the server "
        "building its answers, timed at the proxy); srv CPU: the server's processes' CPU per "
        "run (client and server share this machine's CPUs, so (CPU + srv CPU) / CPUs is a "
        "floor for the wall); the registry is read while the state files load. "
        "in-proc: api.run_plan; its parts, each alone: load (the state files: YAML + "
        "schema) and snapshot (the REST reads)"
    )
    for r in results:
        calls = dict(sorted(r.cli_calls.items()))
        print(
            f"  {r.versions:>7,}: {calls}; seed {fmt_s(r.seed)}, server up {fmt_s(r.server_up)}, "
            f"export {r.export[0]} calls {fmt_s(r.export[1])}; plan: {r.summary}"
        )
        walls = ", ".join(fmt_s(x.wall) for x in r.cli_runs)
        print(f"           CLI runs: {walls}")

    # Growth: each figure over the smallest size's, against the size ratio.
    if len(results) > 1:
        base = results[0]
        assert base.cli is not None
        print()
        print(f"GROWTH against {base.versions:,} versions (linear = the size ratio)")
        print(LINE)
        print(
            f"{'versions':>9}{'size x':>9}{'CLI wall x':>12}{'in-proc x':>11}{'calls x':>9}"
            f"{'RSS x':>8}{'RSS over python + imports':>28}"
        )
        for r in results:
            assert r.cli is not None
            print(
                f"{r.versions:>9,}{r.versions / base.versions:>9.0f}"
                f"{r.cli.wall / base.cli.wall:>12.1f}{r.inproc / base.inproc:>11.1f}"
                f"{sum(r.cli_calls.values()) / sum(base.cli_calls.values()):>9.1f}"
                f"{r.cli.rss_mb / base.cli.rss_mb:>8.2f}"
                f"{r.cli.rss_mb - base.cli.rss_mb:>24.0f} MB"
            )
        print(LINE)

    print()
    print(f"BESIDE GTO {gto_version}: `gto show` on the equivalent git repository of tags")
    print(LINE)
    print(
        f"{'versions':>9}{'git tags':>10}{'gto wall':>11}{'gto CPU':>10}{'gto RSS':>10}"
        f"{'regops CLI':>12}{'CPU':>8}{'RSS':>8}{'wall ratio':>12}{'CPU ratio':>11}"
        f"{'RSS ratio':>11}"
    )
    print(LINE)
    by_size = {r.versions: r for r in results}
    for v, g in sorted(gtos.items()):
        r = by_size.get(v)
        wall = f">{fmt_s(g.show.wall)}" if g.show.timed_out else fmt_s(g.show.wall)
        line = f"{v:>9,}{g.tags:>10,}{wall:>11}{fmt_s(g.show.cpu):>10}{g.show.rss_mb:>7.0f} MB"
        if r is not None and r.cli is not None:
            line += (
                f"{fmt_s(r.cli.wall):>12}{fmt_s(r.cli.cpu):>8}{r.cli.rss_mb:>5.0f} MB"
                f"{g.show.wall / r.cli.wall:>11.1f}x{g.show.cpu / r.cli.cpu:>10.1f}x"
                f"{g.show.rss_mb / r.cli.rss_mb:>10.2f}x"
            )
        print(line)
        if g.show.code != 0 and not g.show.timed_out:
            print(f"  gto show exit {g.show.code}: {g.show.err[-300:]}")
    print(LINE)
    print(
        "ratios: gto show / regops plan CLI (higher: regops cheaper); both fresh processes, "
        "gto's repository built by git fast-import beforehand (untimed). regops' wall includes "
        "the server's time (in REST above); its CPU is the client's alone"
    )

    v_wall = statistics.median(x.wall for x in validate)
    print()
    print(
        f"VALIDATE: `regops validate` on registry-state/, fresh process: median {fmt_s(v_wall)} "
        f"wall of {len(validate)} ({', '.join(fmt_s(x.wall) for x in validate)}), "
        f"peak RSS {median_run(validate).rss_mb:.0f} MB"
    )

    # Checks. Call counts are deterministic: a miss is a failure. Wall times move with
    # the machine's load: a miss is reported, not failed.
    counted: list[tuple[str, bool]] = []
    for r in results:
        models_pages = math.ceil(r.models / 1000)
        filters = math.ceil(r.models / 100)  # one `name IN (...)` per 100 models, one page each
        want = models_pages + filters
        got = sum(r.cli_calls.values())
        counted.append(
            (
                f"plan at {r.versions:,}: {got} REST calls "
                f"({models_pages} models pages + {filters} version filters = {want})",
                got == want,
            )
        )
        counted.append(
            (f"plan at {r.versions:,}: {r.changes} changes planned, no error", not r.errors)
        )
    timed_checks: list[tuple[str, bool]] = []
    r20, g20 = by_size.get(TARGET_SIZE), gtos.get(TARGET_SIZE)
    if r20 is not None and g20 is not None and r20.cli is not None:
        ratio = g20.show.wall / r20.cli.wall
        timed_checks.append(
            (
                f"plan at {TARGET_SIZE:,} versions >= {TARGET_RATIO}x faster than gto show at "
                f"{g20.tags:,} tags: {fmt_s(r20.cli.wall)} vs {fmt_s(g20.show.wall)} "
                f"= {ratio:.1f}x",
                ratio >= TARGET_RATIO,
            )
        )
    if len(results) > 1:
        base, top = results[0], results[-1]
        assert base.cli is not None
        assert top.cli is not None
        size_x = top.versions / base.versions
        timed_checks.append(
            (
                f"plan wall grows at most linearly from {base.versions:,} to {top.versions:,} "
                f"versions: in-process {top.inproc / base.inproc:.1f}x for {size_x:.0f}x",
                top.inproc / base.inproc <= size_x,
            )
        )
    timed_checks.append(
        (f"validate under {VALIDATE_LIMIT} s: {fmt_s(v_wall)}", v_wall < VALIDATE_LIMIT)
    )
    print()
    for label, ok in counted:
        print(f"[{'PASS' if ok else 'FAIL'}] {label}")
        if not ok:
            failures.append(label)
    load = os.getloadavg()[0]
    for label, ok in timed_checks:
        print(f"[{'PASS' if ok else 'MISS'}] {label}" + ("" if ok else f" (load {load:.1f})"))
    for r in results:
        for e in r.errors:
            print(f"[FAIL] {e}")
    return failures


def plot(results: list[SizeResult], gtos: dict[int, GtoResult], path: Path) -> None:
    """Wall time and peak memory against registry size, regops plan vs gto show."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=100)
    xs = [r.versions for r in results]
    done = [(v, g) for v, g in sorted(gtos.items()) if not g.show.timed_out]
    ax1.plot(xs, [r.cli.wall for r in results if r.cli], "o-", label="regops plan (CLI)")
    ax1.plot(xs, [r.inproc for r in results], "s--", label="regops plan (in-process)")
    if done:
        ax1.plot([v for v, _ in done], [g.show.wall for _, g in done], "^-", label="gto show")
    ax2.plot(xs, [r.cli.rss_mb for r in results if r.cli], "o-", label="regops plan (CLI)")
    if done:
        ax2.plot([v for v, _ in done], [g.show.rss_mb for _, g in done], "^-", label="gto show")
    for ax, title, unit in ((ax1, "wall time", "seconds"), (ax2, "peak memory (RSS)", "MB")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("registry size (versions; gto: + 10% stage tags)")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    print(f"plot written: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


# ------------------------------------------------------------------------------ main
def sizes_arg(text: str) -> list[int]:
    try:
        sizes = sorted({int(x.replace("_", "").replace(",", "")) for x in text.split(",") if x})
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a list of sizes: {text!r}") from exc
    if any(s < N_VERSIONS * 20 or s % N_VERSIONS for s in sizes):
        raise argparse.ArgumentTypeError(f"sizes are multiples of {N_VERSIONS}, >= 400")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument(
        "--sizes",
        type=lambda t: sizes_arg(t),
        default=list(DEFAULT_SIZES),
        help="registry sizes in versions, comma-separated (default %(default)s)",
    )
    parser.add_argument(
        "--gto-sizes",
        type=lambda t: [] if t == "none" else sizes_arg(t),
        default=None,
        help="sizes for gto show (default: the --sizes up to 20,000; 'none')",
    )
    parser.add_argument(
        "--gto-timeout",
        type=float,
        default=900,
        help="seconds before one gto show is stopped (default %(default)s)",
    )
    parser.add_argument("--gto-venv", type=Path, default=GTO_VENV)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each plan")
    parser.add_argument(
        "--profile",
        type=int,
        default=None,
        metavar="SIZE",
        help="print a cProfile of the in-process plan at this size",
    )
    parser.add_argument(
        "--plot",
        type=Path,
        default=None,
        help=f"write the PNG here (default: {PLOT.name} for the default sizes)",
    )
    parser.add_argument(
        "--server-workers",
        type=int,
        default=SERVER_WORKERS,
        help=f"the mlflow server's worker processes (default {SERVER_WORKERS}, as `mlflow server`)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args(argv)
    gto_sizes = args.gto_sizes
    if gto_sizes is None:  # gto show at 110,000 tags takes ~10 CPU minutes here
        gto_sizes = [s for s in args.sizes if s <= GTO_DEFAULT_MAX]
    plot_path = args.plot or (PLOT if args.sizes == list(DEFAULT_SIZES) else None)

    warnings.simplefilter("ignore", FutureWarning)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    os.environ.update({**FAST_HTTP_ENV, "MLFLOW_HTTP_REQUEST_TIMEOUT": "300"})
    os.environ["REGOPS_ACTOR"] = "regops-bench"
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    env = dict(os.environ)

    import mlflow

    t0 = time.perf_counter()
    print(
        f"bench_scale: regops plan at {', '.join(f'{s:,}' for s in args.sizes)} versions "
        f"({N_VERSIONS} per model), gto show at {', '.join(f'{s:,}' for s in gto_sizes) or '-'}; "
        f"mlflow {mlflow.__version__} server (sqlite, {args.server_workers} workers) on "
        f"127.0.0.1; {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} (figures move with it)",
        flush=True,
    )
    tmp = Path(tempfile.mkdtemp(prefix="regops-scale-"))
    results: list[SizeResult] = []
    gtos: dict[int, GtoResult] = {}
    try:
        for size in args.sizes:
            r = measure_size(
                size, tmp, env, args.repeats, args.profile == size, args.server_workers
            )
            assert r.cli is not None
            print(
                f"  {size:>7,} versions: plan CLI {fmt_s(r.cli.wall)}, "
                f"{sum(r.cli_calls.values())} calls, {r.cli.rss_mb:.0f} MB "
                f"(seed {fmt_s(r.seed)}, export {fmt_s(r.export[1])})",
                flush=True,
            )
            results.append(r)
        if gto_sizes:
            (gto, gto_version), t_gto = timed(lambda: ensure_gto(args.gto_venv))
            print(f"  gto {gto_version} from {args.gto_venv} ({fmt_s(t_gto)})", flush=True)
            for size in gto_sizes:
                g = measure_gto(gto, size, tmp, args.gto_timeout)
                print(
                    f"  {size:>7,} versions: gto show {fmt_s(g.show.wall)}, "
                    f"{g.show.rss_mb:.0f} MB, {g.tags:,} tags, {g.rows:,} rows shown",
                    flush=True,
                )
                gtos[size] = g
        else:
            gto_version = "-"
        validate = [
            run_measured(
                [*cli_cmd(), "validate", "--state-dir", str(ROOT / "registry-state")],
                cwd=ROOT,
                env=env,
            )
            for _ in range(5)
        ]
        failures = report(results, gtos, validate, gto_version)
        if plot_path is not None and results:
            plot(results, gtos, plot_path)
    finally:
        if args.keep:
            print(f"scratch directory kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nbench_scale: {fmt_s(time.perf_counter() - t0)} in all")
    bad_validate = any(v.code != 0 for v in validate)
    return 1 if failures or bad_validate or any(r.errors for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
