"""`accident validate`, `accident smoke-test`, `accident predict`: thin commands.

Each one parses its options, calls the serving functions (serving.py), prints, and returns
an exit code; errors go to the group's one handler (cli.AccidentGroup), which prints
`Error: <message>` and exits 1, never a traceback.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from accident_prediction.commands_train import config_option
from accident_prediction.errors import EXIT_GATE_FAILED, EXIT_OK
from accident_prediction.serving import (
    BEST_MODEL,
    DEFAULT_EXAMPLES,
    MLFLOW_PRODUCTION,
    MODEL_NAME,
    MODEL_PATH,
)

if TYPE_CHECKING:
    from accident_prediction.gates import GateResult
    from accident_prediction.serving import Session

    Gate = Callable[[Session, list[tuple[str, str]]], list[GateResult]]

F = TypeVar("F", bound=Callable[..., Any])
TRUE_VALUES = {"1", "true", "yes", "on"}


# --------------------------------------------------------------------------- shared options


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


def _check_targets(model_name: str | None, version: str | None, all_new: bool) -> None:
    if all_new and version:
        raise click.UsageError("--all-new and --version are exclusive")
    if not all_new and (not model_name or not version):
        raise click.UsageError("give --model-name NAME --version N, or --all-new")


def _gate(
    run: Gate,
    model_name: str | None,
    version: str | None,
    all_new: bool,
    keep_going: bool,
    config_path: Path,
) -> int:
    """One gate command's body: open the session, check and find the targets, `run` the
    gate on them (session, pairs -> results), print the verdicts; the exit code."""
    from accident_prediction.serving import gate_targets, open_session, quiet_mlflow

    with quiet_mlflow():
        session = open_session(config_path)
        _check_targets(model_name, version, all_new)
        pairs = gate_targets(session, model_name, version, all_new)
        results = run(session, pairs)
    return _report(results, keep_going)


def _report(results: list[GateResult], keep_going: bool) -> int:
    for result in results:
        click.echo(result.summary())
    failed = [f"{r.name} v{r.version}" for r in results if not r.passed]
    if not failed:
        return EXIT_OK
    click.echo(f"{len(failed)} of {len(results)} failed: {', '.join(failed)}", err=True)
    return EXIT_OK if keep_going else EXIT_GATE_FAILED


# --------------------------------------------------------------------------- validate


@click.command("validate")
@_gate_options
@click.option("--sample", type=int, default=None, help="Evaluate on at most N test rows (dev).")
def validate_command(
    model_name: str | None,
    version: str | None,
    all_new: bool,
    keep_going: bool,
    config_path: Path,
    sample: int | None,
) -> int:
    """Gate versions on the held-out test split: config floors and the current champion.

    Writes validation_status=passed|failed, validation.<metric> figures and
    validation/report.json on each version. Exits 2 if any failed its gate, 1 if
    the gate could not run (registry, data, config).
    """
    from accident_prediction.serving import validate_versions

    def run(session: Session, pairs: list[tuple[str, str]]) -> list[GateResult]:
        return validate_versions(session, pairs, sample=sample)

    return _gate(run, model_name, version, all_new, keep_going, config_path)


# --------------------------------------------------------------------------- smoke test


@click.command("smoke-test")
@_gate_options
@click.option(
    "--examples",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"Records to predict on (default {DEFAULT_EXAMPLES}).",
)
def smoke_test_command(
    model_name: str | None,
    version: str | None,
    all_new: bool,
    keep_going: bool,
    config_path: Path,
    examples: Path | None,
) -> int:
    """Load versions as pyfuncs here and exercise them: predictions, bad input, latency.

    Writes smoke_test_status=passed|failed, smoke_test.p50_ms/p95_ms and
    smoke_test/report.json on each version. Exits 2 if any failed its gate, 1 if
    the test could not run.
    """
    from accident_prediction.serving import smoke_test_versions

    def run(session: Session, pairs: list[tuple[str, str]]) -> list[GateResult]:
        return smoke_test_versions(session, pairs, examples)

    return _gate(run, model_name, version, all_new, keep_going, config_path)


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
) -> int:
    """Predict accident severity for the records in FEATURES (.json: one or a list; .csv).

    Prints JSON: the model used (name, version, source) and, per record, the predicted
    class (1 = severe) and the probability of severe.
    """
    from accident_prediction.predict import predict_frame
    from accident_prediction.serving import load_model, quiet_mlflow, read_features, write_output

    how = _choose(model_name, stage, version, alias, use_best_model, use_mlflow_production,
                  model_path)  # fmt: skip
    # Input first: a bad file is reported before any model is loaded.
    frame = read_features(features)
    with quiet_mlflow():
        model = load_model(
            how, config_path, model_name=model_name, stage=stage, version=version, alias=alias,
            model_path=model_path, warn=lambda m: click.echo(f"Warning: {m}", err=True),
        )  # fmt: skip
        predictions = predict_frame(model, frame)
    text = json.dumps({"model": model.describe(), "predictions": predictions}, indent=2)
    if output:
        write_output(output, text + "\n")
    else:
        click.echo(text)
    return EXIT_OK


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
            (MODEL_PATH, model_path is not None),
            (BEST_MODEL, use_best_model),
            # --use-mlflow-production --model-name M is M's Production: one mode, not two.
            (MLFLOW_PRODUCTION, use_mlflow_production),
            (MODEL_NAME, model_name is not None and not use_mlflow_production),
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
        return BEST_MODEL
    if os.environ.get("USE_MLFLOW_PRODUCTION", "").strip().lower() in TRUE_VALUES:
        return MLFLOW_PRODUCTION
    raise click.UsageError(
        "say which model: --model-name NAME [--stage S | --version N | --alias A], "
        "--use-best-model, --use-mlflow-production or --model-path FILE "
        "(or set USE_BEST_MODEL=true / USE_MLFLOW_PRODUCTION=true)"
    )


COMMANDS = (validate_command, smoke_test_command, predict_command)
