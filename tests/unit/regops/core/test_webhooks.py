"""The relay's pure rules (regops.core.webhooks), table-driven: MLflow's own signer is the
reference for the signature."""

from __future__ import annotations

import json

import pytest
from mlflow.webhooks.delivery import _generate_hmac_signature

from regops.core import webhooks
from regops.core.webhooks import Event, Refused, ReplayGuard, Throttle

SECRET = "s3cret-key"  # noqa: S105
NOW = 1_800_000_000


def headers(
    body: bytes, *, secret: str = SECRET, ts: int = NOW, did: str = "d-1"
) -> dict[str, str]:
    return {
        "x-mlflow-delivery-id": did,
        "x-mlflow-timestamp": str(ts),
        "x-mlflow-signature": _generate_hmac_signature(secret, did, str(ts), body.decode()),
    }


BODY = json.dumps(
    {
        "entity": "model_version_alias",
        "action": "created",
        "data": {"name": "M", "alias": "a", "version": "3"},
    }
).encode()


def test_our_signature_is_mlflows() -> None:
    assert webhooks.sign(SECRET, "d-1", str(NOW), BODY) == headers(BODY)["x-mlflow-signature"]
    assert webhooks.verify(SECRET, headers(BODY), BODY, NOW) == ("d-1", NOW)


@pytest.mark.parametrize(
    ("change", "status", "reason"),
    [
        ({"x-mlflow-signature": "v1,AAAA"}, 401, "bad signature"),
        ({"x-mlflow-signature": ""}, 401, "missing signature headers"),
        ({"x-mlflow-timestamp": str(NOW - 301)}, 401, "bad signature"),  # signed for another time
        ({"x-mlflow-timestamp": "12a"}, 401, "bad timestamp"),
        ({"x-mlflow-delivery-id": "x" * 200}, 400, "bad delivery id"),
    ],
    ids=["forged", "unsigned", "timestamp-swapped", "timestamp-not-digits", "long-id"],
)
def test_verify_refuses(change: dict[str, str], status: int, reason: str) -> None:
    with pytest.raises(Refused) as e:
        webhooks.verify(SECRET, {**headers(BODY), **change}, BODY, NOW)
    assert (e.value.status, e.value.reason) == (status, reason)


@pytest.mark.parametrize("skew", [-301, 301], ids=["old", "future"])
def test_stale_timestamps_are_refused_even_when_signed(skew: int) -> None:
    h = headers(BODY, ts=NOW + skew)
    with pytest.raises(Refused, match="stale timestamp"):
        webhooks.verify(SECRET, h, BODY, NOW)


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (
            {
                "entity": "model_version_alias",
                "action": "deleted",
                "data": {"name": "M", "alias": "a"},
            },
            ("mlflow.model_version_alias.deleted", "M", None, "a"),
        ),
        (
            {
                "entity": "model_version_tag",
                "action": "set",
                "data": {"name": "M", "version": "2", "key": "k", "value": "v"},
            },
            ("mlflow.model_version_tag.set", "M", "2", "k"),
        ),
        (
            {"entity": "model_version", "action": "created", "data": {"name": "M", "version": "1"}},
            ("mlflow.model_version.created", "M", "1", None),
        ),
    ],
    ids=["alias-deleted", "tag-set", "version-created"],
)
def test_parse(doc: dict[str, object], expected: tuple[object, ...]) -> None:
    e = webhooks.parse(json.dumps(doc).encode(), "d")
    assert (e.event_type, e.model, e.version, e.key) == expected


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{", "malformed JSON"),
        (b"[]", "malformed JSON"),
        (b"[" * 100_000, "malformed JSON"),
        (b'{"entity": "prompt_alias", "action": "created", "data": {}}', "unknown event"),
        (b'{"entity": "model_version_alias", "action": "created", "data": []}', "bad field data"),
        (
            b'{"entity": "model_version_alias", "action": "created", "data": {"name": 1}}',
            "bad field name",
        ),
    ],
    ids=["truncated", "array", "deep", "prompt", "data-list", "name-number"],
)
def test_parse_refuses_without_echoing(body: bytes, reason: str) -> None:
    with pytest.raises(Refused) as e:
        webhooks.parse(body, "d")
    assert e.value.reason == reason
    assert e.value.status == 400


def test_replay_guard_is_bounded_and_forgets_only_what_timestamps_refuse() -> None:
    g = ReplayGuard(tolerance=10, capacity=3)
    for i in range(3):
        g.check_and_remember(f"id{i}", 100)
    with pytest.raises(Refused, match="duplicate"):
        g.check_and_remember("id0", 105)
    with pytest.raises(Refused, match="busy"):  # full of young ids: MLflow retries later
        g.check_and_remember("id3", 105)
    g.check_and_remember("id3", 121)  # the old ones are past 2 x tolerance: forgotten
    assert len(g) == 1


def ev(model: str, version: str, did: str = "d") -> Event:
    return Event("model_version_alias", "created", model, version, "champion", did)


def test_throttle_sends_the_first_at_once_and_merges_the_rest_of_the_window() -> None:
    t = Throttle(window=2.0)
    first = t.add(ev("A", "1", "d1"), 0.0)
    assert [d.client_payload["events"] for d in first] == [1]
    assert t.add(ev("A", "2", "d2"), 0.5) == []
    assert t.add(ev("A", "3", "d3"), 1.0) == []
    assert [d.client_payload["model"] for d in t.add(ev("B", "1"), 1.0)] == ["B"]  # per model
    assert t.due(1.9) == []
    (merged,) = t.due(2.0)
    assert merged.event_type == "mlflow.model_version_alias.created"
    assert merged.client_payload == {
        "model": "A",
        "version": "3",
        "delivery_id": "d3",
        "events": 2,
        "versions": ["2", "3"],
        "alias": "champion",
    }
    assert t.due(10.0) == []  # nothing left
    assert len(t.add(ev("A", "4"), 10.0)) == 1  # a quiet model starts afresh


def test_throttle_flush_sends_everything_pending() -> None:
    t = Throttle(window=60)
    t.add(ev("A", "1"), 0)
    t.add(ev("A", "2"), 1)
    t.add(ev("B", "1"), 1)
    t.add(ev("B", "2"), 1)
    assert sorted(d.client_payload["model"] for d in t.flush()) == ["A", "B"]
    assert t.pending == 0
