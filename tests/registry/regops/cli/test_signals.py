"""Real signals to a real `regops reconcile` process, as CI cancellation, `timeout`,
Kubernetes (SIGTERM) and Ctrl-C (SIGINT) send them.

The process reconciles against a real `mlflow server` behind a proxy that slows every
write, so the signal arrives mid-run, after some writes landed. Wanted: it stops after
the write in flight and its stamp, prints the per-change report (what landed, what did
not), exits 143 / 130; every version that moved carries its `regops.audit` stamp saying
what it now holds; the next reconcile converges and the plan after it is empty.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from regops.core.audit import AUDIT_TAG
from tests.support.backends import registry_dump, regops, regops_process, write_state
from tests.support.proxy import FaultProxy
from tests.support.servers import MlflowServer, make_registry

pytestmark = pytest.mark.server

VERSIONS = 6
DELAY_S = 0.15  # per write: the run's 16 writes take ~2.5 s
# The signal comes while the 4th write is held in flight by the proxy, after the baseline
# record, version 1's stage and its stamp have landed: a known point, whatever the load.
SIGNAL_AFTER = 3


def state(name: str) -> str:
    """Every version moves to a stage; version 1 to Production with the champion alias.

    Plans set stages before aliases, so a signal mid-run finds version 1 moved and stamped
    but its alias not yet set: its stamp must say what it holds then, not what it would.
    """
    lines = ["apiVersion: regops/v1", "models:", f"  {name}:", "    versions:"]
    lines.append('      "1": {stage: Production, aliases: [champion]}')
    for v in range(2, VERSIONS + 1):
        lines.append(f'      "{v}": {{stage: Staging}}')
    return "\n".join(lines) + "\n"


def unstamped(upstream: str, name: str) -> list[str]:
    """Versions that moved (not in stage None any more, or hold an alias) without a stamp
    that says what they hold now."""
    model = registry_dump(upstream, [name])[name]
    out = []
    for v, mv in model["versions"].items():
        aliases = sorted(a for a, owner in model["aliases"].items() if owner == v)
        if mv["stage"] == "None" and not aliases:
            continue  # never touched
        stamp = json.loads(mv["tags"].get(AUDIT_TAG, "{}"))
        if stamp.get("stage") != mv["stage"] or stamp.get("aliases") != aliases:
            out.append(v)
    return out


@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"]
)
def test_a_signal_stops_after_the_write_in_flight_and_the_next_run_converges(
    mlflow_server: MlflowServer, state_dir: Path, sig: signal.Signals, code: int
) -> None:
    name = f"Signal_{sig.name}"
    make_registry(mlflow_server.url, {name: VERSIONS})
    write_state(state_dir, state(name))
    proxy = FaultProxy(mlflow_server.url, delay_writes=DELAY_S, hold_writes_after=SIGNAL_AFTER)
    proxy.start()
    try:
        proc = regops_process(proxy.url, state_dir, "reconcile")
        if not proxy.held.wait(timeout=120):
            proc.kill()
            raise AssertionError("".join(proc.communicate())[-3000:])
        proc.send_signal(sig)
        proxy.release()
        try:
            out = "".join(proc.communicate(timeout=30))  # stdout, then stderr
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        landed = len(proxy.landed())
    finally:
        proxy.stop()
    assert proc.returncode == code, out
    # The per-change report: what landed, what did not, and why.
    assert f"interrupted by {sig.name}" in out
    applied = [ln for ln in out.splitlines() if ln.lstrip().startswith("applied ")]
    skipped = [ln for ln in out.splitlines() if ln.lstrip().startswith("skipped ")]
    assert applied, out
    assert skipped, out
    assert all(f"not attempted: interrupted by {sig.name}" in ln for ln in skipped)
    assert f"Reconcile: {len(applied)} applied, 0 failed, {len(skipped)} skipped." in out
    assert "Traceback" not in out
    # Stopped soon after the signal: it did not run to the end. Every write that landed
    # is one the report accounts for (plus at most the baseline record and stamps).
    assert landed < 2 * VERSIONS + 3, (landed, out)
    assert any("alias champion" in ln for ln in skipped), out
    assert unstamped(mlflow_server.url, name) == []
    # The next run finishes the job; then the plan is empty.
    rerun = regops(mlflow_server.url, state_dir, "reconcile")
    assert rerun.exit_code == 0, rerun.output
    assert unstamped(mlflow_server.url, name) == []
    final = regops(mlflow_server.url, state_dir, "plan", "--detailed-exitcode")
    assert final.exit_code == 0, final.output


def test_sigterm_while_reading_exits_143_and_says_so(
    mlflow_server: MlflowServer, state_dir: Path
) -> None:
    """Before the first write (its first read held in flight): no write, a message, 143."""
    name = "Signal_early"
    make_registry(mlflow_server.url, {name: 2})
    write_state(state_dir, f'apiVersion: regops/v1\nmodels:\n  {name}:\n    versions:\n'
                           '      "1": {stage: Staging}\n')  # fmt: skip
    proxy = FaultProxy(mlflow_server.url, hold_reads=True).start()  # the first read waits
    try:
        proc = regops_process(proxy.url, state_dir, "reconcile")
        if not proxy.held.wait(timeout=120):
            proc.kill()
            raise AssertionError("".join(proc.communicate())[-3000:])
        proc.send_signal(signal.SIGTERM)
        proxy.release()
        out = "".join(proc.communicate(timeout=30))  # stdout, then stderr
    finally:
        proxy.stop()
    assert proc.returncode == 143, out
    assert "interrupted by SIGTERM (no registry write was in flight)" in out
    assert "Traceback" not in out
    assert proxy.writes == []
