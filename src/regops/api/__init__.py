"""The public Python API: what the CLI calls, and what a notebook or another tool imports.

    from pathlib import Path
    from regops import api
    from regops.settings import Settings

    s = Settings(tracking_uri_flag="sqlite:///mlflow.db", state_dir=Path("registry-state"))
    p = api.plan(s)                # diff desired vs live, with gate verdicts; writes nothing
    print(p.to_dict()["summary"])
    result = api.reconcile(s, plan=p) if p.ok and p.pending else None

The use cases run load -> snapshot -> plan -> apply: files are read by regops.files,
the registry by regops.adapters.mlflow, and the plan is computed by regops.core (pure).
Errors are regops.errors.RegopsError subclasses with a message for the user. The
public names are those in `__all__`; the rest serves the CLI and may change.

One module per use case: `planning` (plan), `reconciling` (reconcile, saved plans),
`environments` (several registries), `history` (the timeline and its page), `adopt`
(`regops init`) and `events` (relay, webhooks, notifications).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from regops.adapters import gitio
from regops.adapters.mlflow.executor import ApplyResult
from regops.adapters.mlflow.registry import search_models, search_versions
from regops.adapters.tracking import resolve_tracking_uri, stages_supported

# The use cases, one module each; what the CLI calls is re-exported here (`api.run_plan`).
from regops.api.adopt import InitResult, init
from regops.api.environments import environments_report as environments_report
from regops.api.environments import plan_docs as plan_docs
from regops.api.environments import plan_environments as plan_environments
from regops.api.environments import scoped as scoped
from regops.api.environments import validate_environments as validate_environments
from regops.api.events import install_webhook as install_webhook
from regops.api.events import list_webhooks as list_webhooks
from regops.api.events import notify_drift as notify_drift
from regops.api.events import notify_reconcile as notify_reconcile
from regops.api.events import run_relay as run_relay
from regops.api.history import build_at, build_history
from regops.api.history import build_page as build_page
from regops.api.planning import LiveSource as LiveSource
from regops.api.planning import load_desired as load_desired
from regops.api.planning import open_registry as open_registry
from regops.api.planning import prefetched_registry as prefetched_registry
from regops.api.planning import run_plan as run_plan
from regops.api.reconciling import STALE_REPLANS as STALE_REPLANS
from regops.api.reconciling import judged_now as judged_now
from regops.api.reconciling import load_plan_file as load_plan_file
from regops.api.reconciling import refuse_suspended as refuse_suspended
from regops.api.reconciling import rules_judged_now as rules_judged_now
from regops.api.reconciling import run_reconcile as run_reconcile
from regops.api.reconciling import stamps_for as stamps_for
from regops.api.reconciling import stop_on_signals as stop_on_signals
from regops.core import audit, views
from regops.core.plan import DEFAULT_PARALLEL, Plan
from regops.core.state import STAGES, DesiredState
from regops.core.time_travel import StateAt
from regops.core.timeline import History
from regops.files import export as exporting
from regops.files.edit import EditResult, prepare_edit, write_edit
from regops.files.loader import load_state
from regops.files.snapshot import snapshot_doc
from regops.files.stage_mode import stages_in_use
from regops.settings import Settings

__all__ = [
    "STAGES",
    "DesiredState",
    "EditResult",
    "History",
    "InitResult",
    "Plan",
    "Settings",
    "StateAt",
    "build_at",
    "build_history",
    "current_commit",
    "export",
    "history",
    "init",
    "plan",
    "prepare_edit",
    "reconcile",
    "search_models",
    "search_versions",
    "snapshot",
    "stages_in_use",
    "validate",
    "write_edit",
]


def validate(state_dir: Path, tracking_uri: str | None = None) -> DesiredState:
    """Load and check the state files in `state_dir` (schema and semantics); no network.

    Raises StateError carrying every problem found (FILE:LINE each). `tracking_uri`
    only says whether stages may be declared (a registry without stages refuses them).
    """
    uri = resolve_tracking_uri(tracking_uri).uri
    return load_state(state_dir, stages_supported=stages_supported(uri))


def plan(settings: Settings, models: Sequence[str] = ()) -> Plan:
    """What reconcile would change, each change with its gates' verdicts; writes nothing.

    `models` limits the plan to those models. `Plan.exit_code(detailed)` is the exit code
    `regops plan [--detailed-exitcode]` returns for it.
    """
    return run_plan(settings, models or None)


def reconcile(
    settings: Settings,
    models: Sequence[str] = (),
    *,
    plan: Plan | None = None,
    parallel: int = DEFAULT_PARALLEL,
) -> ApplyResult:
    """Apply the desired state to the registry, as `regops reconcile` does.

    Without `plan`, plans first (and plans again if the registry moves before the first
    write); a given plan (e.g. `api.plan(...)` or a saved one, `load_plan_file`) is refused
    as soon as the registry moved since it was made. A failed gate applies nothing.
    """
    return run_reconcile(settings, models or None, plan=plan, parallel=parallel)


def export(settings: Settings, models: Sequence[str] = ()) -> str:
    """The live registry as one state file's YAML (`regops export` to stdout).

    Models that cannot be written so that they read back as themselves are left out;
    a model asked for by name that is not in the registry raises RegopsError.
    """
    live = open_registry(settings).snapshot(list(models) or None)
    for name in models:
        views.require_model(live, name)
    chosen = exporting.plan_export(live, models)
    return exporting.export_yaml(list(chosen.models), has_stages=live.has_stages)


def history(
    state_dir: Path,
    tracking_uri: str | None = None,
    *,
    model: str | None = None,
    version: str | None = None,
) -> History:
    """The audit timeline (`regops history`): git log of the state files, newest first,
    joined with the registry's audit stamps when `tracking_uri` is given."""
    return build_history(state_dir, tracking_uri, model=model, version=version)


def snapshot(settings: Settings, models: Sequence[str] = ()) -> dict[str, Any]:
    """The live registry as a snapshot document (`regops snapshot`; `plan --live` reads
    it): no tracking URI, credentials or artifact locations."""
    live = open_registry(settings).snapshot(list(models) or None)
    return snapshot_doc(live, registry=settings.registry_name or "registry", created_at=audit.now())


def current_commit(cwd: Path) -> str | None:
    """The commit checked out at `cwd` (None outside a git work tree)."""
    return gitio.head(cwd)
