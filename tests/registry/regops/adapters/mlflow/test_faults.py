"""The server dies at random points of a reconcile; every re-run converges, nothing twice.

A proxy in front of a real server cuts the connection at the n-th write, before the
write reaches the server or after it landed (its answer lost), and refuses every
request after that, as a dead server does. One case kills the real server process
too and restarts it. After each fault: the first run reports exactly what happened
(exit 1: one failure, the rest skipped), a re-run converges (exit 0, then an empty
plan), no change is written twice, and every changed version carries all its audit
stamps.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from regops.core.audit import AUDIT_TAG
from tests.support.backends import registry_dump, regops, write_state
from tests.support.proxy import AFTER, BEFORE, FaultProxy, Write
from tests.support.servers import MlflowServer, make_registry, start_mlflow_server

pytestmark = pytest.mark.server

STAMP_FIELDS = {"commit", "at", "actor", "state_file", "stage", "aliases"}
STATE = """\
apiVersion: regops/v1
models:
  {name}:
    description: survives faults
    versions:
      "1": {{stage: Archived}}
      "2": {{stage: Production, aliases: [champion]}}
      "3": {{stage: Staging, aliases: [challenger]}}
"""
CHANGES = 6  # 3 stages, 2 aliases, 1 description
# Writes of a clean run: 1 baseline record (the model was never reconciled), 6 changes,
# 1 stamp on each of the 3 changed versions, 1 record.
WRITES = 1 + CHANGES + 3 + 1
# Change writes, as (method, REST path): stamps and the record are tags, not changes.
CHANGE_PATHS = (
    "/model-versions/transition-stage",
    "/registered-models/alias",
    "/registered-models/update",
)
# Cut points: a seeded draw over the whole run, both ways, plus the first and last write.
_rng = random.Random(6)
POINTS = sorted(
    {(1, BEFORE), (WRITES, AFTER)}
    | {(_rng.randint(2, WRITES - 1), _rng.choice([BEFORE, AFTER])) for _ in range(5)}
)


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """regops' own retry backoff (0.5 s, 1 s, 2 s) against a dead server only costs time."""
    monkeypatch.setenv("REGOPS_RETRY_DELAY", "0")


def change_writes(writes: list[Write]) -> list[tuple[str, str, bytes]]:
    """The change writes that reached the server and succeeded."""
    return [
        (w.method, w.path.split("?")[0], w.body)
        for w in writes
        if w.status is not None and w.status < 400 and w.path.split("?")[0].endswith(CHANGE_PATHS)
    ]


def run_with_fault(
    upstream: MlflowServer, proxy: FaultProxy, name: str, state_dir: Path
) -> tuple[dict[str, object], str]:
    """Reconcile through `proxy` until it cuts; return the first run's result and output."""
    first = regops(proxy.url, state_dir, "reconcile", "--format", "json")
    doc = json.loads(first.stdout) if first.stdout.strip() else {}  # stdout: the document only
    return doc, first.output


def assert_converged(upstream: str, proxy: FaultProxy, name: str, state_dir: Path) -> None:
    """The re-run succeeds, the plan is then empty, and no change was written twice."""
    rerun = regops(proxy.url, state_dir, "reconcile")
    assert rerun.exit_code == 0, rerun.output
    assert regops(upstream, state_dir, "plan", "--detailed-exitcode").exit_code == 0
    landed = change_writes(proxy.writes)
    assert len(landed) == len(set(landed)), f"a change was written twice: {landed}"
    assert len(landed) == CHANGES


def archiving(write: Write) -> bool:
    if not write.path.startswith("/api/2.0/mlflow/model-versions/transition-stage"):
        return False
    return bool(json.loads(write.body or b"{}").get("stage") == "Archived")


def unstamped(upstream: str, name: str) -> dict[str, list[str]]:
    """Changed versions whose audit stamp is missing, or does not show what they now hold."""
    model = registry_dump(upstream, [name])[name]
    out = {}
    for v in "123":
        stamp = json.loads(model["versions"][v]["tags"].get(AUDIT_TAG, "{}"))
        holds = {
            "stage": model["versions"][v]["stage"],
            "aliases": sorted(a for a, owner in model["aliases"].items() if owner == v),
        }
        missing = sorted(STAMP_FIELDS - set(stamp))
        wrong = sorted(k for k, want in holds.items() if k in stamp and stamp[k] != want)
        if missing or wrong:
            out[v] = missing + wrong
    return out


@pytest.mark.parametrize(("cut_at", "when"), POINTS, ids=[f"write{n}-{w}" for n, w in POINTS])
def test_cut_at_a_random_write_then_rerun_converges(
    mlflow_server: MlflowServer, state_dir: Path, cut_at: int, when: str
) -> None:
    name = f"Fault{cut_at}{when.capitalize()}"
    make_registry(mlflow_server.url, {name: 3})
    write_state(state_dir, STATE.format(name=name))
    proxy = FaultProxy(mlflow_server.url, cut_at=cut_at, cut_when=when).start()
    try:
        doc, output = run_with_fault(mlflow_server, proxy, name, state_dir)
        result = doc.get("result") if doc else None
        if result is not None and not result["ok"]:
            statuses = [o["status"] for o in result["outcomes"]]
            assert statuses.count("failed") == 1, output
            after = statuses[statuses.index("failed") + 1 :]
            assert set(after) <= {"skipped"}, output
        proxy.revive()
        assert_converged(mlflow_server.url, proxy, name, state_dir)
    finally:
        proxy.stop()
    assert unstamped(mlflow_server.url, name) == {}


@pytest.fixture
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    server = start_mlflow_server(tmp_path_factory.mktemp("fault-server"))
    yield server
    server.stop()


def test_server_process_killed_after_a_write_landed(
    own_server: MlflowServer, state_dir: Path
) -> None:
    """SIGKILL the real server right after it committed a change, before the client hears."""
    name = "FaultKilled"
    make_registry(own_server.url, {name: 3})
    write_state(state_dir, STATE.format(name=name))
    proxy = FaultProxy(
        own_server.url, cut_at=3, cut_when=AFTER, on_write=lambda _n, _w: own_server.kill()
    ).start()
    try:
        doc, output = run_with_fault(own_server, proxy, name, state_dir)
        statuses = [o["status"] for o in doc["result"]["outcomes"]]
        assert statuses.count("failed") == 1, output
        own_server.restart()
        proxy.revive()
        assert_converged(own_server.url, proxy, name, state_dir)
    finally:
        proxy.stop()


def test_a_change_that_landed_unstamped_gets_its_stamps_on_rerun(
    mlflow_server: MlflowServer, state_dir: Path
) -> None:
    name = "FaultUnstamped"
    make_registry(mlflow_server.url, {name: 3})
    write_state(state_dir, STATE.format(name=name))
    # Archiving version 1 lands, its answer is lost: the client cannot know it landed.
    proxy = FaultProxy(mlflow_server.url, cut_when=AFTER, cut_on=archiving).start()
    try:
        run_with_fault(mlflow_server, proxy, name, state_dir)
        assert unstamped(mlflow_server.url, name) == {
            "1": ["actor", "aliases", "at", "commit", "stage", "state_file"]
        }
        proxy.revive()
        # The plan sees version 1 moved since the record without a stamp saying so.
        pending = regops(proxy.url, state_dir, "plan", "--format", "json")
        assert json.loads(pending.stdout)["restamps"] == [[name, "1"]], pending.output
        assert_converged(mlflow_server.url, proxy, name, state_dir)
    finally:
        proxy.stop()
    assert unstamped(mlflow_server.url, name) == {}
