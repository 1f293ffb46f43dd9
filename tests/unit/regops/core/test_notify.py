"""Notification bodies (regops.core.notify): registry strings are escaped for Slack and
bounded in the JSON form, which follows schemas/notification.schema.json."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from regops.core import notify
from regops.core.notify import Item, Notice
from tests.support.paths import SCHEMAS


def notice(kind: str = "applied", n: int = 1, model: str = "M") -> Notice:
    items = tuple(Item(model, str(i), f"alias champion: set on version {i}") for i in range(n))
    return Notice(kind, "production", None, "a" * 40, items, "2026-01-01T00:00:00+00:00")


@pytest.mark.parametrize("kind", notify.KINDS)
@pytest.mark.parametrize("n", [0, 1, 51])
def test_json_bodies_follow_the_schema(kind: str, n: int) -> None:
    schema = json.loads((SCHEMAS / "notification.schema.json").read_text())
    doc = json.loads(notify.json_body(notice(kind, n)))
    Draft202012Validator(schema).validate(doc)
    assert doc["count"] == n
    assert doc["truncated"] is (n > 50)


@pytest.mark.parametrize(
    "model",
    [
        "<!channel> ping",
        "<https://evil.example|click>",
        "@here now",
        "*bold* _it_ `code` ~s~",
        "a&b",
    ],
    ids=["channel", "link", "mention", "format", "amp"],
)
def test_slack_text_cannot_ping_link_or_format(model: str) -> None:
    text = json.loads(notify.slack_body(notice(model=model)))["text"]
    assert "<" not in text.replace("&lt;", "")
    assert "@here" not in text
    for mark in "*_~`":
        assert mark + notify.JOINER not in text.replace(notify.JOINER + mark + notify.JOINER, "")


def test_signature_is_hex_hmac_of_the_body() -> None:
    import hashlib
    import hmac

    body = notify.json_body(notice())
    assert (
        notify.signature("k3y!", body)
        == "sha256=" + hmac.new(b"k3y!", body, hashlib.sha256).hexdigest()
    )
