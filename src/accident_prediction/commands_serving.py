"""`accident validate`, `accident smoke-test`, `accident predict`: thin commands.

Each one resolves the config and tracking URI, calls the library (gates, model_source,
predict), prints, and returns an exit code through click. Known errors become
`Error: <message>` and exit 1, never a traceback.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from accident_prediction.commands_train import config_option
from accident_prediction.errors import TrainingError
from accident_prediction.serving_errors import ServingError

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from accident_prediction.config import Config

F = TypeVar("F", bound=Callable[..., Any])
TRUE_VALUES = {"1", "true", "yes", "on"}
DEFAULT_EXAMPLES = "examples/test_features.json"
LAST_TRAINING = "last_training.json"


# --------------------------------------------------------------------------- shared plumbing


def _user_errors(command: F) -> F:
    """Known failures -> `Error: message`, exit 1 (click.ClickException), no traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return command(*args, **kwargs)
        except (ServingError, TrainingError) as exc:
            raise click.ClickException(str(exc)) from None
        except MlflowException as exc:
            # e.g. an unreachable server or a refused write: say which registry.
            raise click.ClickException(f"registry error: {exc.message}") from None

    return wrapper  # type: ignore[return-value]


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


def _session(config_path: Path) -> Session:
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
def _quiet_mlflow() -> Iterator[None]:
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


def _targets(
    session: Session, model_name: str | None, version: str | None, all_new: bool
) -> list[tuple[str, str]]:
    """(model, version) pairs: the one named, or every version of the latest training run."""
    if all_new:
        if version:
            raise click.UsageError("--all-new and --version are exclusive")
        pairs = _latest_training(session)
        if model_name:
            pairs = [p for p in pairs if p[0] == model_name]
        if not pairs:
            only = f" of {model_name}" if model_name else ""
            raise ServingError(f"the latest training run registered no versions{only}")
        return pairs
    if not model_name or not version:
        raise click.UsageError("give --model-name NAME --version N, or --all-new")
    return [(model_name, version)]


def _latest_training(session: Session) -> list[tuple[str, str]]:
    from accident_prediction.model_source import MODEL_PREFIX, latest_training_versions

    metrics_dir = Path(session.config.data.get("data", {}).get("metrics_dir", "data/metrics"))
    base = session.config.registry.get("registered_model_name")
    prefix = f"{base}_" if base else MODEL_PREFIX
    return latest_training_versions(session.client, metrics_dir / LAST_TRAINING, prefix)


def _gate_options(command: F) -> F:
    for option in reversed(
        [
            click.option(
                "--model-name", help="Registered model, e.g. Accident_Prediction_XGBoost."
            ),
            click.option("--version", help="Version number to gate."),
            click.option(
                "--all-new",
                is_flag=True,
                help="Every version registered by the latest training run.",
            ),
            click.option(
                "--keep-going",
                is_flag=True,
                help="Exit 0 when a gate fails (the verdict is still recorded on the "
                "version); only a gate that could not run exits non-zero (1).",
            ),
            config_option,
        ]
    ):
        command = option(command)
    return command


# A gate failed (its verdict is recorded on the version): not the same as "could not run" (1).
EXIT_GATE_FAILED = 2


def _report(results: list[Any], keep_going: bool) -> None:
    for result in results:
        click.echo(result.summary())
    failed = [f"{r.name} v{r.version}" for r in results if not r.passed]
    if failed:
        click.echo(f"{len(failed)} of {len(results)} failed: {', '.join(failed)}", err=True)
        if not keep_going:
            raise click.exceptions.Exit(EXIT_GATE_FAILED)


# --------------------------------------------------------------------------- validate


@click.command("validate")
@_gate_options
@click.option("--sample", type=int, default=None, help="Evaluate on at most N test rows (dev).")
@_user_errors
def validate_command(
    model_name: str | None,
    version: str | None,
    all_new: bool,
    keep_going: bool,
    config_path: Path,
    sample: int | None,
) -> None:
    """Gate versions on the held-out test split: config floors and the current champion.

    Writes validation_status=passed|failed, validation.<metric> figures and
    validation/report.json on each version. Exits 2 if any failed its gate, 1 if
    the gate could not run (registry, data, config).
    """
    from accident_prediction.data import data_fingerprint, load_splits
    from accident_prediction.features import TARGET
    from accident_prediction.gates import ValidationSettings, record_result, validate_version

    with _quiet_mlflow():
        session = _session(config_path)
        pairs = _targets(session, model_name, version, all_new)
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
    _report(results, keep_going)


# --------------------------------------------------------------------------- smoke test


@click.command("smoke-test")
@_gate_options
@click.option(
    "--examples",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"Records to predict on (default {DEFAULT_EXAMPLES}).",
)
@_user_errors
def smoke_test_command(
    model_name: str | None,
    version: str | None,
    all_new: bool,
    keep_going: bool,
    config_path: Path,
    examples: Path | None,
) -> None:
    """Load versions as pyfuncs here and exercise them: predictions, bad input, latency.

    Writes smoke_test_status=passed|failed, smoke_test.p50_ms/p95_ms and
    smoke_test/report.json on each version. Exits 2 if any failed its gate, 1 if
    the test could not run.
    """
    from accident_prediction.gates import record_result, smoke_test_version
    from accident_prediction.inputs import load_records, repo_file, to_frame

    with _quiet_mlflow():
        session = _session(config_path)
        pairs = _targets(session, model_name, version, all_new)
        frame = to_frame(load_records(examples or repo_file(DEFAULT_EXAMPLES)))
        results = []
        for name, number in pairs:
            result = smoke_test_version(session.client, name, number, frame)
            record_result(session.client, result)
            results.append(result)
    _report(results, keep_going)


# --------------------------------------------------------------------------- predict


@click.command("predict")
@click.argument("features", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model-name", help="Registered model to serve from.")
@click.option("--stage", help="With --model-name: the version in this stage.")
@click.option("--version", help="With --model-name: this version.")
@click.option("--alias", help="With --model-name: the version holding this alias.")
@click.option(
    "--use-best-model",
    is_flag=True,
    help="Best Production model across Accident_Prediction_* by its recorded validation "
    "metric (env USE_BEST_MODEL=true).",
)
@click.option(
    "--use-mlflow-production",
    is_flag=True,
    help="The XGBoost model's Production version, or its champion alias "
    "(env USE_MLFLOW_PRODUCTION=true).",
)
@click.option(
    "--model-path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Local joblib pipeline, e.g. models/xgboost_model.joblib (development only).",
)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here.")
@config_option
@_user_errors
def predict_command(
    features: Path,
    model_name: str | None,
    stage: str | None,
    version: str | None,
    alias: str | None,
    use_best_model: bool,
    use_mlflow_production: bool,
    model_path: Path | None,
    output: Path | None,
    config_path: Path,
) -> None:
    """Predict accident severity for the records in FEATURES (.json: one or a list; .csv).

    Prints JSON: the model used (name, version, source) and, per record, the predicted
    class (1 = severe) and the probability of severe.
    """
    from accident_prediction.inputs import load_records, to_frame
    from accident_prediction.predict import load_local, predict_frame

    how = _choose(model_name, stage, version, alias, use_best_model, use_mlflow_production,
                  model_path)  # fmt: skip
    # Input first: a bad file is reported before any model is loaded.
    frame = to_frame(load_records(features))
    with _quiet_mlflow():
        if model_path is not None:
            model = load_local(model_path, warn=lambda m: click.echo(f"Warning: {m}", err=True))
        else:
            session = _session(config_path)
            model = _load_from_registry(session, how, model_name, stage, version, alias)
        predictions = predict_frame(model, frame)
    text = json.dumps({"model": model.describe(), "predictions": predictions}, indent=2)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
    else:
        click.echo(text)


def _choose(
    model_name: str | None,
    stage: str | None,
    version: str | None,
    alias: str | None,
    use_best_model: bool,
    use_mlflow_production: bool,
    model_path: Path | None,
) -> str:
    """Which selection mode the options (then USE_BEST_MODEL / USE_MLFLOW_PRODUCTION) ask for."""
    selectors = [
        o for o, v in (("--stage", stage), ("--version", version), ("--alias", alias)) if v
    ]
    if len(selectors) > 1:
        raise click.UsageError(f"{' and '.join(selectors)} are exclusive: give one")
    if selectors and not model_name:
        raise click.UsageError(f"{selectors[0]} needs --model-name")
    modes = [
        m
        for m, on in (
            ("--model-path", model_path is not None),
            ("--use-best-model", use_best_model),
            # --use-mlflow-production --model-name M is M's Production: one mode, not two.
            ("--use-mlflow-production", use_mlflow_production),
            ("--model-name", model_name is not None and not use_mlflow_production),
        )
        if on
    ]
    if len(modes) > 1:
        raise click.UsageError(f"{' and '.join(modes)} are exclusive: give one")
    if use_mlflow_production and selectors:
        raise click.UsageError(f"--use-mlflow-production and {selectors[0]} are exclusive")
    if modes:
        return modes[0]
    if os.environ.get("USE_BEST_MODEL", "").strip().lower() in TRUE_VALUES:
        return "--use-best-model"
    if os.environ.get("USE_MLFLOW_PRODUCTION", "").strip().lower() in TRUE_VALUES:
        return "--use-mlflow-production"
    raise click.UsageError(
        "say which model: --model-name NAME [--stage S | --version N | --alias A], "
        "--use-best-model, --use-mlflow-production or --model-path FILE "
        "(or set USE_BEST_MODEL=true / USE_MLFLOW_PRODUCTION=true)"
    )


def _load_from_registry(
    session: Session,
    how: str,
    model_name: str | None,
    stage: str | None,
    version: str | None,
    alias: str | None,
) -> Any:
    from accident_prediction import model_source as src
    from accident_prediction.gates import LOWER_IS_BETTER, mlflow_metric_name
    from accident_prediction.predict import load_registered

    client, stages = session.client, session.stages
    if how == "--use-best-model":
        base = session.config.registry.get("registered_model_name")
        prefix = f"{base}_" if base else src.MODEL_PREFIX
        metric = session.config.primary_metric
        tags = (f"validation.{mlflow_metric_name(metric)}", f"metric.{metric}")
        ref = src.best_production(
            client, tags, prefix=prefix, stages=stages,
            higher_is_better=mlflow_metric_name(metric) not in LOWER_IS_BETTER,
        )  # fmt: skip
    elif how == "--use-mlflow-production" or not (stage or version or alias):
        name = model_name or session.config.registered_model_name("xgboost")
        ref = src.production_or_champion(client, name, stages=stages)
    elif version:
        ref = src.by_version(client, str(model_name), version)
    elif stage:
        ref = src.by_stage(client, str(model_name), stage, stages=stages)
    else:
        ref = src.by_alias(client, str(model_name), str(alias))
    return load_registered(ref)


COMMANDS = (validate_command, smoke_test_command, predict_command)
