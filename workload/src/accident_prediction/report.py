"""The model comparison report: one row per trained model, best first."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from accident_prediction.metrics import LOWER_IS_BETTER, METRICS

COLUMNS = [
    "model_type", "registered_model", "version", "run_id", *METRICS, "weighted_roc_auc",
    "train_seconds", "train_rows", "test_rows", "grid_search", "cv_score",
]  # fmt: skip
TABLE_COLUMNS = ["model_type", "registered_model", "version", *METRICS, "train_seconds"]


def comparison_frame(rows: Iterable[Mapping[str, Any]], primary_metric: str) -> pd.DataFrame:
    """Rows -> DataFrame in COLUMNS order, sorted best first on the primary metric."""
    frame = pd.DataFrame(list(rows)).reindex(columns=COLUMNS)
    ascending = primary_metric in LOWER_IS_BETTER
    return frame.sort_values(
        [primary_metric, "model_type"], ascending=[ascending, True], kind="stable"
    ).reset_index(drop=True)


def write_comparison(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, float_format="%.6g", lineterminator="\n")
    return path


def render_table(frame: pd.DataFrame, columns: Sequence[str] = TABLE_COLUMNS) -> str:
    """A fixed-width text table for the terminal (numbers to 4 places, seconds to 1)."""
    cells = [list(columns)]
    for _, row in frame.iterrows():
        cells.append([_cell(col, row.get(col)) for col in columns])
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_baselines(baselines: Mapping[str, Mapping[str, float]]) -> str:
    """One line per baseline: what every model above must beat."""
    return "\n".join(
        f"baseline {name}: roc_auc {s['roc_auc']:.4f}  f1 {s['f1']:.4f}  "
        f"accuracy {s['accuracy']:.4f}  log_loss {s['log_loss']:.4f}"
        for name, s in baselines.items()
    )


def _cell(column: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    if column == "train_seconds":
        return f"{float(value):.1f}"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)
