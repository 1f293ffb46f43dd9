"""State-editing commands: change the file a pull request will carry; `--apply` reconciles now.

`transition`, `promote`, `archive` and `alias` edit registry-state/*.yaml in place
(comments and order kept) and print the lines they changed. They never write to
the registry unless `--apply` is given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from regops import render
from regops.adapters.tracking import stages_supported
from regops.cli.options import common_options, settings
from regops.core.plan import FORMAT_VERSION
from regops.core.state import STAGES
from regops.errors import RegistryError, RegopsError
from regops.files.edit import EditResult, latest_version, prepare_edit, write_edit
from regops.files.loader import display_path
from regops.render import render_edit
from regops.settings import Settings

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
    """Edit, write, report; then reconcile the model when asked. Returns the exit code.

    With --apply the report always says what happened to the file (edited and kept, or
    unchanged) and to the registry (what was applied, or nothing and why), even when a
    gate blocks the change or the registry fails.
    """
    result = prepare_edit(
        s.state_dir, model, version, stages_supported=stages_supported(s.tracking_uri), **edit
    )
    write_edit(result)
    doc: dict[str, Any] = {**edit_doc(result), "apply": None, "outcome": None}
    if not apply_now:
        if result.changed:
            doc["outcome"] = (
                "Next: commit and open a pull request (merging applies it), or rerun with --apply."
            )
        click.echo(render_edit(doc, s.fmt))
        return 0
    from regops import api  # deferred: editing alone must not import mlflow

    name = doc["file"]
    kept = (
        f"{name}: edited, and the edit is kept (commit it, or undo it with "
        f"`git checkout -- {name}`)"
        if result.changed
        else f"{name}: unchanged"
    )
    try:
        plan = api.run_plan(s, [model])
        if not plan.ok:
            doc["plan"] = plan.to_dict()
            why = "; ".join(plan.errors) or "a promotion gate blocks the change (see the plan)"
            raise RegopsError(why)
        applied = api.run_reconcile(s, [model], plan=plan, replan=True).to_dict()
    except RegopsError as exc:
        doc["ok"] = False
        doc["outcome"] = f"{kept}; registry: nothing applied: {exc}"
        if s.fmt == "json":
            click.echo(render_edit(doc, s.fmt))
            return 1
        click.echo(render_edit({**doc, "outcome": None}, s.fmt))
        if "plan" in doc:
            click.echo(render.render(doc["plan"], s.fmt))
        raise RegopsError(doc["outcome"]) from exc
    counts = applied["summary"]
    doc["apply"], doc["ok"] = applied, applied["ok"]
    if applied["ok"]:
        registry = f"{counts['applied']} change(s) applied" if counts["applied"] else "in sync"
    else:
        registry = (
            f"{counts['applied']} applied, {counts['failed']} failed (above); "
            f"run `regops reconcile --model {model}` to finish"
        )
    doc["outcome"] = f"{kept}; registry: {registry}"
    click.echo(render_edit(doc, s.fmt))
    return 0 if applied["ok"] else 1


def edit_doc(result: EditResult) -> dict[str, Any]:
    """The JSON form of one file's edit."""
    return {
        "format_version": FORMAT_VERSION,
        "file": display_path(result.path),
        "changed": result.changed,
        "summary": list(result.summary),
        "lines": [{"op": op, "line": n, "text": text} for op, n, text in result.changed_lines()],
    }


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
        from regops import api

        try:
            live = api.open_registry(s).snapshot([model_name])
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
