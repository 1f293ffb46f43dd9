"""`regops history`: who changed which stage or alias, when, via which PR, and when it applied."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from regops.adapters.tracking import http_defaults
from regops.api import build_at, build_history, build_page
from regops.cli.options import REGISTRY_NAME_ENV, common_options, settings
from regops.core.lanes import epoch
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
@click.argument("models", metavar="[MODEL]...", nargs=-1)
@click.option("--version", help="Only changes concerning this version of MODEL.")
@click.option(
    "--git-only", is_flag=True, help="Do not read the registry's audit stamps (no network)."
)
@click.option(
    "--at",
    "at",
    metavar="TIME",
    help="Who held each stage and alias at TIME (ISO 8601, e.g. 2026-12-01T10:00Z), "
    "from which commit and PR, and when it took effect (--format html: highlighted).",
)
@click.option(
    "--since",
    metavar="TIME",
    help="Only what happened from TIME on (ISO 8601; a bare date is that day's start).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report to FILE instead of standard output (--format html: the page).",
)
@common_options
@click.pass_context
def history(
    ctx: click.Context,
    models: tuple[str, ...],
    version: str | None,
    git_only: bool,
    at: str | None,
    since: str | None,
    out: Path | None,
) -> int:
    """Audit timeline: git log of the state files joined with the registry's audit stamps.

    \b
    Each commit that touched the state files (a merged pull request is one entry)
    with its author, date and PR number, the stage and alias changes it made
    (a revert shows as the reverse change), and whether the registry's
    `regops.*` stamps show it applied: when, and by whom.

    `--format html --out FILE` writes one self-contained page: per model a lane per
    stage and alias, a bar per version's tenure, rollbacks, copies and drift marked,
    with a table of the same data (several MODELs allowed).
    """
    s = settings(ctx, html=True)
    if not git_only:
        http_defaults(defaults=OPTIONAL_REGISTRY_HTTP)
    from regops.core import time_travel

    start = _since(since)
    if s.fmt == "html":
        if version is not None:
            raise UsageError("--format html shows every version; drop --version")
        when = time_travel.parse_time(at) if at is not None else None
        page = build_page(
            s.state_dir,
            None if git_only else s.tracking_uri,
            models=models,
            since=start,
            at=when,
            settings=s,
        )
        from regops.render.html import render_html

        name = s.registry_name or os.environ.get(REGISTRY_NAME_ENV) or s.env_name
        if name and page.history.registry:  # a published page names it, never its URI
            page.history = replace(page.history, registry=name)
        _emit(render_html(page), out)
        return 0
    if len(models) > 1:
        raise UsageError("several MODELs are shown by --format html only; name one, or none")
    model = models[0] if models else None
    if at is not None:
        if version is not None:
            raise UsageError("--at shows every version; it cannot be combined with --version")
        when = time_travel.parse_time(at)
        state = build_at(s.state_dir, None if git_only else s.tracking_uri, when, model)
        _emit(render_history_at(state, s.fmt), out)
        return 0
    h = build_history(
        s.state_dir, None if git_only else s.tracking_uri, model=model, version=version
    )
    from regops.cli import warn  # loaded already: it loads this module

    warn(h.warnings)  # a hostile stamp is shown as absent in the history: say which
    if start is not None:
        h = replace(h, entries=tuple(e for e in h.entries if _after(e.committed_at, start)))
    lineage = _lineage(s, h, model) if h.registry else []
    _emit(render_history(h, s.fmt, lineage), out)
    return 0


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    from regops.core import time_travel

    when = time_travel.parse_time(text, flag="--since")
    if len(text.strip()) == 10:  # a bare date: from that day's start (--at takes its end)
        when = when.replace(hour=0, minute=0, second=0, microsecond=0)
    return when


def _after(committed_at: str, start: datetime) -> bool:
    when = epoch(committed_at)
    return when is None or when >= start.timestamp()


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        click.echo(text)
        return
    try:
        out.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--out {out}: {exc.strerror or exc}") from None


def _lineage(s: Settings, h: History, model: str | None) -> list[dict[str, Any]]:
    """Versions copied from other environments (`regops.copied_from`), for the models shown."""
    names = {model} if model else {c.model for e in h.entries for c in e.changes}
    if not names:
        return []
    from regops.adapters.mlflow.registry import MlflowRegistry

    return lineage_rows(MlflowRegistry(s.tracking_uri).snapshot(sorted(names)), names)


def register(group: click.Group) -> None:
    group.add_command(history)
