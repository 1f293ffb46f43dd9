"""Benchmark: `accident train` on the full data, with and without MLflow, and with --grid-search.

One run, side by side, in a temporary workspace with its own sqlite registry:
1. `accident data` (raw -> processed -> features).
2. `accident train` with MLflow off: fitting, evaluation, joblib files, report only.
3. `accident train` as shipped: all four types, logged and registered (target: < 60 s wall on
   2 cores), so 3 - 2 is what MLflow logging and registration cost.
4. `accident train --grid-search`: the cross-validated grids of the config.

Each is a fresh process (what `make run-train` runs): wall time from exec to exit, peak RSS
of that process (wait4), and when each model finished, from the command's own progress lines.
Test ROC-AUC / F1 of every model are printed beside the two baselines. The machine's load
average is printed first: on a shared machine the figures move with it.

Run: .venv/bin/python bench/bench_train.py  [--skip-grid] [--keep]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
ACCIDENT = Path(sys.executable).with_name("accident")
TARGET_SECONDS = 60.0
DONE = re.compile(r"^\[\d+/\d+\] (\w+): roc_auc")
START = re.compile(r"^\[\d+/\d+\] (\w+): fitting")


@dataclass
class Measured:
    """One `accident` invocation: wall time, peak memory, when each model was done."""

    label: str
    wall: float
    peak_mb: float
    returncode: int
    started_at: dict[str, float] = field(default_factory=dict)  # model type -> s since exec
    done_at: dict[str, float] = field(default_factory=dict)
    first_line_at: float = 0.0
    comparison: pd.DataFrame | None = None
    output: str = ""


def run(label: str, args: list[str], cwd: Path, env: dict[str, str]) -> Measured:
    """Run `accident ARGS`, timestamping its progress lines; peak RSS from wait4."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [str(ACCIDENT), *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    lines, started_at, done_at, first = [], {}, {}, 0.0
    for line in proc.stdout:
        now = time.perf_counter() - start
        first = first or now
        lines.append(line)
        if m := START.match(line):
            started_at[m.group(1)] = now
        if m := DONE.match(line):
            done_at[m.group(1)] = now
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    csv = cwd / "data" / "metrics" / "model_comparison.csv"
    comparison = pd.read_csv(csv) if csv.is_file() and args[0] == "train" else None
    return Measured(
        label, wall, usage.ru_maxrss / 1024, proc.returncode, started_at, done_at, first,
        comparison,
        "".join(lines),
    )  # fmt: skip


def workspace(work: Path, name: str, mlflow_enabled: bool) -> Path:
    """A directory with the repo config (MLflow on or off) and a copy of the built data."""
    root = work / name
    (root / "config").mkdir(parents=True)
    data = yaml.safe_load((ROOT / "config" / "model_config.yaml").read_text(encoding="utf-8"))
    data["mlflow"]["enabled"] = mlflow_enabled
    (root / "config" / "model_config.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    if (work / "data").is_dir():
        shutil.copytree(work / "data", root / "data")
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-grid", action="store_true", help="skip the grid-search run")
    parser.add_argument("--keep", action="store_true", help="keep the temporary workspace")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    try:
        return bench(work, args.skip_grid)
    finally:
        if args.keep:
            print(f"\nworkspace kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def bench(work: Path, skip_grid: bool) -> int:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "DAGSHUB_REPO")}
    env["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.2f} / {load[1]:.2f}")

    data_ws = workspace(work, "data-build", mlflow_enabled=False)
    data = run("accident data", ["data"], data_ws, env)
    shutil.copytree(data_ws / "data", work / "data")

    runs = [
        run("train, MLflow off", ["train"], workspace(work, "local", False), env),
        run("train (shipped)", ["train"], workspace(work, "mlflow", True), env),
    ]
    if not skip_grid:
        runs.append(
            run(
                "train --grid-search",
                ["train", "--grid-search"],
                workspace(work, "grid", True),
                env,
            )
        )
    failed = [r for r in [data, *runs] if r.returncode != 0]
    for r in failed:
        print(f"\n{r.label} FAILED (exit {r.returncode}):\n{r.output}")
    if failed:
        return 1

    print(f"\naccident data: {data.wall:.1f} s wall, peak {data.peak_mb:.0f} MB\n")
    print_side_by_side(runs)
    print_quality(runs[1], work)
    shipped = runs[1]
    verdict = "within" if shipped.wall < TARGET_SECONDS else "OVER"
    mlflow_cost = shipped.wall - runs[0].wall
    print(
        f"\nshipped training: {shipped.wall:.1f} s wall ({verdict} the {TARGET_SECONDS:.0f} s "
        f"target), peak {shipped.peak_mb:.0f} MB; MLflow logging + registration of 4 models: "
        f"{mlflow_cost:+.1f} s"
    )
    if not skip_grid:
        grid = runs[2]
        print(f"grid search: {grid.wall:.1f} s wall ({grid.wall / shipped.wall:.1f}x shipped)")
    return 0


def print_side_by_side(runs: list[Measured]) -> None:
    """Wall, peak memory and per-model time (fit alone, and fit + logging) per run."""
    width = max(len(r.label) for r in runs) + 2
    rows = [
        ("wall (s)", [f"{r.wall:.1f}" for r in runs]),
        ("peak RSS (MB)", [f"{r.peak_mb:.0f}" for r in runs]),
        ("startup to first line (s)", [f"{r.first_line_at:.1f}" for r in runs]),
    ]
    model_types = list(runs[0].done_at)
    rows.append(
        (
            "data + MLflow set-up (s)",
            [f"{min(r.started_at.values()) - r.first_line_at:.1f}" for r in runs],
        )
    )
    for model_type in model_types:
        fits = []
        for r in runs:
            assert r.comparison is not None
            row = r.comparison.set_index("model_type").loc[model_type]
            fits.append(f"{row['train_seconds']:.1f}")
        rows.append((f"{model_type} fit (s)", fits))
    for model_type in model_types:
        spans = []
        for r in runs:
            spans.append(f"{r.done_at[model_type] - r.started_at[model_type]:.1f}")
        rows.append((f"{model_type} fit+eval+log (s)", spans))
    label_w = max(len(name) for name, _ in rows) + 2
    print("".ljust(label_w) + "".join(r.label.rjust(width) for r in runs))
    for name, values in rows:
        print(name.ljust(label_w) + "".join(v.rjust(width) for v in values))


def print_quality(shipped: Measured, work: Path) -> None:
    """Test ROC-AUC / F1 of each model beside the majority-class and two-feature baselines."""
    sys.path.insert(0, str(ROOT / "src"))
    from accident_prediction.config import load_config
    from accident_prediction.data import load_splits
    from accident_prediction.metrics import baseline_scores

    cwd = Path.cwd()
    os.chdir(work / "mlflow")
    try:
        splits = load_splits(load_config("config/model_config.yaml"))
    finally:
        os.chdir(cwd)
    baselines = baseline_scores(splits.X_train, splits.y_train, splits.X_test, splits.y_test)
    assert shipped.comparison is not None
    print(f"\nquality on the held-out test split ({len(splits.X_test):,} rows):")
    print(f"{'model':32}{'roc_auc':>9}{'f1':>9}{'log_loss':>10}")
    for _, row in shipped.comparison.iterrows():
        name = f"{row['model_type']} (v{row['version']})"
        print(f"{name:32}{row['roc_auc']:9.4f}{row['f1']:9.4f}{row['log_loss']:10.4f}")
    for name, s in baselines.items():
        label = f"baseline: {name}"
        print(f"{label:32}{s['roc_auc']:9.4f}{s['f1']:9.4f}{s['log_loss']:10.4f}")


if __name__ == "__main__":
    sys.exit(main())
