"""The history as lanes: per model, one lane per stage and alias, one tenure per holder.

Pure (the input is the audit timeline of core/timeline.py, already joined with the
registry's stamps; `regops.api.build_page` reads git and the registry for it), so the
HTML page (render/html.py) draws exactly what `regops history` reports:

- a tenure starts when the change that gave the version the stage or alias took effect:
  the stamp's applied time when the registry says that change applied, else the commit
  time (a change never applied, or applied before regops stamped);
- it ends where the next change of that lane (or the version's next stage) starts;
  open tenures run to "now";
- markers: a tenure started by a `git revert` or by a return to a version that held the
  lane before is a rollback; a version copied from another environment carries its
  lineage; an open tenure the registry does not show is drift (or a pending change,
  when no reconcile has applied it yet);
- `--at` marks the holders `regops history --at` names (core/time_travel, the same code);
- the gate numbers a tenure's stamp keeps (`require_metrics`) ride on it, and so do the
  overrides the stamp records (`rules` verdicts carrying an `override: {reason, actor}`,
  read defensively: anything else there is ignored);
- the current plan's changes (desired state against live) are pending at "now" in their
  lane, blocked where a gate blocks them.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from regops.core import jsonio
from regops.core.audit import AUDIT_TAG, MAX_TAG_CHARS, RuleEvidence
from regops.core.live import LiveState, LiveVersion
from regops.core.plan import Change as PlanChange
from regops.core.plan import ChangeKind, Plan
from regops.core.time_travel import StateAt
from regops.core.timeline import Change, Entry, History
from regops.errors import JsonInputError

ROLLBACK = 1  # started by a git revert, or a return to a version that held the lane before
COPY = 2  # the version is a copy from another environment (lineage in `extra`)
DRIFT = 4  # open, and the registry shows otherwise (not a pending change)
PENDING = 8  # the change that started it is not applied yet
AT = 16  # held at the `--at` time, as `regops history --at` says
OVERRIDE = 32  # the stamp lists overrides that let the change through
MAX_OVERRIDES = 20  # overrides of a stamp shown (the tag is anyone's to write)
NOT_HELD = ("None",)  # the stage of a version that holds no stage: no lane


def epoch(stamp: str | None) -> int | None:
    """Seconds since 1970 of an ISO 8601 time (git's or a stamp's); None when unreadable."""
    if not stamp:
        return None
    try:
        parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except (ValueError, OverflowError):  # a stamp another client wrote: unknown
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        return int(parsed.timestamp())
    except (OverflowError, OSError, ValueError):
        return None


@contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cycle collector while building large acyclic data: each collection walks
    every object made so far, which made a 1,000-model page 2.4 times slower to build."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@dataclass
class Tenure:
    """One version holding one stage or alias, from `start` to `end` (None: still)."""

    version: str
    start: int
    commit: int  # index into Page.commits: the change that started it
    status: str  # the start change's applied status (core.timeline.Applied.status)
    applied_at: str | None
    actor: str | None
    end: int | None = None
    end_commit: int | None = None
    flags: int = 0
    notes: list[str] = field(default_factory=list)
    metrics: tuple[str, ...] = ()  # the require_metrics numbers its stamp keeps


@dataclass
class Lane:
    kind: str  # stage | alias
    name: str
    tenures: list[Tenure] = field(default_factory=list)
    pending: list[PlanChange] = field(default_factory=list)  # the current plan's, at "now"


@dataclass
class ModelLanes:
    name: str
    lanes: dict[tuple[str, str], Lane] = field(default_factory=dict)


@dataclass
class Page:
    """Everything the page shows, as plain data (render/html.py serialises it)."""

    models: list[ModelLanes]
    commits: list[Entry]
    now: int
    since: int | None
    at: StateAt | None
    at_epoch: int | None
    history: History
    plan: Plan | None = None
    plan_error: str | None = None  # why no plan is shown (None: shown, or not asked)


def _start_of(change: Change, entry: Entry) -> int:
    applied = change.applied
    if applied is not None and applied.status == "applied":
        when = epoch(applied.at)
        if when is not None:
            return when
    return epoch(entry.committed_at) or 0


def build_lanes(
    history: History,
    *,
    now: int,
    live: LiveState | None = None,
    lineage: Sequence[Mapping[str, Any]] = (),
    since: int | None = None,
    at: StateAt | None = None,
    at_epoch: int | None = None,
    models: Sequence[str] = (),
    plan: Plan | None = None,
    plan_error: str | None = None,
) -> Page:
    """Replay `history` (newest first, as built) into lanes of tenures, oldest first;
    `plan`'s changes are pending in their lanes."""
    with no_gc():
        page = _build(history, now, live, lineage, since, at, at_epoch, models, plan)
    page.plan, page.plan_error = plan, plan_error
    return page


def _build(
    history: History,
    now: int,
    live: LiveState | None,
    lineage: Sequence[Mapping[str, Any]],
    since: int | None,
    at: StateAt | None,
    at_epoch: int | None,
    models: Sequence[str],
    plan: Plan | None = None,
) -> Page:
    wanted = set(models)
    by_model: dict[str, ModelLanes] = {}
    commits: list[Entry] = []
    held_before: dict[tuple[str, str, str], set[str]] = {}
    open_: dict[tuple[str, str, str], dict[str, Tenure]] = {}  # lane -> version -> tenure

    def lane(model: str, kind: str, name: str) -> Lane:
        ml = by_model.get(model)
        if ml is None:
            ml = by_model[model] = ModelLanes(model)
        found = ml.lanes.get((kind, name))
        if found is None:
            found = ml.lanes[(kind, name)] = Lane(kind, name)
        return found

    def close(key: tuple[str, str, str], version: str, when: int, idx: int) -> None:
        t = open_.get(key, {}).pop(version, None)
        if t is not None:
            t.end, t.end_commit = max(when, t.start), idx

    for entry in reversed(history.entries):
        changes = [c for c in entry.changes if not wanted or c.model in wanted]
        if not changes:
            continue
        idx = len(commits)
        commits.append(entry)
        for c in changes:
            when = _start_of(c, entry)
            status = c.applied.status if c.applied else "unknown"
            applied_at = c.applied.at if c.applied else None
            actor = c.applied.actor if c.applied else None
            if c.kind == "stage":
                if c.before and c.before not in NOT_HELD:
                    close((c.model, "stage", c.before), c.version, when, idx)
                starts = [] if not c.after or c.after in NOT_HELD else [("stage", c.after)]
                version = c.version
            else:
                name = c.alias or ""
                if c.before is not None:
                    close((c.model, "alias", name), c.before, when, idx)
                starts = [] if c.after is None else [("alias", name)]
                version = c.after or ""
            for kind, name in starts:
                key = (c.model, kind, name)
                t = Tenure(version, when, idx, status, applied_at, actor)
                if status == "applied" and c.applied is not None:
                    t.metrics = c.applied.metrics  # the numbers of this very change
                seen = held_before.setdefault(key, set())
                if entry.reverts:
                    t.flags |= ROLLBACK
                    t.notes.append(f"rollback: reverts {entry.reverts[:12]}")
                elif version in seen:
                    t.flags |= ROLLBACK
                    t.notes.append(f"rollback: {version} held {name} before")
                if status in ("pending", "unstamped"):
                    t.flags |= PENDING
                seen.add(version)
                lane(*key).tenures.append(t)
                open_.setdefault(key, {})[version] = t

    _mark_lineage(by_model, lineage)
    if live is not None:
        _mark_drift(by_model, live)
        _mark_overrides(by_model, live)
    if plan is not None:
        for pc in plan.changes:
            if not wanted or pc.model in wanted:
                where = plan_lane(pc)
                if where is not None:
                    lane(pc.model, *where).pending.append(pc)
    if at is not None:
        _mark_at(by_model, at, commits)
    out = []
    for name in sorted(by_model):
        ml = by_model[name]
        for ln in ml.lanes.values():
            if since is not None:
                ln.tenures = [t for t in ln.tenures if t.end is None or t.end >= since]
        ml.lanes = {
            k: v
            for k, v in sorted(ml.lanes.items(), key=lambda kv: _lane_order(kv[0]))
            if v.tenures or v.pending
        }
        if ml.lanes:
            out.append(ml)
    return Page(out, commits, now, since, at, at_epoch, history)


_STAGE_ORDER = {"Production": 0, "Staging": 1, "Archived": 3}


def _lane_order(key: tuple[str, str]) -> tuple[int, int, str]:
    kind, name = key
    if kind == "stage":
        return (0, _STAGE_ORDER.get(name, 2), name)
    return (1, 0, name)


def _mark_lineage(by_model: dict[str, ModelLanes], lineage: Sequence[Mapping[str, Any]]) -> None:
    copies = {(str(r.get("model")), str(r.get("version"))): r for r in lineage}
    for ml in by_model.values():
        for ln in ml.lanes.values():
            for t in ln.tenures:
                row = copies.get((ml.name, t.version))
                if row is None and "@" in t.version:  # a `dev@7` key names the copy
                    env, _, src = t.version.partition("@")
                    row = next(
                        (
                            r
                            for (m, _v), r in copies.items()
                            if m == ml.name
                            and r.get("source_env") == env
                            and str(r.get("source_version")) == src
                        ),
                        None,
                    )
                if row is not None:
                    t.flags |= COPY
                    t.notes.append(
                        f"copy of {row.get('source_env')}/{row.get('source_model')} "
                        f"v{row.get('source_version')} (here v{row.get('version')})"
                    )


def _live_version(live: LiveState, model: str, key: str) -> LiveVersion | None:
    lm = live.models.get(model)
    if lm is None:
        return None
    found = lm.versions.get(key)
    if found is None and "@" in key:
        from regops.core.promotion import copy_in

        found = copy_in(lm, key)
    return found


def _mark_drift(by_model: dict[str, ModelLanes], live: LiveState) -> None:
    """Open tenures the registry does not show: drift, unless the change is still pending."""
    for ml in by_model.values():
        lm = live.models.get(ml.name)
        if lm is None:
            continue
        for (kind, name), ln in ml.lanes.items():
            for t in ln.tenures:
                if t.end is not None or t.flags & PENDING:
                    continue
                lv = _live_version(live, ml.name, t.version)
                if lv is None:
                    continue
                if kind == "stage":
                    shown = lv.stage
                    ok = shown == name
                else:
                    holder = lm.aliases.get(name)
                    shown = f"v{holder}" if holder else "nobody"
                    ok = holder == lv.version
                if not ok:
                    t.flags |= DRIFT
                    t.notes.append(f"drift: the registry shows {shown} now")


def _mark_at(by_model: dict[str, ModelLanes], at: StateAt, commits: Sequence[Entry]) -> None:
    for h in at.holdings:
        ml = by_model.get(h.model)
        ln = ml.lanes.get((h.kind, h.name)) if ml else None
        if ln is None:
            continue
        # The tenure the commit `--at` names started (the same replay, so it exists).
        for t in ln.tenures:
            if t.version == h.version and commits[t.commit].commit == h.commit:
                t.flags |= AT
                t.notes.append(f"at {at.at}: {h.effect_detail}")


def plan_lane(c: PlanChange) -> tuple[str, str] | None:
    """The lane a plan's change concerns: the stage entered (or left), the alias moved."""
    if c.kind == ChangeKind.STAGE:
        if c.after and c.after not in NOT_HELD:
            return ("stage", c.after)
        if c.before and c.before not in NOT_HELD:
            return ("stage", c.before)
        return None
    if c.kind in (ChangeKind.ALIAS_SET, ChangeKind.ALIAS_MOVE, ChangeKind.ALIAS_DELETE):
        return ("alias", c.alias) if c.alias else None
    return None  # descriptions and copies have no lane


def plan_version(c: PlanChange) -> str:
    """The version a plan's change puts in (or takes out of) its lane."""
    if c.kind == ChangeKind.ALIAS_DELETE:
        return c.before or ""
    if c.kind in (ChangeKind.ALIAS_SET, ChangeKind.ALIAS_MOVE):
        return c.after or ""
    return c.version or ""


def stamp_overrides(raw: str | None, target: str) -> list[str]:
    """The overrides a stamp records for `target`, in words; [] when absent or malformed.

    They are the `rules` verdicts a reconcile let through with `--override` (`{for, rule,
    level, result, override: {reason, actor}}`, core/audit.RuleEvidence). Anyone can write
    the tag, so an entry that is not such a verdict is ignored."""
    if not raw:
        return []
    try:
        doc = jsonio.parse_tag(raw, max_chars=MAX_TAG_CHARS)
    except JsonInputError:  # a hostile tag: no overrides to show (history warns of it)
        return []
    entries = doc.get("rules") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        return []
    out: list[str] = []
    for e in entries:
        ev = RuleEvidence.from_doc(e)
        if ev is None or ev.override_reason is None or not ev.rule:
            continue
        if ev.target and ev.target != target:
            continue
        text = f"override: {ev.rule}"
        if ev.override_actor:
            text += f" by {ev.override_actor}"
        if ev.override_reason:
            text += f": {ev.override_reason}"
        out.append(text)
        if len(out) == MAX_OVERRIDES:
            break
    return out


def _mark_overrides(by_model: dict[str, ModelLanes], live: LiveState) -> None:
    """Tenures whose stamp (the one naming their own commit) lists overrides."""
    for ml in by_model.values():
        for (_kind, name), ln in ml.lanes.items():
            for t in ln.tenures:
                if t.status != "applied":
                    continue
                lv = _live_version(live, ml.name, t.version)
                found = stamp_overrides(lv.tags.get(AUDIT_TAG) if lv else None, name)
                if found:
                    t.flags |= OVERRIDE
                    t.notes.extend(found)
