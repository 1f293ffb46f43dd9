"""`accident`: train, validate, smoke-test and predict (the reference workload)."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
