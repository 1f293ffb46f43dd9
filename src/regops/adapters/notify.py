"""Sends notifications (`notify:` in regops.yaml) and says what became of each.

A notification is a side effect of an apply, never part of it: every failure (a
variable not set, a refused connection, a 4xx/5xx, a timeout) becomes a Delivery with
`ok=False` and a masked reason; nothing here raises to the caller. Each receiver gets a
few tries (network errors, 429, 5xx) with a short backoff, bounded in total time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from regops.adapters.tracking import mask_secrets, mask_values
from regops.core.notify import SIGNATURE_HEADER, Notice, body_of, signature
from regops.errors import RegopsError
from regops.files.environments import NotifyTarget

ATTEMPTS = 3
TIMEOUT = 10.0
BACKOFF = 0.5


@dataclass(frozen=True)
class Delivery:
    receiver: str  # the receiver as reports may show it: scheme and host only
    kind: str
    ok: bool
    status: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "receiver": self.receiver,
            "event": self.kind,
            "ok": self.ok,
            "status": self.status,
            "error": self.error,
        }


def _shown(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}" if parts.scheme else "?"


def send(
    targets: Sequence[NotifyTarget],
    notice: Notice,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Delivery]:
    """Send `notice` to every target subscribed to its kind."""
    out = []
    for t in targets:
        if notice.kind in t.on:
            out.append(_send_one(t, notice, sleep))
    return out


def _send_one(t: NotifyTarget, notice: Notice, sleep: Callable[[float], None]) -> Delivery:
    import requests

    try:
        url, secret = t.url, t.secret
    except RegopsError as exc:  # a ${VAR} not set: the entry cannot be used here
        return Delivery(f"notify entry at line {t.line}", notice.kind, False, error=str(exc))
    shown = _shown(url)
    if not url.startswith(("https://", "http://")):
        return Delivery(shown, notice.kind, False, error="the url is not http(s)")
    body = body_of(t.format, notice)
    headers = {"Content-Type": "application/json", "User-Agent": "regops-notify"}
    if secret:
        headers[SIGNATURE_HEADER] = signature(secret, body)
    status: int | None = None
    error: str | None = None
    for attempt in range(1, ATTEMPTS + 1):
        try:
            r = requests.post(url, data=body, headers=headers, timeout=TIMEOUT)
            r.close()
            status, error = r.status_code, None
            if 200 <= status < 300:
                return Delivery(shown, notice.kind, True, status=status)
            error = f"answered HTTP {status}"
            if status != 429 and status < 500:
                break
        except requests.RequestException as exc:
            error = type(exc).__name__
        if attempt < ATTEMPTS:
            sleep(BACKOFF * 2 ** (attempt - 1))
    reason = mask_values(mask_secrets(error or "failed"), [url, secret or ""])
    return Delivery(shown, notice.kind, False, status=status, error=reason)
