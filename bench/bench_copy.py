"""Benchmark: promoting one reference model across two servers (dev -> prod).

Two real `mlflow server`s on 127.0.0.1, each with its own sqlite backend and its own
proxied artifact store (`--artifacts-destination`). The reference model is the
workload's XGBoost pipeline, trained by `accident train` and registered in dev with
its evidence. Then, side by side in one run, each repeated:

- regops (in this process, as the baseline is): a state edit in prod
  (`dev/Accident_Prediction_XGBoost@1` under a fresh target name) and
  `regops --env prod reconcile`: read both
  registries, plan, copy (download from dev's store, upload to prod's, one
  create call with evidence and lineage), stage and alias, audit stamps;
- by hand with MLflow's API (the baseline): `mlflow.artifacts.download_artifacts`
  from dev, then in prod `start_run` + `log_artifacts` + `create_model_version`,
  then stage and alias with `MlflowClient` (no lineage, no gates, no idempotence);
- a re-run of the regops reconcile (the copy is found by its lineage: no copy).

Run: .venv/bin/python bench/bench_copy.py [--repeats 3] [--sample 4000] [--max-trees 100]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.support: the real-server helpers the tests use

from tests.support.servers import FAST_HTTP_ENV, MlflowServer, start_mlflow_server  # noqa: E402

XGB = "Accident_Prediction_XGBoost"
BIN = Path(sys.executable).parent
CONFIG = """\
apiVersion: regops/v1
environments:
  dev: {tracking_uri: "${BENCH_DEV_URI}", state_dir: registry-state/dev}
  prod: {tracking_uri: "${BENCH_PROD_URI}", state_dir: registry-state/prod}
"""


def server(work: Path) -> MlflowServer:
    return start_mlflow_server(
        work,
        extra_args=[
            "--artifacts-destination",
            str(work / "store"),
            "--default-artifact-root",
            "mlflow-artifacts:/",
        ],
    )


def sh(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return took


def by_hand(dev: str, prod: str, name: str, tmp: Path) -> float:
    """What a person writes with MLflow's API to promote across two servers."""
    import mlflow
    from mlflow import MlflowClient

    t0 = time.perf_counter()
    src = MlflowClient(dev, dev)
    uri = src.get_model_version_download_uri(XGB, "1")
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=uri, dst_path=str(tmp / name), tracking_uri=dev
    )
    dst = MlflowClient(prod, prod)
    exp = dst.get_experiment_by_name("by-hand")
    exp_id = exp.experiment_id if exp else dst.create_experiment("by-hand")
    run = dst.create_run(exp_id)
    dst.log_artifacts(run.info.run_id, local, "model")
    dst.set_terminated(run.info.run_id)
    dst.create_registered_model(name)
    tags = dict(src.get_model_version(XGB, "1").tags)
    mv = dst.create_model_version(
        name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id, tags=tags
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        dst.transition_model_version_stage(name, mv.version, "Production")
    dst.set_registered_model_alias(name, "champion", mv.version)
    return time.perf_counter() - t0


def in_process(repo: Path, *args: str) -> float:
    """`regops ARGS` in this process (as the by-hand baseline runs): no interpreter start."""
    from click.testing import CliRunner

    from regops.cli import cli

    cwd = Path.cwd()
    os.chdir(repo)
    try:
        t0 = time.perf_counter()
        result = CliRunner().invoke(cli, list(args))
        took = time.perf_counter() - t0
    finally:
        os.chdir(cwd)
    if result.exit_code != 0:
        raise SystemExit(f"regops {' '.join(args)} failed:\n{result.output}")
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sample", type=int, default=4000, help="training rows (0 = all)")
    parser.add_argument("--max-trees", type=int, default=100)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-copy-"))
    dev = server(tmp / "dev")
    prod = server(tmp / "prod")
    try:
        env = {
            **os.environ,
            **FAST_HTTP_ENV,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "BENCH_DEV_URI": dev.url,
            "BENCH_PROD_URI": prod.url,
            "PYTHONWARNINGS": "ignore",
        }
        env.pop("REGOPS_CONFIG", None)
        repo = tmp / "repo"
        repo.mkdir()
        for item in ("config", "examples"):
            shutil.copytree(ROOT / item, repo / item)
        (repo / "regops.yaml").write_text(CONFIG)
        for e in ("dev", "prod"):
            (repo / "registry-state" / e).mkdir(parents=True)
        (repo / "registry-state/dev/m.yaml").write_text(
            f"apiVersion: regops/v1\nmodels:\n  {XGB}:\n"
            '    versions:\n      "1": {stage: Staging}\n'
        )
        (repo / "registry-state/prod/m.yaml").write_text("apiVersion: regops/v1\nmodels: {}\n")
        git = ["git", "-c", "user.name=Bench", "-c", "user.email=bench@example.com"]
        sh(["git", "init", "-q"], repo, env)
        sh([*git, "add", "-A"], repo, env)
        sh([*git, "commit", "-qm", "init"], repo, env)

        train = ["accident", "train", "--models", "xgboost", "--max-trees", str(args.max_trees)]
        if args.sample:
            train += ["--sample", str(args.sample)]
        took = sh(train, repo, {**env, "MLFLOW_TRACKING_URI": dev.url})
        sh(["accident", "smoke-test", "--all-new"], repo, {**env, "MLFLOW_TRACKING_URI": dev.url})
        sh(["regops", "--env", "dev", "reconcile"], repo, env)
        size = sum(f.stat().st_size for f in (tmp / "dev" / "store").rglob("*") if f.is_file())
        print(f"reference model: {XGB} v1 trained in {took:.1f} s; dev's store {size / 1e6:.2f} MB")

        os.environ.update({k: env[k] for k in ("BENCH_DEV_URI", "BENCH_PROD_URI")})
        os.environ.update(FAST_HTTP_ENV)
        os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
        regops_s, rerun_s, hand_s, plan_s, proc_s = [], [], [], [], []
        for i in range(args.repeats):
            target = f"XGB_prod_{i}"
            state = (
                f"apiVersion: regops/v1\nmodels:\n  {target}:\n    versions:\n"
                f"      dev/{XGB}@1: {{stage: Production, aliases: [champion]}}\n"
            )
            (repo / "registry-state/prod/m.yaml").write_text(state)
            sh([*git, "commit", "-qam", f"promote {i}"], repo, env)
            hand_s.append(by_hand(dev.url, prod.url, f"XGB_hand_{i}", tmp / "dl"))
            plan_s.append(in_process(repo, "--env", "prod", "plan"))
            regops_s.append(in_process(repo, "--env", "prod", "reconcile"))
            rerun_s.append(in_process(repo, "--env", "prod", "reconcile"))
            proc_s.append(sh(["regops", "--env", "prod", "plan"], repo, env))

        def fmt(xs: list[float]) -> str:
            return f"median {statistics.median(xs):6.2f} s  (min {min(xs):.2f}, max {max(xs):.2f})"

        print(f"\nPromote one reference model dev -> prod across two servers, {args.repeats} runs:")
        print(f"  regops --env prod reconcile (plan + copy)  {fmt(regops_s)}")
        print(f"  MLflow API by hand (copy, stage, alias)    {fmt(hand_s)}")
        print(f"  regops --env prod plan (reads both)        {fmt(plan_s)}")
        print(f"  regops re-run (found by lineage, no copy)  {fmt(rerun_s)}")
        print(f"  regops plan in a fresh process (context)   {fmt(proc_s)}")
        ratio = statistics.median(regops_s) / statistics.median(hand_s)
        print(
            f"  ratio regops reconcile / by hand: {ratio:.2f}x (regops also reads both "
            "registries, plans, checks gates and freshness, writes audit stamps)"
        )
    finally:
        dev.stop()
        prod.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
