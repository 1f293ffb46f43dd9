"""Several registries (`regops.yaml`): every environment validated, planned, and reported
in one pull-request comment with every environment's URI and credentials masked.
"""

from __future__ import annotations

from dataclasses import replace

from regops.api.planning import load_desired, run_plan
from regops.core import promotion, rules
from regops.core.plan import Plan
from regops.core.state import DesiredState
from regops.errors import Diagnostic, RegopsError, StateError, UsageError
from regops.files.environments import Config, Environment, credentials_of
from regops.files.loader import load_state
from regops.settings import Settings


def validate_environments(config: Config | None, only: str | None = None) -> list[str]:
    """Validate each environment's state (or `only` one's), copy keys included.

    Copy keys must name another declared environment. Every problem of every
    environment is raised together; returns one summary line per environment.
    """
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


def scoped(settings: Settings, env: Environment) -> Settings:
    """`settings` narrowed to one environment of regops.yaml: its state and its registry."""
    return replace(
        settings, environment=env, env_name=env.name, state_dir=env.state_dir, resolved=True
    )


def _error(exc: RegopsError) -> str:
    if isinstance(exc, StateError):
        return "\n".join(str(d) for d in exc.diagnostics)
    return str(exc)


def plan_environments(settings: Settings) -> dict[str, Plan | str]:
    """Plan every environment: name -> its plan, or the message of the error that stopped it.

    Each --override (`settings.overrides`) reaches the environments whose state files have
    that rule. One that names a rule of no environment is a usage error (exit 64), raised
    before any registry is read, as `plan --env` raises it.
    """
    assert settings.config is not None
    envs = list(settings.config.environments.values())
    loaded: dict[str, DesiredState | str] = {}
    for env in envs:
        try:
            loaded[env.name] = load_desired(scoped(settings, env))
        except RegopsError as exc:
            loaded[env.name] = _error(exc)
    states = [d for d in loaded.values() if not isinstance(d, str)]
    known = set().union(*(rules.rule_names(d) for d in states))
    unknown = sorted({name for name, _ in settings.overrides} - known)
    if unknown and len(states) == len(envs):  # else a broken state file may hold the rule
        have = ", ".join(sorted(known)) or "none"
        raise UsageError(
            f"--override names no rule of any environment: {', '.join(unknown)} (rules: {have})"
        )
    out: dict[str, Plan | str] = {}
    for env in envs:
        desired = loaded[env.name]
        if isinstance(desired, str):
            out[env.name] = desired
            continue
        names = rules.rule_names(desired)
        one = replace(
            scoped(settings, env),
            overrides=tuple(o for o in settings.overrides if o[0] in names),
        )
        try:
            with credentials_of(env):
                out[env.name] = run_plan(one, desired=desired)
        except RegopsError as exc:
            out[env.name] = _error(exc)
    return out


def plan_docs(plans: dict[str, Plan | str]) -> dict[str, dict[str, object]]:
    """plan_environments' answer as the JSON of `plan --all-envs` (an error: {"error": ...})."""
    return {name: {"error": p} if isinstance(p, str) else p.to_dict() for name, p in plans.items()}


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
