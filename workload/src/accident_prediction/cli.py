"""`accident`: train, validate, smoke-test and predict (the reference workload).

Exit codes (errors.py, docs/reference/exit-codes.md): 0 success; 1 an error (`Error: <message>`, no
traceback); 2 a usage error (click's), or a candidate that failed its gate.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from accident_prediction.errors import EXIT_ERROR, EXIT_OK, AccidentError
from regops.errors import RegopsError


def user_failure(exc: Exception) -> tuple[str, int] | None:
    """The message and exit code of an error meant for the user; None for anything else."""
    if isinstance(exc, (AccidentError, RegopsError)):
        return str(exc), exc.exit_code
    # MLflow is imported only by the commands that use it: if it is not loaded, this is not
    # one of its errors. An unreachable server or a refused write: say it is the registry.
    mlflow_exceptions = sys.modules.get("mlflow.exceptions")
    if mlflow_exceptions is not None and isinstance(exc, mlflow_exceptions.MlflowException):
        return f"registry error: {exc.message}", EXIT_ERROR
    return None


class AccidentGroup(click.Group):
    """The one place exit codes are decided: a command's returned code, or its error's."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            code = super().invoke(ctx)
        except click.exceptions.ClickException:
            raise  # usage errors and the like: click prints them and exits with their code
        except Exception as exc:
            failure = user_failure(exc)
            if failure is None:
                raise  # a bug: the traceback is the report
            message, exit_code = failure
            click.echo(f"Error: {message}", err=True)  # as click.ClickException.show prints
            raise click.exceptions.Exit(exit_code) from None
        if isinstance(code, int) and code != EXIT_OK:
            ctx.exit(code)
        return code


@click.group(cls=AccidentGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Accident-severity models: train, gate and serve them through MLflow."""


# Commands are added by their modules (training: commands_train; gates and
# prediction: commands_serving) so the two halves stay independent.

from accident_prediction.commands_serving import COMMANDS as SERVING_COMMANDS  # noqa: E402

for _command in SERVING_COMMANDS:
    main.add_command(_command)

from accident_prediction.commands_train import COMMANDS as TRAIN_COMMANDS  # noqa: E402

for _command in TRAIN_COMMANDS:
    main.add_command(_command)
