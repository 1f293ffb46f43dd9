"""Builders for the gate and predict tests: small real models in a real sqlite registry.

The session trains with the project's own `train` (small sample, few trees), adds the
models the story needs (a weak one on shuffled labels, broken ones) with the same
`mlflow.sklearn.log_model` call, and keeps the sqlite file as a template. Each test gets
a copy: creating an MLflow sqlite schema takes 3-5 s, copying the file 30 ms.
"""

from __future__ import annotations

import copy
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support.paths import ROOT

REPO = ROOT
EXAMPLES = REPO / "examples" / "test_features.json"
SAMPLE = 4000  # rows in all (80/20): enough for roc_auc well above the 0.70 floor
MAX_TREES = 30

LR = "Accident_Prediction_Logistic_Regression"
XGB = "Accident_Prediction_XGBoost"
BROKEN = "Accident_Prediction_Broken"  # v1 no signature, v2 regressor, v3 corrupted files


@dataclass
class Template:
    """The session's trained registry, copied per test."""

    root: Path
    db: Path
    config_data: dict[str, Any]
    joblib_paths: dict[str, Path]
    versions: dict[str, str] = field(default_factory=dict)  # role -> "NAME/N"


@dataclass
class Registry:
    """A test's own registry (a copy of the template) and the config pointing at it."""

    uri: str
    client: Any  # MlflowClient
    config_path: Path
    template: Template

    def tags(self, name: str, version: str) -> dict[str, str]:
        return dict(self.client.get_model_version(name, version).tags)

    def set_stage(self, name: str, version: str, stage: str) -> None:
        """Stand in for the reconciler: the pipeline itself never sets stages."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            self.client.transition_model_version_stage(name, version, stage)

    def set_alias(self, name: str, version: str, alias: str) -> None:
        self.client.set_registered_model_alias(name, alias, version)

    def set_tag(self, name: str, version: str, key: str, value: str) -> None:
        self.client.set_model_version_tag(name, version, key, value)


def write_config(data: dict[str, Any], path: Path, tracking_uri: str) -> Path:
    """The project config with its tracking URI pointed at a test registry."""
    out = copy.deepcopy(data)
    out["mlflow"]["tracking_uri"] = tracking_uri
    path.write_text(yaml.safe_dump(out, sort_keys=False), encoding="utf-8")
    return path


def build_template(root: Path) -> Template:
    """Train LR + XGBoost with `train`, then add the weak and broken versions."""
    import mlflow

    from accident_prediction.config import load_config
    from accident_prediction.data import load_splits
    from accident_prediction.train import TrainOptions, train

    base = yaml.safe_load((REPO / "config" / "model_config.yaml").read_text(encoding="utf-8"))
    data = copy.deepcopy(base)
    for key in ("raw_path", "processed_path", "features_dir", "metrics_dir", "models_dir"):
        data["data"][key] = str(root / data["data"][key])
    data["mlflow"]["log_artifacts"] = False  # plots cost seconds and prove nothing here
    db = root / "mlflow.db"
    config = load_config(write_config(data, root / "config.yaml", f"sqlite:///{db}"))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = train(
            config,
            TrainOptions(["logistic_regression", "xgboost"], sample=SAMPLE, max_trees=MAX_TREES),
            environ={},  # the config's URI, whatever the developer's shell says
        )
        template = Template(root, db, data, {r.model_type: r.model_path for r in report.results})
        for r in report.results:
            template.versions[r.model_type] = f"{r.registered_model}/{r.version}"

        splits = load_splits(config, sample=SAMPLE)
        mlflow.set_tracking_uri(f"sqlite:///{db}")
        mlflow.set_experiment(str(data["mlflow"]["experiment_name"]))
        weak = fit_pipeline("logistic_regression", splits.X_train, shuffled(splits.y_train))
        template.versions["weak"] = log_pipeline(weak, splits.X_train, LR)
        good = fit_pipeline("logistic_regression", splits.X_train, splits.y_train)
        template.versions["no_signature"] = log_pipeline(
            good, splits.X_train, BROKEN, signature=False
        )
        template.versions["regressor"] = log_pipeline(
            fit_regressor(splits.X_train, splits.y_train), splits.X_train, BROKEN
        )
        template.versions["corrupted"] = register_corrupted(root, BROKEN)
    return template


def copy_registry(template: Template, tmp_path: Path) -> Registry:
    """A private copy of the template registry plus a config file that points at it."""
    import mlflow
    from mlflow import MlflowClient

    db = tmp_path / "mlflow.db"
    shutil.copyfile(template.db, db)
    uri = f"sqlite:///{db}"
    mlflow.set_tracking_uri(uri)
    config_path = write_config(template.config_data, tmp_path / "model_config.yaml", uri)
    return Registry(uri, MlflowClient(uri), config_path, template)


def fit_pipeline(model_type: str, X: Any, y: Any) -> Any:
    from accident_prediction.models import build_pipeline

    params = {"max_iter": 1000} if model_type == "logistic_regression" else {"n_estimators": 20}
    return build_pipeline(model_type, params, random_state=0, n_jobs=1).fit(X, y)


def fit_regressor(X: Any, y: Any) -> Any:
    """A 'classifier' that outputs scores, not labels: the smoke test must catch it."""
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import Pipeline

    from accident_prediction.models import build_preprocessor

    pipe = Pipeline(
        [("pre", build_preprocessor("logistic_regression")), ("clf", LinearRegression())]
    )
    return pipe.fit(X, y)


def shuffled(y: Any) -> Any:
    """The labels in random order: a model trained on them has learnt nothing."""
    return y.sample(frac=1.0, random_state=7).to_numpy()


def log_pipeline(pipeline: Any, X: Any, name: str, *, signature: bool = True) -> str:
    """Log and register like training does (skops, signature, input example); "NAME/N"."""
    import mlflow
    import skops.io
    from mlflow.models import infer_signature

    example = X.dropna().head(200)
    with mlflow.start_run(run_name=f"test {name}"):
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            signature=infer_signature(example, pipeline.predict(example)) if signature else None,
            input_example=example.head(3) if signature else None,
            # Explicit requirements: inferring them loads the model in a subprocess (~3 s).
            pip_requirements=["scikit-learn", "skops"],
            skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(pipeline)),
            registered_model_name=name,
        )
    return f"{name}/{info.registered_model_version}"


def register_corrupted(root: Path, name: str) -> str:
    """A version whose model files are damaged: a copy of a logged model minus its weights."""
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient()
    good = client.get_model_version(BROKEN, "1")
    local = Path(mlflow.artifacts.download_artifacts(good.source, dst_path=str(root / "dl")))
    damaged = root / "corrupted-model"
    shutil.copytree(local, damaged)
    for weights in damaged.glob("model.*"):
        weights.unlink()  # model.skops / model.pkl: the MLmodel file still points at it
    with mlflow.start_run(run_name="test corrupted") as run:
        mv = client.create_model_version(name, str(damaged), run_id=run.info.run_id)
    return f"{name}/{mv.version}"


def split_ref(ref: str) -> tuple[str, str]:
    name, version = ref.rsplit("/", 1)
    return name, version
