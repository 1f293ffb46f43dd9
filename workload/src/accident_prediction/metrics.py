"""Test-split metrics of a fitted model, and the two baselines every model must beat."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

METRICS = ("roc_auc", "f1", "precision", "recall", "accuracy", "log_loss")
LOWER_IS_BETTER = frozenset({"log_loss"})
BASELINE_FEATURES = ["dvcat", "seatbelt"]  # impact speed and belt use: the obvious two


def classification_metrics(
    y_true: Any, proba: Any, *, weights: Any = None, threshold: float = 0.5
) -> dict[str, float]:
    """roc_auc, f1, precision, recall, accuracy, log_loss (+ weighted_roc_auc with weights).

    The predicted class is proba >= threshold, as the pyfunc model's predict() does at 0.5.
    """
    y = np.asarray(y_true)
    p = np.clip(np.asarray(proba, dtype="float64"), 1e-15, 1 - 1e-15)
    pred = (p >= threshold).astype(int)
    two_classes = len(np.unique(y)) == 2
    out = {
        "roc_auc": float(roc_auc_score(y, p)) if two_classes else float("nan"),
        "f1": float(f1_score(y, pred, zero_division=0)),
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "accuracy": float(accuracy_score(y, pred)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
    }
    if weights is not None and two_classes:
        # The survey weights turn occupants into the US crash population they stand for.
        out["weighted_roc_auc"] = float(roc_auc_score(y, p, sample_weight=np.asarray(weights)))
    return out


def better(metric: str, a: float, b: float) -> bool:
    """True when value a beats value b on `metric`."""
    return a < b if metric in LOWER_IS_BETTER else a > b


def baseline_scores(
    X_train: pd.DataFrame, y_train: pd.Series, X_test: pd.DataFrame, y_test: pd.Series
) -> dict[str, dict[str, float]]:
    """Majority class and a two-feature (dvcat + seatbelt) logistic regression, on the test."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    # A constant score, the training base rate: it predicts the majority class at 0.5, so
    # ROC-AUC is 0.5 by definition and F1 is 0 while "not severe" is the majority.
    constant = np.full(len(y_test), float(y_train.mean()))
    two = Pipeline(
        [
            (
                "pre",
                ColumnTransformer(
                    [("oh", OneHotEncoder(handle_unknown="ignore"), BASELINE_FEATURES)]
                ),
            ),
            ("clf", LogisticRegression(max_iter=1000)),
        ]
    ).fit(X_train, y_train)
    return {
        "majority_class": classification_metrics(y_test, constant),
        "logistic_dvcat_seatbelt": classification_metrics(y_test, two.predict_proba(X_test)[:, 1]),
    }
