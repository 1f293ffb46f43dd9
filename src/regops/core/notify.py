"""Notifications (`notify:` in regops.yaml): what to say, in Slack's or regops' own JSON.

Pure: the caller (api) masks secrets in every string first and sends the bytes
(adapters.notify). Registry strings are untrusted: the Slack text escapes Slack's
control characters (`&`, `<`, `>`: no link, no `<!channel>`) and breaks `@` mentions;
the JSON form carries them as plain JSON strings, bounded in number and length.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass

FORMAT_VERSION = 1
KINDS = ("applied", "blocked", "drift", "failed")
FORMATS = ("slack", "json")
SIGNATURE_HEADER = "X-Regops-Signature"
MAX_ITEMS = 50  # a notification lists at most this many changes ("and N more")
MAX_TEXT = 300  # characters of one item's text
JOINER = "\u2060"  # WORD JOINER: breaks `@here` and `@user` without changing how they read

_TITLES = {
    "applied": "regops applied changes to the registry",
    "blocked": "regops refused to apply: a gate blocked the plan",
    "drift": "regops found drift: the registry was changed outside git",
    "failed": "regops could not apply every change",
}


@dataclass(frozen=True)
class Item:
    model: str
    version: str | None
    text: str  # what happened, one line


@dataclass(frozen=True)
class Notice:
    kind: str  # one of KINDS
    registry: str  # what reports call the registry (never its URI)
    environment: str | None
    commit: str | None
    items: tuple[Item, ...]
    at: str  # ISO 8601 UTC
    run_url: str | None = None

    @property
    def title(self) -> str:
        return _TITLES[self.kind]


def _clip(text: str, n: int = MAX_TEXT) -> str:
    text = " ".join(str(text).split())  # one line
    return text if len(text) <= n else text[: n - 1] + "…"


def json_body(n: Notice) -> bytes:
    """regops' own JSON (schemas/notification.schema.json)."""
    doc = {
        "format_version": FORMAT_VERSION,
        "event": n.kind,
        "title": n.title,
        "registry": _clip(n.registry, 200),
        "environment": n.environment,
        "commit": n.commit,
        "at": n.at,
        "run_url": n.run_url,
        "count": len(n.items),
        "items": [
            {"model": _clip(i.model), "version": i.version, "text": _clip(i.text)}
            for i in n.items[:MAX_ITEMS]
        ],
        "truncated": len(n.items) > MAX_ITEMS,
    }
    return json.dumps(doc, ensure_ascii=False, sort_keys=True).encode("utf-8")


def slack_escape(text: str) -> str:
    """Text for Slack mrkdwn: `&<>` escaped (Slack's rule), `@` mentions and formatting
    characters neutralised (a model name shows as typed, never pings or styles)."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace("@", "@" + JOINER)
    for ch in "*_~`":
        text = text.replace(ch, JOINER + ch + JOINER)
    return text


def slack_body(n: Notice) -> bytes:
    """Slack's incoming-webhook JSON: `text` (the fallback) and one mrkdwn section."""
    head = f"{n.title} ({slack_escape(_clip(n.registry, 200))}"
    if n.environment:
        head += f", environment {slack_escape(_clip(n.environment, 100))}"
    head += ")"
    lines = [
        f"• {slack_escape(_clip(i.model))}: {slack_escape(_clip(i.text))}"
        for i in n.items[:MAX_ITEMS]
    ]
    if len(n.items) > MAX_ITEMS:
        lines.append(f"… and {len(n.items) - MAX_ITEMS} more")
    if n.commit:
        lines.append(f"commit {slack_escape(n.commit[:12])}")
    text = "\n".join([head, *lines])
    doc = {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}],
        "unfurl_links": False,
        "unfurl_media": False,
    }
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


def body_of(fmt: str, n: Notice) -> bytes:
    return slack_body(n) if fmt == "slack" else json_body(n)


def signature(secret: str, body: bytes) -> str:
    """X-Regops-Signature: `sha256=<hex HMAC-SHA256 of the body>` (GitHub's webhook form)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
