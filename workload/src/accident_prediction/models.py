"""The four model types, each an sklearn Pipeline: preprocessing (`pre`) then classifier (`clf`).

The preprocessing step travels with the model, so every caller passes the raw FEATURES columns:
categoricals are imputed (most frequent) and one-hot encoded (unknown levels ignored), numerics
imputed (median) and, for logistic regression only, standardised.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sklearn.base import ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from accident_prediction.features import CATEGORICAL, NUMERIC

TREE_MODELS = ("xgboost", "lightgbm", "random_forest")
CLF = "clf"  # name of the classifier step: grid keys are prefixed with "clf__"


def build_preprocessor(model_type: str) -> ColumnTransformer:
    """Impute + one-hot the categoricals; impute (+ scale for linear models) the numerics."""
    numeric_steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median"))]
    if model_type not in TREE_MODELS:
        numeric_steps.append(("scale", StandardScaler()))
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
    return ColumnTransformer(
        [("cat", categorical, CATEGORICAL), ("num", Pipeline(numeric_steps), NUMERIC)],
        verbose_feature_names_out=True,
    )


def base_classifier(model_type: str, *, random_state: int, n_jobs: int) -> ClassifierMixin:
    """The classifier with the pipeline's fixed settings (seed, threads, quiet logs)."""
    if model_type == "xgboost":
        from xgboost import XGBClassifier

        return XGBClassifier(
            random_state=random_state, n_jobs=n_jobs, eval_metric="logloss", verbosity=0
        )
    if model_type == "lightgbm":
        from lightgbm import LGBMClassifier

        return LGBMClassifier(random_state=random_state, n_jobs=n_jobs, verbose=-1)
    if model_type == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(random_state=random_state, n_jobs=n_jobs)
    if model_type == "logistic_regression":
        from sklearn.linear_model import LogisticRegression

        # lbfgs is single-threaded; no n_jobs to pass.
        return LogisticRegression(random_state=random_state, max_iter=1000)
    raise ValueError(f"unknown model type {model_type!r}")


def build_pipeline(
    model_type: str, params: Mapping[str, Any], *, random_state: int, n_jobs: int
) -> Pipeline:
    """An unfitted Pipeline of one type with the configured classifier parameters."""
    clf = base_classifier(model_type, random_state=random_state, n_jobs=n_jobs)
    clf.set_params(**dict(params))
    return Pipeline([("pre", build_preprocessor(model_type)), (CLF, clf)])


def unknown_params(model_type: str, params: Iterable[str]) -> list[str]:
    """Names among `params` that the classifier of `model_type` does not accept."""
    known = set(base_classifier(model_type, random_state=0, n_jobs=1).get_params())
    if model_type in ("xgboost", "lightgbm"):
        # Both accept any extra keyword as a booster parameter, so get_params() is not the
        # whole story; still, a name outside it is almost always a typo worth reporting.
        known |= _BOOSTER_EXTRAS[model_type]
    return [p for p in params if p not in known]


def param_grid(grid: Mapping[str, list[Any]]) -> dict[str, list[Any]]:
    """Config grid -> GridSearchCV grid on the pipeline (`max_depth` -> `clf__max_depth`)."""
    return {f"{CLF}__{name}": list(values) for name, values in grid.items()}


def cap_trees(values: Mapping[str, Any], max_trees: int | None) -> dict[str, Any]:
    """Limit `n_estimators` (a value or a grid list) for quick runs; other keys unchanged."""
    out = dict(values)
    if max_trees is None or "n_estimators" not in out:
        return out
    current = out["n_estimators"]
    if isinstance(current, list):
        out["n_estimators"] = sorted({min(int(v), max_trees) for v in current})
    else:
        out["n_estimators"] = min(int(current), max_trees)
    return out


def feature_names(pipeline: Pipeline) -> list[str]:
    """Names of the columns the classifier sees (after one-hot encoding)."""
    return [str(n) for n in pipeline.named_steps["pre"].get_feature_names_out()]


def feature_importance(pipeline: Pipeline) -> list[tuple[str, float]]:
    """(feature, importance), largest first: impurity/gain for trees, |coef| for logistic."""
    clf = pipeline.named_steps[CLF]
    if hasattr(clf, "feature_importances_"):
        values = [float(v) for v in clf.feature_importances_]
    else:
        values = [abs(float(v)) for v in clf.coef_[0]]
    pairs = list(zip(feature_names(pipeline), values, strict=True))
    return sorted(pairs, key=lambda p: (-p[1], p[0]))


def encoders(pipeline: Pipeline) -> dict[str, Any]:
    """What the fitted preprocessing learnt (category levels, fill values, scaling): an artifact."""
    pre = pipeline.named_steps["pre"]
    cat = pre.named_transformers_["cat"]
    num = pre.named_transformers_["num"]
    out: dict[str, Any] = {
        "categorical": {
            col: {
                "fill": str(fill),
                "levels": [str(v) for v in levels],
            }
            for col, fill, levels in zip(
                CATEGORICAL,
                cat.named_steps["impute"].statistics_,
                cat.named_steps["onehot"].categories_,
                strict=True,
            )
        },
        "numeric": {
            col: {"fill": float(fill)}
            for col, fill in zip(NUMERIC, num.named_steps["impute"].statistics_, strict=True)
        },
    }
    if "scale" in num.named_steps:
        scaler = num.named_steps["scale"]
        for col, mean, scale in zip(NUMERIC, scaler.mean_, scaler.scale_, strict=True):
            out["numeric"][col].update(mean=float(mean), scale=float(scale))
    return out


# Booster parameters the sklearn wrappers take as **kwargs (not listed by get_params()).
_BOOSTER_EXTRAS = {
    "xgboost": {"eta", "lambda", "alpha", "max_leaves", "max_bin", "min_split_loss"},
    "lightgbm": {
        "bagging_fraction", "bagging_freq", "feature_fraction", "lambda_l1", "lambda_l2",
        "min_data_in_leaf", "max_bin", "min_gain_to_split", "extra_trees", "path_smooth",
    },
}  # fmt: skip
