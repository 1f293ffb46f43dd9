"""Benchmark: `regops reconcile` at 300 and 3,000 changes, one writer vs `--parallel N`.

One run, side by side: each size, with no added latency and with 50 ms added to every
call (a remote registry), against a sqlite-backed and a PostgreSQL-backed `mlflow
server` (4 workers, `mlflow server`'s default; no job runner), errors and retries counted.

1. Seed a database per size through MLflow's ORM rows (registry_seed.py, shared with
   bench_plan.py and bench_scale.py): 100 models for 300 changes, 1,000 for 3,000, of 4
   versions each (v3 Production with `champion`, v4 Staging with `challenger`). Every
   run gets a fresh copy of it (a sqlite file copy, or PostgreSQL's `CREATE DATABASE
   ... TEMPLATE`) and its own server, started before the clock starts.
2. Per run, a state file that promotes v4 on each of its models: 3 changes each (v4
   enters Production, `champion` moves to it, v3 is archived), in that order. A model
   never reconciled also gets its baseline record, each changed version its stamp and
   the model its applied record: 7 writes per model.
3. `regops reconcile --parallel N --format json` as users run it (a fresh process:
   wall includes its start and its plan), through the counting proxy
   (counting_proxy.py) that adds the latency and counts calls and HTTP errors. From the
   JSON result: applied/failed and the retries regops made (a conflict, a busy database).

PostgreSQL: REGOPS_BENCH_POSTGRES_URI or REGOPS_TEST_POSTGRES_URI (a role allowed to
CREATEDB), else `.ci/start-postgres` is run and the URI it prints is used.

Run:   .venv/bin/python bench/bench_reconcile.py        (~45 min here: one writer at
       3,000 changes and 50 ms is ~8 min per backend, and each run starts a server)
Quick: .venv/bin/python bench/bench_reconcile.py --quick (30 and 90 changes, ~6 min)
Options: --sizes 300,3000 --latencies 0,50 --writers 1,4,8 --backends postgres,sqlite
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.support: the real-server helpers the tests use

from tests.support.servers import FAST_HTTP_ENV, start_mlflow_server  # noqa: E402

import registry_seed  # noqa: E402
from bench_plan import cli_cmd, fmt_s  # noqa: E402
from counting_proxy import CountingProxy  # noqa: E402

N_VERSIONS = 4
CHANGES_PER_MODEL = 3
WRITES_PER_MODEL = 7  # baseline record, 3 changes, 2 stamps, applied record
DEFAULT_SIZES = (300, 3_000)
DEFAULT_LATENCIES = (0, 50)
DEFAULT_WRITERS = (1, 4, 8)
QUICK_SIZES = (30, 90)
TARGET_SIZE, TARGET_LATENCY, TARGET_RATIO = 3_000, 50, 5.0
RUN_TIMEOUT = 3600  # seconds: one writer at 3,000 changes and 50 ms takes ~8 minutes

MODEL_STATE = """\
  {name}:
    versions:
      "1": {{stage: None}}
      "2": {{stage: None}}
      "3": {{stage: Archived}}
      "4": {{stage: Production, aliases: [champion, challenger]}}
"""


@dataclass(frozen=True)
class Case:
    size: int  # changes
    latency: int  # ms added per call
    writers: int

    @property
    def models(self) -> int:
        return self.size // CHANGES_PER_MODEL

    def prefix(self) -> str:
        return "Rc"

    def names(self) -> list[str]:
        return [f"{self.prefix()}{i:04d}" for i in range(self.models)]


@dataclass
class Result:
    wall: float = 0.0
    applied: int = 0
    failed: int = 0
    writes: int = 0  # regops' count, retries included
    retries: int = 0  # regops' own retries (a conflict, a busy database)
    calls: int = 0  # HTTP requests the proxy saw
    errors: dict[int, int] = field(default_factory=dict)  # HTTP status >= 400 -> count
    exit_code: int = 0
    server_ms_per_write: float = 0.0  # mean upstream time of a write call (no added latency)
    reads_s: float = 0.0  # upstream time of the read calls (the plan, the freshness check)
    client_cpu: float = 0.0  # CPU seconds of the regops process (user + system)


def postgres_base_uri() -> str:
    for var in ("REGOPS_BENCH_POSTGRES_URI", "REGOPS_TEST_POSTGRES_URI"):
        if os.environ.get(var, "").strip():
            return os.environ[var].strip()
    print("starting PostgreSQL: .ci/start-postgres", flush=True)
    out = subprocess.run(
        [str(ROOT / ".ci" / "start-postgres")], capture_output=True, text=True, check=True
    )
    return out.stdout.strip().splitlines()[-1]


class Databases:
    """Seeded templates and fresh copies of them: sqlite files, or PostgreSQL databases
    (`CREATE DATABASE ... TEMPLATE`); the PostgreSQL ones are dropped by `close`."""

    def __init__(self, kind: str, work: Path) -> None:
        self.kind, self.work = kind, work
        self.made: list[str] = []
        self.admin: Any = None
        if kind == "postgres":
            import sqlalchemy as sa

            self.base = postgres_base_uri()
            self.admin = sa.create_engine(self.base, isolation_level="AUTOCOMMIT")

    def _pg(self, sql: str) -> None:
        import sqlalchemy as sa

        with self.admin.connect() as conn:
            conn.execute(sa.text(sql))

    def _on(self, database: str, sql: str) -> None:
        import sqlalchemy as sa

        engine = sa.create_engine(self.uri(database), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text(sql))
        engine.dispose()

    def uri(self, name: str) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.work / name}.db"
        from sqlalchemy.engine import make_url

        return make_url(self.base).set(database=name).render_as_string(hide_password=False)

    def template(self, names: list[str]) -> str:
        """A database holding `names` x N_VERSIONS, seeded through MLflow's ORM rows."""
        name = f"regops_bench_{secrets.token_hex(4)}"
        if self.kind == "postgres":
            self._pg(f'CREATE DATABASE "{name}"')
            self.made.append(name)
            registry_seed.seed_registry(self.uri(name), names, N_VERSIONS)
            # Planner statistics, as a live database has them (copies inherit them): without,
            # the first read of 1,000 models took 48 s instead of 4 s here.
            self._on(name, "ANALYZE")
        else:
            registry_seed.seed_registry(self.work / f"{name}.db", names, N_VERSIONS)
        return name

    def copy(self, template: str) -> str:
        """A fresh copy of `template`; returns its URI."""
        name = f"regops_bench_{secrets.token_hex(4)}"
        if self.kind == "postgres":
            self._pg(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            self.made.append(name)
        else:
            registry_seed.copy_sqlite(self.work / f"{template}.db", self.work / f"{name}.db")
        return self.uri(name)

    def close(self) -> None:
        for name in reversed(self.made):
            self._pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if self.admin is not None:
            self.admin.dispose()


@contextmanager
def databases(kind: str, work: Path) -> Iterator[Databases]:
    dbs = Databases(kind, work)
    try:
        yield dbs
    finally:
        dbs.close()


@contextmanager
def server_on(uri: str, work: Path, latency: int, workers: int) -> Iterator[CountingProxy]:
    """A `mlflow server` (`workers` processes, no job runner) on `uri`, behind a
    counting proxy that adds `latency` ms to every call."""
    server = start_mlflow_server(
        work / f"server-{secrets.token_hex(3)}",
        backend_uri=uri,
        env=registry_seed.SERVER_ENV,
        extra_args=["--workers", str(workers)],  # the last --workers wins
    )
    try:
        with CountingProxy(server.url, latency_ms=latency) as proxy:
            yield proxy
    finally:
        server.stop()


def run_case(proxy: CountingProxy, case: Case, state: Path) -> Result:
    """`regops reconcile --parallel N` through `proxy`, from the state files in `state`."""
    # No backoff between MLflow's HTTP retries, but time for a cold server's first read of
    # 1,000 models on a busy machine (the tests' 10 s is too short for that).
    env = {**os.environ, **FAST_HTTP_ENV, "MLFLOW_HTTP_REQUEST_TIMEOUT": "120"}
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = [*cli_cmd(), "reconcile", "--parallel", str(case.writers), "--format", "json"]
    cmd += ["--tracking-uri", proxy.url, "--state-dir", str(state)]
    with proxy.measure() as calls:
        t0, cpu0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(
            cmd, capture_output=True, text=True, env=env, timeout=RUN_TIMEOUT, check=False
        )
        wall, cpu1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    r = Result(wall=wall, exit_code=done.returncode)
    r.client_cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    r.calls = sum(calls.values())
    r.errors = dict(calls.errors)
    writes = [k for k in calls if not k.startswith("GET ")]
    n_writes = sum(calls[k] for k in writes)
    r.server_ms_per_write = 1000 * calls.time_in(writes) / n_writes if n_writes else 0.0
    r.reads_s = calls.time_in([k for k in calls if k.startswith("GET ")])
    try:
        out = done.stdout[done.stdout.index("{") :]
        doc: dict[str, Any] = json.JSONDecoder().raw_decode(out)[0]
        res = doc["result"] or {}
        r.applied = res.get("summary", {}).get("applied", 0)
        r.failed = res.get("summary", {}).get("failed", 0)
        r.writes = res.get("writes", 0)
        r.retries = res.get("retries", 0)
    except (ValueError, KeyError):
        print(f"  could not read the result: {done.stdout[-500:]}{done.stderr[-2000:]}")
    if r.applied != case.size or r.exit_code != 0:
        print(f"  !! exit {r.exit_code}, {r.applied} of {case.size} applied; {done.stderr[-1500:]}")
    return r


def state_files(work: Path, case: Case) -> Path:
    state = work / f"state-{case.size}"
    if not state.exists():
        state.mkdir(parents=True)
        text = "apiVersion: regops/v1\nmodels:\n" + "".join(
            MODEL_STATE.format(name=n) for n in case.names()
        )
        (state / "models.yaml").write_text(text, encoding="utf-8")
    return state


def run_backend(kind: str, work: Path, cases: list[Case], workers: int) -> dict[Case, Result]:
    """Each case on a fresh copy of its size's seeded database, behind its own server."""
    out: dict[Case, Result] = {}
    with databases(kind, work) as dbs:
        templates: dict[int, str] = {}
        for case in cases:
            if case.size not in templates:
                t0 = time.perf_counter()
                templates[case.size] = dbs.template(case.names())
                print(f"{kind}: {case.models:,} models x {N_VERSIONS} versions seeded in "
                      f"{fmt_s(time.perf_counter() - t0)}", flush=True)  # fmt: skip
            with server_on(dbs.copy(templates[case.size]), work, case.latency, workers) as proxy:
                r = run_case(proxy, case, state_files(work, case))
            out[case] = r
            print(f"  {kind}: {case.size:,} changes, {case.latency} ms, {case.writers} "
                  f"writer(s): {fmt_s(r.wall)} (exit {r.exit_code}, {r.applied} applied, "
                  f"errors {errors_text(r)}, {r.retries} retries, server "
                  f"{r.server_ms_per_write:.0f} ms/write, reads {fmt_s(r.reads_s)}, regops CPU "
                  f"{fmt_s(r.client_cpu)})",
                  flush=True)  # fmt: skip
    return out


def ratio(base: float, other: float) -> str:
    return f"{base / other:.1f}x" if other > 0 else "-"


def errors_text(r: Result) -> str:
    return ", ".join(f"{n} x {s}" for s, n in sorted(r.errors.items())) or "0"


def report(results: dict[tuple[str, Case], Result], backends: list[str], cases: list[Case]) -> bool:
    print(f"\n{'=' * 100}\nregops reconcile: wall per run (s), speed-up over one writer, "
          "HTTP errors and regops retries")  # fmt: skip
    head = f"{'changes':>8} {'latency':>8} {'writers':>8}"
    for name in backends:
        head += f" | {name + ' wall':>13} {'speed-up':>8} {'errors':>8} {'retries':>7}"
    print(head)
    print("-" * len(head))
    ok = True
    for case in cases:
        line = f"{case.size:>8,} {str(case.latency) + ' ms':>8} {case.writers:>8}"
        for name in backends:
            r = results[(name, case)]
            one = results[(name, Case(case.size, case.latency, 1))]
            flag = "" if r.exit_code == 0 and r.applied == case.size else " !"
            line += (
                f" | {fmt_s(r.wall) + flag:>13} {ratio(one.wall, r.wall):>8} "
                f"{errors_text(r):>8} {r.retries:>7}"
            )
            ok &= r.exit_code == 0 and r.applied == case.size
        print(line)
    print("\nwhere the time goes: the server's mean time per write (queueing included, no "
          "added latency) and the regops process's CPU")  # fmt: skip
    head = f"{'changes':>8} {'latency':>8} {'writers':>8}"
    for name in backends:
        head += f" | {name + ' ms/write':>17} {'regops CPU':>10}"
    print(head)
    for case in cases:
        line = f"{case.size:>8,} {str(case.latency) + ' ms':>8} {case.writers:>8}"
        for name in backends:
            r = results[(name, case)]
            line += f" | {r.server_ms_per_write:>17.0f} {fmt_s(r.client_cpu):>10}"
        print(line)
    print(f"\nwrites per run: {WRITES_PER_MODEL} per model (baseline record, 3 changes, "
          "2 stamps, applied record); wall includes the process start and the plan")  # fmt: skip
    for name in backends:
        for case in cases:
            r = results[(name, case)]
            if case.writers == max(c.writers for c in cases) and case.size == max(
                c.size for c in cases
            ):
                print(f"  {name}, {case.size:,} changes, {case.latency} ms: {r.calls:,} HTTP "
                      f"calls, {r.writes:,} writes")  # fmt: skip
    # The targets, when this run measured them.
    best = max(c.writers for c in cases)
    target = Case(TARGET_SIZE, TARGET_LATENCY, best)
    if any(target == c for c in cases):
        print()
        for name in backends:
            one = results[(name, Case(TARGET_SIZE, TARGET_LATENCY, 1))]
            par = results[(name, target)]
            speed = one.wall / par.wall if par.wall else 0.0
            verdict = "met" if speed >= TARGET_RATIO else "NOT met"
            print(f"target {name}: {TARGET_SIZE:,} changes at {TARGET_LATENCY} ms, --parallel "
                  f"{best} is {speed:.1f}x faster than one writer (want >= {TARGET_RATIO:.0f}x): "
                  f"{verdict}")  # fmt: skip
            ok &= speed >= TARGET_RATIO
    for name in backends:
        errs = sum(sum(results[(name, c)].errors.values()) for c in cases)
        retries = sum(results[(name, c)].retries for c in cases)
        print(f"{name}: {errs} HTTP errors, {retries} retries by regops over all runs")
        if name == "postgres":
            ok &= errs == 0 and retries == 0
    return ok


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="30 and 90 changes")
    parser.add_argument("--sizes", type=ints, help="changes per run (multiples of 3)")
    parser.add_argument("--latencies", type=ints, default=list(DEFAULT_LATENCIES))
    parser.add_argument("--writers", type=ints, default=list(DEFAULT_WRITERS))
    parser.add_argument("--backends", default="postgres,sqlite")
    parser.add_argument(
        "--server-workers",
        type=int,
        default=4,
        help="the mlflow server's worker processes (default 4, as `mlflow server`)",
    )
    args = parser.parse_args(argv)
    # SIGTERM (a timeout, CI) unwinds like Ctrl-C: servers stopped, databases dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sizes = args.sizes or list(QUICK_SIZES if args.quick else DEFAULT_SIZES)
    writers = sorted(set(args.writers) | {1})
    backends = [b for b in args.backends.split(",") if b]
    cases = [Case(s, ms, w) for s in sizes for ms in args.latencies for w in writers]
    results: dict[tuple[str, Case], Result] = {}
    with tempfile.TemporaryDirectory(prefix="regops-bench-reconcile-") as tmp:
        for name in backends:
            for case, r in run_backend(name, Path(tmp), cases, args.server_workers).items():
                results[(name, case)] = r
    ok = report(results, backends, cases)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
