"""Several `regops reconcile` processes against one server, on sqlite and PostgreSQL stores.

What regops does (documented in docs/production-backends.md):
- A reconcile re-reads the registry right before its first write. When it moved
  since the plan (another reconcile is writing), a plan made for this run is made
  again, up to 3 times with a short backoff, applying only what is left; if the
  registry keeps moving the run is refused ("is another reconcile running?"). A saved
  plan (`--plan FILE`) is refused at once.
- So reconcilers started together converge with no error: each writes the same
  values (every write is idempotent, the alias-write race is retried) or re-plans.
- A reconcile started while another runs applies what is left alongside it, or
  re-plans, or refuses; for the same commit all three are harmless. Different
  commits must be serialized by the caller (the CI concurrency group).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from regops import api
from regops.adapters.mlflow.registry import MlflowRegistry
from regops.api import reconciling
from regops.errors import StalePlanError
from regops.settings import Settings
from tests.support.backends import client, registry_dump, regops, regops_process, write_state
from tests.support.proxy import FaultProxy
from tests.support.servers import MlflowServer, make_registry

pytestmark = pytest.mark.server

RECONCILERS = 3
MODELS = 2
VERSIONS = 4


def desired_text(prefix: str) -> str:
    """Per model: 8 changes (4 stages, 3 aliases, 1 description) from a fresh registry."""
    lines = ["apiVersion: regops/v1", "models:"]
    for i in range(MODELS):
        lines += [
            f"  {prefix}{i}:",
            "    description: reconciled concurrently",
            "    versions:",
            '      "1": {stage: Archived}',
            '      "2": {stage: Production, aliases: [champion]}',
            '      "3": {stage: Staging, aliases: [challenger]}',
            '      "4": {stage: Staging, aliases: [shadow]}',
        ]
    return "\n".join(lines) + "\n"


CHANGES_PER_MODEL = 8


def seed(uri: str, prefix: str, state_dir: Path) -> list[str]:
    names = [f"{prefix}{i}" for i in range(MODELS)]
    make_registry(uri, dict.fromkeys(names, VERSIONS))
    write_state(state_dir, desired_text(prefix))
    return names


def converged(uri: str, names: list[str]) -> None:
    for name, m in registry_dump(uri, names).items():
        stages = [m["versions"][v]["stage"] for v in "1234"]
        assert stages == ["Archived", "Production", "Staging", "Staging"], name
        assert m["aliases"] == {"champion": "2", "challenger": "3", "shadow": "4"}, name
        assert m["description"] == "reconciled concurrently", name


def result_of(stdout: str) -> dict[str, Any]:
    """The reconcile's result from its stdout alone (the JSON document, nothing else:
    warnings such as "restored lost audit stamps" go to stderr, when a race makes them)."""
    doc = json.loads(stdout)
    return doc["result"] or {"summary": {"applied": 0, "failed": 0, "skipped": 0}, "outcomes": []}


@pytest.fixture(params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest) -> MlflowServer:
    """The session's sqlite-backed server, or the package's PostgreSQL-backed one."""
    name = "mlflow_server" if request.param == "sqlite" else "pg_server"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


def test_reconcilers_started_together_converge_without_errors(
    server: MlflowServer, state_dir: Path, request: pytest.FixtureRequest
) -> None:
    prefix = f"Conc{request.node.callspec.id.capitalize()}"
    names = seed(server.url, prefix, state_dir)
    procs = [
        regops_process(server.url, state_dir, "reconcile", "--format", "json")
        for _ in range(RECONCILERS)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]

    results = []
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, (out + err)[-3000:]
        results.append(result_of(out))
    assert all(r["summary"]["failed"] == 0 for r in results)
    assert all(r["summary"]["applied"] <= MODELS * CHANGES_PER_MODEL for r in results)
    converged(server.url, names)
    assert regops(server.url, state_dir, "plan", "--detailed-exitcode").exit_code == 0


def test_second_reconcile_midway_applies_the_rest_alongside(
    mlflow_server: MlflowServer, state_dir: Path
) -> None:
    names = seed(mlflow_server.url, "Midway", state_dir)
    total = MODELS * CHANGES_PER_MODEL
    # The first reconciler goes through a proxy that slows each write down, so the
    # second one starts while it is a third of the way through.
    proxy = FaultProxy(mlflow_server.url, delay_writes=0.05).start()
    try:
        first = regops_process(proxy.url, state_dir, "reconcile", "--format", "json")
        deadline = time.monotonic() + 120
        while len(proxy.landed()) < 8 and time.monotonic() < deadline:
            assert first.poll() is None, "".join(first.communicate())[-3000:]
            time.sleep(0.02)  # polling the proxy's count of landed writes
        assert len(proxy.landed()) >= 8, "the first reconcile wrote nothing within 120 s"
        second = regops_process(mlflow_server.url, state_dir, "reconcile", "--format", "json")
        out_first, err_first = first.communicate(timeout=300)
        out_second, err_second = second.communicate(timeout=300)
    finally:
        proxy.stop()

    assert first.returncode == 0, (out_first + err_first)[-3000:]
    assert second.returncode == 0, (out_second + err_second)[-3000:]
    a, b = result_of(out_first), result_of(out_second)
    assert a["summary"] == {"applied": total, "failed": 0, "skipped": 0}
    # the second planned from what it read: what had landed was no longer a change
    assert b["summary"]["applied"] < total
    assert b["summary"]["failed"] == 0
    converged(mlflow_server.url, names)
    assert regops(mlflow_server.url, state_dir, "plan", "--detailed-exitcode").exit_code == 0


class _BusyRegistry(MlflowRegistry):
    """A real registry with another writer at work: each read is followed by a write."""

    def __init__(self, uri: str, model: str, busy_reads: int) -> None:
        super().__init__(uri)
        self.model, self.busy_reads, self.reads = model, busy_reads, 0

    def snapshot(self, names: Any = None) -> Any:
        live = super().snapshot(names)
        self.reads += 1
        if self.reads <= self.busy_reads:
            client(self.uri).set_registered_model_tag(self.model, "other.writer", str(self.reads))
        return live


@pytest.mark.parametrize(
    ("busy_reads", "refused"), [(2, False), (100, True)], ids=["settles", "busy"]
)
def test_a_registry_moving_under_a_reconcile_is_replanned_then_refused(
    sqlite_uri: str,
    state_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    busy_reads: int,
    refused: bool,
) -> None:
    make_registry(sqlite_uri, {"Busy": 2})
    write_state(
        state_dir,
        "apiVersion: regops/v1\nmodels:\n  Busy:\n    versions:\n"
        '      "1": {stage: Staging, aliases: [champion]}\n',
    )
    busy = _BusyRegistry(sqlite_uri, "Busy", busy_reads)
    monkeypatch.setattr(reconciling, "open_registry", lambda _s, **_kw: busy)
    settings = Settings(tracking_uri_flag=sqlite_uri, state_dir=Path("registry-state"))
    if refused:
        with pytest.raises(StalePlanError, match="is another reconcile running"):
            api.run_reconcile(settings, sleep=lambda _s: None)
        assert busy.reads == 1 + 2 * (api.STALE_REPLANS + 1) - 1  # plans + checks
        assert client(sqlite_uri).get_registered_model("Busy").aliases == {}  # nothing written
    else:
        result = api.run_reconcile(settings, sleep=lambda _s: None)
        assert result.ok
        assert [o.status for o in result.outcomes] == ["applied", "applied"]
        assert regops(sqlite_uri, state_dir, "plan", "--detailed-exitcode").exit_code == 0
