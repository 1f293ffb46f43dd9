"""Planning: the state files and the live registry read once, and diffed, with every
gate's verdict (`regops plan`). Writes nothing.

The registry's snapshot is read while the state files load (`prefetched_registry`);
copies across environments read each source environment with its own login; a version's
run metrics are read only when a gate or a rule needs them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import replace
from types import MappingProxyType
from typing import Protocol

from regops.adapters import gitio
from regops.adapters.mlflow.registry import MlflowRegistry
from regops.adapters.tracking import stages_supported
from regops.core import audit, metric_gates, promotion, rules
from regops.core.live import LiveModel, LiveState
from regops.core.plan import Plan
from regops.core.planner import diff
from regops.core.state import DesiredState
from regops.errors import PlanError, RegopsError, UsageError
from regops.files.environments import Config
from regops.files.loader import load_state, state_files
from regops.settings import Settings


class LiveSource(Protocol):
    """What planning reads: the live registry, or a snapshot of it."""

    @property
    def display_uri(self) -> str: ...

    def snapshot(self, names: Iterable[str] | None = None) -> LiveState: ...


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
    live = registry.snapshot(names)
    shown = registry_name or settings.registry_name or registry.display_uri
    refs = {k: r for k, r in promotion.copy_refs(desired).items() if k[0] in names}
    if not refs:
        live = with_run_metrics(registry, desired, live, names)
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
    # The gates read the runs of the versions the keys resolved to: copies made (their runs
    # here) and copies to make (their source runs, which _resolve_copies read there).
    judged = with_run_metrics(registry, res.desired, res.live, names)
    p = diff(res.desired, judged, only=only, registry=shown, created_at=audit.now(), rules=ctx)
    return promotion.with_copies(p, replace(res, live=judged), live)


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
    # in the same batched searches as the gates' (None: every key). What a run logged here
    # wins over what was known of it already (a copy's source run, see promotion.resolve).
    wanted = None if rule_runs else keys
    merged = {k: dict(m) for k, m in (live.run_metrics or {}).items()}
    for run_id, metrics in registry.run_metrics(run_ids | rule_runs, wanted).items():
        merged[run_id] = {**merged.get(run_id, {}), **metrics}
    return replace(live, run_metrics=MappingProxyType(merged))


# Who gave the overrides (the apply workflow: the PR label's author); default: the actor.
OVERRIDE_ACTOR_ENV = "REGOPS_OVERRIDE_ACTOR"


def rule_context(
    settings: Settings, desired: DesiredState, names: Sequence[str]
) -> rules.RuleContext:
    """What `policy.rules` see besides the registry: the environment, the actor and the
    overrides (`--override`), each of which must name a rule of the planned models, or
    (with --env) a rule of another environment of regops.yaml: the override labels of a
    pull request reach every environment's apply, and each uses those that concern it."""
    known = rules.rule_names(desired, names)
    unknown = sorted({name for name, _ in settings.overrides} - known)
    whole = set(names) == set(desired.models)  # no --model: the environment's whole state
    env, config = settings.environment, settings.config
    if unknown and env is not None and config is not None and whole:
        unknown = sorted(set(unknown) - _rules_elsewhere(config, env.name))
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
        overrides=MappingProxyType({r: why for r, why in settings.overrides if r in known}),
        override_actor=os.environ.get(OVERRIDE_ACTOR_ENV) or who,
    )


def _rules_elsewhere(config: Config, here: str) -> set[str]:
    """The rule names of the state files of regops.yaml's other environments (those that
    load: a broken one's own plan reports it)."""
    found: set[str] = set()
    for env in config.environments.values():
        if env.name == here:
            continue
        try:
            found |= rules.rule_names(load_state(env.state_dir, stages_supported=True))
        except RegopsError:
            continue
    return found


def _resolve_copies(
    settings: Settings,
    desired: DesiredState,
    live: LiveState,
    refs: dict[tuple[str, str], promotion.CopyRef],
) -> promotion.Resolution:
    """Read every source environment a copy key names (with its login), then resolve.

    Where a model's gates or rules read metrics, the source versions' runs are read there
    too (one batched search per source environment): a copy is judged by its source's
    numbers, as by its source's evidence tags."""
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
    gated = {
        model
        for model, _ in refs
        if desired.models[model].policy.metric_gated()
        or any(r.reads_metrics() for r in desired.models[model].policy.rules)
    }
    sources: dict[tuple[str, str], LiveModel | None] = {}
    source_runs: dict[str, dict[str, float]] | None = {} if gated else None
    for name, models in sorted(wanted.items()):
        src = config.get(name)
        with credentials_of(src):
            source = MlflowRegistry(src.tracking_uri)
            snap = source.snapshot(sorted(models))
            runs = {
                lv.run_id
                for (model, _), ref in refs.items()
                if model in gated
                and ref.env == name
                and (lm := snap.models.get(ref.model)) is not None
                and (lv := lm.versions.get(ref.version)) is not None
                and lv.run_id
            }
            if source_runs is not None and runs:
                source_runs.update(source.run_metrics(runs, None))
        for model in models:
            sources[(name, model)] = snap.models.get(model)
    return promotion.resolve(
        desired, live, sources, env=env.name, known_envs=config.names, source_runs=source_runs
    )


def suspension(settings: Settings) -> str | None:
    """Why the chosen environment is suspended (`suspend:` in regops.yaml), or None."""
    env = settings.environment
    return env.suspension() if env is not None else None
