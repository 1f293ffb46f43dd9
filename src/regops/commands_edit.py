"""State-editing commands: change the file a pull request will carry; `--apply` reconciles now.

`transition`, `promote`, `archive` and `alias` edit registry-state/*.yaml in place
(comments and order kept) and print the lines they changed. They never write to
the registry unless `--apply` is given.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

from regops.edit import EditResult, latest_version, prepare_edit, write_edit
from regops.errors import RegistryError
from regops.loader import display_path
from regops.options import Settings, common_options, settings
from regops.registry_uri import stages_supported
from regops.state import STAGES

F = TypeVar("F", bound=Callable[..., Any])


def edit_options(f: F) -> F:
    """--apply and --new-model-file, shared by the four editing commands."""
    f = click.option(
        "--new-model-file",
        metavar="FILE",
        help="State file (in --state-dir) to declare a model that is in none yet. "
        "Default: the only state file.",
    )(f)
    f = click.option(
        "--apply",
        "apply_now",
        is_flag=True,
        help="Also reconcile this model now (local work against a local registry).",
    )(f)
    return common_options(f)


def run_edit(s: Settings, model: str, version: str, *, apply_now: bool, **edit: Any) -> int:
    """Edit, write, report; then reconcile the model when asked. Returns the exit code."""
    result = prepare_edit(
        s.state_dir, model, version, stages_supported=stages_supported(s.tracking_uri), **edit
    )
    write_edit(result)
    applied: dict[str, Any] | None = None
    if apply_now:
        from regops import service  # deferred: editing alone must not import mlflow

        applied = service.run_reconcile(s, models=[model]).to_dict()
    report(result, applied, s.fmt)
    return 0 if applied is None or applied["ok"] else 1


def edit_doc(result: EditResult) -> dict[str, Any]:
    """The JSON form of one file's edit."""
    return {
        "format_version": "1",
        "file": display_path(result.path),
        "changed": result.changed,
        "summary": list(result.summary),
        "lines": [{"op": op, "line": n, "text": text} for op, n, text in result.changed_lines()],
    }


def report(result: EditResult, applied: dict[str, Any] | None, fmt: str) -> None:
    name = display_path(result.path)
    if fmt == "json":
        click.echo(json.dumps({**edit_doc(result), "apply": applied}, indent=2))
        return
    if not result.changed:
        click.echo(f"{name}: already so; nothing changed")
    for what in result.summary:
        click.echo(f"{name}: {what}")
    for op, n, text in result.changed_lines():
        click.echo(f"  {n:>4} {op} {text}")
    if applied is not None:
        from regops.render import render_result

        click.echo(render_result(applied, fmt))
    elif result.changed:
        click.echo(
            "Next: commit and open a pull request (merging applies it), or rerun with --apply."
        )


@click.command()
@click.option("--model-name", required=True, help="Registered model name.")
@click.option("--version", required=True, help="Model version number.")
@click.option("--stage", required=True, type=click.Choice(STAGES))
@edit_options
@click.pass_context
def transition(
    ctx: click.Context,
    model_name: str,
    version: str,
    stage: str,
    apply_now: bool,
    new_model_file: str | None,
) -> int:
    """Set a version's stage in the state file (adds the version if it is not listed)."""
    s = settings(ctx)
    return run_edit(
        s, model_name, version, stage=stage, new_model_file=new_model_file, apply_now=apply_now
    )


@click.command()
@click.option("--model-name", required=True, help="Registered model name.")
@click.option("--stage", required=True, type=click.Choice(STAGES))
@click.option("--version", help="Version to promote. Default: the latest registered version.")
@edit_options
@click.pass_context
def promote(
    ctx: click.Context,
    model_name: str,
    stage: str,
    version: str | None,
    apply_now: bool,
    new_model_file: str | None,
) -> int:
    """Move a version (default: the latest registered) into a stage in the state file."""
    s = settings(ctx)
    if version is None:
        from regops import service

        try:
            live = service.open_registry(s).snapshot([model_name])
        except RegistryError as exc:
            raise RegistryError(
                f"cannot find the latest version of {model_name}: {exc}\n"
                "Pass --version N to edit the state without reading the registry."
            ) from exc
        version = latest_version(live, model_name)
    return run_edit(
        s, model_name, version, stage=stage, new_model_file=new_model_file, apply_now=apply_now
    )


@click.command()
@click.option("--model-name", required=True, help="Registered model name.")
@click.option("--version", required=True, help="Model version number.")
@edit_options
@click.pass_context
def archive(
    ctx: click.Context, model_name: str, version: str, apply_now: bool, new_model_file: str | None
) -> int:
    """Set a version's stage to Archived in the state file."""
    s = settings(ctx)
    return run_edit(
        s, model_name, version, stage="Archived", new_model_file=new_model_file, apply_now=apply_now
    )


@click.command()
@click.option("--model-name", required=True, help="Registered model name.")
@click.option("--version", required=True, help="Model version number.")
@click.option("--alias", "alias_name", required=True, help="Alias, e.g. champion.")
@click.option("--remove", is_flag=True, help="Take the alias off this version instead.")
@edit_options
@click.pass_context
def alias(
    ctx: click.Context,
    model_name: str,
    version: str,
    alias_name: str,
    remove: bool,
    apply_now: bool,
    new_model_file: str | None,
) -> int:
    """Point an alias at a version in the state file (it leaves the version that held it)."""
    change = {"remove_alias": alias_name} if remove else {"alias": alias_name}
    s = settings(ctx)
    return run_edit(
        s, model_name, version, new_model_file=new_model_file, apply_now=apply_now, **change
    )


def register(group: click.Group) -> None:
    for command in (transition, promote, archive, alias):
        group.add_command(command)
