"""`regops history`: who changed which stage or alias, when, via which PR, and when it applied."""

from __future__ import annotations

from typing import Any

import click

from regops.adapters.tracking import http_defaults
from regops.api import build_at, build_history
from regops.cli.options import common_options, settings
from regops.core.promotion import lineage_rows
from regops.core.timeline import History
from regops.errors import UsageError
from regops.render import render_history, render_history_at
from regops.settings import Settings

# The registry side of history is optional (the git side stands alone, and says when the
# registry was not read): one try, no MLflow retries, unless the user set them, so an
# unreachable registry costs one timeout at most instead of the retried budget of `plan`.
OPTIONAL_REGISTRY_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}


@click.command()
@click.argument("model", required=False)
@click.option("--version", help="Only changes concerning this version of MODEL.")
@click.option(
    "--git-only", is_flag=True, help="Do not read the registry's audit stamps (no network)."
)
@click.option(
    "--at",
    "at",
    metavar="TIME",
    help="Who held each stage and alias at TIME (ISO 8601, e.g. 2026-12-01T10:00Z), "
    "from which commit and PR, and when it took effect.",
)
@common_options
@click.pass_context
def history(
    ctx: click.Context, model: str | None, version: str | None, git_only: bool, at: str | None
) -> int:
    """Audit timeline: git log of the state files joined with the registry's audit stamps.

    \b
    Each commit that touched the state files (a merged pull request is one entry)
    with its author, date and PR number, the stage and alias changes it made
    (a revert shows as the reverse change), and whether the registry's
    `regops.*` stamps show it applied: when, and by whom.
    """
    s = settings(ctx)
    if not git_only:
        http_defaults(defaults=OPTIONAL_REGISTRY_HTTP)
    if at is not None:
        from regops.core import time_travel

        if version is not None:
            raise UsageError("--at shows every version; it cannot be combined with --version")
        when = time_travel.parse_time(at)
        state = build_at(s.state_dir, None if git_only else s.tracking_uri, when, model)
        click.echo(render_history_at(state, s.fmt))
        return 0
    h = build_history(
        s.state_dir, None if git_only else s.tracking_uri, model=model, version=version
    )
    from regops.cli import warn  # loaded already: it loads this module

    warn(h.warnings)  # a hostile stamp is shown as absent in the history: say which
    lineage = _lineage(s, h, model) if h.registry else []
    click.echo(render_history(h, s.fmt, lineage))
    return 0


def _lineage(s: Settings, h: History, model: str | None) -> list[dict[str, Any]]:
    """Versions copied from other environments (`regops.copied_from`), for the models shown."""
    names = {model} if model else {c.model for e in h.entries for c in e.changes}
    if not names:
        return []
    from regops.adapters.mlflow.registry import MlflowRegistry

    return lineage_rows(MlflowRegistry(s.tracking_uri).snapshot(sorted(names)), names)


def register(group: click.Group) -> None:
    group.add_command(history)
