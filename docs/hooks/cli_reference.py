"""mkdocs hook: every regops command in the generated CLI reference.

`regops` loads most commands on first use (the lazy command table keeps `regops
validate` fast); mkdocs-click documents a group's loaded commands. Before the pages are
built, this asks the group for each name it lists, which loads them all.
"""

from __future__ import annotations

from typing import Any

import click


def load_all_commands() -> list[str]:
    from regops.cli import cli

    ctx = click.Context(cli, info_name="regops")
    names = cli.list_commands(ctx)
    for name in names:
        assert cli.get_command(ctx, name) is not None, f"regops {name}: no such command"
    return names


def on_config(config: Any) -> Any:
    load_all_commands()
    return config
