"""The use cases behind the commands: load -> snapshot -> plan -> apply.

I/O lives here and in registry.py; planner.py stays pure.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from regops import audit
from regops.errors import RegopsError, StalePlanError, UsageError
from regops.executor import ApplyResult, apply
from regops.loader import load_state
from regops.options import Settings
from regops.plan import Plan
from regops.planner import plan as compute_plan
from regops.registry import MlflowRegistry
from regops.state import DesiredState
from regops.tracking import stages_supported

# A plan made for this run is re-made this many times when the registry moves under it.
STALE_REPLANS = 3


def load_desired(settings: Settings) -> DesiredState:
    return load_state(settings.state_dir, stages_supported=stages_supported(settings.tracking_uri))


def open_registry(settings: Settings) -> MlflowRegistry:
    return MlflowRegistry(settings.tracking_uri)


def _select(desired: DesiredState, models: Sequence[str] | None) -> list[str] | None:
    if not models:
        return None
    unknown = sorted(set(models) - set(desired.models))
    if unknown:
        managed = ", ".join(desired.models) or "none"
        raise UsageError(f"not in the state files: {', '.join(unknown)} (managed: {managed})")
    return list(models)


def run_plan(
    settings: Settings,
    models: Sequence[str] | None = None,
    *,
    desired: DesiredState | None = None,
    registry: MlflowRegistry | None = None,
) -> Plan:
    """Validate the state, read the live registry once, and diff them."""
    desired = desired or load_desired(settings)
    only = _select(desired, models)
    registry = registry or open_registry(settings)
    names = list(only) if only is not None else list(desired.models)
    live = registry.snapshot(names)
    return compute_plan(
        desired, live, only=only, registry=registry.display_uri, created_at=audit.now()
    )


def stamps_for(
    plan: Plan, desired: DesiredState | None, state_dir: Path
) -> dict[str, dict[str, str]]:
    """Audit tags per changed model: the commit of its state file, the actor, the time.

    Asks git once per state file, and only for models this plan changes.
    """
    who, at = audit.actor(), audit.now()
    commits: dict[Path, str] = {}
    out = {}
    for model in sorted({c.model for c in plan.actionable} | {m for m, _ in plan.restamps}):
        spec = desired.models.get(model) if desired else None
        file = Path(spec.file) if spec else state_dir
        if file not in commits:
            commits[file] = audit.commit_of(file)
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
) -> ApplyResult:
    """Plan (unless a plan is given) and apply it.

    A plan made for this run (none given, or `replan`) is made again when the registry
    moved between its read and the first write, as it does while another reconcile is
    writing: up to STALE_REPLANS times, then the run is refused. A saved plan is never
    re-made: it is refused as soon as the registry moved.
    """
    registry = open_registry(settings)
    if plan is None:
        desired = desired or load_desired(settings)
        plan = run_plan(settings, models, desired=desired, registry=registry)
        replan = True
    elif desired is None:
        try:
            desired = load_desired(settings)
        except RegopsError:
            desired = None  # a saved plan stands on its own; stamps then name the directory
    for attempt in range(STALE_REPLANS + 1):
        try:
            with stop_on_signals() as stop:
                return apply(
                    plan, registry, stamps_for(plan, desired, settings.state_dir), stop=stop
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


def load_plan_file(path: Path) -> Plan:
    from regops.plan import FORMAT_VERSION

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format_version") != FORMAT_VERSION:
            raise RegopsError(
                f"{path}: plan format_version {doc.get('format_version')!r} is not {FORMAT_VERSION}"
            )
        return Plan.from_dict(doc)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RegopsError(f"{path}: not a regops plan file ({exc})") from exc
