"""PNG evidence of one model's test performance (rendered headless, matplotlib Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on CI runners or servers; must precede pyplot

import matplotlib.pyplot as plt  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay  # noqa: E402


def confusion_matrix_png(y_true: Any, y_pred: Any, path: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(4.5, 4))
    try:
        ConfusionMatrixDisplay.from_predictions(
            y_true, y_pred, labels=[0, 1], display_labels=["not severe", "severe"], ax=ax,
            colorbar=False,
        )  # fmt: skip
        ax.set_title(title)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path


def roc_curve_png(y_true: Any, proba: Any, path: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(4.5, 4))
    try:
        RocCurveDisplay.from_predictions(y_true, proba, ax=ax, name=title)
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
        ax.set_title(f"ROC curve: {title}")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path


def feature_importance_png(
    importance: Sequence[tuple[str, float]], path: Path, title: str, top: int = 15
) -> Path:
    shown = list(importance[:top])[::-1]  # largest at the top of a horizontal bar chart
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(shown) + 1.2))
    try:
        ax.barh([name for name, _ in shown], [value for _, value in shown])
        ax.set_title(f"Feature importance: {title}")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path
