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
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from regops.adapters import gitio
from regops.adapters.history_git import StateRepo
from regops.adapters.mlflow.executor import ApplyResult, apply
from regops.adapters.mlflow.registry import MlflowRegistry, search_models, search_versions
from regops.adapters.tracking import resolve_tracking_uri, stages_supported
from regops.core import audit, freeze, jsonio, metric_gates, promotion, rules, views
from regops.core.lanes import Page, build_lanes
from regops.core.live import LiveModel, LiveState
from regops.core.plan import DEFAULT_PARALLEL, Action, Change, ChangeKind, Plan
from regops.core.planner import diff
from regops.core.state import STAGES, DesiredState
from regops.core.time_travel import StateAt, state_at
from regops.core.timeline import DEEPEN_HINT, History, entries, join_stamps
from regops.errors import FileWriteError, PlanError, RegopsError, StalePlanError, UsageError
from regops.files import SCHEMAS, fileio, jsonfile, scaffold
from regops.files import export as exporting
from regops.files.edit import SCHEMA_HINT, EditResult, prepare_edit, write_edit
from regops.files.environments import Config
from regops.files.loader import load_state, state_files
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


class LiveSource(Protocol):
    """What planning reads: the live registry, or a snapshot of it."""

    @property
    def display_uri(self) -> str: ...

    def snapshot(self, names: Iterable[str] | None = None) -> LiveState: ...


# A plan made for this run is re-made this many times when the registry moves under it.
STALE_REPLANS = 3


def load_desired(settings: Settings, *, has_stages: bool | None = None) -> DesiredState:
    """Load and validate the state files; `has_stages` overrides what the URI implies."""
    if has_stages is None:
        has_stages = stages_supported(settings.tracking_uri)
    return load_state(settings.state_dir, stages_supported=has_stages)


def open_registry(settings: Settings, *, create: bool = False) -> MlflowRegistry:
    """The registry of `settings`; read-only unless `create` (see MlflowRegistry)."""
    return MlflowRegistry(settings.tracking_uri, create=create)


def prefetched_registry(
    settings: Settings, models: Sequence[str] | None = None
) -> MlflowRegistry | None:
    """The registry, its snapshot already being read (MlflowRegistry.prefetch), so that
    the server answers while the state files load. Call it before load_desired and pass
    the registry to run_plan. None when it cannot be opened: run_plan opens it again
    after the state files, so a state error is still the one reported first."""
    try:
        registry = open_registry(settings)
    except RegopsError:
        return None
    try:  # about one model per state file, as `regops export` writes them
        expected = len(models) if models else len(state_files(settings.state_dir))
    except RegopsError:
        return registry  # load_desired reports the directory
    registry.prefetch(expected)
    return registry


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
    registry: LiveSource | None = None,
    registry_name: str | None = None,
) -> Plan:
    """Validate the state, read the live registry once, and diff them.

    `registry` may be a snapshot file standing in for the registry (`plan --live`);
    `registry_name` is what the plan shows instead of the (masked) URI. A suspended
    environment's plan says so in its warnings (reconcile refuses it).
    """
    p = _plan(settings, models, desired=desired, registry=registry, registry_name=registry_name)
    notice = suspension(settings)
    if notice is None:
        return p
    return replace(p, warnings=(*p.warnings, f"{notice}: reconcile refuses to apply"))


def _plan(
    settings: Settings,
    models: Sequence[str] | None,
    *,
    desired: DesiredState | None,
    registry: LiveSource | None,
    registry_name: str | None,
) -> Plan:
    if desired is None and registry is None:
        registry = prefetched_registry(settings, models)  # read while the files load
    desired = desired or load_desired(settings)
    only = _select(desired, models)
    registry = registry or open_registry(settings)
    names = list(only) if only is not None else list(desired.models)
    ctx = rule_context(settings, desired, names)
    live = with_run_metrics(registry, desired, registry.snapshot(names), names)
    shown = registry_name or settings.registry_name or registry.display_uri
    refs = {k: r for k, r in promotion.copy_refs(desired).items() if k[0] in names}
    if not refs:
        return diff(desired, live, only=only, registry=shown, created_at=audit.now(), rules=ctx)
    if not isinstance(registry, MlflowRegistry):  # a snapshot (plan --live): no source in it
        from regops.core.planner import diff_snapshot

        return diff_snapshot(
            desired,
            live,
            env=settings.env_name,
            only=only,
            registry=shown,
            created_at=audit.now(),
            rules=ctx,
        )
    res = _resolve_copies(settings, desired, live, refs)
    p = diff(res.desired, res.live, only=only, registry=shown, created_at=audit.now(), rules=ctx)
    return promotion.with_copies(p, res, live)


def with_run_metrics(
    registry: LiveSource, desired: DesiredState, live: LiveState, names: Sequence[str]
) -> LiveState:
    """`live` with the metrics its `require_metrics` gates read (MlflowRegistry.run_metrics:
    a few batched searches), only when a pending change is gated by them: a plan without
    such gates makes no extra call. A snapshot (`plan --live`) holds no runs: its gates
    say so and block."""
    run_ids, keys = metric_gates.runs_to_read(desired, live, names)
    rule_runs = rules.runs_to_read(desired, live, names)
    if not (run_ids or rule_runs) or not isinstance(registry, MlflowRegistry):
        return live
    # A rule may read any metric of a run (`version.metrics`): those runs are read whole,
    # in the same batched searches as the gates' (None: every key).
    wanted = None if rule_runs else keys
    return replace(
        live, run_metrics=MappingProxyType(registry.run_metrics(run_ids | rule_runs, wanted))
    )


# Who gave the overrides (the apply workflow: the PR label's author); default: the actor.
OVERRIDE_ACTOR_ENV = "REGOPS_OVERRIDE_ACTOR"


def rule_context(
    settings: Settings, desired: DesiredState, names: Sequence[str]
) -> rules.RuleContext:
    """What `policy.rules` see besides the registry: the environment, the actor and the
    overrides (`--override`), each of which must name a rule of the planned models."""
    known = rules.rule_names(desired, names)
    unknown = sorted({name for name, _ in settings.overrides} - known)
    if unknown:
        have = ", ".join(sorted(known)) or "none"
        raise UsageError(
            f"--override names no rule of the planned models: {', '.join(unknown)} (rules: {have})"
        )
    if not known:
        return rules.RuleContext(env=settings.env_name or "")
    who = gitio.actor()
    return rules.RuleContext(
        env=settings.env_name or "",
        actor=who,
        overrides=MappingProxyType(dict(settings.overrides)),
        override_actor=os.environ.get(OVERRIDE_ACTOR_ENV) or who,
    )


def _resolve_copies(
    settings: Settings,
    desired: DesiredState,
    live: LiveState,
    refs: dict[tuple[str, str], promotion.CopyRef],
) -> promotion.Resolution:
    """Read every source environment a copy key names (with its login), then resolve."""
    from regops.files.environments import credentials_of

    env, config = settings.environment, settings.config
    if env is None or config is None:
        model, key = next(iter(refs))
        spec = desired.models[model]
        raise PlanError(
            [
                f"{spec.file}:{spec.versions[key].line}: {key} names another environment's "
                "version: run with --env NAME (environments are declared in regops.yaml)"
            ]
        )
    wanted: dict[str, set[str]] = {}
    for ref in refs.values():
        if ref.env in config.environments and ref.env != env.name:
            wanted.setdefault(ref.env, set()).add(ref.model)
    sources: dict[tuple[str, str], LiveModel | None] = {}
    for name, models in sorted(wanted.items()):
        src = config.get(name)
        with credentials_of(src):
            snap = MlflowRegistry(src.tracking_uri).snapshot(sorted(models))
        for model in models:
            sources[(name, model)] = snap.models.get(model)
    return promotion.resolve(desired, live, sources, env=env.name, known_envs=config.names)


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


def suspension(settings: Settings) -> str | None:
    """Why the chosen environment is suspended (`suspend:` in regops.yaml), or None."""
    env = settings.environment
    return env.suspension() if env is not None else None


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


def validate_environments(config: Config | None, only: str | None = None) -> list[str]:
    """Validate each environment's state (or `only` one's), copy keys included.

    Copy keys must name another declared environment. Every problem of every
    environment is raised together; returns one summary line per environment.
    """
    from regops.errors import Diagnostic, StateError

    assert config is not None
    lines, diags = [], []
    for env in config.environments.values():
        if only is not None and env.name != only:
            continue
        try:
            state = load_state(env.state_dir, stages_supported=True)
        except StateError as exc:
            diags.extend(exc.diagnostics)
            continue
        for (model, key), ref in promotion.copy_refs(state).items():
            vs = state.models[model].versions[key]
            file = state.models[model].file
            if ref.env == env.name:
                diags.append(Diagnostic(file, vs.line, f"{key}: names its own environment"))
            elif ref.env not in config.environments:
                known = ", ".join(config.names)
                diags.append(
                    Diagnostic(file, vs.line, f"{key}: no environment {ref.env!r} ({known})")
                )
        n_versions = sum(len(m.versions) for m in state.models.values())
        lines.append(
            f"{env.name}: {len(state.files)} file(s) valid: {len(state.models)} model(s), "
            f"{n_versions} version(s)"
        )
    if diags:
        raise StateError(diags)
    return lines


def plan_environments(settings: Settings) -> dict[str, dict[str, object]]:
    """Plan every environment; name -> the plan's JSON form, or {"error": message}."""
    from dataclasses import replace

    from regops.errors import StateError
    from regops.files.environments import credentials_of

    assert settings.config is not None
    out: dict[str, dict[str, object]] = {}
    for env in settings.config.environments.values():
        scoped = replace(
            settings, environment=env, env_name=env.name, state_dir=env.state_dir, resolved=True
        )
        try:
            with credentials_of(env):
                out[env.name] = run_plan(scoped).to_dict()
        except StateError as exc:
            out[env.name] = {"error": "\n".join(str(d) for d in exc.diagnostics)}
        except RegopsError as exc:
            out[env.name] = {"error": str(exc)}
    return out


def environments_report(
    config: Config, docs: dict[str, dict[str, object]], full_report: str | None = None
) -> str:
    """The pull-request comment for `plan --all-envs`: one section per environment,
    with every environment's URI and credentials redacted (`full_report`: the file with
    the whole report; each environment's plan is then summarised, see reports.BUDGET)."""
    import contextlib
    import os

    from regops.adapters.tracking import mask_values, report_secrets
    from regops.files.credentials import CREDENTIAL_VARS
    from regops.render import render_environments, reports

    uris: list[str | None] = []
    others: list[str | None] = [os.environ.get(v) for v in CREDENTIAL_VARS.values()]
    for env in config.environments.values():
        with contextlib.suppress(RegopsError):
            uris.append(env.tracking_uri)
        others.extend(os.environ.get(var) for var in env.credentials.values())
    body = (
        render_environments(docs, "markdown")
        if full_report is None
        else reports.environments_summary(docs, full_report)
    )
    return mask_values(f"{reports.MARKER}\n{body}\n", report_secrets(uris, others))


# The audit timeline (`regops history`): git log of the state files joined with the
# registry's audit stamps. adapters.history_git reads git, core.timeline computes the
# entries purely, render renders them; this ties them together.


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


@dataclass(frozen=True)
class InitResult:
    """What `regops init` did (or, refused, would have done): paths relative to `root`."""

    root: Path
    created: tuple[str, ...]
    overwritten: tuple[str, ...]
    unchanged: tuple[str, ...]
    kept_state: tuple[str, ...]  # state directories that already held state files
    adopted: dict[str, int]  # state directory -> models exported from its live registry
    notes: tuple[str, ...]
    next_steps: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return bool(self.created or self.overwritten)


def _adopt(uri: str, state_dir: str, *, aliases: bool) -> tuple[dict[str, str], int, list[str]]:
    """One state file per model of the live registry at `uri` (or one empty file when it
    has none or cannot be read), keyed by its path under `state_dir`."""
    notes: list[str] = []
    try:
        live = MlflowRegistry(uri).snapshot(None)
    except RegopsError as exc:
        notes.append(f"{state_dir}: the registry could not be read ({exc}); starting empty")
        live = None
    if live is None or not live.models:
        return (
            {f"{state_dir}/{scaffold.EMPTY_STATE_NAME}": scaffold.empty_state(aliases=aliases)},
            0,
            notes,
        )
    chosen = exporting.plan_export(live)
    notes += chosen.warnings()
    has_stages = live.has_stages and not aliases
    texts = {}
    for m in chosen.models:
        text = exporting.export_yaml([m], has_stages=has_stages)
        # export's editor hint points at this repository's schemas/, which an adopting
        # repository has not: a dangling schema reference there, so init leaves it out.
        text = "".join(
            line for line in text.splitlines(keepends=True) if not line.startswith(SCHEMA_HINT)
        )
        texts[f"{state_dir}/{m.name}.yaml"] = scaffold.alias_only_policy(text) if aliases else text
    if not texts:
        texts[f"{state_dir}/{scaffold.EMPTY_STATE_NAME}"] = scaffold.empty_state(aliases=aliases)
    return texts, len(chosen.models), notes


def init(
    cwd: Path,
    settings: Settings,
    *,
    envs: Sequence[str] = (),
    aliases: bool = False,
    force: bool = False,
    owners: Sequence[str] = (),
    action: str | None = None,
    branch: str = "main",
) -> InitResult:
    """Scaffold the git repository holding `cwd` for regops (`regops init`).

    The state directory adopts the live registry (`export`) when one can be read and
    holds no state files yet; a sqlite registry that does not exist reads as empty and
    is not created. A file that exists with other content is refused (InitError naming
    them all, nothing written) unless `force`. Running it twice changes nothing.
    """
    from regops import __version__
    from regops.errors import InitError

    root = gitio.toplevel(cwd)
    if root is None:
        raise InitError(f"{cwd}: not inside a git repository (run `git init` first)")
    bad = [e for e in envs if not scaffold.ENV_NAME.fullmatch(e)]
    bad += [o for o in owners if not scaffold.OWNER.fullmatch(o)]
    if bad:
        raise UsageError(
            "not an environment name or a GitHub @user / @org/team: " + ", ".join(map(repr, bad))
        )
    envs = list(dict.fromkeys(envs))
    texts: dict[str, str] = {}
    adopted: dict[str, int] = {}
    kept: list[str] = []
    notes: list[str] = []
    # (state directory, tracking URI or None, the variable that would have named it)
    targets: list[tuple[str, str | None, str]] = []
    if envs:
        for e in envs:
            var = scaffold.env_variable(e)
            targets.append((scaffold.state_dir_of(e), os.environ.get(var), var))
        texts[str(scaffold.CONFIG_FILE)] = scaffold.config_text(envs)
    else:
        state = settings.state_dir if settings.state_dir.is_absolute() else cwd / settings.state_dir
        try:
            rel = state.resolve().relative_to(root.resolve()).as_posix()
        except ValueError as exc:
            raise UsageError(f"--state-dir {state}: not inside the repository {root}") from exc
        targets.append((rel, settings.tracking_uri, "MLFLOW_TRACKING_URI"))
    for state_dir, uri, var in targets:
        if scaffold.has_state(root / state_dir):
            kept.append(state_dir)
            continue
        if uri is None:
            notes.append(f"{state_dir}: no registry ({var} is not set); starting empty")
            empty = scaffold.empty_state(aliases=aliases)
            files, count = {f"{state_dir}/{scaffold.EMPTY_STATE_NAME}": empty}, 0
        else:
            files, count, more = _adopt(uri, state_dir, aliases=aliases)
            notes += more
        texts.update(files)
        adopted[state_dir] = count
    pin_version = action is None  # the default Action's tag is this version
    action = action or f"{scaffold.ACTION_REPO}@v{__version__}"
    state_dirs = [d for d, _, _ in targets]
    for name in scaffold.WORKFLOWS:
        texts[f".github/workflows/{name}"] = scaffold.workflow_text(
            name,
            state_dir=state_dirs[0],
            envs=envs,
            version=__version__,
            action=action,
            branch=branch,
            pin_version=pin_version,
        )
    texts[str(scaffold.PRECOMMIT_FILE)] = scaffold.precommit_text(__version__, envs=envs)
    codeowners = root / scaffold.CODEOWNERS_FILE
    before = None
    if codeowners.is_file():
        from regops.files.codeowners import MAX_CODEOWNERS_BYTES

        try:
            raw = fileio.read_guarded(codeowners, root=root, max_bytes=MAX_CODEOWNERS_BYTES)
            before = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InitError(f"{scaffold.CODEOWNERS_FILE}: not UTF-8 text ({exc.reason})") from exc
        except RegopsError as exc:
            raise InitError(f"{scaffold.CODEOWNERS_FILE}: {exc}") from exc
    block = scaffold.codeowners_block(state_dirs, owners)
    texts[scaffold.CODEOWNERS_FILE.as_posix()], _ = scaffold.codeowners_text(before, block)

    by_dir: dict[Path, list[str]] = {}  # model names become file names: check them first
    for rel in texts:
        by_dir.setdefault((root / rel).parent, []).append((root / rel).name)
    for directory, names in by_dir.items():
        fileio.check_names(directory, names)
    comparison = scaffold.compare(root, {Path(k): v for k, v in texts.items()})
    if comparison.conflicts and not force:
        names = [p.as_posix() for p in comparison.conflicts]
        they = "it exists" if len(names) == 1 else "they exist"
        raise InitError(
            f"refusing to overwrite {', '.join(names)} ({they} with other content; --force "
            "overwrites them); nothing was written"
        )
    writes = {root / p: texts[p.as_posix()] for p in comparison.create + comparison.conflicts}
    for path in writes:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FileWriteError(f"cannot create {path.parent}: {exc.strerror or exc}") from exc
    fileio.write_all(writes)
    steps = _next_steps(envs, state_dirs, owners, changed=bool(writes))
    return InitResult(
        root=root,
        created=tuple(p.as_posix() for p in comparison.create),
        overwritten=tuple(p.as_posix() for p in comparison.conflicts),
        unchanged=tuple(p.as_posix() for p in comparison.unchanged),
        kept_state=tuple(kept),
        adopted=adopted,
        notes=tuple(notes),
        next_steps=steps,
    )


def _next_steps(
    envs: Sequence[str], state_dirs: Sequence[str], owners: Sequence[str], *, changed: bool
) -> tuple[str, ...]:
    secrets = [scaffold.env_variable(e) for e in envs] or ["MLFLOW_TRACKING_URI"]
    steps = [
        f"regops validate{' --all-envs' if envs else ''}  # the state files, offline",
        "git add -A && git commit -m 'Manage the model registry with regops'",
        "add the repository secrets "
        + ", ".join(secrets)
        + " (and MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN,"
        " if the server needs a login)",
        "pre-commit install  # the regops-validate and regops-codeowners hooks",
        "open a pull request that edits "
        + state_dirs[0]
        + "/: the plan is commented on it; merging applies it",
    ]
    if not owners:
        where = scaffold.CODEOWNERS_FILE.as_posix()
        steps.insert(2, f"name the approvers in {where} (or rerun with --owner @org/team --force)")
    return tuple(steps if changed else steps[:1])


# ---- events: the relay and the registry's webhooks (issue 20) -------------------------


def run_relay(environ: Any, listen: str, **options: Any) -> int:
    """Serve `regops relay` until SIGTERM/SIGINT; the exit code (0 after a clean stop)."""
    try:
        from regops.adapters import relay
    except ImportError as exc:  # pragma: no cover - the extra is missing
        raise UsageError(
            f"regops relay needs the relay extra: pip install 'regops[relay]' ({exc})"
        ) from None
    return relay.serve(relay.RelayConfig.from_env(environ, listen, **options))


def install_webhook(
    settings: Settings, url: str, secret: str, name: str = "regops-relay"
) -> tuple[str, Any]:
    """Register the relay's webhook on the registry (idempotent): (action, webhook)."""
    from regops.adapters.mlflow import webhooks

    if not secret.strip():
        raise UsageError("set REGOPS_WEBHOOK_SECRET: the relay refuses unsigned deliveries")
    if not url.startswith(("https://", "http://")):
        raise UsageError(
            "--url must be the relay's http(s) URL (e.g. https://relay.example/mlflow)"
        )
    return webhooks.install_webhook(settings.tracking_uri, url, secret, name)


def list_webhooks(settings: Settings) -> list[Any]:
    """The registry's webhooks (without secrets)."""
    from regops.adapters.mlflow import webhooks

    return webhooks.list_webhooks(settings.tracking_uri)


# ---- notifications (`notify:` in regops.yaml; issue 20) --------------------------------


def _notice(settings: Settings, kind: str, items: list[Any]) -> Any:
    import os

    from regops.adapters.tracking import mask_secrets, mask_values, report_secrets
    from regops.core.notify import Item, Notice

    try:
        uri: str | None = settings.tracking_uri
    except RegopsError:
        uri = None
    hide = report_secrets([uri], [])

    def clean(text: str) -> str:  # every string of a notification, masked like a report
        return mask_values(mask_secrets(text), hide)

    name = settings.registry_name or os.environ.get("REGOPS_REGISTRY_NAME") or "the registry"
    run_url = None
    server, repo, run = (
        os.environ.get(k, "") for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    )
    if server and repo and run.isdigit():
        run_url = clean(f"{server}/{repo}/actions/runs/{run}")
    return Notice(
        kind=kind,
        registry=clean(name),
        environment=settings.environment.name if settings.environment else None,
        commit=current_commit(Path.cwd()),
        items=tuple(
            Item(clean(m), None if v is None else clean(str(v)), clean(t)) for m, v, t in items
        ),
        at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        run_url=run_url,
    )


def _send_notices(settings: Settings, wanted: list[tuple[str, list[Any]]]) -> list[Any]:
    from regops.adapters import notify
    from regops.files.environments import load_notify

    wanted = [(k, items) for k, items in wanted if items]
    if not wanted:
        return []
    targets = load_notify()
    out: list[Any] = []
    for kind, items in wanted:
        if any(kind in t.on for t in targets):
            out += notify.send(targets, _notice(settings, kind, items))
    return out


def notify_reconcile(settings: Settings, plan: Plan, result: ApplyResult | None) -> list[Any]:
    """After reconcile: `blocked` (a gate refused the plan), `applied` and `failed` (what the
    apply did). Returns one Delivery per receiver; a failed delivery never raises."""
    from regops.render import describe

    blocked = [
        (
            c.model,
            c.version,
            f"{describe(c.to_dict())}: "
            + "; ".join(f"{g.gate}: {g.detail}" for g in c.gates if not g.passed),
        )
        for c in plan.blocked
    ]
    applied: list[Any] = []
    failed: list[Any] = []
    for o in result.outcomes if result is not None else ():
        c = o.change.to_dict()
        if o.status.value == "applied":
            applied.append((c["model"], c["version"], describe(c)))
        elif o.status.value == "failed":
            failed.append((c["model"], c["version"], f"{describe(c)}: {o.error or 'failed'}"))
    return _send_notices(settings, [("blocked", blocked), ("applied", applied), ("failed", failed)])


def notify_drift(settings: Settings, plan: Plan) -> list[Any]:
    """The drift check: `drift` when live was changed outside git."""
    from regops.render import describe

    drifted = [
        (c.model, c.version, f"{describe(c.to_dict())} (live changed outside git)")
        for c in plan.drifted
        if c.action in (Action.APPLY, Action.WARN)
    ]
    return _send_notices(settings, [("drift", drifted)])
