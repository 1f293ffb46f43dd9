"""The serving half as functions: what `accident validate`, `smoke-test` and `predict` call.

A Session is the config and a client on the resolved registry. The gates evaluate and
record each version (gates.py); prediction loads one version or a local pipeline
(model_source.py, predict.py). Errors are the workload's (errors.py); the commands only
parse, call these, and render.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from accident_prediction.errors import ServingError

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

    from accident_prediction.config import Config
    from accident_prediction.gates import GateResult
    from accident_prediction.predict import LoadedModel

DEFAULT_EXAMPLES = "examples/test_features.json"
LAST_TRAINING = "last_training.json"

# How `accident predict` picks its model (the option that asked for it).
MODEL_PATH = "--model-path"
BEST_MODEL = "--use-best-model"
MLFLOW_PRODUCTION = "--use-mlflow-production"
MODEL_NAME = "--model-name"


@dataclass
class Session:
    """What every serving command needs: the config and a client on the resolved registry."""

    config: Config
    client: MlflowClient
    tracking_uri: str

    state_dir: Path = Path("registry-state")

    @property
    def stages(self) -> bool:
        """Whether to read stages: not on Unity Catalog, nor when the state is alias-only
        (`policy.use_stages: false`): then Production means the `champion` alias."""
        from accident_prediction.model_source import stages_supported
        from regops.api import stages_in_use

        return stages_in_use(self.state_dir, stages_supported=stages_supported(self.tracking_uri))


def open_session(config_path: Path) -> Session:
    """Read `.env` and the config, resolve the tracking URI, and open a client on it."""
    import mlflow
    from mlflow import MlflowClient

    from accident_prediction.config import load_config
    from accident_prediction.tracking import http_defaults, load_dotenv_file, resolve_tracking_uri

    load_dotenv_file()
    http_defaults()  # an unreachable registry fails in seconds, not minutes
    config = load_config(config_path)
    target = resolve_tracking_uri(config.mlflow.get("tracking_uri"))
    mlflow.set_tracking_uri(target.uri)
    return Session(config, MlflowClient(target.uri), target.uri)


@contextmanager
def quiet_mlflow() -> Iterator[None]:
    """Keep stdout/stderr to our own output: no progress bars, INFO logs or stage warnings."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            # Stages are read on purpose (they are the registry's state); sklearn/pandas
            # deprecation chatter is not the user's business either.
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", category=UserWarning, module="mlflow")
            # sklearn's "precision is ill-defined" on a one-class weak model: the report says it.
            warnings.filterwarnings("ignore", category=UserWarning, module="sklearn")
            yield
    finally:
        logger.setLevel(level)


# --------------------------------------------------------------------------- gates


def gate_targets(
    session: Session, model_name: str | None, version: str | None, all_new: bool
) -> list[tuple[str, str]]:
    """(model, version) pairs: the one named, or every version of the latest training run
    (of `model_name` only, if given)."""
    if not all_new:
        return [(str(model_name), str(version))]
    pairs = latest_training(session)
    if model_name:
        pairs = [p for p in pairs if p[0] == model_name]
    if not pairs:
        only = f" of {model_name}" if model_name else ""
        raise ServingError(f"the latest training run registered no versions{only}")
    return pairs


def latest_training(session: Session) -> list[tuple[str, str]]:
    """The versions the latest `accident train` registered (its manifest, else the tags)."""
    from accident_prediction.model_source import MODEL_PREFIX, latest_training_versions

    metrics_dir = Path(session.config.data.get("data", {}).get("metrics_dir", "data/metrics"))
    base = session.config.registry.get("registered_model_name")
    prefix = f"{base}_" if base else MODEL_PREFIX
    return latest_training_versions(session.client, metrics_dir / LAST_TRAINING, prefix)


def validate_versions(
    session: Session, pairs: list[tuple[str, str]], sample: int | None = None
) -> list[GateResult]:
    """Gate each version on the held-out test split and record the verdict on it."""
    from accident_prediction.data import data_fingerprint, load_splits
    from accident_prediction.features import TARGET
    from accident_prediction.gates import ValidationSettings, record_result, validate_version

    settings = ValidationSettings.from_config(session.config.data)
    splits = load_splits(session.config, sample=sample)
    eval_data = splits.X_test.assign(**{TARGET: splits.y_test.to_numpy()})
    fingerprint = data_fingerprint(eval_data)
    results = []
    for name, number in pairs:
        result = validate_version(
            session.client, name, number, eval_data, settings,
            stages=session.stages, data_fingerprint=fingerprint,
        )  # fmt: skip
        record_result(session.client, result)
        results.append(result)
    return results


def smoke_test_versions(
    session: Session, pairs: list[tuple[str, str]], examples: Path | None = None
) -> list[GateResult]:
    """Load each version as a pyfunc here, exercise it, and record the verdict on it."""
    from accident_prediction.gates import record_result, smoke_test_version
    from accident_prediction.inputs import load_records, repo_file, to_frame

    frame = to_frame(load_records(examples or repo_file(DEFAULT_EXAMPLES)))
    results = []
    for name, number in pairs:
        result = smoke_test_version(session.client, name, number, frame)
        record_result(session.client, result)
        results.append(result)
    return results


# --------------------------------------------------------------------------- predict


def read_features(path: Path) -> pd.DataFrame:
    """The records of a features file (.json: one or a list; .csv), checked, as a frame."""
    from accident_prediction.inputs import load_records, to_frame

    return to_frame(load_records(path))


def load_model(
    how: str,
    config_path: Path,
    *,
    model_name: str | None = None,
    stage: str | None = None,
    version: str | None = None,
    alias: str | None = None,
    model_path: Path | None = None,
    warn: Callable[[str], None] | None = None,
) -> LoadedModel:
    """The model `how` (MODEL_PATH, BEST_MODEL, MLFLOW_PRODUCTION, MODEL_NAME) selects."""
    from accident_prediction.predict import load_local

    if how == MODEL_PATH and model_path is not None:
        return load_local(model_path, warn=warn)
    return _from_registry(open_session(config_path), how, model_name, stage, version, alias)


def _from_registry(
    session: Session,
    how: str,
    model_name: str | None,
    stage: str | None,
    version: str | None,
    alias: str | None,
) -> LoadedModel:
    from accident_prediction import model_source as src
    from accident_prediction.gates import LOWER_IS_BETTER, mlflow_metric_name
    from accident_prediction.predict import load_registered

    client, stages = session.client, session.stages
    if how == BEST_MODEL:
        base = session.config.registry.get("registered_model_name")
        prefix = f"{base}_" if base else src.MODEL_PREFIX
        metric = session.config.primary_metric
        tags = (f"validation.{mlflow_metric_name(metric)}", f"metric.{metric}")
        ref = src.best_production(
            client, tags, prefix=prefix, stages=stages,
            higher_is_better=mlflow_metric_name(metric) not in LOWER_IS_BETTER,
        )  # fmt: skip
    elif how == MLFLOW_PRODUCTION or not (stage or version or alias):
        name = model_name or session.config.registered_model_name("xgboost")
        ref = src.production_or_champion(client, name, stages=stages)
    elif version:
        ref = src.by_version(client, str(model_name), version)
    elif stage:
        ref = src.by_stage(client, str(model_name), stage, stages=stages)
    else:
        ref = src.by_alias(client, str(model_name), str(alias))
    return load_registered(ref)


def write_output(path: Path, text: str) -> None:
    """Write the predictions; a path that cannot be written is the user's error, not a bug."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ServingError(f"cannot write {path}: {exc.strerror or exc}") from None
