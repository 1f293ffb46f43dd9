"""`regops init`: scaffold a git repository for regops (state, workflows, hooks)."""

from __future__ import annotations

from pathlib import Path

import click

from regops.cli.options import format_option, settings, state_dir_option, tracking_uri_option
from regops.core.plan import FORMAT_VERSION
from regops.render import render_init


@click.command()
@click.option(
    "--env",
    "envs",
    multiple=True,
    metavar="NAME",
    help="An environment to declare in regops.yaml (repeat: --env dev --env prod); each gets "
    "registry-state/NAME and its tracking URI from $MLFLOW_TRACKING_URI_NAME.",
)
@click.option("--aliases", is_flag=True, help="Start alias-only (policy use_stages: false).")
@click.option(
    "--owner",
    "owners",
    multiple=True,
    metavar="@ORG/TEAM",
    help="Who approves state changes (CODEOWNERS); repeat for several.",
)
@click.option(
    "--action",
    metavar="OWNER/REPO@REF",
    help="The regops Action the workflows use. Default: regops/regops@v<this version>.",
)
@click.option("--branch", default="main", show_default=True, help="The branch that applies.")
@click.option("--force", is_flag=True, help="Overwrite files that exist with other content.")
@tracking_uri_option
@state_dir_option
@format_option
@click.pass_context
def init(
    ctx: click.Context,
    envs: tuple[str, ...],
    aliases: bool,
    owners: tuple[str, ...],
    action: str | None,
    branch: str,
    force: bool,
) -> int:
    """Set up this git repository for regops.

    \b
    Writes registry-state/ (the live registry's models, exported, when one can be
    read; an empty state otherwise), regops.yaml (with --env), the plan, apply and
    drift workflows (using the regops Action), a CODEOWNERS block and a pre-commit
    config. Files that exist with other content are refused unless --force; a
    second run changes nothing.
    """
    from regops import api

    s = settings(ctx, pick_env=False)
    result = api.init(
        Path.cwd(), s, envs=envs, aliases=aliases, force=force, owners=owners, action=action,
        branch=branch,
    )  # fmt: skip
    doc = {
        "format_version": FORMAT_VERSION,
        "changed": result.changed,
        "created": list(result.created),
        "overwritten": list(result.overwritten),
        "unchanged": list(result.unchanged),
        "kept_state": list(result.kept_state),
        "adopted": dict(result.adopted),
        "notes": list(result.notes),
        "next_steps": list(result.next_steps),
    }
    click.echo(render_init(doc, s.fmt))
    return 0


def register(group: click.Group) -> None:
    group.add_command(init)
