"""Several registries (`regops.yaml`): every environment validated, planned, and reported
in one pull-request comment with every environment's URI and credentials masked.
"""

from __future__ import annotations

from regops.api.planning import run_plan
from regops.core import promotion
from regops.errors import RegopsError
from regops.files.environments import Config
from regops.files.loader import load_state
from regops.settings import Settings


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
