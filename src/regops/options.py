"""Options defined once and shared by every command.

`--tracking-uri`, `--state-dir` and `--format` work both before the command
(`regops --state-dir s plan`) and after it (`regops plan --state-dir s`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


@dataclass
class Settings:
    """What every command needs to know, gathered from flags and the environment."""

    tracking_uri_flag: str | None = None
    state_dir: Path = Path("registry-state")
    fmt: str = "text"
    registry_name: str | None = None  # what reports call the registry (never its URI)

    @property
    def tracking_uri(self) -> str:
        uri = resolve_tracking_uri(self.tracking_uri_flag)
        if uri == DEFAULT_TRACKING_URI and _truthy(os.environ.get("REGOPS_REQUIRE_REGISTRY")):
            from regops.errors import RegistryError

            # In CI a missing secret must fail, not plan against an empty local registry.
            raise RegistryError(
                "no registry configured: set MLFLOW_TRACKING_URI (or DAGSHUB_REPO); "
                "REGOPS_REQUIRE_REGISTRY refuses the local default"
            )
        return uri


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def resolve_tracking_uri(flag: str | None = None, config_value: str | None = None) -> str:
    """`--tracking-uri` > MLFLOW_TRACKING_URI > DAGSHUB_REPO > config > sqlite:///mlflow.db."""
    if flag:
        return flag
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    repo = os.environ.get("DAGSHUB_REPO", "").strip().strip("/")
    if repo:
        return f"https://dagshub.com/{repo}.mlflow"
    if config_value:
        return config_value
    return DEFAULT_TRACKING_URI


_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def mask_uri(uri: str) -> str:
    """Hide credentials embedded in a URI (`https://user:pw@host` -> `https://***@host`)."""
    return _USERINFO.sub("***@", uri)


def settings(ctx: click.Context) -> Settings:
    root = ctx.find_root()
    if root.obj is None:
        root.obj = Settings()
    obj: Settings = root.obj
    return obj


def _store(attr: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value is not None:
            setattr(settings(ctx), attr, value)

    return callback


def tracking_uri_option(f: F) -> F:
    return click.option(
        "--tracking-uri",
        default=None,
        expose_value=False,
        is_eager=True,
        callback=_store("tracking_uri_flag"),
        help="MLflow tracking/registry URI. Default: $MLFLOW_TRACKING_URI, then "
        "https://dagshub.com/$DAGSHUB_REPO.mlflow, then sqlite:///mlflow.db.",
    )(f)


def state_dir_option(f: F) -> F:
    return click.option(
        "--state-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        expose_value=False,
        is_eager=True,
        callback=_store("state_dir"),
        help="Directory of desired-state YAML files. Default: registry-state.",
    )(f)


def format_option(f: F) -> F:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["text", "markdown", "json"]),
        default=None,
        expose_value=False,
        is_eager=True,
        callback=_store("fmt"),
        help="Report format. Default: text.",
    )(f)


def common_options(f: F) -> F:
    """--tracking-uri, --state-dir and --format."""
    return tracking_uri_option(state_dir_option(format_option(f)))
