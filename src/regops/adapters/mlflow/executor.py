"""apply(plan, registry) -> ApplyResult. Prints nothing; one outcome per change.

The whole plan is checked before the first write: a plan with errors or a failed
gate is refused, and so is a plan whose live state moved since it was computed.
Each model's writes run in plan order, models in parallel when asked (`parallel`);
the first failure stops the run and every change not yet started is reported as
skipped, so a partial apply says exactly what happened. Re-running converges: the
next plan is computed from what did land.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Protocol

from regops.adapters.tracking import mask_secrets
from regops.core.audit import (
    AUDIT_TAG,
    MetricEvidence,
    RuleEvidence,
    Stamp,
    evidence_of,
    merge_evidence,
    merge_rules,
    rule_evidence_of,
)
from regops.core.live import ALIAS_MARK, APPLIED_TAG, AppliedRecord, LiveState
from regops.core.plan import FORMAT_VERSION, Action, Change, ChangeKind, OutcomeStatus, Plan
from regops.core.planner import MAX_RECORD_CHARS
from regops.core.promotion import rename_record
from regops.errors import PlanError, RegopsError, StalePlanError

# What let a version's changes through: its metric verdicts and its rule verdicts.
Evidence = tuple[tuple[MetricEvidence, ...], tuple[RuleEvidence, ...]]
NO_EVIDENCE: Evidence = ((), ())


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
    status: OutcomeStatus
    error: str | None = None
    note: str | None = None
    attempts: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
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
    retries: int = 0  # of `writes`, the tries after a transient failure (a conflict, a busy db)

    @property
    def ok(self) -> bool:
        return all(o.status != OutcomeStatus.FAILED for o in self.outcomes)

    def to_dict(self) -> dict[str, Any]:
        counts = {s.value: sum(1 for o in self.outcomes if o.status == s) for s in OutcomeStatus}
        return {
            "format_version": FORMAT_VERSION,
            "ok": self.ok,
            "summary": counts,
            "writes": self.writes,
            "retries": self.retries,
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
    parallel: int = 1,
) -> ApplyResult:
    """Apply `plan`. `stamps` maps each model to its audit fields (commit, at, actor, file).

    One audit stamp per changed version (`regops.audit`), written right after its first
    change lands, with what the version holds once the plan is applied. `stop` is asked
    before each write; when it names a reason (a signal), the run stops there: the write
    in flight and its stamp have landed, the rest is reported skipped.

    `parallel` writers work on different models at once; one writer owns a model from its
    first change to its applied record, so each model's writes keep their plan order
    (enter before leave, aliases before archive, its stamps and record after its changes).
    The outcomes are listed in plan order whatever order the writers finished in. When a
    change fails (or a signal arrives), no writer starts another change: a model in
    flight finishes the change it is making and its stamp, its later changes and every
    model not yet started are reported skipped. A write waits on the registry's round
    trip, not on this process, so a few writers hide most of the latency of a remote
    registry; DEFAULT_PARALLEL (4) is enough for that and light on a small server or a
    sqlite file (whose writers queue on one lock).

    `copier` makes a COPY change (promotion across environments) and returns the new
    version's number; the changes after it that name the copy's state key (`dev@7`)
    are applied to that version. A copy runs alone (it switches MLflow's login to the
    source environment's, process-wide), other writers wait while it does.
    """
    if parallel < 1:
        raise ValueError(f"parallel must be at least 1, not {parallel}")
    if plan.errors:
        raise PlanError(list(plan.errors))
    if plan.blocked:
        raise PlanError(
            [f"{c.model} version {c.version}: promotion blocked by a gate" for c in plan.blocked]
            + ["nothing was applied"]
        )
    live = check_fresh(plan, registry)
    run = _Run(plan, live, registry, stamps, copier, stop)
    units = _units(plan)
    if parallel == 1 or len(units) < 2:
        for model in units:
            run.model(model, units[model])
    else:
        _run_pool(run, units, parallel)
    if run.stopped is not None:
        outcomes = [o for o in run.outcomes if o is not None]
        settle_stamps(plan, live, outcomes, stamps, registry, run.call)
    return run.result()


def _units(plan: Plan) -> dict[str, list[int]]:
    """Per model (in plan order of first appearance): the indexes of its changes, in order.

    Models with only a lost stamp to restore or a record to write are units too.
    """
    units: dict[str, list[int]] = {}
    for i, c in enumerate(plan.changes):
        units.setdefault(c.model, []).append(i)
    for model, _ in plan.restamps:
        units.setdefault(model, [])
    for model in sorted(plan.records):
        units.setdefault(model, [])
    return units


def _run_pool(run: _Run, units: Mapping[str, list[int]], parallel: int) -> None:
    """One task per model on `parallel` threads; the main thread stays free for signals."""
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="regops-write") as pool:
        pending = {pool.submit(run.model, model, idx) for model, idx in units.items()}
        while pending:
            # A timeout, so a SIGTERM/SIGINT handler runs promptly on the main thread.
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
            for f in done:
                f.result()  # a bug in a worker surfaces here, not silently


class _Shared:
    """Writes share the registry; a copy runs alone (it swaps the process's MLflow login)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._alone = False
        self._waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._alone or self._waiting:
                self._cond.wait()
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    @contextmanager
    def alone(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            while self._alone or self._active:
                self._cond.wait()
            self._waiting -= 1
            self._alone = True
        try:
            yield
        finally:
            with self._cond:
                self._alone = False
                self._cond.notify_all()


class _Run:
    """The state of one apply, shared by its writers; each model is written by one of them."""

    def __init__(
        self,
        plan: Plan,
        live: LiveState,
        registry: Registry,
        stamps: Mapping[str, Mapping[str, str]],
        copier: Callable[[Change], str] | None,
        stop: Callable[[], str | None] | None,
    ) -> None:
        self.plan, self.live, self.registry = plan, live, registry
        self.stamps, self.copier, self.poll = stamps, copier, stop
        self.final = _final_states(plan, live)
        self.evidence = _evidence(plan)
        self.outcomes: list[Outcome | None] = [None] * len(plan.changes)
        self.incomplete: set[str] = set()  # models with a change that failed or was not attempted
        self.started: set[str] = set()  # models whose first write was attempted
        self.restamped: set[tuple[str, str]] = set()
        self.records: set[str] = set()
        self.writes = 0
        self.retries = 0
        self.stopped: str | None = None  # why no further change starts
        self.interrupted: str | None = None
        self.lock = threading.Lock()
        self.gate = _Shared()

    # ---- shared state, under the lock -------------------------------------------------
    def halted(self) -> str | None:
        """Why no new change may start (a failure elsewhere, a signal), or None."""
        with self.lock:
            if self.stopped is None and self.poll is not None and (reason := self.poll()):
                self.interrupted, self.stopped = reason, f"interrupted by {reason}"
            return self.stopped

    def fail(self, model: str, why: str) -> None:
        with self.lock:
            self.incomplete.add(model)
            if self.stopped is None:
                self.stopped = why

    def call(self, fn: Callable[[], int | None]) -> int:
        with self.gate.shared():
            tries = fn() or 1  # the adapter retries and says how often; a bare registry does not
        with self.lock:
            self.writes += tries
            self.retries += tries - 1
        return tries

    # ---- one model, by one writer ---------------------------------------------------------
    def model(self, model: str, indexes: list[int]) -> None:
        """Every write of `model`, in plan order: its changes and stamps, restamps, record."""
        plan = self.plan
        stamped: set[str] = set()
        made: dict[tuple[str, str], str] = {}  # (model, state key) -> version a copy made
        for i in indexes:
            planned = plan.changes[i]
            self.outcomes[i] = self._change(planned, _made(planned, made), made, stamped)
        for m, version in plan.restamps:
            if m != model or version in stamped:
                continue
            if model in self.incomplete or self.halted() is not None:
                with self.lock:
                    self.incomplete.add(model)  # the next plan offers the stamp again
                continue
            try:
                self._stamp(model, version, version)
                with self.lock:
                    self.restamped.add((model, version))
            except Exception:
                with self.lock:
                    self.incomplete.add(model)  # the next plan still sees it unstamped
        record = plan.records.get(model)
        with self.lock:
            skip = model in self.incomplete or (
                self.interrupted is not None and model not in self.started
            )
        if record is not None and not skip:
            record = rename_record(record, {k: v for (m, k), v in made.items() if m == model})
        if record is None or skip:
            return
        try:
            self.call(functools.partial(self.registry.set_model_tag, model, APPLIED_TAG, record))
            with self.lock:
                self.records.add(model)
        except Exception:  # noqa: S110 - the record only sharpens drift detection next time
            pass

    def _change(
        self,
        planned: Change,
        change: Change,
        made: dict[tuple[str, str], str],
        stamped: set[str],
    ) -> Outcome:
        if change.action != Action.APPLY:
            note = "model suspended" if change.action == Action.SUSPENDED else "drift not corrected"
            return Outcome(change, OutcomeStatus.SKIPPED, note=note)
        if (stopped := self.halted()) is not None:
            with self.lock:
                self.incomplete.add(change.model)
            return Outcome(change, OutcomeStatus.SKIPPED, note=f"not attempted: {stopped}")
        if change.kind == ChangeKind.COPY:
            # Not retried as a whole: the copier finds a copy that landed by its lineage.
            try:
                if self.copier is None:
                    raise ValueError("this reconcile cannot copy across environments")
                with self.gate.alone():
                    new = self.copier(change)
            except Exception as exc:
                self.fail(change.model, f"an earlier change failed ({change.model})")
                why = str(exc) if isinstance(exc, RegopsError) else _explain(exc, change)
                return Outcome(change, OutcomeStatus.FAILED, error=why)
            made[(change.model, change.version or "")] = new
            return Outcome(change, OutcomeStatus.APPLIED, note=f"new version {new}", attempts=1)
        try:
            if change.model not in self.started:
                with self.lock:
                    self.started.add(change.model)
                _baseline(self.plan, self.live, self.registry, change.model, self.call)
            tries = self.call(_write(change, self.registry))
        except Exception as exc:
            self.fail(change.model, f"an earlier change failed ({change.model})")
            return Outcome(change, OutcomeStatus.FAILED, error=_explain(exc, change))
        if change.version is not None and change.version not in stamped:
            stamped.add(change.version)
            try:
                self._stamp(change.model, planned.version or change.version, change.version)
            except Exception as exc:
                self.fail(change.model, "writing an audit stamp failed")
                return Outcome(
                    change,
                    OutcomeStatus.FAILED,
                    error=f"applied, but the audit stamp failed: {_explain(exc, change)}",
                    attempts=tries,
                )
        return Outcome(change, OutcomeStatus.APPLIED, attempts=tries)

    def _stamp(self, model: str, key: str, version: str) -> None:
        """One write: the stamp of (model, plan key `key`), on the registry's `version`."""
        final = self.final.get((model, key), (None, (), frozenset()))
        evidence = _kept_evidence(
            self.live, model, version, self.evidence.get((model, key), NO_EVIDENCE)
        )
        value = _stamp_value(self.stamps, model, final, evidence)
        self.call(lambda: self.registry.set_version_tag(model, version, AUDIT_TAG, value))

    def result(self) -> ApplyResult:
        outcomes = tuple(o for o in self.outcomes if o is not None)
        assert len(outcomes) == len(self.plan.changes), "a change was left without an outcome"
        return ApplyResult(
            outcomes,
            tuple(sorted(self.records)),
            self.writes,
            interrupted=self.interrupted,
            restamped=tuple(f"{m} {v}" for m, v in self.plan.restamps if (m, v) in self.restamped),
            retries=self.retries,
        )


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
    landed = [
        o.change
        for o in outcomes
        if o.status == OutcomeStatus.APPLIED and o.change.kind != ChangeKind.COPY
    ]
    if not landed:
        return []
    full = _final_states(plan, live)
    now = _final_states(replace(plan, changes=tuple(landed)), live)
    evidence = _evidence(replace(plan, changes=tuple(landed)))
    out = []
    for model, version in sorted({(c.model, c.version) for c in landed if c.version}):
        key = (model, version)
        if key not in full or key not in now or now[key] == full[key]:
            continue
        value = _stamp_value(
            stamps,
            model,
            now[key],
            _kept_evidence(live, model, version, evidence.get(key, NO_EVIDENCE)),
        )
        try:
            call(functools.partial(registry.set_version_tag, model, version, AUDIT_TAG, value))
        except Exception:  # noqa: BLE001 - see the docstring
            break
        out.append(key)
    return out


def _stamp_value(
    stamps: Mapping[str, Mapping[str, str]],
    model: str,
    final: tuple[str | None, tuple[str, ...], frozenset[str]],
    evidence: Evidence = NO_EVIDENCE,
) -> str:
    """The `regops.audit` value for a version of `model` that ends in `final`
    (stage, aliases, held), with the run's audit fields (commit, at, actor, file) and the
    metric and rule verdicts that let its changes through (`evidence`)."""
    stage, aliases, held = final
    fields = Stamp.from_fields(stamps.get(model, {}))
    metrics, rules = evidence
    stamp = replace(fields, held=held, stage=stage, aliases=aliases, metrics=metrics, rules=rules)
    return stamp.dump()


def _evidence(plan: Plan) -> dict[tuple[str, str], Evidence]:
    """Per (model, plan version key): the metric and rule verdicts of its applied changes."""
    out: dict[tuple[str, str], Evidence] = {}
    for c in plan.changes:
        found, ruled = evidence_of(c), rule_evidence_of(c)
        if (found or ruled) and c.version is not None:
            key = (c.model, c.version)
            metrics, rules = out.get(key, NO_EVIDENCE)
            out[key] = (merge_evidence(metrics, found), merge_rules(rules, ruled))
    return out


def _kept_evidence(live: LiveState, model: str, version: str, new: Evidence) -> Evidence:
    """What the version's stamp says already, with `new` replacing the entries of the
    aliases and stages it speaks for: a later change (an archive) keeps the numbers (and
    the overrides) that let the version become champion."""
    lm = live.models.get(model)
    lv = lm.versions.get(version) if lm else None
    old = lv.stamp() if lv else None
    return (
        merge_evidence(old.metrics if old else (), new[0]),
        merge_rules(old.rules if old else (), new[1]),
    )


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
    applying: dict[str, list[Change]] = {}  # per model, in plan order (one pass, not one per model)
    for c in plan.changes:
        if c.action == Action.APPLY:
            applying.setdefault(c.model, []).append(c)
    for name in plan.models:
        lm = live.models.get(name)
        versions = dict(lm.versions) if lm else {}
        stages = {v: lv.stage for v, lv in versions.items()}
        aliases = dict(lm.aliases) if lm else {}
        held = {v: set(lv.held_entries()) for v, lv in versions.items()}
        record = lm.applied() if lm else None
        ours = applying.get(name, [])
        staged = {c.version for c in ours if c.kind == ChangeKind.STAGE}
        realiased = {
            c.alias
            for c in ours
            if c.kind in (ChangeKind.ALIAS_SET, ChangeKind.ALIAS_MOVE, ChangeKind.ALIAS_DELETE)
        }
        for v, lv in versions.items():
            if record is None or lm is None:
                continue
            # What a version reached since the record without its stamp saying so (a run cut
            # between a change and its stamp) is held too: the planner names such versions
            # (restamps) unless this plan changes them again; then look here.
            lost = (name, v) in plan.restamps
            stamp = lv.stamp()
            if (
                live.has_stages
                and (record.stage_of(v) or "None") != lv.stage
                and (lost or (v not in staged and (stamp is None or stamp.stage != lv.stage)))
            ):
                held[v].add(lv.stage)
            for alias in set(lm.aliases_of(v)) - set(record.versions.get(v, (None, ()))[1]):
                if lost or (
                    alias not in realiased and (stamp is None or alias not in (stamp.aliases or ()))
                ):
                    held[v].add(ALIAS_MARK + alias)
        for c in ours:
            if c.kind == ChangeKind.COPY:
                continue
            key = c.version or ""
            if c.kind == ChangeKind.STAGE:
                stages[key] = c.after or "None"
                held.setdefault(key, set()).add(c.after or "None")
            elif c.kind in (ChangeKind.ALIAS_SET, ChangeKind.ALIAS_MOVE) and c.alias:
                aliases[c.alias] = c.after or ""
                held.setdefault(c.after or "", set()).add(ALIAS_MARK + c.alias)
            elif c.kind == ChangeKind.ALIAS_DELETE and c.alias:
                aliases.pop(c.alias, None)
        for v in set(stages) | set(held):
            mine = tuple(sorted(a for a, owner in aliases.items() if owner == v))
            stage = stages.get(v, "None") if live.has_stages else None
            out[(name, v)] = (stage, mine, frozenset(held.get(v, ())))
    return out


def _made(c: Change, made: Mapping[tuple[str, str], str]) -> Change:
    """`c` with a copy's state key (`dev@7`) replaced by the version the copy made."""
    if not made or c.kind == ChangeKind.COPY:
        return c

    def sub(v: str | None) -> str | None:
        return made.get((c.model, v), v) if v is not None else None

    if c.kind in (ChangeKind.ALIAS_SET, ChangeKind.ALIAS_MOVE, ChangeKind.ALIAS_DELETE):
        return replace(c, version=sub(c.version), before=sub(c.before), after=sub(c.after))
    return replace(c, version=sub(c.version))


def _write(c: Change, registry: Registry) -> Callable[[], int | None]:
    if c.kind == ChangeKind.STAGE:
        return lambda: registry.transition_stage(c.model, c.version or "", c.after or "None")
    if c.kind in (ChangeKind.ALIAS_SET, ChangeKind.ALIAS_MOVE):
        return lambda: registry.set_alias(c.model, c.alias or "", c.after or "")
    if c.kind == ChangeKind.ALIAS_DELETE:
        return lambda: registry.delete_alias(c.model, c.alias or "")
    if c.kind == ChangeKind.DESCRIPTION:
        return lambda: registry.update_description(c.model, c.after or "")
    raise ValueError(f"unknown change kind {c.kind}")


def _explain(exc: BaseException, c: Change) -> str:
    code = getattr(exc, "error_code", "")
    what = f"{c.model}" + (f" version {c.version}" if c.version else "")
    text = str(exc)
    # HTTP status as a whole number only: a model named Churn401 is no 401.
    if code == "PERMISSION_DENIED" or re.search(r"\b403\b", text) or "Permission denied" in text:
        return f"permission denied: the credentials in use may not change {what}" + (
            " (deleting an alias needs MANAGE permission)"
            if c.kind == ChangeKind.ALIAS_DELETE
            else ""
        )
    if code == "UNAUTHENTICATED" or re.search(r"\b401\b", text):
        return f"not authenticated: set MLFLOW_TRACKING_USERNAME/PASSWORD or TOKEN ({what})"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{type(exc).__name__}: {mask_secrets(text)}"  # MLflow's text may embed user:pw@host
