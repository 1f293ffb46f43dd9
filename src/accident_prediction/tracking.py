"""Which MLflow tracking server to talk to, and how to print it safely.

Order (DESIGN): MLFLOW_TRACKING_URI > DAGSHUB_REPO (OWNER/REPO) > config `mlflow.tracking_uri` >
MLflow's default, `sqlite:///mlflow.db`. A `.env` file fills in variables the environment lacks.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from accident_prediction.errors import ConfigError

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
_DAGSHUB_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


@dataclass(frozen=True)
class TrackingTarget:
    """The tracking URI in use and where it came from (for the user to see)."""

    uri: str
    source: str  # "MLFLOW_TRACKING_URI" | "DAGSHUB_REPO" | "config" | "default"

    def describe(self) -> str:
        return f"{mask_credentials(self.uri)} (from {self.source})"


def load_dotenv_file(path: Path | str = ".env") -> bool:
    """Read `.env` into os.environ without overriding what is already set; True if read."""
    path = Path(path)
    if not path.is_file():
        return False
    from dotenv import load_dotenv

    return load_dotenv(path, override=False)


def dagshub_uri(repo: str) -> str:
    """`OWNER/REPO` -> `https://dagshub.com/OWNER/REPO.mlflow`."""
    repo = repo.strip().strip("/")
    if not _DAGSHUB_REPO.match(repo):
        raise ConfigError(f"DAGSHUB_REPO must look like OWNER/REPO, got {repo!r}")
    return f"https://dagshub.com/{repo}.mlflow"


def resolve_tracking_uri(
    config_uri: str | None, environ: Mapping[str, str] | None = None
) -> TrackingTarget:
    """Pick the tracking URI by the documented precedence; empty values count as unset."""
    env = os.environ if environ is None else environ
    if env.get("MLFLOW_TRACKING_URI", "").strip():
        return TrackingTarget(env["MLFLOW_TRACKING_URI"].strip(), "MLFLOW_TRACKING_URI")
    if env.get("DAGSHUB_REPO", "").strip():
        return TrackingTarget(dagshub_uri(env["DAGSHUB_REPO"]), "DAGSHUB_REPO")
    if config_uri and config_uri.strip():
        return TrackingTarget(config_uri.strip(), "config")
    return TrackingTarget(DEFAULT_TRACKING_URI, "default")


def mask_credentials(uri: str) -> str:
    """Replace any user:password@ in a URI by ***@, so logs never carry secrets."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def mask_credentials_in(text: str) -> str:
    """Mask user:password@ in every URI inside a text (error messages quote URLs)."""
    return _USERINFO.sub("***@", text)
