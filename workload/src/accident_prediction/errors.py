"""Every error of the workload, one tree, and the exit codes of `accident`, one table.

Each message is meant for the user. The group's one handler (`accident_prediction.cli.
AccidentGroup.invoke`) prints `Error: <message>` and exits with the error's `exit_code`,
without a traceback; commands return EXIT_OK or EXIT_GATE_FAILED.
"""

from __future__ import annotations

from regops.errors import EXIT_ERROR, EXIT_OK

# ---- exit codes of `accident` (docs/reference/exit-codes.md) -------------------------------
# 0 and 1 are regops' own (regops.errors). Usage errors exit with click's 2, as they always
# have; `accident validate`/`smoke-test` exit 2 too when a candidate failed its gate (regops'
# 2 means "changes pending", so it is not reused under that name).
__all__ = ["EXIT_ERROR", "EXIT_GATE_FAILED", "EXIT_OK"]
EXIT_GATE_FAILED = 2  # a gate failed (its verdict is recorded); 1 means it could not run


class AccidentError(Exception):
    """Base of every user-facing error of the workload: `Error: <message>`, exit_code."""

    exit_code = EXIT_ERROR


# ---- training half: config, data, training -------------------------------------------


class TrainingError(AccidentError):
    """Config loading, data preparation or training failed."""


class ConfigError(TrainingError):
    """The model config is unreadable or invalid; the message names FILE:LINE for each problem."""


class DataError(TrainingError):
    """The crash data cannot be fetched, read or split."""


# ---- serving half: gates and prediction ----------------------------------------------


class ServingError(AccidentError):
    """validate, smoke-test or predict cannot run."""


class InputError(ServingError):
    """The features file is unreadable or a record does not match the input schema."""


class ModelNotFoundError(ServingError):
    """The requested model, version, stage or alias does not exist (the message lists what does)."""


class ModelLoadError(ServingError):
    """The model exists but cannot be loaded or run; the message says why."""


def describe_exception(exc: BaseException) -> str:
    """The useful part of an exception: MLflow's schema errors embed the whole input first."""
    text = str(exc).strip() or type(exc).__name__
    marker = "Error: "
    if "Failed to enforce schema" in text and marker in text:
        text = "input does not match the model signature: " + text.rsplit(marker, 1)[1]
    if len(text) > 500:
        text = text.splitlines()[0][:500]
    kind = type(exc).__name__
    return text if kind in text else f"{kind}: {text}"
