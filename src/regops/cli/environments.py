"""`regops environments`: the environments regops.yaml declares, in its order."""

from __future__ import annotations

import click

from regops.cli.options import common_options, settings
from regops.render import render_environment_list


@click.command()
@common_options
@click.pass_context
def environments(ctx: click.Context) -> int:
    """List the environments of regops.yaml (JSON with --format json: a CI matrix).

    \b
    Each with its state directory and where its registry and login come from
    (variable names only: no value is ever printed). None declared: nothing, or [].
    """
    s = settings(ctx, pick_env=False)
    envs = list(s.config.environments.values()) if s.config else []
    out = render_environment_list(envs, s.fmt)
    if out:  # none declared, in text: nothing at all
        click.echo(out)
    return 0


def register(group: click.Group) -> None:
    group.add_command(environments)
