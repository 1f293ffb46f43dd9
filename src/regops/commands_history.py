"""`regops history`: who changed which stage or alias, when, via which PR, and when it applied."""

from __future__ import annotations

import click

from regops.history import build_history
from regops.options import common_options, settings
from regops.render import render_history


@click.command()
@click.argument("model", required=False)
@click.option("--version", help="Only changes concerning this version of MODEL.")
@click.option(
    "--git-only", is_flag=True, help="Do not read the registry's audit stamps (no network)."
)
@common_options
@click.pass_context
def history(ctx: click.Context, model: str | None, version: str | None, git_only: bool) -> int:
    """Audit timeline: git log of the state files joined with the registry's audit stamps.

    \b
    Each commit that touched the state files (a merged pull request is one entry)
    with its author, date and PR number, the stage and alias changes it made
    (a revert shows as the reverse change), and whether the registry's
    `regops.*` stamps show it applied: when, and by whom.
    """
    s = settings(ctx)
    h = build_history(
        s.state_dir, None if git_only else s.tracking_uri, model=model, version=version
    )
    click.echo(render_history(h, s.fmt))
    return 0


def register(group: click.Group) -> None:
    group.add_command(history)
