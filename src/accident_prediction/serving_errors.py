"""Errors of the serving half (gates and prediction): each message is meant for the user.

The commands turn any of these into `Error: <message>` and exit 1, without a traceback.
"""

from __future__ import annotations


class ServingError(Exception):
    """Base of every user-facing error raised by validate, smoke-test and predict."""


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
