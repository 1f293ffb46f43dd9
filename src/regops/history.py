"""The audit timeline: `git log` of the state files joined with the registry's audit stamps.

Answers "who put version 7 in Production, when, through which pull request, and
when did it take effect". The git side follows the first-parent history of the
state directory (a merged pull request is one entry: its merge or squash commit),
and each entry's stage/alias changes are computed by diffing the state files at
the commit against its first parent, so a `git revert` shows as the reverse change.
The registry side reads the `regops.*` stamps reconcile writes on each version it
changes. A version keeps only its latest stamp: an older application shows as
"superseded" by the later commit that re-stamped the version.

Three parts: history_git reads git (through regops.gitio), timeline computes the
entries purely, render.py renders them. This module ties them together.
"""

from __future__ import annotations

from pathlib import Path

from regops.history_git import HistoryError, StateRepo
from regops.timeline import (
    DEEPEN_HINT,
    Applied,
    Change,
    Entry,
    History,
    diff_states,
    entries,
    join_stamps,
    parse_state,
    pr_number,
)

__all__ = [
    "Applied",
    "Change",
    "Entry",
    "History",
    "HistoryError",
    "build_history",
    "diff_states",
    "parse_state",
    "pr_number",
]


def build_history(
    state_dir: Path,
    tracking_uri: str | None,
    *,
    model: str | None = None,
    version: str | None = None,
) -> History:
    """The whole timeline; the registry is read when `tracking_uri` is given."""
    repo = StateRepo(state_dir)
    found, cut_short = entries(repo.read(), model=model, version=version)
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
        return base
    from regops.tracking import mask_secrets, mask_uri

    names = sorted({c.model for e in found for c in e.changes})
    try:
        from regops.registry import MlflowRegistry  # deferred: the git side needs no mlflow

        live = MlflowRegistry(tracking_uri).snapshot(names)
    except Exception as exc:
        # The git side stands on its own: say the registry was not read, do not fail.
        return History(
            base.state_dir,
            base.entries,
            registry_error=mask_secrets(str(exc)),
            filters=filters,
            truncated=truncated,
        )
    joined = join_stamps(found, live, repo.is_ancestor)
    return History(
        str(state_dir),
        tuple(joined),
        registry=mask_uri(tracking_uri),
        filters=filters,
        truncated=truncated,
        warnings=live.warnings,
    )
