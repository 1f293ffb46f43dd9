"""Options defined once and shared by every command.

`--tracking-uri`, `--state-dir` and `--format` work both before the command
(`regops --state-dir s plan`) and after it (`regops plan --state-dir s`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from regops.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


def _obj(ctx: click.Context) -> Settings:
    root = ctx.find_root()
    if root.obj is None:
        root.obj = Settings()
    obj: Settings = root.obj
    return obj


def settings(ctx: click.Context, *, pick_env: bool = True, html: bool = False) -> Settings:
    """The command's settings, with `--env` applied (its registry, state dir and login).

    When the repository declares environments (regops.yaml) a command must be told
    which one (`--env NAME`) unless it names a state directory itself; `pick_env=False`
    is for commands that can cover every environment (validate, plan --all-envs).
    `html`: the command writes `--format html` (only `history` does).
    """
    s = _obj(ctx)
    if s.fmt == "html" and not html:
        raise click.UsageError("--format html: only `regops history` writes HTML")
    if s.resolved:
        return s
    from regops.files import environments

    s.config = environments.load()
    if s.env_name is not None:
        if s.config is None:
            raise click.UsageError(
                f"--env {s.env_name}: no {environments.CONFIG_NAME} here or in a parent "
                "directory declares environments"
            )
        s.environment = s.config.get(s.env_name)
        if not s.state_dir_given:
            s.state_dir = s.environment.state_dir
        # The environment's login for the rest of the command (restored when it ends).
        ctx.find_root().with_resource(environments.credentials_of(s.environment))
    elif pick_env and s.config is not None and not s.state_dir_given:
        names = ", ".join(s.config.names)
        raise click.UsageError(
            f"{s.config.file} declares environments ({names}): pick one with --env NAME "
            "(e.g. `regops --env " + s.config.names[0] + " plan`; `regops plan --all-envs` "
            "plans them all)"
        )
    s.resolved = True
    return s


def _store(attr: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value is not None:
            setattr(_obj(ctx), attr, value)
            if attr == "state_dir":
                _obj(ctx).state_dir_given = True

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
        type=click.Choice(["text", "markdown", "json", "html"]),
        default=None,
        expose_value=False,
        is_eager=True,
        callback=_store("fmt"),
        help="Report format. Default: text (html: `history` only).",
    )(f)


def env_option(f: F) -> F:
    return click.option(
        "--env",
        default=None,
        metavar="NAME",
        expose_value=False,
        is_eager=True,
        callback=_store("env_name"),
        help="Environment declared in regops.yaml: its registry, state dir and credentials.",
    )(f)


def common_options(f: F) -> F:
    """--env, --tracking-uri, --state-dir and --format."""
    return env_option(tracking_uri_option(state_dir_option(format_option(f))))


REGISTRY_NAME_ENV = "REGOPS_REGISTRY_NAME"


def registry_name_option(f: F) -> F:
    def store(ctx: click.Context, _p: click.Parameter, value: str | None) -> None:
        if value:
            settings(ctx).registry_name = value

    return click.option(
        "--registry-name",
        metavar="NAME",
        expose_value=False,
        callback=store,
        help=f"Name reports show for the registry (default ${REGISTRY_NAME_ENV}); never its URI.",
    )(f)


MAX_REASON_CHARS = 500  # an override's reason goes into the version's stamp (5,000 at most)


def override_options(f: F) -> F:
    """--override RULE (repeatable) and --reason TEXT: soft rules let through, and why."""
    f = click.option(
        "--reason",
        "reasons",
        multiple=True,
        metavar="TEXT",
        help="Why the --override is given (required with it; recorded in the version's "
        "audit stamp). One reason for all overrides, or one per --override, in order.",
    )(f)
    return click.option(
        "--override",
        "overrides",
        multiple=True,
        metavar="RULE",
        help="Let a failed soft rule (policy.rules) through; a hard rule cannot be "
        "overridden. Needs --reason.",
    )(f)


def store_overrides(s: Settings, overrides: tuple[str, ...], reasons: tuple[str, ...]) -> None:
    """Pair each --override with its --reason into `s.overrides` (usage error 64 otherwise)."""
    from regops.errors import UsageError

    if not overrides and not reasons:
        return
    if not overrides:
        raise UsageError("--reason is the reason of an --override RULE: give the rule too")
    if not reasons:
        raise UsageError("--override needs --reason TEXT: the reason goes into the audit stamp")
    if len(reasons) not in (1, len(overrides)):
        raise UsageError(
            f"{len(overrides)} --override and {len(reasons)} --reason: give one reason for "
            "all, or one per --override"
        )
    pairs = []
    for i, rule in enumerate(overrides):
        reason = (reasons[0] if len(reasons) == 1 else reasons[i]).strip()
        if not reason:
            raise UsageError(f"--reason for --override {rule} is empty")
        if len(reason) > MAX_REASON_CHARS:
            raise UsageError(f"--reason is {len(reason)} characters; at most {MAX_REASON_CHARS}")
        pairs.append((rule, reason))
    s.overrides = tuple(pairs)
