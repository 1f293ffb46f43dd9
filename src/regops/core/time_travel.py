"""`regops history --at TIME`: who held each stage and alias at a moment, and since when.

Built on the audit timeline (core/timeline.py): the state's changes are replayed, oldest
first, up to the last commit on the main line made at or before TIME; each stage
and alias then held is attributed to the commit (and pull request) that last set
it, and the registry's stamp on the version says whether, and when, it took effect:
before TIME, only after it, or not at all yet. Pure (`regops.api.build_at` reads git
and the registry for it); rendered by render.render_history_at.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from regops.core.plan import FORMAT_VERSION
from regops.core.state import version_key
from regops.core.timeline import Applied, Change, Entry, History
from regops.errors import UsageError


@dataclass(frozen=True)
class Holding:
    """One stage or alias held by a version at the time asked."""

    model: str
    kind: str  # stage | alias
    name: str  # the stage or the alias
    version: str
    commit: str
    committed_at: str
    author: str
    subject: str
    pr: int | None
    effect: str  # in_effect | not_yet | pending | unknown
    effect_detail: str
    applied_at: str | None = None
    actor: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "commit": self.commit,
            "short": self.commit[:7],
            "committed_at": self.committed_at,
            "author": self.author,
            "subject": self.subject,
            "pr": self.pr,
            "applied": {
                "status": self.effect,
                "at": self.applied_at,
                "actor": self.actor,
                "detail": self.effect_detail,
            },
        }


@dataclass(frozen=True)
class StateAt:
    at: str  # the time asked, normalised to UTC
    state_dir: str
    commit: str | None  # the last state commit at or before `at`
    committed_at: str | None
    pr: int | None
    holdings: tuple[Holding, ...]
    registry: str | None = None
    registry_error: str | None = None
    model: str | None = None
    truncated: str | None = None  # a shallow clone: older commits (and holders) are not here

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "at": self.at,
            "state_dir": self.state_dir,
            "model": self.model,
            "commit": self.commit,
            "committed_at": self.committed_at,
            "pr": self.pr,
            "registry": {
                "read": self.registry is not None,
                "uri": self.registry,
                "error": self.registry_error,
            },
            "holdings": [h.to_dict() for h in self.holdings],
            "truncated": self.truncated,
        }


def parse_time(text: str, flag: str = "--at") -> datetime:
    """ISO 8601 date or date-time (`2026-12-01`, `2026-12-01T10:00`, `...Z`, `...+02:00`).

    Without a zone it is UTC; a bare date means the end of that day.
    """
    raw = text.strip()
    try:
        if len(raw) == 10:
            day = datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=timezone.utc)
            # The last microsecond of the day, built in place: `+ 1 day` overflows 9999-12-31.
            return day.replace(hour=23, minute=59, second=59, microsecond=999_999)
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "T", 1))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.astimezone(timezone.utc)
    except OverflowError:  # e.g. 9999-12-31T23:59-05:00 is past year 9999 in UTC
        raise UsageError(
            f"{flag} {text!r}: out of range once converted to UTC (years 1 to 9999)"
        ) from None
    except ValueError:
        raise UsageError(
            f"{flag} {text!r}: expected an ISO 8601 time such as 2026-12-01 or 2026-12-01T10:00:00Z"
        ) from None


def _when(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    try:
        parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except (ValueError, OverflowError):  # a stamp another client wrote: unreadable = unknown
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def state_at(history: History, at: datetime) -> StateAt:
    """Replay `history` (a regops.core.timeline.History, newest first) up to `at`."""
    held: dict[tuple[str, str, str], tuple[str, Entry, Change]] = {}  # (model, kind, name) ->
    last: Entry | None = None
    for entry in reversed(history.entries):
        when = _when(entry.committed_at)
        if when is None or when > at:
            continue
        last = entry
        for c in entry.changes:
            if c.kind == "stage":
                # A stage is held by versions; key by version so two Staging versions both show.
                key = (c.model, "stage", c.version)
                if c.after is None or c.after == "None":
                    held.pop(key, None)
                else:
                    held[key] = (c.version, entry, c)
            else:
                key = (c.model, "alias", c.alias or "")
                if c.after is None:
                    held.pop(key, None)
                else:
                    held[key] = (c.after, entry, c)
    holdings = [
        _holding(model, kind, name, version, entry, change, at)
        for (model, kind, name), (version, entry, change) in held.items()
    ]
    holdings.sort(
        key=lambda h: (
            h.model,
            h.kind != "stage",
            h.name if h.kind == "alias" else "",
            -version_key(h.version),
        )  # fmt: skip
    )
    return StateAt(
        at=f"{at.year:04d}-{at:%m-%dT%H:%M:%S}Z",  # strftime writes year 1 as "1"
        state_dir=history.state_dir,
        commit=last.commit if last else None,
        committed_at=last.committed_at if last else None,
        pr=last.pr if last else None,
        holdings=tuple(holdings),
        registry=history.registry,
        registry_error=history.registry_error,
        model=history.filters.get("model"),
        truncated=history.truncated,
    )


def _holding(
    model: str, kind: str, name: str, version: str, entry: Entry, change: Change, at: datetime
) -> Holding:
    label = change.after if kind == "stage" else name
    effect, detail, applied_at, actor = _effect(change.applied, at)
    return Holding(
        model=model,
        kind=kind,
        name=str(label),
        version=version,
        commit=entry.commit,
        committed_at=entry.committed_at,
        author=entry.author,
        subject=entry.subject,
        pr=entry.pr,
        effect=effect,
        effect_detail=detail,
        applied_at=applied_at,
        actor=actor,
    )


def _effect(applied: Applied | None, at: datetime) -> tuple[str, str, str | None, str | None]:
    """(status, detail, applied at, by whom) of a change, as of `at`."""
    if applied is None:
        return "unknown", "registry not read", None, None
    status, stamp_at, actor = applied.status, applied.at, applied.actor
    when = _when(stamp_at)
    if status == "applied":
        if when is not None and when > at:
            later = f"applied later, {stamp_at}" + (f" by {actor}" if actor else "")
            return "not_yet", f"not yet applied ({later})", stamp_at, actor
        return "in_effect", f"in effect since {stamp_at or '(time unknown)'}", stamp_at, actor
    if status == "superseded":
        short = (applied.commit or "")[:7]
        if when is not None and when <= at:
            detail = f"in effect (applied before {stamp_at}, when {short} re-stamped the version)"
            return "in_effect", detail, None, None
        detail = (
            f"applied by {stamp_at} at the latest, maybe after this time (the version's "
            f"stamp now names {short})"
        )
        return "unknown", detail, None, None
    if status == "in_effect":
        return "in_effect", "in effect (live matches; no stamp from this commit)", None, None
    if status in ("pending", "unstamped"):
        return "pending", "not applied (reconcile has not applied it yet)", None, None
    return "unknown", applied.note or status, None, None
