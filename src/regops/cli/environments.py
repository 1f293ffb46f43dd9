"""`regops environments`: the environments regops.yaml declares, in its order."""

from __future__ import annotations

import json

import click

from regops.cli.options import common_options, settings
from regops.render.mdsafe import safe


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
    if s.fmt == "json":
        click.echo(json.dumps([e.name for e in envs]))
        return 0
    for e in envs:
        line = (
            f"{e.name}: state {e.state_dir}, registry {e.tracking_uri_template}, "
            f"login from {e.describe_credentials()}"
        )
        click.echo(safe(line, oneline=True))  # regops.yaml's text: shown, not obeyed
    return 0


def register(group: click.Group) -> None:
    group.add_command(environments)
