"""`regops webhooks list|install` reports: text and JSON (names and URLs come from the
registry: escaped for the terminal, and URLs shown with their credentials masked)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from regops.adapters.mlflow.webhooks import WebhookInfo
from regops.adapters.tracking import mask_uri
from regops.render.mdsafe import safe


def _doc(w: WebhookInfo) -> dict[str, Any]:
    d = w.as_json()
    d["url"] = mask_uri(w.url)
    return d


def render_webhooks(hooks: Sequence[WebhookInfo], fmt: str) -> str:
    if fmt == "json":
        return json.dumps({"webhooks": [_doc(w) for w in hooks]}, indent=2, sort_keys=True)
    if not hooks:
        return "no webhooks registered"
    lines = []
    for w in hooks:
        d = _doc(w)
        lines.append(
            safe(f"{d['name']}  {d['status']}  {d['url']}  id={d['id']}")
            + "\n    events: "
            + safe(", ".join(w.events))
        )
    return "\n".join(lines)


def render_install(action: str, w: WebhookInfo, fmt: str) -> str:
    if fmt == "json":
        return json.dumps({"action": action, "webhook": _doc(w)}, indent=2, sort_keys=True)
    return safe(f"webhook {w.name} {action}: {mask_uri(w.url)} ({len(w.events)} events)")
