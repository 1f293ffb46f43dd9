"""The registry's webhooks (MLflow 3.3+, SQL-backed stores): list them, and register the
one the relay needs, idempotently (found again by its name).

MLflow's HTTP client already retries transient failures (capped by
tracking.http_defaults); nothing here retries again.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from regops.adapters.tracking import http_defaults, mask_secrets, remember_uri_secrets
from regops.core.webhooks import MLFLOW_EVENTS
from regops.errors import RegistryError

DEFAULT_NAME = "regops-relay"
MAX_WEBHOOKS = 10_000  # pages end: a registry holds far fewer


@dataclass(frozen=True)
class WebhookInfo:
    webhook_id: str
    name: str
    url: str
    events: tuple[str, ...]
    status: str
    description: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.webhook_id,
            "name": self.name,
            "url": self.url,
            "events": list(self.events),
            "status": self.status,
            "description": self.description,
        }


def _client(tracking_uri: str) -> Any:
    http_defaults()
    remember_uri_secrets(tracking_uri)
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _info(w: Any) -> WebhookInfo:
    status = getattr(w.status, "value", w.status)
    return WebhookInfo(
        webhook_id=str(w.webhook_id),
        name=str(w.name),
        url=str(w.url),
        events=tuple(sorted(str(e) for e in w.events)),
        status=str(status),
        description=w.description,
    )


def _failed(what: str, exc: Exception) -> RegistryError:
    text = mask_secrets(str(exc))[:2000]
    hint = ""
    if "FileStore" in text or "not supported" in text.lower() or "NotImplemented" in text:
        hint = " (webhooks need MLflow 3.3+ with a SQL-backed registry store)"
    return RegistryError(f"{what} failed{hint}: {text}")


def list_webhooks(tracking_uri: str) -> list[WebhookInfo]:
    client = _client(tracking_uri)
    out: list[WebhookInfo] = []
    token = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            while len(out) < MAX_WEBHOOKS:
                page = client.list_webhooks(max_results=1000, page_token=token)
                out += [_info(w) for w in page]
                token = page.token
                if not token:
                    break
    except Exception as exc:  # MlflowException, NotImplementedError, network errors
        raise _failed("listing webhooks", exc) from None
    return sorted(out, key=lambda w: (w.name, w.webhook_id))


def install_webhook(
    tracking_uri: str, url: str, secret: str, name: str = DEFAULT_NAME
) -> tuple[str, WebhookInfo]:
    """Create the relay's webhook, or bring the one named `name` to this URL, these events
    and this secret. Returns (created | updated | unchanged, the webhook). A secret cannot
    be read back: it is written again either way, so a rotated secret takes effect."""
    events = sorted(MLFLOW_EVENTS)
    existing = [w for w in list_webhooks(tracking_uri) if w.name == name]
    client = _client(tracking_uri)
    try:
        if not existing:
            w = client.create_webhook(
                name=name,
                url=url,
                events=events,
                description="regops relay: registry events to GitHub repository_dispatch",
                secret=secret,
                status="ACTIVE",
            )
            return "created", _info(w)
        first = existing[0]
        same = (
            first.url == url and list(first.events) == events and first.status.upper() == "ACTIVE"
        )
        w = client.update_webhook(
            first.webhook_id, url=url, events=events, secret=secret, status="ACTIVE"
        )
        return ("unchanged" if same else "updated"), _info(w)
    except RegistryError:
        raise
    except Exception as exc:
        raise _failed("registering the webhook", exc) from None
