"""Which MLflow tracking server to talk to, and how to print it safely.

The resolution and masking live in `regops.adapters.tracking` (one adapter for both CLIs); this
module adds what only the workload needs: reading `.env`, and the workload's error type.
Order (DESIGN): MLFLOW_TRACKING_URI > DAGSHUB_REPO (OWNER/REPO) > config `mlflow.tracking_uri` >
MLflow's default, `sqlite:///mlflow.db`. A `.env` file fills in variables the environment lacks.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from accident_prediction.errors import ConfigError
from regops.adapters import tracking as _shared
from regops.adapters.tracking import DEFAULT_TRACKING_URI, TrackingTarget, http_defaults, mask_uri
from regops.errors import TrackingUriError

__all__ = [
    "DEFAULT_TRACKING_URI",
    "TrackingTarget",
    "dagshub_uri",
    "http_defaults",
    "load_dotenv_file",
    "mask_credentials",
    "mask_credentials_in",
    "resolve_tracking_uri",
]


def load_dotenv_file(path: Path | str = ".env") -> bool:
    """Read `.env` into os.environ without overriding what is already set; True if read."""
    path = Path(path)
    if not path.is_file():
        return False
    from dotenv import load_dotenv

    return load_dotenv(path, override=False)


def dagshub_uri(repo: str) -> str:
    """`OWNER/REPO` -> `https://dagshub.com/OWNER/REPO.mlflow`."""
    try:
        return _shared.dagshub_uri(repo)
    except TrackingUriError as exc:
        raise ConfigError(str(exc)) from None


def resolve_tracking_uri(
    config_uri: str | None, environ: Mapping[str, str] | None = None
) -> TrackingTarget:
    """Pick the tracking URI by the documented precedence; empty values count as unset."""
    try:
        return _shared.resolve_tracking_uri(None, config_uri, environ)
    except TrackingUriError as exc:
        raise ConfigError(str(exc)) from None


def mask_credentials(uri: str) -> str:
    """A URI with its credentials masked (see regops.adapters.tracking.mask_uri)."""
    return mask_uri(uri)


def mask_credentials_in(text: str) -> str:
    """A text with every credential regops knows of masked (see
    regops.adapters.tracking.mask_secrets)."""
    return _shared.mask_secrets(text)
