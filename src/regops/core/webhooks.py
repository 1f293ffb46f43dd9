"""MLflow webhook deliveries in, GitHub `repository_dispatch` events out: the pure rules.

Rules (the relay in regops.adapters.relay does the I/O around them):

- A delivery is `POST` with `X-MLflow-Delivery-Id`, `X-MLflow-Timestamp` (unix seconds)
  and `X-MLflow-Signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">` (MLflow's
  `mlflow.webhooks.delivery._generate_hmac_signature`). The signature is compared in
  constant time; a timestamp more than `tolerance` seconds from now is refused (a
  replay of an old delivery); a delivery id seen within that window is refused too.
- Only the model-registry events the workflows react to are accepted (EVENTS); every
  other entity/action, a body that is not a JSON object, a field that is not a short
  string: refused. Refusals carry a fixed reason, never a byte of the input.
- `event_type` is `mlflow.<entity>.<action>`; `client_payload` holds the model, version,
  alias or tag key and the delivery id (all strings from the registry: untrusted, so
  workflows read them through `env:`). No secret ever enters it.
- Coalescing (Throttle): per (event_type, model, alias or tag key) the first event is
  dispatched at once;
  the events that follow within `window` seconds are merged into one dispatch sent when
  the window ends. A burst of N events for one model costs at most 2 dispatches a
  window, and no model's events are dropped for another's (nor one tag's for another's:
  the proposal job reacts to the evidence tags only).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections import OrderedDict
from dataclasses import dataclass, field

SIGNATURE_HEADER = "X-MLflow-Signature"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
DELIVERY_ID_HEADER = "X-MLflow-Delivery-Id"
SIGNATURE_VERSION = "v1"

# The events the relay turns into dispatches: (entity, action) -> the field naming what moved.
EVENTS: dict[tuple[str, str], str | None] = {
    ("model_version", "created"): None,
    ("model_version_tag", "set"): "tag",
    ("model_version_tag", "deleted"): "tag",
    ("model_version_alias", "created"): "alias",
    ("model_version_alias", "deleted"): "alias",
}
EVENT_TYPES = tuple(f"mlflow.{e}.{a}" for e, a in EVENTS)
# The MLflow event names (`entity.action`) a relay subscribes to.
MLFLOW_EVENTS = tuple(f"{e}.{a}" for e, a in EVENTS)

DEFAULT_TOLERANCE = 300  # seconds either side of now (Standard Webhooks' default)
DEFAULT_MAX_BODY = 256 * 1024  # MLflow's payloads are a few hundred bytes; tags add a little
MAX_FIELD = 1024  # model names, versions, keys: far below; more is not a registry's answer
MAX_DELIVERY_ID = 128
MAX_VERSIONS_IN_PAYLOAD = 50  # a coalesced dispatch lists at most this many versions


class Refused(Exception):  # noqa: N818 - a verdict, not a failure of regops
    """A delivery the relay will not forward: `status` is the HTTP answer, `reason` a fixed
    text that never quotes the request."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Event:
    """One accepted MLflow event."""

    entity: str
    action: str
    model: str
    version: str | None
    key: str | None  # the alias or tag key, for those events
    delivery_id: str

    @property
    def event_type(self) -> str:
        return f"mlflow.{self.entity}.{self.action}"

    @property
    def key_field(self) -> str | None:
        return EVENTS[(self.entity, self.action)]


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """The `X-MLflow-Signature` value MLflow sends for this delivery."""
    content = delivery_id.encode() + b"." + timestamp.encode() + b"." + body
    digest = hmac.new(secret.encode(), content, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def verify(
    secret: str,
    headers: dict[str, str],
    body: bytes,
    now: float,
    tolerance: int = DEFAULT_TOLERANCE,
) -> tuple[str, int]:
    """Check signature and timestamp; return (delivery id, timestamp). Raises Refused.

    `headers` keys are lower case."""
    delivery_id = headers.get(DELIVERY_ID_HEADER.lower(), "")
    timestamp = headers.get(TIMESTAMP_HEADER.lower(), "")
    signature = headers.get(SIGNATURE_HEADER.lower(), "")
    if not delivery_id or not timestamp or not signature:
        raise Refused(401, "missing signature headers")
    if len(delivery_id) > MAX_DELIVERY_ID or not delivery_id.isascii():
        raise Refused(400, "bad delivery id")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise Refused(401, "bad timestamp")
    expected = sign(secret, delivery_id, timestamp, body)
    # Compare every v1 signature offered (Standard Webhooks allows several, space-separated).
    offered = [s for s in signature.split(" ") if s.startswith(SIGNATURE_VERSION + ",")]
    if not any(hmac.compare_digest(s.encode(), expected.encode()) for s in offered if s.isascii()):
        raise Refused(401, "bad signature")
    ts = int(timestamp)
    if abs(now - ts) > tolerance:
        raise Refused(401, "stale timestamp")
    return delivery_id, ts


def _short_str(doc: dict[str, object], name: str, *, required: bool = True) -> str | None:
    value = doc.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_FIELD:
        raise Refused(400, f"bad field {name}")
    return value


def parse(body: bytes, delivery_id: str) -> Event:
    """The event of a verified body. Raises Refused (400) for anything else."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise Refused(400, "malformed JSON") from None
    if not isinstance(doc, dict):
        raise Refused(400, "malformed JSON")
    entity, action = doc.get("entity"), doc.get("action")
    if not isinstance(entity, str) or not isinstance(action, str):
        raise Refused(400, "unknown event")
    if (entity, action) not in EVENTS:
        raise Refused(400, "unknown event")
    data = doc.get("data")
    if not isinstance(data, dict):
        raise Refused(400, "bad field data")
    model = _short_str(data, "name")
    version = _short_str(data, "version", required=entity != "model_version_alias")
    key_field = EVENTS[(entity, action)]
    key = None
    if key_field is not None:
        key = _short_str(data, "alias" if key_field == "alias" else "key")
    assert model is not None
    return Event(entity, action, model, version, key, delivery_id)


@dataclass
class ReplayGuard:
    """Delivery ids seen within the timestamp tolerance, in bounded memory.

    An id older than the tolerance can be forgotten: its timestamp alone refuses it. When
    `capacity` ids are all still young, `seen` raises Refused(503) so MLflow retries later
    rather than the relay forgetting an id that could still be replayed."""

    tolerance: int = DEFAULT_TOLERANCE
    capacity: int = 65536
    _ids: OrderedDict[str, float] = field(default_factory=OrderedDict)

    def check_and_remember(self, delivery_id: str, now: float) -> None:
        while self._ids:
            oldest, seen_at = next(iter(self._ids.items()))
            if now - seen_at <= 2 * self.tolerance:
                break
            del self._ids[oldest]
        if delivery_id in self._ids:
            raise Refused(409, "duplicate delivery")
        if len(self._ids) >= self.capacity:
            raise Refused(503, "busy")
        self._ids[delivery_id] = now

    def forget(self, delivery_id: str) -> None:
        """Undo `check_and_remember` for a delivery that was not accepted after all."""
        self._ids.pop(delivery_id, None)

    def __len__(self) -> int:
        return len(self._ids)


@dataclass(frozen=True)
class Dispatch:
    """One `repository_dispatch` to send."""

    event_type: str
    client_payload: dict[str, object]


@dataclass
class _Pending:
    last: Event
    count: int = 0
    versions: list[str] = field(default_factory=list)
    more_versions: bool = False

    def add(self, event: Event) -> None:
        self.last = event
        self.count += 1
        if event.version is not None and event.version not in self.versions:
            if len(self.versions) < MAX_VERSIONS_IN_PAYLOAD:
                self.versions.append(event.version)
            else:
                self.more_versions = True


def dispatch_of(pending: _Pending) -> Dispatch:
    e = pending.last
    payload: dict[str, object] = {
        "model": e.model,
        "version": e.version,
        "delivery_id": e.delivery_id,
        "events": pending.count,
        "versions": sorted(pending.versions, key=lambda v: (len(v), v)),
    }
    if e.key_field is not None:
        payload[e.key_field] = e.key
    if pending.more_versions:
        payload["versions_truncated"] = True
    return Dispatch(e.event_type, payload)


@dataclass
class Throttle:
    """Coalesces events per (event_type, model, key): the first goes out at once, the rest of a
    `window` become one dispatch at its end. `max_keys` bounds memory (Refused 503 past it)."""

    window: float = 2.0
    max_keys: int = 10000
    _quiet_until: dict[tuple[str, str, str], float] = field(default_factory=dict)
    _pending: dict[tuple[str, str, str], _Pending] = field(default_factory=dict)

    def add(self, event: Event, now: float) -> list[Dispatch]:
        """Take one event; return what to send now."""
        key = (event.event_type, event.model, event.key or "")
        self._expire(now)
        if key not in self._pending and self._quiet_until.get(key, now + 1) <= now:
            del self._quiet_until[key]  # its window ended with nothing merged: a fresh start
        if key in self._pending:
            self._pending[key].add(event)
            return []
        if key in self._quiet_until:
            if len(self._pending) >= self.max_keys:
                raise Refused(503, "busy")
            p = _Pending(event)
            p.add(event)
            self._pending[key] = p
            return []
        if len(self._quiet_until) >= self.max_keys:
            raise Refused(503, "busy")
        self._quiet_until[key] = now + self.window
        p = _Pending(event)
        p.add(event)
        return [dispatch_of(p)]

    def due(self, now: float) -> list[Dispatch]:
        """The merged dispatches whose window has ended."""
        out = []
        for key, until in list(self._quiet_until.items()):
            if until > now:
                continue
            pending = self._pending.pop(key, None)
            if pending is None:
                del self._quiet_until[key]
            else:
                out.append(dispatch_of(pending))
                self._quiet_until[key] = now + self.window  # the merged one opens a window too
        return out

    def flush(self) -> list[Dispatch]:
        """Everything still pending (at shutdown)."""
        out = [dispatch_of(p) for p in self._pending.values()]
        self._pending.clear()
        self._quiet_until.clear()
        return out

    def next_due(self) -> float | None:
        pending = [self._quiet_until[k] for k in self._pending]
        return min(pending) if pending else None

    def _expire(self, now: float) -> None:
        if len(self._quiet_until) < self.max_keys:
            return
        for key, until in list(self._quiet_until.items()):
            if until <= now and key not in self._pending:
                del self._quiet_until[key]

    @property
    def pending(self) -> int:
        return len(self._pending)
