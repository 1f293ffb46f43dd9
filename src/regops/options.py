"""Options defined once and shared by every command.

`--tracking-uri`, `--state-dir` and `--format` work both before the command
(`regops --state-dir s plan`) and after it (`regops plan --state-dir s`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from regops.tracking import mask_uri as mask_uri  # re-exported for earlier imports
from regops.tracking import resolve_tracking_uri

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Settings:
    """What every command needs to know, gathered from flags and the environment."""

    tracking_uri_flag: str | None = None
    state_dir: Path = Path("registry-state")
    fmt: str = "text"

    @property
    def tracking_uri(self) -> str:
        return resolve_tracking_uri(self.tracking_uri_flag).uri


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
