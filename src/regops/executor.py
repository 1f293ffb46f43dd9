"""apply(plan, registry) -> ApplyResult. Prints nothing; one outcome per change.

The whole plan is checked before the first write: a plan with errors or a failed
gate is refused, and so is a plan whose live state moved since it was computed.
Writes run in plan order; the first failure stops the run and every later change
is reported as skipped, so a partial apply says exactly what happened. Re-running
converges: the next plan is computed from what did land.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from regops.errors import PlanError, RegopsError, StalePlanError
from regops.live import ALIAS_MARK, APPLIED_TAG, HELD_TAG, LiveState
from regops.options import mask_uri
from regops.plan import (
    ALIAS_DELETE,
    ALIAS_MOVE,
    ALIAS_SET,
    APPLY,
    COPY,
    DESCRIPTION,
    STAGE,
    SUSPENDED,
    Change,
    Plan,
)
from regops.promotion import rename_record
from regops.registry import with_retry

APPLIED, FAILED, SKIPPED = "applied", "failed", "skipped"


class Registry(Protocol):
    def snapshot(self, names: list[str] | None = None) -> LiveState: ...
    def transition_stage(self, name: str, version: str, stage: str) -> None: ...
    def set_alias(self, name: str, alias: str, version: str) -> None: ...
    def delete_alias(self, name: str, alias: str) -> None: ...
    def update_description(self, name: str, description: str) -> None: ...
    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None: ...
    def set_model_tag(self, name: str, key: str, value: str) -> None: ...


@dataclass(frozen=True)
class Outcome:
    change: Change
    status: str  # applied | failed | skipped
    error: str | None = None
    note: str | None = None
    attempts: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "error": self.error,
            "note": self.note,
            "attempts": self.attempts,
            "change": self.change.to_dict(),
        }


@dataclass(frozen=True)
class ApplyResult:
    outcomes: tuple[Outcome, ...]
    records_written: tuple[str, ...] = ()
    writes: int = 0  # registry write calls made, retries included

    @property
    def ok(self) -> bool:
        return all(o.status != FAILED for o in self.outcomes)

    def to_dict(self) -> dict[str, Any]:
        counts = {
            s: sum(1 for o in self.outcomes if o.status == s) for s in (APPLIED, FAILED, SKIPPED)
        }
        return {
            "format_version": "1",
            "ok": self.ok,
            "summary": counts,
            "writes": self.writes,
            "records_written": list(self.records_written),
            "outcomes": [o.to_dict() for o in self.outcomes],
        }


def check_fresh(plan: Plan, registry: Registry) -> LiveState:
    """Refuse when the live registry moved since `plan` was computed; return what was read."""
    live = registry.snapshot(list(plan.models))
    if live.fingerprint(plan.models) != plan.live_fingerprint:
        raise StalePlanError(
            "the live registry changed since this plan was made; run `regops plan` again"
        )
    return live


def apply(
    plan: Plan,
    registry: Registry,
    stamps: Mapping[str, Mapping[str, str]],
    *,
    sleep: Callable[[float], None] | None = None,
    copier: Callable[[Change], str] | None = None,
) -> ApplyResult:
    """Apply `plan`. `stamps` maps each model to the audit tags for its changed versions.

    `copier` makes a COPY change (promotion across environments) and returns the new
    version's number; the changes after it that name the copy's state key (`dev@7`)
    are applied to that version.
    """
    if plan.errors:
        raise PlanError(list(plan.errors))
    if plan.blocked:
        raise PlanError(
            [f"{c.model} version {c.version}: promotion blocked by a gate" for c in plan.blocked]
            + ["nothing was applied"]
        )
    live = check_fresh(plan, registry)

    retry_kw: dict[str, Any] = {} if sleep is None else {"sleep": sleep}
    outcomes: list[Outcome] = []
    stamped: set[tuple[str, str]] = set()
    held: dict[tuple[str, str], frozenset[str]] = {}  # `regops.held` as this run grows it
    incomplete: set[str] = set()  # models with a change that failed or was not attempted
    writes = 0
    stopped: str | None = None
    made: dict[tuple[str, str], str] = {}  # (model, state key) -> version a copy made

    def call(fn: Callable[[], None]) -> int:
        nonlocal writes
        _, tries = with_retry(fn, **retry_kw)
        writes += tries
        return tries

    for change in plan.changes:
        change = _made(change, made)
        if change.action != APPLY:
            note = "model suspended" if change.action == SUSPENDED else "drift not corrected"
            outcomes.append(Outcome(change, SKIPPED, note=note))
            continue
        if stopped is not None:
            incomplete.add(change.model)
            outcomes.append(Outcome(change, SKIPPED, note=f"not attempted: {stopped}"))
            continue
        if change.kind == COPY:
            # Not retried as a whole: the copier finds a copy that landed by its lineage.
            try:
                if copier is None:
                    raise ValueError("this reconcile cannot copy across environments")
                made[(change.model, change.version or "")] = copier(change)
            except Exception as exc:
                incomplete.add(change.model)
                stopped = f"an earlier change failed ({change.model})"
                why = str(exc) if isinstance(exc, RegopsError) else _explain(exc, change)
                outcomes.append(Outcome(change, FAILED, error=why))
                continue
            new = made[(change.model, change.version or "")]
            outcomes.append(Outcome(change, APPLIED, note=f"new version {new}", attempts=1))
            continue
        try:
            tries = call(_write(change, registry))
        except Exception as exc:
            incomplete.add(change.model)
            stopped = f"an earlier change failed ({change.model})"
            outcomes.append(Outcome(change, FAILED, error=_explain(exc, change)))
            continue
        tags: dict[str, str] = {}
        if change.version is not None and (change.model, change.version) not in stamped:
            stamped.add((change.model, change.version))
            tags.update(stamps.get(change.model, {}))
        tags.update(_held(live, change, held))
        if tags and change.version is not None:
            try:
                for key, value in tags.items():
                    call(_tag(registry, change.model, change.version, key, value))
            except Exception as exc:
                incomplete.add(change.model)
                stopped = "writing an audit stamp failed"
                outcomes.append(
                    Outcome(
                        change,
                        FAILED,
                        error=f"applied, but the audit stamp failed: {exc}",
                        attempts=tries,
                    )
                )
                continue
        outcomes.append(Outcome(change, APPLIED, attempts=tries))

    records = []
    for model, record in sorted(plan.records.items()):
        if model in incomplete:
            continue
        for (m, key), version in made.items():
            if m == model:
                record = rename_record(record, key, version)
        try:
            call(functools.partial(registry.set_model_tag, model, APPLIED_TAG, record))
            records.append(model)
        except Exception:  # noqa: S112 - the record only sharpens drift detection next time
            continue
    return ApplyResult(tuple(outcomes), tuple(records), writes)


def _made(c: Change, made: Mapping[tuple[str, str], str]) -> Change:
    """`c` with a copy's state key (`dev@7`) replaced by the version the copy made."""
    if not made or c.kind == COPY:
        return c

    def sub(v: str | None) -> str | None:
        return made.get((c.model, v), v) if v is not None else None

    if c.kind in (ALIAS_SET, ALIAS_MOVE, ALIAS_DELETE):
        return replace(c, version=sub(c.version), before=sub(c.before), after=sub(c.after))
    return replace(c, version=sub(c.version))


def _held(
    live: LiveState, c: Change, held: dict[tuple[str, str], frozenset[str]]
) -> dict[str, str]:
    """The `regops.held` tag once this change lands, if it grows.

    Stages a version enters are recorded by name, aliases pointed at it as `@alias`:
    returning to either later is a rollback, not a new promotion.
    """
    if c.version is None:
        return {}
    if c.kind == STAGE:
        entry = c.after or "None"
    elif c.kind in (ALIAS_SET, ALIAS_MOVE) and c.alias:
        entry = ALIAS_MARK + c.alias
    else:
        return {}
    key = (c.model, c.version)
    if key not in held:
        model = live.models.get(c.model)
        version = model.versions.get(c.version) if model else None
        held[key] = version.held_entries() if version else frozenset()
    before = held[key]
    after = before | {entry}
    held[key] = after
    return {} if after == before else {HELD_TAG: ",".join(sorted(after))}


def _tag(registry: Registry, model: str, version: str, key: str, value: str) -> Callable[[], None]:
    return lambda: registry.set_version_tag(model, version, key, value)


def _write(c: Change, registry: Registry) -> Callable[[], None]:
    if c.kind == STAGE:
        return lambda: registry.transition_stage(c.model, c.version or "", c.after or "None")
    if c.kind in (ALIAS_SET, ALIAS_MOVE):
        return lambda: registry.set_alias(c.model, c.alias or "", c.after or "")
    if c.kind == ALIAS_DELETE:
        return lambda: registry.delete_alias(c.model, c.alias or "")
    if c.kind == DESCRIPTION:
        return lambda: registry.update_description(c.model, c.after or "")
    raise ValueError(f"unknown change kind {c.kind}")


def _explain(exc: BaseException, c: Change) -> str:
    code = getattr(exc, "error_code", "")
    what = f"{c.model}" + (f" version {c.version}" if c.version else "")
    text = str(exc)
    # HTTP status as a whole number only: a model named Churn401 is no 401.
    if code == "PERMISSION_DENIED" or re.search(r"\b403\b", text) or "Permission denied" in text:
        return f"permission denied: the credentials in use may not change {what}" + (
            " (deleting an alias needs MANAGE permission)" if c.kind == ALIAS_DELETE else ""
        )
    if code == "UNAUTHENTICATED" or re.search(r"\b401\b", text):
        return f"not authenticated: set MLFLOW_TRACKING_USERNAME/PASSWORD or TOKEN ({what})"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{type(exc).__name__}: {mask_uri(text)}"  # MLflow's text may embed user:pw@host
