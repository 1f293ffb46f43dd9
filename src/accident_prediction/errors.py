"""Errors of the training half (config, data, training): each message is meant for the user.

`accident train` and `accident data` print `Error: <message>` and exit 1, without a traceback.
"""

from __future__ import annotations


class TrainingError(Exception):
    """Base of every user-facing error raised by config loading, data preparation and training."""


class ConfigError(TrainingError):
    """The model config is unreadable or invalid; the message names FILE:LINE for each problem."""


class DataError(TrainingError):
    """The crash data cannot be fetched, read or split."""
