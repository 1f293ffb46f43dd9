"""The audit timeline (`regops history`): git log of the state files joined with the
registry's audit stamps. adapters.history_git reads git, core.timeline computes the
entries purely, core.lanes lays them out for the HTML page, render renders them; this
ties them together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from regops.adapters.history_git import StateRepo
from regops.api.planning import run_plan
from regops.core import promotion
from regops.core.lanes import Page, build_lanes
from regops.core.live import LiveState
from regops.core.time_travel import StateAt, state_at
from regops.core.timeline import DEEPEN_HINT, History, entries, join_stamps
from regops.errors import RegopsError
from regops.settings import Settings


def build_history(
    state_dir: Path,
    tracking_uri: str | None,
    *,
    model: str | None = None,
    version: str | None = None,
) -> History:
    """The whole timeline; the registry is read when `tracking_uri` is given."""
    return _history_live(state_dir, tracking_uri, model=model, version=version)[0]


def _history_live(
    state_dir: Path,
    tracking_uri: str | None,
    *,
    model: str | None = None,
    version: str | None = None,
    models: Sequence[str] = (),
) -> tuple[History, LiveState | None]:
    """The timeline and the registry snapshot its stamps came from (None: not read)."""
    repo = StateRepo(state_dir)
    found, cut_short = entries(repo.read(), model=model, version=version)
    if models:  # several models (the HTML page): keep the commits that concern them
        wanted = set(models)
        found = [
            replace(e, changes=kept)
            for e in found
            if (kept := tuple(c for c in e.changes if c.model in wanted)) or e.note
        ]
    filters = {"model": model, "version": version}
    truncated = None
    if cut_short:
        truncated = (
            "history is cut short: this is a shallow clone and older commits are not here; "
            f"to see all of it, run {DEEPEN_HINT}"
        )
    base = History(
        str(state_dir),
        tuple(found),
        registry_error="not requested",
        filters=filters,
        truncated=truncated,
    )
    if tracking_uri is None:
        return base, None
    from regops.adapters.tracking import mask_secrets, mask_uri

    names = sorted({c.model for e in found for c in e.changes})
    try:
        from regops.adapters.mlflow.registry import (
            MlflowRegistry,  # deferred: the git side needs no mlflow
        )

        live = MlflowRegistry(tracking_uri).snapshot(names)
    except Exception as exc:
        # The git side stands on its own: say the registry was not read, do not fail.
        return History(
            base.state_dir,
            base.entries,
            registry_error=mask_secrets(str(exc)),
            filters=filters,
            truncated=truncated,
        ), None
    joined = join_stamps(found, live, repo.is_ancestor)
    return History(
        str(state_dir),
        tuple(joined),
        registry=mask_uri(tracking_uri),
        filters=filters,
        truncated=truncated,
        warnings=live.warnings,
    ), live


def build_page(
    state_dir: Path,
    tracking_uri: str | None,
    *,
    models: Sequence[str] = (),
    since: datetime | None = None,
    at: datetime | None = None,
    now: datetime | None = None,
    settings: Settings | None = None,
) -> Page:
    """The history as lanes for the HTML page: one registry read serves stamps, lineage
    and drift; `--at` is answered by the same replay as `regops history --at`. With
    `settings` (and a registry), the current plan's changes are pending at "now"."""
    history, live = _history_live(state_dir, tracking_uri, models=models)
    current, plan_error = None, None
    if settings is not None and tracking_uri is not None:
        if live is None:
            plan_error = "the registry was not read"
        else:
            try:
                current = run_plan(settings, models or None)
            except RegopsError as exc:  # a bad state file, an unreachable registry...
                plan_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    names = set(models) or {c.model for e in history.entries for c in e.changes}
    lineage = promotion.lineage_rows(live, names) if live is not None else []
    when = now or datetime.now(timezone.utc)
    held = None
    if at is not None:
        scoped = replace(history, filters={**history.filters, "model": None})
        held = state_at(scoped, at)
    return build_lanes(
        history,
        now=int(when.timestamp()),
        live=live,
        lineage=lineage,
        since=int(since.timestamp()) if since else None,
        at=held,
        at_epoch=int(at.timestamp()) if at else None,
        models=models,
        plan=current,
        plan_error=plan_error,
    )


def build_at(state_dir: Path, tracking_uri: str | None, at: datetime, model: str | None) -> StateAt:
    """The state at `at`, read from git and (when `tracking_uri` is given) the registry."""
    return state_at(build_history(state_dir, tracking_uri, model=model), at)
