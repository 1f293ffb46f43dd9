"""Benchmark: prediction through the registry-loaded pyfunc vs the same pipeline from joblib.

One run, side by side, in a temporary workspace:
1. `train` one model type (default XGBoost, the config's parameters, all training rows) into
   a fresh sqlite registry; training also writes the same fitted pipeline to
   models/<type>_model.joblib, so both paths serve identical objects.
2. Single-record latency after load: the same records, one at a time, alternating paths.
3. Batch throughput on 100,000 rows resampled (seeded, with replacement) from the data:
   each path predicts the whole frame several times, alternating; medians compared.
   Budget: the registry path may add at most 10% to batch time.
4. `accident predict` cold start for one record: a fresh process, from exec to JSON out,
   via the registry and via --model-path.

Run: .venv/bin/python bench/bench_predict.py  [--rows 100000 --repeats 5 --model xgboost]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
ACCIDENT = Path(sys.executable).with_name("accident")
BUDGET = 1.10  # registry batch time / joblib batch time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="xgboost", help="model type to train and serve")
    parser.add_argument("--rows", type=int, default=100_000, help="batch rows")
    parser.add_argument("--repeats", type=int, default=5, help="batch predictions per path")
    parser.add_argument("--singles", type=int, default=300, help="single-record calls per path")
    parser.add_argument("--cold", type=int, default=3, help="cold-start runs per path")
    parser.add_argument("--keep", action="store_true", help="keep the temporary workspace")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    work = Path(tempfile.mkdtemp(prefix="bench-predict-"))
    try:
        return run(args, work)
    finally:
        if args.keep:
            print(f"\nworkspace kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> int:
    import joblib
    import mlflow
    import pandas as pd

    from accident_prediction.config import load_config
    from accident_prediction.data import load_splits
    from accident_prediction.inputs import load_records, to_frame
    from accident_prediction.train import TrainOptions, train

    config_path, uri = write_config(work)
    config = load_config(config_path)
    started = time.perf_counter()
    report = train(config, TrainOptions([args.model]), environ={})
    result = report.results[0]
    print(f"trained {result.registered_model} v{result.version} in "
          f"{time.perf_counter() - started:.1f} s (train + log + register); "
          f"roc_auc {result.metrics['roc_auc']:.4f}")  # fmt: skip

    mlflow.set_tracking_uri(uri)
    model_uri = f"models:/{result.registered_model}/{result.version}"
    tick = time.perf_counter()
    pyfunc = mlflow.pyfunc.load_model(model_uri)
    load_registry = time.perf_counter() - tick
    tick = time.perf_counter()
    pipeline = joblib.load(result.model_path)
    load_joblib = time.perf_counter() - tick

    splits = load_splits(config)
    pool = pd.concat([splits.X_train, splits.X_test], ignore_index=True)
    batch = pool.sample(n=args.rows, replace=True, random_state=0).reset_index(drop=True)
    examples = to_frame(load_records(ROOT / "examples" / "test_features.json"))
    singles = [examples.iloc[[i % len(examples)]] for i in range(args.singles)]

    # Same answers first: the comparison is only fair if both paths compute the same thing.
    same = (pyfunc.predict(batch.head(5000)) == pipeline.predict(batch.head(5000))).all()

    single = {"registry (pyfunc)": pyfunc.predict, "joblib pipeline": pipeline.predict}
    lat = alternate(single, singles, warmup=10)
    bat = alternate(single, [batch] * args.repeats, warmup=1)

    print(f"\nmodel: {args.model}, {len(pool):,} source rows; identical predictions: {same}")
    print(f"load after process start: registry {load_registry * 1000:.0f} ms, "
          f"joblib {load_joblib * 1000:.0f} ms\n")  # fmt: skip
    head = f"{'':34}{'registry (pyfunc)':>20}{'joblib pipeline':>20}{'ratio':>9}"
    print(head)
    print("-" * len(head))
    reg, job = lat["registry (pyfunc)"], lat["joblib pipeline"]
    for label, q in (("single record p50 (ms)", 50), ("single record p95 (ms)", 95)):
        r, j = pct(reg, q) * 1000, pct(job, q) * 1000
        print(f"{label:34}{r:>20.2f}{j:>20.2f}{r / j:>9.2f}")
    r_t, j_t = (
        statistics.median(bat["registry (pyfunc)"]),
        statistics.median(bat["joblib pipeline"]),
    )
    print(f"{f'batch {args.rows:,} rows: median s':34}{r_t:>20.3f}{j_t:>20.3f}{r_t / j_t:>9.3f}")
    print(f"{'batch throughput (rows/s)':34}{args.rows / r_t:>20,.0f}{args.rows / j_t:>20,.0f}")
    overhead = r_t / j_t
    verdict = "within" if overhead <= BUDGET else "OVER"
    print(f"\nregistry path adds {100 * (overhead - 1):+.1f}% to batch time: "
          f"{verdict} the {100 * (BUDGET - 1):.0f}% budget")  # fmt: skip

    cold = cold_start(work, config_path, result, args.cold)
    load = os.getloadavg()[0]
    print(f"\n`accident predict` cold start, one record (median of {args.cold}; "
          f"load average {load:.1f} on {os.cpu_count()} CPUs):")  # fmt: skip
    print(f"  {'':44}{'wall s':>8}{'CPU s':>8}")
    for label, (wall, cpu) in cold.items():
        print(f"  {label:44}{wall:>8.2f}{cpu:>8.2f}")
    return 0 if overhead <= BUDGET and same else 1


def write_config(work: Path) -> tuple[Path, str]:
    """The project config, its data/model paths and registry moved into the workspace."""
    data = yaml.safe_load((ROOT / "config" / "model_config.yaml").read_text(encoding="utf-8"))
    data = copy.deepcopy(data)
    for key in ("raw_path", "processed_path", "features_dir", "metrics_dir", "models_dir"):
        data["data"][key] = str(work / data["data"][key])
    data["mlflow"]["log_artifacts"] = False  # plots: not what is measured
    uri = f"sqlite:///{work / 'mlflow.db'}"
    data["mlflow"]["tracking_uri"] = uri
    path = work / "model_config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path, uri


def alternate(
    paths: dict[str, Callable[[Any], Any]], inputs: list[Any], warmup: int
) -> dict[str, list[float]]:
    """Time each input through every path in turn, so drift in the machine hits both alike."""
    for fn in paths.values():
        for item in inputs[:warmup]:
            fn(item)
    timings: dict[str, list[float]] = {name: [] for name in paths}
    for item in inputs:
        for name, fn in paths.items():
            tick = time.perf_counter()
            fn(item)
            timings[name].append(time.perf_counter() - tick)
    return timings


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def cold_start(
    work: Path, config_path: Path, result: Any, runs: int
) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds of a fresh `accident predict` process for one record.

    CPU time is reported beside wall time: on a shared machine the wall clock mostly
    measures the neighbours.
    """
    record = work / "one.json"
    record.write_text(json.dumps(json.loads((ROOT / "examples/test_features.json").read_text())[0]))
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "DAGSHUB_REPO")}
    variants = {
        "registry (--model-name --version)": [
            "--config", str(config_path), "--model-name", result.registered_model,
            "--version", result.version,
        ],
        "registry (--use-mlflow-production)": None,  # filled below once a stage exists
        "local file (--model-path)": ["--model-path", str(result.model_path)],
    }  # fmt: skip
    promote(config_path, result)
    variants["registry (--use-mlflow-production)"] = [
        "--config", str(config_path), "--use-mlflow-production"
    ]  # fmt: skip
    out: dict[str, tuple[float, float]] = {}
    for label, extra in variants.items():
        times, cpu = [], []
        for _ in range(runs):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            tick = time.perf_counter()
            proc = subprocess.run(
                [str(ACCIDENT), "predict", str(record), *(extra or [])],
                cwd=work, env=env, capture_output=True, text=True, check=False,
            )  # fmt: skip
            times.append(time.perf_counter() - tick)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            if proc.returncode != 0:
                raise SystemExit(f"accident predict failed ({label}):\n{proc.stderr}")
        out[label] = (statistics.median(times), statistics.median(cpu))
    return out


def promote(config_path: Path, result: Any) -> None:
    """Stand in for the reconciler so --use-mlflow-production has a Production version."""
    from mlflow import MlflowClient

    uri = yaml.safe_load(config_path.read_text())["mlflow"]["tracking_uri"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        MlflowClient(uri).transition_model_version_stage(
            result.registered_model, result.version, "Production"
        )


if __name__ == "__main__":
    sys.exit(main())
