"""Reconcile: a plan applied to the registry (`regops reconcile`), each write stamped.

A plan made for this run is made again when the registry moves under it (another
reconcile writing); a saved plan (`load_plan_file`, checked against
schemas/plan.schema.json) is never re-made: it is refused once the registry moved, and
judged again by the freeze windows and time-bound rules that hold now. SIGTERM/SIGINT
stop the run after the write in flight.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from regops.adapters import gitio
from regops.adapters.mlflow.executor import ApplyResult, apply
from regops.adapters.mlflow.registry import MlflowRegistry
from regops.api.planning import (
    LiveSource,
    load_desired,
    open_registry,
    rule_context,
    run_plan,
    suspension,
    with_run_metrics,
)
from regops.core import audit, freeze, jsonio, rules
from regops.core.plan import Action, Change, ChangeKind, Plan
from regops.core.state import DesiredState
from regops.errors import PlanError, RegopsError, StalePlanError, UsageError
from regops.files import SCHEMAS, jsonfile
from regops.settings import Settings

# A plan made for this run is re-made this many times when the registry moves under it.
STALE_REPLANS = 3


def stamps_for(
    plan: Plan, desired: DesiredState | None, state_dir: Path
) -> dict[str, dict[str, str]]:
    """Audit tags per changed model: the commit of its state file, the actor, the time.

    Asks git once per state file, and only for models this plan changes.
    """
    who, at = gitio.actor(), audit.now()
    commits: dict[Path, str] = {}
    out = {}
    for model in sorted({c.model for c in plan.actionable} | {m for m, _ in plan.restamps}):
        spec = desired.models.get(model) if desired else None
        file = Path(spec.file) if spec else state_dir
        if file not in commits:
            commits[file] = gitio.commit_of(file)
        out[model] = audit.stamp_tags(str(file), commit=commits[file], who=who, at=at)
    return out


def run_reconcile(
    settings: Settings,
    models: Sequence[str] | None = None,
    *,
    plan: Plan | None = None,
    replan: bool = False,
    desired: DesiredState | None = None,
    sleep: Callable[[float], None] = time.sleep,
    parallel: int = 1,
) -> ApplyResult:
    """Plan (unless a plan is given) and apply it, with `parallel` writers (see executor.apply).

    A plan made for this run (none given, or `replan`) is made again when the registry
    moved between its read and the first write, as it does while another reconcile is
    writing: up to STALE_REPLANS times, then the run is refused. A saved plan is never
    re-made: it is refused as soon as the registry moved.
    """
    refuse_suspended(settings)
    # Only a run with something to write may create a registry that does not exist yet.
    registry = open_registry(settings, create=plan is None or bool(plan.pending))
    if plan is None:
        desired = desired or load_desired(settings)
        plan = run_plan(settings, models, desired=desired, registry=registry)
        replan = True
    elif desired is None:
        try:
            desired = load_desired(settings)
        except RegopsError:
            desired = None  # a saved plan stands on its own; stamps then name the directory
    if not replan and desired is not None:
        plan = judged_now(plan, desired, registry)
        plan = rules_judged_now(plan, desired, registry, settings)
    for attempt in range(STALE_REPLANS + 1):
        try:
            with stop_on_signals() as stop:
                return apply(
                    plan,
                    registry,
                    stamps_for(plan, desired, settings.state_dir),
                    copier=_copier(settings, plan, desired, registry),
                    stop=stop,
                    parallel=parallel,
                )
        except StalePlanError:
            if not replan or desired is None:
                raise
            if attempt == STALE_REPLANS:
                raise StalePlanError(
                    f"the live registry kept changing while this reconcile tried to apply "
                    f"({STALE_REPLANS + 1} plans in a row went stale): is another reconcile "
                    "running? Wait for it to finish, then run again"
                ) from None
        sleep(0.5 * 2**attempt)
        plan = run_plan(settings, models, desired=desired, registry=registry)
        if not plan.pending:
            return ApplyResult(())  # the other writer already did it all
    raise AssertionError("unreachable")  # pragma: no cover


def refuse_suspended(settings: Settings) -> None:
    """A suspended environment refuses reconcile: PlanError (exit 1) naming it and why."""
    notice = suspension(settings)
    if notice is not None:
        raise PlanError([f"{notice}; reconcile refuses to apply (nothing was changed)"])


def judged_now(
    plan: Plan, desired: DesiredState, registry: LiveSource, now: float | None = None
) -> Plan:
    """A saved plan applied inside a freeze window: its changes judged by the windows that
    cover now (not when it was made); refused (PlanError, nothing applied) when one blocks.
    Reads the live registry again (to tell a rollback) only when a window covers now."""
    now = time.time() if now is None else now
    frozen = sorted(
        {c.model for c in plan.actionable}
        & {m for m, spec in desired.models.items() if freeze.windows_at(spec, now)}
    )
    if not frozen:
        return plan
    live = registry.snapshot(frozen)
    changes = []
    for c in plan.changes:
        if c.model in frozen and c.action == Action.APPLY:
            c = replace(c, gates=tuple(g for g in c.gates if g.gate != freeze.GATE))
            (c,) = freeze.gate_freeze([c], desired.models[c.model], live.models.get(c.model), now)
        changes.append(c)
    return _unless_blocked(
        replace(plan, changes=tuple(changes)),
        freeze.GATE,
        "",
        "the saved plan was made outside this freeze window; nothing was applied",
    )


def _unless_blocked(judged: Plan, gate: str, label: str, why: str) -> Plan:
    """A saved plan judged again at apply time: itself, or PlanError (nothing applied)
    naming each change that `gate` blocks now, then `why`."""
    refused = [
        f"{c.model}: {render_change(c)}: {label}{g.detail}"
        for c in judged.blocked
        for g in c.gates
        if g.gate == gate and not g.passed
    ]
    if refused:
        raise PlanError([*refused, why])
    return judged


def rules_judged_now(
    plan: Plan,
    desired: DesiredState,
    registry: LiveSource,
    settings: Settings,
    now: float | None = None,
) -> Plan:
    """A saved plan applied later: the rules that name `now` judged again at apply time
    (a plan saved on Thursday and applied on Friday meets `not-on-friday`), with the
    overrides the plan recorded; refused (PlanError, nothing applied) when one now blocks.
    Reads the registry again only when such a rule judged one of its changes."""
    now = time.time() if now is None else now
    timed = {
        m for m, spec in desired.models.items() if any("now" in r.expr for r in spec.policy.rules)
    }
    models = sorted({c.model for c in plan.actionable if c.rules} & timed)
    if not models:
        return plan
    live = with_run_metrics(registry, desired, registry.snapshot(models), models)
    given = [r for c in plan.changes for r in c.rules if r.override_reason is not None]
    ctx = replace(
        rule_context(settings, desired, models),
        overrides=MappingProxyType({r.rule: r.override_reason or "" for r in given}),
        override_actor=next((r.override_actor or "" for r in given), ""),
    )
    changes = []
    for c in plan.changes:
        lm = live.models.get(c.model)
        if c.model in models and c.action == Action.APPLY and c.rules and lm is not None:
            c = replace(c, gates=tuple(g for g in c.gates if g.gate != rules.GATE), rules=())
            (c,) = rules.gate_rules(
                [c], desired.models[c.model], lm, live.run_metrics, ctx, now, live.has_stages
            )
        changes.append(c)
    return _unless_blocked(
        replace(plan, changes=tuple(changes)),
        rules.GATE,
        "rule ",
        "the saved plan's rules were judged again now; nothing was applied",
    )


def render_change(c: Change) -> str:
    """What a change does, in the words of the plan's text."""
    from regops.render import describe

    return describe(c.to_dict())


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def stop_on_signals() -> Iterator[Callable[[], str | None]]:
    """While applying, SIGTERM/SIGINT ask the run to stop after the write in flight.

    Yields the `stop` the executor polls: the name of the first signal received, or None.
    CI cancellation, `timeout` and Kubernetes send SIGTERM; Ctrl-C sends SIGINT. The
    write in flight and its stamp complete, so nothing is left half-applied.
    """
    received: list[str] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None  # only the main thread may handle signals (tests run threads)
        return

    def handler(signum: int, _frame: object) -> None:
        received.append(signal.Signals(signum).name)

    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield lambda: received[0] if received else None
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _copier(
    settings: Settings, plan: Plan, desired: DesiredState | None, registry: MlflowRegistry
) -> Callable[[Change], str] | None:
    """What makes the plan's COPY changes, with the commit that asked for each."""
    copies = [c for c in plan.actionable if c.kind == ChangeKind.COPY]
    if not copies:
        return None
    if settings.environment is None or settings.config is None:
        raise UsageError("this plan copies versions across environments: run it with --env NAME")
    from regops.adapters.mlflow.copying import Copier

    commits = {}
    for c in copies:
        spec = desired.models.get(c.model) if desired else None
        commits[c.model] = gitio.commit_of(Path(spec.file) if spec else settings.state_dir)
    copier = Copier(settings.config, settings.environment, registry, commits)
    copier.check(copies)  # a source outside its registry's artifact store: before any write
    return copier


PLAN_SCHEMA = SCHEMAS / "plan.schema.json"


def _bad_versions(doc: dict[str, Any]) -> list[str]:
    """Version fields that are not a version number (or `ENV@N`) the registry could hold."""

    def bad(v: object) -> bool:
        number = v.rpartition("@")[2] if isinstance(v, str) else ""
        return not (number.isascii() and number.isdigit() and len(number) <= 19)

    found = [
        f"  changes.{i}.version: {repr(c['version'])[:60]} is not a version number"
        for i, c in enumerate(doc["changes"])
        if c["version"] is not None and bad(c["version"])
    ]
    found += [
        f"  restamps.{i}.1: {repr(r[1])[:60]} is not a version number"
        for i, r in enumerate(doc.get("restamps", ()))
        if bad(r[1])
    ]
    return found[:20]


def load_plan_file(path: Path) -> Plan:
    """A saved plan, checked against schemas/plan.schema.json before anything uses it."""
    from jsonschema import Draft202012Validator

    from regops.core.plan import FORMAT_VERSION

    try:
        doc = jsonfile.read_file(
            path, what="plan", max_bytes=jsonio.PLAN_MAX_BYTES, top=dict,
            refusal="not a regops plan file",
        )  # fmt: skip
    except FileNotFoundError:
        raise RegopsError(f"{path}: no such plan file (`regops plan --out` writes one)") from None
    if doc.get("format_version") != FORMAT_VERSION:
        raise RegopsError(
            f"{path}: plan format_version {repr(doc.get('format_version'))[:60]} "
            f"is not {FORMAT_VERSION}"
        )
    schema = json.loads(PLAN_SCHEMA.read_text(encoding="utf-8"))
    errors = sorted(
        Draft202012Validator(schema).iter_errors(doc), key=lambda e: list(map(str, e.path))
    )
    if errors:
        shown = [
            f"  {'.'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message[:200]}"
            for e in errors[:20]
        ]
        more = [f"  ... and {len(errors) - 20} more"] if len(errors) > 20 else []
        raise RegopsError(
            f"{path}: not a valid regops plan (schemas/plan.schema.json):\n"
            + "\n".join(shown + more)
        )
    bad = _bad_versions(doc)
    if bad:
        raise RegopsError(f"{path}: not a valid regops plan:\n" + "\n".join(bad))
    try:
        return Plan.from_dict(doc)
    except (ValueError, KeyError, TypeError) as exc:
        raise RegopsError(f"{path}: not a regops plan file ({exc})") from exc
