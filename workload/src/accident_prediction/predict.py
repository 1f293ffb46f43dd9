"""Load a model (registry pyfunc or local joblib file) and predict on checked records."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from accident_prediction.errors import ModelLoadError, describe_exception
from accident_prediction.model_source import ModelRef

if TYPE_CHECKING:
    import pandas as pd

POSITIVE_CLASS = 1  # severe
PICKLE_WARNING = (
    "loading a local joblib file: for development only. joblib files are pickles and run "
    "code when loaded; load only files you trust. Production inference loads from the registry."
)


@dataclass
class LoadedModel:
    """A ready-to-call model and what it is, for the output and the error messages."""

    name: str
    version: str | None
    source: str
    uri: str
    predictor: Any  # mlflow PyFuncModel, or a bare scikit-learn estimator for --model-path
    proba_model: Any | None  # the estimator behind it, when it can give probabilities

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "source": self.source, "uri": self.uri}


def load_registered(ref: ModelRef) -> LoadedModel:
    """`models:/NAME/N` as a pyfunc in this environment; ModelLoadError says why it failed."""
    import mlflow.pyfunc

    try:
        # Loading runs the model's own unpickling/skops code: any failure is the model's.
        model = mlflow.pyfunc.load_model(ref.uri)
    except Exception as exc:
        raise ModelLoadError(
            f"cannot load {ref.uri} ({ref.source}): {describe_exception(exc)}"
        ) from None
    try:
        raw = model.get_raw_model()
    except (NotImplementedError, AttributeError):
        raw = None  # not a scikit-learn flavour: classes only
    proba = raw if callable(getattr(raw, "predict_proba", None)) else None
    return LoadedModel(ref.name, ref.version, ref.source, ref.uri, model, proba)


def load_local(path: Path, warn: Callable[[str], None] | None = None) -> LoadedModel:
    """A pipeline saved with joblib (development only: it is a pickle; `warn` is told so)."""
    import joblib

    if not path.is_file():
        raise ModelLoadError(f"cannot load {path}: no such file")
    if warn is not None:
        warn(PICKLE_WARNING)
    try:
        with warnings.catch_warnings():
            # scikit-learn warns on a version mismatch; the prediction check below is what counts.
            warnings.simplefilter("ignore")
            estimator = joblib.load(path)  # noqa: S301 - the user asked for this file, and is warned
    except Exception as exc:
        raise ModelLoadError(f"cannot load {path}: {describe_exception(exc)}") from None
    if not callable(getattr(estimator, "predict", None)):
        raise ModelLoadError(f"cannot use {path}: {type(estimator).__name__} has no predict()")
    proba = estimator if callable(getattr(estimator, "predict_proba", None)) else None
    return LoadedModel(path.stem, None, f"file {path}", path.resolve().as_uri(), estimator, proba)


def predict_frame(model: LoadedModel, frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Predicted class and P(severe) per record, in input order."""
    import numpy as np

    try:
        classes = np.asarray(model.predictor.predict(frame)).reshape(-1)
        proba = model.proba_model.predict_proba(frame) if model.proba_model is not None else None
    except Exception as exc:
        raise ModelLoadError(
            f"{model.uri} ({model.source}) failed to predict: {describe_exception(exc)}"
        ) from None
    stray = [v for v in classes.tolist() if v not in (0, 1)]
    if stray:
        # A regressor or a mislabelled model: its numbers are not classes, so say so.
        raise ModelLoadError(
            f"{model.uri} ({model.source}) is not a severity classifier: it returned "
            f"{stray[0]!r} where a class label 0 or 1 was expected"
        )
    positive = _positive_column(model.proba_model, proba)
    rows = []
    for index, label in enumerate(classes):
        row: dict[str, Any] = {"record": index, "predicted_class": _plain(label)}
        row["probability_severe"] = (
            round(float(proba[index, positive]), 6)
            if positive is not None and proba is not None
            else None
        )
        rows.append(row)
    return rows


def _positive_column(estimator: Any, proba: Any) -> int | None:
    if proba is None:
        return None
    classes = list(getattr(estimator, "classes_", []))
    if POSITIVE_CLASS in classes:
        return classes.index(POSITIVE_CLASS)
    return proba.shape[1] - 1 if proba.ndim == 2 and proba.shape[1] == 2 else None


def _plain(value: Any) -> Any:
    """numpy scalars -> JSON-serialisable Python values."""
    return value.item() if hasattr(value, "item") else value
