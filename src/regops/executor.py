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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from regops.audit import AUDIT_TAG, Stamp
from regops.errors import PlanError, RegopsError, StalePlanError
from regops.live import ALIAS_MARK, APPLIED_TAG, AppliedRecord, LiveState
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
from regops.planner import MAX_RECORD_CHARS
from regops.promotion import rename_record
from regops.tracking import mask_secrets

APPLIED, FAILED, SKIPPED = "applied", "failed", "skipped"


class Registry(Protocol):
    def snapshot(self, names: list[str] | None = None) -> LiveState: ...
    # Writes may return how many tries they took (the MLflow adapter retries; see registry.py).
    def transition_stage(self, name: str, version: str, stage: str) -> int | None: ...
    def set_alias(self, name: str, alias: str, version: str) -> int | None: ...
    def delete_alias(self, name: str, alias: str) -> int | None: ...
    def update_description(self, name: str, description: str) -> int | None: ...
    def set_version_tag(self, name: str, version: str, key: str, value: str) -> int | None: ...
    def set_model_tag(self, name: str, key: str, value: str) -> int | None: ...


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
    interrupted: str | None = None  # the signal that stopped the run early (SIGTERM, SIGINT)
    restamped: tuple[str, ...] = ()  # "MODEL VERSION" whose lost audit stamp was restored

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
            "interrupted": self.interrupted,
            "restamped": list(self.restamped),
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
    sleep: Callable[[float], None] | None = None,  # unused: retries live in the registry
    copier: Callable[[Change], str] | None = None,
    stop: Callable[[], str | None] | None = None,
) -> ApplyResult:
    """Apply `plan`. `stamps` maps each model to its audit fields (commit, at, actor, file).

    One audit stamp per changed version (`regops.audit`), written right after its first
    change lands, with what the version holds once the plan is applied. `stop` is asked
    before each write; when it names a reason (a signal), the run stops there: the write
    in flight and its stamp have landed, the rest is reported skipped.

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

    final = _final_states(plan, live)
    outcomes: list[Outcome] = []
    stamped: set[tuple[str, str]] = set()
    incomplete: set[str] = set()  # models with a change that failed or was not attempted
    started: set[str] = set()  # models whose first write was attempted
    writes = 0
    stopped: str | None = None
    interrupted: str | None = None
    made: dict[tuple[str, str], str] = {}  # (model, state key) -> version a copy made

    def call(fn: Callable[[], int | None]) -> int:
        nonlocal writes
        tries = fn() or 1  # the adapter retries and says how often; a bare registry does not
        writes += tries
        return tries

    def stamp(model: str, key: str, version: str) -> None:
        """One write: the stamp of (model, plan key `key`), on the registry's `version`."""
        stage, aliases, held = final.get((model, key), (None, (), frozenset()))
        fields = Stamp.from_fields(stamps.get(model, {}))
        value = replace(fields, held=held, stage=stage, aliases=aliases).dump()
        call(lambda: registry.set_version_tag(model, version, AUDIT_TAG, value))

    for planned in plan.changes:
        change = _made(planned, made)
        if change.action != APPLY:
            note = "model suspended" if change.action == SUSPENDED else "drift not corrected"
            outcomes.append(Outcome(change, SKIPPED, note=note))
            continue
        if stopped is None and stop is not None and (reason := stop()):
            interrupted, stopped = reason, f"interrupted by {reason}"
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
            if change.model not in started:
                started.add(change.model)
                _baseline(plan, live, registry, change.model, call)
            tries = call(_write(change, registry))
        except Exception as exc:
            incomplete.add(change.model)
            stopped = f"an earlier change failed ({change.model})"
            outcomes.append(Outcome(change, FAILED, error=_explain(exc, change)))
            continue
        if change.version is not None and (change.model, change.version) not in stamped:
            stamped.add((change.model, change.version))
            try:
                stamp(change.model, planned.version or change.version, change.version)
            except Exception as exc:
                incomplete.add(change.model)
                stopped = "writing an audit stamp failed"
                outcomes.append(
                    Outcome(
                        change,
                        FAILED,
                        error=f"applied, but the audit stamp failed: {_explain(exc, change)}",
                        attempts=tries,
                    )
                )
                continue
        outcomes.append(Outcome(change, APPLIED, attempts=tries))

    restamped = []
    for model, version in plan.restamps:
        if stopped is not None or model in incomplete or (model, version) in stamped:
            continue
        if stop is not None and (reason := stop()):
            interrupted, stopped = reason, f"interrupted by {reason}"
            incomplete.add(model)
            continue
        try:
            stamp(model, version, version)
            restamped.append(f"{model} {version}")
        except Exception:
            incomplete.add(model)  # the next plan still sees it unstamped and offers it again

    records = []
    for model, record in sorted(plan.records.items()):
        if model in incomplete or (interrupted and model not in started):
            continue
        for (m, key), version in made.items():
            if m == model:
                record = rename_record(record, key, version)
        try:
            call(functools.partial(registry.set_model_tag, model, APPLIED_TAG, record))
            records.append(model)
        except Exception:  # noqa: S112 - the record only sharpens drift detection next time
            continue
    if stopped is not None:
        settle_stamps(plan, live, outcomes, stamps, registry, call)
    return ApplyResult(
        tuple(outcomes), tuple(records), writes, interrupted=interrupted,
        restamped=tuple(restamped),
    )  # fmt: skip


def settle_stamps(
    plan: Plan,
    live: LiveState,
    outcomes: Sequence[Outcome],
    stamps: Mapping[str, Mapping[str, str]],
    registry: Registry,
    call: Callable[[Callable[[], int | None]], int],
) -> list[tuple[str, str]]:
    """After a run cut short (a signal, a failure): the stamp of a version that got some of
    its changes but not all says what the whole plan would have made of it (stage, aliases,
    held); rewrite it to what landed. One write per such version, only in a cut run.

    When a write fails the rest are left (the registry is likely gone: one failure costs
    one more timeout at most); the next plan sees those stamps disagree with their versions
    and restores them (the planner's lost stamps).
    """
    landed = [o.change for o in outcomes if o.status == APPLIED and o.change.kind != COPY]
    if not landed:
        return []
    full = _final_states(plan, live)
    now = _final_states(replace(plan, changes=tuple(landed)), live)
    out = []
    for model, version in sorted({(c.model, c.version) for c in landed if c.version}):
        key = (model, version)
        if key not in full or key not in now or now[key] == full[key]:
            continue
        stage, aliases, held = now[key]
        fields = Stamp.from_fields(stamps.get(model, {}))
        value = replace(fields, held=held, stage=stage, aliases=aliases).dump()
        try:
            call(functools.partial(registry.set_version_tag, model, version, AUDIT_TAG, value))
        except Exception:  # noqa: BLE001 - see the docstring
            break
        out.append(key)
    return out


def _baseline(
    plan: Plan, live: LiveState, registry: Registry, model: str, call: Callable[..., int]
) -> None:
    """Before the first change to a model regops never recorded, record what is live.

    Then, if the run is cut after a change landed but before its stamp, the next plan
    sees that version differ from the record and restores the stamp (see the planner).
    """
    lm = live.models.get(model)
    if lm is None or model not in plan.records or lm.applied() is not None:
        return
    raw = AppliedRecord.of_live(lm).dump()
    if len(raw) <= MAX_RECORD_CHARS:
        call(lambda: registry.set_model_tag(model, APPLIED_TAG, raw))


Final = dict[tuple[str, str], tuple[str | None, tuple[str, ...], frozenset[str]]]


def _final_states(plan: Plan, live: LiveState) -> Final:
    """Per (model, plan version key): stage, aliases and held set once the plan has landed.

    What each version's one stamp records. `held` grows by every stage a change puts the
    version in and every alias pointed at it (`@alias`): returning to either later is a
    rollback, not a new promotion. A restamped version (its change landed, its stamp was
    lost) holds its live stage too when that differs from the record.
    """
    out: Final = {}
    for name in plan.models:
        lm = live.models.get(name)
        versions = dict(lm.versions) if lm else {}
        stages = {v: lv.stage for v, lv in versions.items()}
        aliases = dict(lm.aliases) if lm else {}
        held = {v: set(lv.held_entries()) for v, lv in versions.items()}
        record = lm.applied() if lm else None
        for v, lv in versions.items():
            if (name, v) in plan.restamps and record is not None:
                if (record.stage_of(v) or "None") != lv.stage and live.has_stages:
                    held[v].add(lv.stage)
                for alias in set(lm.aliases_of(v) if lm else ()) - set(
                    record.versions.get(v, (None, ()))[1]
                ):
                    held[v].add(ALIAS_MARK + alias)
        for c in plan.changes:
            if c.model != name or c.action != APPLY or c.kind == COPY:
                continue
            key = c.version or ""
            if c.kind == STAGE:
                stages[key] = c.after or "None"
                held.setdefault(key, set()).add(c.after or "None")
            elif c.kind in (ALIAS_SET, ALIAS_MOVE) and c.alias:
                aliases[c.alias] = c.after or ""
                held.setdefault(c.after or "", set()).add(ALIAS_MARK + c.alias)
            elif c.kind == ALIAS_DELETE and c.alias:
                aliases.pop(c.alias, None)
        for v in set(stages) | set(held):
            mine = tuple(sorted(a for a, owner in aliases.items() if owner == v))
            stage = stages.get(v, "None") if live.has_stages else None
            out[(name, v)] = (stage, mine, frozenset(held.get(v, ())))
    return out


def _made(c: Change, made: Mapping[tuple[str, str], str]) -> Change:
    """`c` with a copy's state key (`dev@7`) replaced by the version the copy made."""
    if not made or c.kind == COPY:
        return c

    def sub(v: str | None) -> str | None:
        return made.get((c.model, v), v) if v is not None else None

    if c.kind in (ALIAS_SET, ALIAS_MOVE, ALIAS_DELETE):
        return replace(c, version=sub(c.version), before=sub(c.before), after=sub(c.after))
    return replace(c, version=sub(c.version))


def _write(c: Change, registry: Registry) -> Callable[[], int | None]:
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
    return f"{type(exc).__name__}: {mask_secrets(text)}"  # MLflow's text may embed user:pw@host
