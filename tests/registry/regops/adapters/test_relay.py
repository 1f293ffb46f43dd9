"""`regops relay` with real parts: a real `mlflow server` on a sqlite SQL store (allowed to
deliver to http on loopback), the relay as a subprocess on 127.0.0.1, and the fake GitHub
API recording the repository_dispatch events.

Deliveries the tests forge themselves are signed with MLflow's own signer
(mlflow.webhooks.delivery._generate_hmac_signature), so a relay that verified some other
way would fail here.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from mlflow import MlflowClient
from mlflow.webhooks.delivery import _generate_hmac_signature

from regops.cli import cli
from tests.support.fake_github import FakeGitHubServer
from tests.support.relay import (
    LOOPBACK_WEBHOOKS_ENV,
    REPO,
    SECRET,
    TOKEN,
    WINDOW,
    RelayProc,
    start_relay,
    stop,
)
from tests.support.servers import MlflowServer, free_port, start_mlflow_server

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def github() -> Iterator[FakeGitHubServer]:
    server = FakeGitHubServer(REPO)
    yield server
    server.close()


@pytest.fixture(scope="module")
def webhook_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """`mlflow server` on sqlite, allowed to deliver webhooks to http://127.0.0.1."""
    server = start_mlflow_server(
        tmp_path_factory.mktemp("hooks-server"),
        env={
            **LOOPBACK_WEBHOOKS_ENV,
            # urllib3 backoff 1, 2, 4, 8, 16 s: time enough to restart a killed relay
            "MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES": "6",
        },
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def relay(
    tmp_path_factory: pytest.TempPathFactory, github: FakeGitHubServer
) -> Iterator[RelayProc]:
    r = start_relay(tmp_path_factory.mktemp("relay"), github.proxy)
    yield r
    assert stop(r) == 0, r.logs()


def forge(
    body: dict[str, Any] | bytes,
    *,
    secret: str = SECRET,
    ts: int | None = None,
    delivery_id: str | None = None,
) -> tuple[bytes, dict[str, str]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    did = delivery_id or str(uuid.uuid4())
    stamp = str(int(time.time()) if ts is None else ts)
    sig = _generate_hmac_signature(secret, did, stamp, raw.decode("utf-8", "replace"))
    headers = {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": did,
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": sig,
    }
    return raw, headers


def alias_event(model: str, version: str = "1", alias: str = "champion") -> dict[str, Any]:
    return {
        "entity": "model_version_alias",
        "action": "created",
        "timestamp": "2026-01-01T00:00:00+00:00",
        "data": {"name": model, "alias": alias, "version": version},
    }


def dispatches_for(github: FakeGitHubServer, model: str) -> list[dict[str, Any]]:
    return [
        b for _t, b, _h in list(github.fake.dispatches) if b["client_payload"]["model"] == model
    ]


def wait_for(predicate: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out")


def test_out_of_band_alias_change_reaches_github_as_a_dispatch(
    webhook_server: MlflowServer, relay: RelayProc, github: FakeGitHubServer
) -> None:
    uri = webhook_server.url
    env = {"MLFLOW_TRACKING_URI": uri, "REGOPS_WEBHOOK_SECRET": SECRET}
    runner = CliRunner()
    first = runner.invoke(cli, ["webhooks", "install", "--url", f"{relay.url}/mlflow"], env=env)
    assert first.exit_code == 0, first.output
    assert "created" in first.output
    again = runner.invoke(
        cli, ["--format", "json", "webhooks", "install", "--url", f"{relay.url}/mlflow"], env=env
    )
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["action"] == "unchanged"
    listed = runner.invoke(cli, ["--format", "json", "webhooks", "list"], env=env)
    hooks = json.loads(listed.output)["webhooks"]
    assert [h["name"] for h in hooks] == ["regops-relay"]  # idempotent: one webhook
    assert "model_version_alias.created" in hooks[0]["events"]
    assert SECRET not in listed.output + first.output + again.output

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("Relay_Model")
    client.create_model_version("Relay_Model", source="s3://x/1", run_id=None)
    wait_for(lambda: dispatches_for(github, "Relay_Model"))  # model_version.created
    time.sleep(WINDOW + 0.5)  # out of the created event's window
    before = len(github.fake.dispatches)

    started = time.monotonic()
    client.set_registered_model_alias("Relay_Model", "champion", "1")  # outside git
    wait_for(
        lambda: any(
            b["event_type"] == "mlflow.model_version_alias.created"
            for _t, b, _h in github.fake.dispatches[before:]
        )
    )
    arrived = next(
        t
        for t, b, _h in github.fake.dispatches[before:]
        if b["event_type"] == "mlflow.model_version_alias.created"
    )
    latency = arrived - started
    print(f"\nevent-to-dispatch latency (alias set -> dispatch at GitHub): {latency * 1000:.0f} ms")
    body = next(
        b
        for _t, b, _h in github.fake.dispatches[before:]
        if b["event_type"] == "mlflow.model_version_alias.created"
    )
    p = body["client_payload"]
    assert (p["model"], p["version"], p["alias"]) == ("Relay_Model", "1", "champion")
    assert p["delivery_id"]
    headers = github.fake.dispatches[-1][2]
    assert headers["authorization"] == f"Bearer {TOKEN}"
    for _t, b, _h in github.fake.dispatches:
        assert SECRET not in json.dumps(b)
        assert TOKEN not in json.dumps(b)
    assert TOKEN not in relay.logs()
    assert SECRET not in relay.logs()

    before = len(github.fake.dispatches)
    client.set_model_version_tag("Relay_Model", "1", "validation_status", "passed")
    wait_for(lambda: len(github.fake.dispatches) > before)
    tag = github.fake.dispatches[before][1]
    assert tag["event_type"] == "mlflow.model_version_tag.set"
    assert (tag["client_payload"]["tag"], tag["client_payload"]["version"]) == (
        "validation_status",
        "1",
    )


@pytest.mark.parametrize(
    ("name", "make", "status"),
    [
        ("bad signature", lambda: forge(alias_event("Refused_A"), secret="not-the-secret"), 401),
        (
            "stale timestamp",
            lambda: forge(alias_event("Refused_B"), ts=int(time.time()) - 3600),
            401,
        ),
        (
            "future timestamp",
            lambda: forge(alias_event("Refused_C"), ts=int(time.time()) + 3600),
            401,
        ),
        ("malformed JSON", lambda: forge(b'{"entity": "model_version_alias", '), 400),
        ("not an object", lambda: forge(b"[1, 2, 3]"), 400),
        (
            "unknown event",
            lambda: forge({**alias_event("Refused_D"), "entity": "prompt_alias"}),
            400,
        ),
        (
            "stage event",
            lambda: forge({**alias_event("Refused_E"), "entity": "model_version_stage"}),
            400,
        ),
        ("oversize body", lambda: forge({**alias_event("Refused_F"), "pad": "x" * 300_000}), 413),
        (
            "no signature",
            lambda: (json.dumps(alias_event("Refused_G")).encode(), {}),
            401,
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_refused_deliveries_dispatch_nothing(
    relay: RelayProc, github: FakeGitHubServer, name: str, make: Any, status: int
) -> None:
    body, headers = make()
    before = len(github.fake.dispatches)
    r = requests.post(f"{relay.url}/mlflow", data=body, headers=headers, timeout=10)
    assert r.status_code == status, name
    assert len(r.content) < 64
    assert b"Refused_" not in r.content
    assert b"entity" not in r.content
    time.sleep(WINDOW + 0.3)
    assert len(github.fake.dispatches) == before
    assert not any(
        b["client_payload"]["model"].startswith("Refused_") for _t, b, _h in github.fake.dispatches
    )


def test_a_replayed_delivery_is_refused(relay: RelayProc, github: FakeGitHubServer) -> None:
    body, headers = forge(alias_event("Replay_Model"))
    first = requests.post(f"{relay.url}/mlflow", data=body, headers=headers, timeout=10)
    assert first.status_code == 202
    wait_for(lambda: dispatches_for(github, "Replay_Model"))
    again = requests.post(f"{relay.url}/mlflow", data=body, headers=headers, timeout=10)
    assert again.status_code == 409
    time.sleep(WINDOW + 0.3)
    assert len(dispatches_for(github, "Replay_Model")) == 1


def test_a_burst_is_coalesced_per_model_and_nothing_is_lost(
    relay: RelayProc, github: FakeGitHubServer
) -> None:
    n_events, n_models, seconds = 1000, 20, 10.0
    models = [f"Burst_{i:02d}" for i in range(n_models)]
    deliveries = [
        forge(alias_event(models[i % n_models], str(i // n_models + 1))) for i in range(n_events)
    ]
    session = requests.Session()
    statuses: list[int] = []
    started = time.monotonic()

    def send(i: int) -> int:
        # Paced: event i leaves at i * seconds / n_events.
        delay = started + i * seconds / n_events - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        body, headers = deliveries[i]
        return session.post(
            f"{relay.url}/mlflow", data=body, headers=headers, timeout=30
        ).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(send, range(n_events)))
    sent_in = time.monotonic() - started
    assert statuses.count(202) == n_events
    wait_for(
        lambda: (
            sum(
                sum(b["client_payload"]["events"] for b in dispatches_for(github, m))
                for m in models
            )
            == n_events
        ),
        timeout=60,
    )
    health = requests.get(f"{relay.url}/healthz", timeout=5).json()
    per_model = {m: dispatches_for(github, m) for m in models}
    total = sum(len(v) for v in per_model.values())
    windows = int(sent_in / WINDOW) + 2
    print(
        f"\nburst: {n_events} events for {n_models} models sent in {sent_in:.1f} s -> "
        f"{total} dispatches (window {WINDOW} s; at most {2 * windows} a model allowed); "
        f"relay remembers {health['remembered_ids']} delivery ids"
    )
    for m, got in per_model.items():
        assert got, m  # every model heard of
        assert sum(b["client_payload"]["events"] for b in got) == n_events // n_models
        assert len(got) <= windows + 1, (m, len(got))
        versions = {v for b in got for v in b["client_payload"]["versions"]}
        assert versions == {str(k) for k in range(1, n_events // n_models + 1)}
    # One dispatch a window a model at most: 20 models x ~11 windows, from 1,000 events.
    assert total <= n_models * (windows + 1) < n_events / 2


def test_sigterm_sends_what_is_pending_and_exits_zero(
    tmp_path: Path, github: FakeGitHubServer
) -> None:
    r = start_relay(tmp_path, github.proxy, window=30.0)  # a window that outlives the relay
    for v in ("1", "2", "3"):
        body, headers = forge(alias_event("Drain_Model", v))
        assert (
            requests.post(f"{r.url}/mlflow", data=body, headers=headers, timeout=10).status_code
            == 202
        )
    wait_for(lambda: dispatches_for(github, "Drain_Model"))  # the first, at once
    assert stop(r) == 0, r.logs()
    got = dispatches_for(github, "Drain_Model")
    assert [b["client_payload"]["events"] for b in got] == [1, 2]  # the rest, flushed on SIGTERM
    assert got[-1]["client_payload"]["versions"] == ["2", "3"]
    lines = [json.loads(line) for line in r.logs().splitlines() if line.startswith("{")]
    assert lines[-1]["event"] == "stopped"


def test_github_failures_are_retried_with_backoff(tmp_path: Path, github: FakeGitHubServer) -> None:
    r = start_relay(tmp_path, github.proxy)
    try:
        github.fake.dispatch_failures = 2
        body, headers = forge(alias_event("Retry_Model"))
        assert (
            requests.post(f"{r.url}/mlflow", data=body, headers=headers, timeout=10).status_code
            == 202
        )
        wait_for(lambda: dispatches_for(github, "Retry_Model"), timeout=30)
        assert len(dispatches_for(github, "Retry_Model")) == 1
        assert r.logs().count('"dispatch_retry"') == 2
    finally:
        github.fake.dispatch_failures = 0
        assert stop(r) == 0


def test_a_burst_through_mlflow_is_coalesced_and_counted(
    webhook_server: MlflowServer, relay: RelayProc, github: FakeGitHubServer
) -> None:
    """MLflow itself sends the burst: 100 alias moves on 5 models."""
    uri = webhook_server.url
    runner = CliRunner()
    env = {"MLFLOW_TRACKING_URI": uri, "REGOPS_WEBHOOK_SECRET": SECRET}
    url = f"{relay.url}/mlflow"
    assert runner.invoke(cli, ["webhooks", "install", "--url", url], env=env).exit_code == 0
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    models = [f"Real_Burst_{i}" for i in range(5)]
    for m in models:
        client.create_registered_model(m)
        for _ in range(2):
            client.create_model_version(m, source="s3://x/y", run_id=None)
    started = time.monotonic()
    for i in range(100):
        client.set_registered_model_alias(models[i % 5], "champion", str(1 + (i // 5) % 2))
    sent_in = time.monotonic() - started

    def alias_events(m: str) -> list[dict[str, Any]]:
        return [b for b in dispatches_for(github, m) if b["event_type"].endswith("alias.created")]

    wait_for(
        lambda: sum(b["client_payload"]["events"] for m in models for b in alias_events(m)) >= 100
    )
    time.sleep(WINDOW + 0.5)
    total = sum(len(alias_events(m)) for m in models)
    print(f"\nMLflow burst: 100 alias sets on 5 models in {sent_in:.1f} s -> {total} dispatches")
    for m in models:
        assert sum(b["client_payload"]["events"] for b in alias_events(m)) == 20, m
    assert total < 100


def test_what_mlflow_retries_after_a_relay_crash_is_dispatched_once(
    tmp_path: Path, webhook_server: MlflowServer
) -> None:
    github2 = FakeGitHubServer(REPO)
    port = free_port()
    r = start_relay(tmp_path, github2.proxy, port=port)
    try:
        uri = webhook_server.url
        env = {"MLFLOW_TRACKING_URI": uri, "REGOPS_WEBHOOK_SECRET": SECRET}
        args = ["webhooks", "install", "--name", "regops-relay-crash", "--url", f"{r.url}/mlflow"]
        assert CliRunner().invoke(cli, args, env=env).exit_code == 0
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.create_registered_model("Crash_Model")
        for _ in range(2):
            client.create_model_version("Crash_Model", source="s3://x/y", run_id=None)
        wait_for(lambda: dispatches_for(github2, "Crash_Model"))  # delivering works
        r.proc.kill()  # SIGKILL: no drain
        r.proc.wait()
        for i in range(10):  # MLflow's deliveries now fail and are retried with backoff
            client.set_registered_model_alias("Crash_Model", "champion", str(1 + i % 2))
        r = start_relay(tmp_path, github2.proxy, port=port)

        def alias_events() -> int:
            return sum(
                b["client_payload"]["events"]
                for b in dispatches_for(github2, "Crash_Model")
                if b["event_type"].endswith("alias.created")
            )

        wait_for(lambda: alias_events() >= 10, timeout=90)
        time.sleep(WINDOW + 3)
        assert alias_events() == 10  # each retried delivery once
    finally:
        assert stop(r) == 0
        github2.close()
