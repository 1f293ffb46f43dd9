"""Benchmark: `regops plan` with `require_metrics` gates on every model, beside the same
plan without them (issue 19).

One run, side by side, on a real local `mlflow server` (sqlite backend, 4 workers)
holding 100 registered models x 20 versions (2,000 versions, bench_plan.py's shape:
v19 Production `champion`, v20 Staging `challenger`), every version with a real run in
the tracking tables logging `auc` and `loss` (seeded as MLflow's own ORM rows before the
server starts, as registry_seed does for the registry). Every REST call is counted at
the HTTP layer by bench/counting_proxy.py.

The state: `regops export`, then `champion` moved from v19 to v20 on K models (K = 0,
10, 100), under two policies that differ only in `require_metrics` on `champion`
(`auc: {min: 0.5, beats: champion, by: 0.001}`, `loss: {goal: minimize, beats:
champion}`): every move passes its gates. Measured per case: REST calls by endpoint and
the median wall of `api.run_plan` in-process (mlflow already imported), then one
`regops plan` in a fresh process each (what CI runs: the metric read imports mlflow).

Run: .venv/bin/python bench/bench_metric_gates.py [--repeats 5] [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.servers import FAST_HTTP_ENV  # noqa: E402

import registry_seed  # noqa: E402
from counting_proxy import CountingProxy  # noqa: E402

N_MODELS = 100
N_VERSIONS = 20
MOVES = (0, 10, 100)
BASE = """\
policy:
  stages:
    Production:
      require_tags: {validation_status: passed}
  aliases:
    champion:
      protected: true
"""
GATES = (
    BASE
    + """\
      require_metrics:
        auc: {min: 0.5, beats: champion, by: 0.001}
        loss: {goal: minimize, beats: champion}
"""
)


def name(i: int) -> str:
    return f"bench_model_{i:03d}"


def seed_runs(db: Path) -> int:
    """A run per version (its run_id) in the Default experiment, logging auc and loss:
    later versions are better (auc +0.002, loss -0.002 a version)."""
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric, SqlRun
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from sqlalchemy import insert

    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT name, version, run_id FROM model_versions").fetchall()
    store = SqlAlchemyStore(f"sqlite:///{db}", str(db.parent / "artifacts"))  # makes exp 0
    now = int(time.time() * 1000)
    runs, latest, metrics = [], [], []
    for _model, version, run_id in rows:
        runs.append(
            {
                "run_uuid": run_id,
                "name": f"run-{version}",
                "source_type": "LOCAL",
                "source_name": "bench",
                "entry_point_name": "",
                "user_id": "bench",
                "status": "FINISHED",
                "start_time": now,
                "end_time": now,
                "deleted_time": None,
                "source_version": "",
                "lifecycle_stage": "active",
                "artifact_uri": f"file:///bench/artifacts/{run_id}",
                "experiment_id": 0,
            }
        )
        for key, value in (("auc", 0.6 + 0.002 * version), ("loss", 0.6 - 0.002 * version)):
            m = {"key": key, "value": value, "timestamp": now, "step": 0, "is_nan": False}
            latest.append({**m, "run_uuid": run_id})
            metrics.append({**m, "run_uuid": run_id})
    with store.ManagedSessionMaker() as session:
        session.execute(insert(SqlRun), runs)
        session.execute(insert(SqlLatestMetric), latest)
        session.execute(insert(SqlMetric), metrics)
    store.engine.dispose()
    return len(runs)


def write_state(state: Path, exported: Path, policy: str, moves: int) -> None:
    if state.exists():
        shutil.rmtree(state)
    shutil.copytree(exported, state)
    registry_seed.add_policy(state, policy)
    for i in range(moves):
        path = state / f"{name(i)}.yaml"
        text = path.read_text()
        text = registry_seed.set_version(text, N_VERSIONS, "Staging", ["champion"])
        text = registry_seed.set_version(text, N_VERSIONS - 1, "Production")
        path.write_text(text)


def measure(proxy: CountingProxy, state: Path, repeats: int) -> dict[str, Any]:
    from regops import api
    from regops.settings import Settings

    settings = Settings(tracking_uri_flag=proxy.url, state_dir=state)
    walls = []
    plan = None
    for _ in range(repeats):
        with proxy.measure() as calls:
            t0 = time.perf_counter()
            plan = api.run_plan(settings)
            walls.append(time.perf_counter() - t0)
    assert plan is not None
    if plan.errors or plan.blocked:
        raise RuntimeError(f"the plan must pass: {plan.errors} {plan.blocked[:1]}")
    gated = sum(1 for c in plan.changes if c.metrics)
    return {"calls": calls, "wall": statistics.median(walls), "gated": gated}


def cli_wall(proxy: CountingProxy, state: Path) -> tuple[float, int]:
    cmd = [str(Path(sys.executable).parent / "regops"), "plan"]
    env = {**FAST_HTTP_ENV, "PATH": "/usr/bin:/bin", "HOME": str(state.parent)}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [*cmd, "--tracking-uri", proxy.url, "--state-dir", str(state)],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(ROOT / "src")},
        check=False,
    )
    return time.perf_counter() - t0, proc.returncode


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="regops-bench-metrics-"))
    try:
        db = tmp / "mlflow.db"
        t0 = time.perf_counter()
        registry_seed.seed_registry(db, [name(i) for i in range(N_MODELS)], N_VERSIONS)
        n_runs = seed_runs(db)
        took = time.perf_counter() - t0
        print(f"seeded {N_MODELS * N_VERSIONS} versions, {n_runs} runs in {took:.1f} s")
        (server,) = registry_seed.start_servers([tmp / "server"], [db], workers=4)
        try:
            with CountingProxy(server.url) as proxy:
                from click.testing import CliRunner

                from regops.cli import cli

                exported = tmp / "exported"
                res = CliRunner().invoke(
                    cli, ["export", "--tracking-uri", proxy.url, "--output", str(exported)]
                )
                if res.exit_code != 0:
                    raise RuntimeError(res.output)
                rows = []
                for moves in MOVES:
                    for label, policy in (("without", BASE), ("with", GATES)):
                        state = tmp / f"state-{label}-{moves}"
                        write_state(state, exported, policy, moves)
                        m = measure(proxy, state, args.repeats)
                        wall, code = cli_wall(proxy, state)
                        rows.append((moves, label, m, wall, code))
        finally:
            server.stop()
        print()
        print(
            f"plan at {N_MODELS * N_VERSIONS:,} versions ({N_MODELS} models), median of "
            f"{args.repeats} in-process runs; one fresh `regops plan` process each"
        )
        print(
            f"{'champion moves':>14}  {'metric gates':<12} {'calls':>5}  {'in-process':>10}  "
            f"{'CLI':>7}  endpoints"
        )
        for moves, label, m, wall, code in rows:
            eps = ", ".join(f"{k} {v}" for k, v in sorted(m["calls"].items()))
            print(
                f"{moves:>14}  {label:<12} {sum(m['calls'].values()):>5}  "
                f"{m['wall'] * 1000:>7.0f} ms  {wall:>5.2f} s  {eps}"
                + (f"  (exit {code})" if code else "")
                + (f"  [{m['gated']} gated changes]" if m["gated"] else "")
            )
        by = {(mv, lb): m for mv, lb, m, _w, _c in rows}
        for moves in MOVES:
            extra = sum(by[(moves, "with")]["calls"].values()) - sum(
                by[(moves, "without")]["calls"].values()
            )
            ratio = by[(moves, "with")]["wall"] / by[(moves, "without")]["wall"]
            print(f"{moves} moves: metric gates cost {extra} call(s) more, {ratio:.2f}x the wall")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
