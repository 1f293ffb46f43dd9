"""Events in and notifications out (issue 20): the relay that turns the registry's
webhooks into GitHub dispatches, the webhook it registers, and the `notify:` receivers
told after reconcile and drift.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from regops.adapters import gitio
from regops.adapters.mlflow.executor import ApplyResult
from regops.core.plan import Action, Plan
from regops.errors import RegopsError, UsageError
from regops.settings import Settings


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


# ---- notifications (`notify:` in regops.yaml) ----------------------------------------


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
        commit=gitio.head(Path.cwd()),
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
