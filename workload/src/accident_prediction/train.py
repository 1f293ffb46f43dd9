"""Train the model types, log each to MLflow and register one new version per type.

The pipeline registers; git promotes. Training creates versions and evidence tags only: with
`auto_transition_to_staging` it adds the new versions to the registry-state file as Staging
(the same edit `regops transition` makes), and never calls an MLflow stage API.

Nothing here prints: progress goes to the `progress` callback, the outcome is returned.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import joblib
import pandas as pd

from accident_prediction import models as model_lib
from accident_prediction import plots
from accident_prediction.config import Config
from accident_prediction.data import Splits, data_fingerprint, data_paths, feature_list, load_splits
from accident_prediction.errors import ConfigError, TrainingError
from accident_prediction.features import MODEL_TYPES, TARGET
from accident_prediction.metrics import baseline_scores, classification_metrics
from accident_prediction.report import comparison_frame, write_comparison
from accident_prediction.tracking import (
    TrackingTarget,
    mask_credentials,
    mask_credentials_in,
    resolve_tracking_uri,
)

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

Progress = Callable[[str], None]
STATE_FILE = "accident_prediction.yaml"  # where new models land in the registry state
SCORING = {"log_loss": "neg_log_loss"}  # sklearn scorer names that differ from ours
# skops refuses to load types it was not told to trust; these module roots are the libraries
# whose estimators we build. Anything else in a fitted pipeline is a surprise to stop on.
TRUSTED_ROOTS = ("numpy", "scipy", "sklearn", "xgboost", "lightgbm", "collections", "builtins")
EXTRA_REQUIREMENTS: dict[str, list[tuple[str, ...]]] = {
    "xgboost": [("xgboost", "xgboost-cpu")],
    "lightgbm": [("lightgbm",)],
}


@dataclass(frozen=True)
class TrainOptions:
    """What one `accident train` invocation asks for (empty model_types = the config's list)."""

    model_types: Sequence[str] = ()
    grid_search: bool = False
    sample: int | None = None  # at most this many rows in all, for quick runs
    max_trees: int | None = None  # cap n_estimators, for quick runs
    state_dir: Path = Path("registry-state")


@dataclass(frozen=True)
class ModelResult:
    """One trained model: its test metrics and where it went."""

    model_type: str
    metrics: Mapping[str, float]
    train_seconds: float
    model_path: Path
    params: Mapping[str, Any]
    cv_score: float | None = None
    registered_model: str | None = None
    version: str | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class TrainingReport:
    """The outcome of one training invocation."""

    group: str  # training_run_group, shared by every version registered here
    results: tuple[ModelResult, ...]
    comparison: pd.DataFrame
    comparison_path: Path
    last_training_path: Path
    baselines: Mapping[str, Mapping[str, float]]
    tracking: TrackingTarget | None = None
    # (model, version, state file, "Staging" or "alias challenger")
    staged: tuple[tuple[str, str, Path, str], ...] = field(default=())


def quiet_libraries() -> None:
    """Our progress lines are the output; MLflow's INFO logs and library chatter are not."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow  # noqa: F401  (it sets its loggers up on import: set the level after)

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="mlflow")


def train(
    config: Config,
    options: TrainOptions = TrainOptions(),  # noqa: B008 (frozen, so a safe default)
    *,
    progress: Progress = lambda _msg: None,
    environ: Mapping[str, str] | None = None,
) -> TrainingReport:
    """Fit, evaluate, save, log and register each requested model type; see the module doc."""
    model_types = _model_types(config, options)
    mlflow_on = bool(config.mlflow["enabled"])
    registering = mlflow_on and bool(config.mlflow.get("log_model", True))
    staging = config.auto_transition_to_staging and registering
    if staging:
        _check_state_dir(options.state_dir)
    tracking = (
        resolve_tracking_uri(config.mlflow.get("tracking_uri"), environ) if mlflow_on else None
    )
    if tracking is not None:
        # Before the data and the fitting: an unreachable server should fail in seconds.
        progress(f"MLflow tracking URI: {tracking.describe()}")
        _start_mlflow(tracking, str(config.mlflow["experiment_name"]))

    splits = load_splits(config, sample=options.sample)
    train_frame = splits.train_frame()
    context = _RunContext(
        config=config,
        options=options,
        splits=splits,
        group=_group_id(),
        fingerprint=data_fingerprint(train_frame),
        test_fingerprint=data_fingerprint(splits.X_test.assign(**{TARGET: splits.y_test})),
        git_commit=_git_commit(),
        feature_list=feature_list(train_frame),
        dataset=_training_dataset(train_frame, data_paths(config).train) if tracking else None,
    )
    progress(
        f"data: {len(splits.X_train):,} training rows, {len(splits.X_test):,} held-out test rows, "
        f"{splits.y_train.mean():.1%} severe; fingerprint {context.fingerprint[:12]}"
    )
    results = []
    for i, model_type in enumerate(model_types, 1):
        step = f"[{i}/{len(model_types)}] {model_type}"
        progress(f"{step}: fitting{' (grid search)' if options.grid_search else ''}...")
        result = _train_one(context, model_type, tracking, registering)
        results.append(result)
        where = (
            f"; registered {result.registered_model} v{result.version}" if result.version else ""
        )
        progress(
            f"{step}: roc_auc {result.metrics['roc_auc']:.4f}, f1 {result.metrics['f1']:.4f} "
            f"in {result.train_seconds:.1f} s{where}"
        )

    comparison = comparison_frame(
        (_row(r, splits, options) for r in results), config.primary_metric
    )
    metrics_dir = Path(config.data["data"]["metrics_dir"])
    comparison_path = write_comparison(comparison, metrics_dir / "model_comparison.csv")
    if tracking is not None and config.mlflow.get("log_artifacts", True):
        _log_to_runs([r.run_id for r in results if r.run_id], comparison_path, tracking)
    last_path = _write_last_training(metrics_dir, context, results, tracking)
    staged = _propose(options.state_dir, results, tracking) if staging else ()
    return TrainingReport(
        group=context.group,
        results=tuple(results),
        comparison=comparison,
        comparison_path=comparison_path,
        last_training_path=last_path,
        baselines=baseline_scores(splits.X_train, splits.y_train, splits.X_test, splits.y_test),
        tracking=tracking,
        staged=staged,
    )


@dataclass(frozen=True)
class _RunContext:
    config: Config
    options: TrainOptions
    splits: Splits
    group: str
    fingerprint: str
    test_fingerprint: str
    git_commit: str | None
    feature_list: Mapping[str, Any]
    dataset: Any = None  # the training rows as an MLflow dataset (when logging)


def _model_types(config: Config, options: TrainOptions) -> list[str]:
    wanted = list(dict.fromkeys(options.model_types or config.default_models))
    unknown = [t for t in wanted if t not in MODEL_TYPES]
    if unknown:
        raise ConfigError(
            f"unknown model type(s) {', '.join(unknown)}; choose from {', '.join(MODEL_TYPES)}"
        )
    return wanted


def _train_one(
    ctx: _RunContext, model_type: str, tracking: TrackingTarget | None, registering: bool
) -> ModelResult:
    pipeline, params, cv_score, seconds = _fit(ctx, model_type)
    s = ctx.splits
    proba = pipeline.predict_proba(s.X_test)[:, 1]
    metrics = classification_metrics(s.y_test, proba, weights=s.w_test)
    models_dir = Path(ctx.config.data["data"]["models_dir"])
    models_dir.mkdir(parents=True, exist_ok=True)
    model_path = models_dir / f"{model_type}_model.joblib"
    joblib.dump(pipeline, model_path)
    result = ModelResult(model_type, metrics, seconds, model_path, params, cv_score)
    if tracking is None:
        return result
    try:
        return _log_and_register(ctx, result, pipeline, proba, registering)
    except TrainingError:
        raise
    except Exception as exc:  # MLflow and its HTTP/DB layers raise many kinds; name the server
        raise TrainingError(
            f"{model_type}: MLflow at {mask_credentials(tracking.uri)} failed: {_message(exc)}"
        ) from exc


def _fit(ctx: _RunContext, model_type: str) -> tuple[Pipeline, dict[str, Any], float | None, float]:
    """Fit one model (or grid-search it); returns (pipeline, classifier params, cv score, s)."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    cfg, opts, s = ctx.config, ctx.options, ctx.splits
    settings = cfg.model_settings(model_type)
    seed = int(cfg.training["random_state"])
    n_jobs = int(cfg.training.get("n_jobs", -1))
    params = model_lib.cap_trees(settings.get("params") or {}, opts.max_trees)
    fit_params = {}
    if cfg.training.get("use_sample_weight", False):
        fit_params[f"{model_lib.CLF}__sample_weight"] = s.w_train.to_numpy()
    start = time.perf_counter()
    cv_score = None
    try:
        if opts.grid_search and settings.get("grid"):
            # Parallel over folds x candidates, one thread per fit: cores are not oversubscribed.
            inner = {"n_jobs": 1} if model_type != "logistic_regression" else {}
            base = model_lib.build_pipeline(
                model_type, {**params, **inner}, random_state=seed, n_jobs=1
            )
            metric = cfg.primary_metric
            search = GridSearchCV(
                base,
                model_lib.param_grid(model_lib.cap_trees(settings["grid"], opts.max_trees)),
                scoring=SCORING.get(metric, metric),
                cv=StratifiedKFold(
                    int(cfg.training.get("cv_folds", 3)), shuffle=True, random_state=seed
                ),
                n_jobs=n_jobs,
                refit=True,
            )
            search.fit(s.X_train, s.y_train, **fit_params)
            pipeline = search.best_estimator_
            if inner:  # back to the configured threads, for prediction
                pipeline.set_params(**{f"{model_lib.CLF}__n_jobs": params.get("n_jobs", n_jobs)})
            cv_score = float(search.best_score_)
            if metric == "log_loss":
                cv_score = -cv_score
        else:
            pipeline = model_lib.build_pipeline(
                model_type, params, random_state=seed, n_jobs=n_jobs
            )
            pipeline.fit(s.X_train, s.y_train, **fit_params)
    except (ValueError, TypeError) as exc:
        raise TrainingError(
            f"{cfg.where('models', model_type)}: {model_type} could not be trained: {exc}"
        ) from exc
    seconds = time.perf_counter() - start
    clf_params = pipeline.named_steps[model_lib.CLF].get_params()
    return pipeline, {k: v for k, v in clf_params.items() if v is not None}, cv_score, seconds


def _start_mlflow(tracking: TrackingTarget, experiment: str) -> None:
    import mlflow

    mlflow.set_tracking_uri(tracking.uri)
    try:
        mlflow.set_experiment(experiment)
    except Exception as exc:
        raise TrainingError(
            f"cannot use MLflow at {mask_credentials(tracking.uri)}: {_message(exc)}"
        ) from exc


def _log_and_register(
    ctx: _RunContext, result: ModelResult, pipeline: Pipeline, proba: Any, registering: bool
) -> ModelResult:
    import mlflow

    cfg, opts, s = ctx.config, ctx.options, ctx.splits
    model_type = result.model_type
    name = cfg.registered_model_name(model_type)
    run_tags = {
        "model_type": model_type,
        "training_run_group": ctx.group,
        "data_fingerprint": ctx.fingerprint,
        "grid_search": str(opts.grid_search).lower(),
    }
    with mlflow.start_run(run_name=f"{model_type}-{ctx.group}", tags=run_tags) as run:
        mlflow.log_params(_run_params(ctx, result))
        extra = {"train_seconds": result.train_seconds}
        if result.cv_score is not None:
            extra[f"cv_{cfg.primary_metric}"] = result.cv_score
        mlflow.log_metrics({**result.metrics, **extra})
        mlflow.log_input(ctx.dataset, context="training")
        if cfg.mlflow.get("log_artifacts", True):
            with tempfile.TemporaryDirectory() as tmp:
                _write_artifacts(Path(tmp), ctx, result, pipeline, proba)
                mlflow.log_artifacts(tmp)
        if not registering:
            return _with(result, run_id=run.info.run_id)
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            signature=_signature(pipeline, s),
            input_example=s.X_train.dropna().head(3),
            pip_requirements=_pip_requirements(model_type),
            skops_trusted_types=_trusted_types(pipeline, s),
        )
    version = mlflow.register_model(
        info.model_uri, name, tags=_version_tags(ctx, result, run.info.run_id)
    )
    return _with(
        result, registered_model=name, version=str(version.version), run_id=run.info.run_id
    )


def _training_dataset(frame: pd.DataFrame, source: Path) -> Any:
    """The training rows as an MLflow dataset, built once for every run: its schema inference
    scans each row (0.5-2 s here), and all the models are trained on the same rows."""
    from mlflow.data.pandas_dataset import from_pandas

    return from_pandas(frame, source=str(source), targets=TARGET, name="nassCDS-train")


def _version_tags(ctx: _RunContext, result: ModelResult, run_id: str) -> dict[str, str]:
    """Evidence on the version: what the gates and the reconciler read back."""
    tags = {
        "model_type": result.model_type,
        "run_id": run_id,
        "data_fingerprint": ctx.fingerprint,
        "test_data_fingerprint": ctx.test_fingerprint,
        "training_run_group": ctx.group,
        "train_rows": str(len(ctx.splits.X_train)),
        "grid_search": str(ctx.options.grid_search).lower(),
    }
    if ctx.git_commit:
        tags["git_commit"] = ctx.git_commit
    tags.update({f"metric.{k}": f"{v:.6f}" for k, v in result.metrics.items()})
    return tags


def _run_params(ctx: _RunContext, result: ModelResult) -> dict[str, Any]:
    cfg, opts = ctx.config, ctx.options
    split = cfg.data["split"]
    params: dict[str, Any] = {f"clf.{k}": v for k, v in sorted(result.params.items())}
    params.update(
        model_type=result.model_type,
        train_rows=len(ctx.splits.X_train),
        test_rows=len(ctx.splits.X_test),
        sample=opts.sample,
        max_trees=opts.max_trees,
        test_size=split["test_size"],
        split_random_state=split["random_state"],
        use_sample_weight=bool(cfg.training.get("use_sample_weight", False)),
        grid_search=opts.grid_search,
    )
    return params


def _write_artifacts(
    out: Path, ctx: _RunContext, result: ModelResult, pipeline: Pipeline, proba: Any
) -> None:
    s, title = ctx.splits, result.model_type
    (out / "plots").mkdir()
    (out / "data").mkdir()
    plots.confusion_matrix_png(
        s.y_test, (proba >= 0.5).astype(int), out / "plots" / "confusion_matrix.png", title
    )
    plots.roc_curve_png(s.y_test, proba, out / "plots" / "roc_curve.png", title)
    importance = model_lib.feature_importance(pipeline)
    pd.DataFrame(importance, columns=["feature", "importance"]).to_csv(
        out / "feature_importance.csv", index=False, lineterminator="\n"
    )
    plots.feature_importance_png(importance, out / "plots" / "feature_importance.png", title)
    (out / "data" / "feature_list.json").write_text(json.dumps(ctx.feature_list, indent=2) + "\n")
    (out / "encoders.json").write_text(json.dumps(model_lib.encoders(pipeline), indent=2) + "\n")
    (out / "metrics.json").write_text(json.dumps(dict(result.metrics), indent=2) + "\n")


def _signature(pipeline: Pipeline, s: Splits) -> Any:
    from mlflow.models import infer_signature

    # Rows without missing values: every column comes out `required`, so a record lacking one
    # is rejected by pyfunc schema enforcement (a missing yearVeh *value* is still accepted).
    example = s.X_train.dropna().head(500)
    return infer_signature(example, pipeline.predict(example))


def _trusted_types(pipeline: Pipeline, s: Splits) -> list[str]:
    """The types skops must be told to trust to load this pipeline, checked against our libs.

    They follow from the estimator classes, not from the size of the fit, so a miniature copy
    (2 trees, 200 rows) is serialised to find them: dumping a full random forest twice cost
    seconds. Should the two ever differ, log_model refuses with the missing type's name.
    """
    import skops.io
    from sklearn.base import clone

    mini = clone(pipeline)
    if "n_estimators" in mini.named_steps[model_lib.CLF].get_params():
        mini.set_params(**{f"{model_lib.CLF}__n_estimators": 2})
    mini.fit(s.X_train.head(200), s.y_train.head(200))
    types = sorted(skops.io.get_untrusted_types(data=skops.io.dumps(mini)))
    strange = [t for t in types if t.split(".", 1)[0] not in TRUSTED_ROOTS]
    if strange:
        raise TrainingError(f"the fitted pipeline holds unexpected types: {', '.join(strange)}")
    return types


def _pip_requirements(model_type: str) -> list[str]:
    """Pinned requirements of the logged model, read from the installed distributions.

    Given explicitly: MLflow's inference runs a subprocess that loads the model (about 3 s per
    model) and, in a dev venv, picks up the test tools while missing the booster packages.
    """
    wanted: list[tuple[str, ...]] = [("mlflow",), ("scikit-learn",), ("skops",), ("pandas",)]
    wanted += [("numpy",), ("scipy",)]
    wanted += EXTRA_REQUIREMENTS.get(model_type, [])
    pins = []
    for candidates in wanted:
        for dist in candidates:
            try:
                pins.append(f"{dist}=={metadata.version(dist)}")
                break
            except metadata.PackageNotFoundError:
                continue
    return pins


def _log_to_runs(run_ids: Sequence[str], path: Path, tracking: TrackingTarget) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking.uri)
    try:
        for run_id in run_ids:
            client.log_artifact(run_id, str(path))
    except Exception as exc:
        raise TrainingError(
            f"cannot log {path.name} to MLflow at {mask_credentials(tracking.uri)}: {_message(exc)}"
        ) from exc


def _write_last_training(
    metrics_dir: Path,
    ctx: _RunContext,
    results: Sequence[ModelResult],
    tracking: TrackingTarget | None,
) -> Path:
    """data/metrics/last_training.json (what `--all-new` gates) and scores.json (for DVC)."""
    metrics_dir.mkdir(parents=True, exist_ok=True)
    manifest = {
        "training_run_group": ctx.group,
        "tracking_uri": mask_credentials(tracking.uri) if tracking else None,
        "git_commit": ctx.git_commit,
        "data_fingerprint": ctx.fingerprint,
        "models": [
            {
                "model_type": r.model_type,
                "registered_model": r.registered_model,
                "version": r.version,
                "run_id": r.run_id,
            }
            for r in results
        ],
    }
    path = metrics_dir / "last_training.json"
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    scores = {r.model_type: {k: round(v, 6) for k, v in r.metrics.items()} for r in results}
    (metrics_dir / "scores.json").write_text(json.dumps(scores, indent=2) + "\n", encoding="utf-8")
    return path


def _check_state_dir(state_dir: Path) -> None:
    """Fail before training, not after registering, if the state cannot be edited."""
    if not state_dir.is_dir():
        raise ConfigError(
            f"auto_transition_to_staging is on but the state directory {state_dir} does not "
            "exist (pass --state-dir)"
        )
    try:
        import regops.api  # noqa: F401
    except ImportError as exc:
        raise TrainingError(f"auto_transition_to_staging needs regops.api: {exc}") from exc


def _propose(
    state_dir: Path, results: Sequence[ModelResult], tracking: TrackingTarget | None
) -> tuple[tuple[str, str, Path, str], ...]:
    """Add each new version to the desired state as Staging, or as the `challenger` alias
    when the state is alias-only (`policy.use_stages: false`, Unity Catalog): a file edit
    that git reviews."""
    from accident_prediction.model_source import CHALLENGER_ALIAS, stages_supported
    from regops.api import prepare_edit, stages_in_use, write_edit
    from regops.errors import RegopsError

    supported = stages_supported(tracking.uri if tracking is not None else "")
    stages = stages_in_use(state_dir, stages_supported=supported)
    edit: dict[str, str] = {"stage": "Staging"} if stages else {"alias": CHALLENGER_ALIAS}
    role = "Staging" if stages else f"alias {CHALLENGER_ALIAS}"
    staged = []
    for r in results:
        if r.registered_model and r.version:
            try:
                edited = prepare_edit(
                    state_dir, r.registered_model, r.version, new_model_file=STATE_FILE,
                    stages_supported=supported, **edit,
                )  # fmt: skip
                path = write_edit(edited)
            except RegopsError as exc:
                raise TrainingError(
                    f"{r.registered_model} v{r.version} is registered but could not be added "
                    f"to {state_dir} as {role}: {exc}"
                ) from exc
            staged.append((r.registered_model, r.version, path, role))
    return tuple(staged)


def _row(result: ModelResult, splits: Splits, options: TrainOptions) -> dict[str, Any]:
    return {
        "model_type": result.model_type,
        "registered_model": result.registered_model,
        "version": result.version,
        "run_id": result.run_id,
        **result.metrics,
        "train_seconds": round(result.train_seconds, 3),
        "train_rows": len(splits.X_train),
        "test_rows": len(splits.X_test),
        "grid_search": options.grid_search,
        "cv_score": result.cv_score,
    }


def _with(result: ModelResult, **changes: Any) -> ModelResult:
    return replace(result, **changes)


def _group_id() -> str:
    """Sortable and unique: UTC time of the invocation plus a random suffix."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{uuid.uuid4().hex[:8]}"


def _git_commit() -> str | None:
    """HEAD of the repository we run in (or CI's GITHUB_SHA); None outside git."""
    from regops.api import current_commit

    return current_commit(Path.cwd()) or os.environ.get("GITHUB_SHA") or None


def _message(exc: BaseException) -> str:
    """The first line of an exception's message (MLflow's can run to pages)."""
    text = mask_credentials_in(str(getattr(exc, "message", None) or exc).strip())
    return text.splitlines()[0] if text else type(exc).__name__
