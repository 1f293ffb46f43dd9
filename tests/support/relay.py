"""`regops relay` as a subprocess on 127.0.0.1, for tests and benches."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.support.paths import ROOT as REPO_ROOT
from tests.support.servers import free_port

SECRET = "whsec-relay-test-7f3a9c"  # noqa: S105 - a test secret: the tests look for it
TOKEN = "ghp_relaytesttoken0123456789"  # noqa: S105
REPO = "octo/registry"
WINDOW = 1.0
# What an `mlflow server` needs to deliver webhooks to a relay on 127.0.0.1 over http
# (MLflow allows only https and public addresses by default), with a short webhook cache.
LOOPBACK_WEBHOOKS_ENV = {
    "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
    "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
    "MLFLOW_WEBHOOK_CACHE_TTL": "1",
}


@dataclass
class RelayProc:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def logs(self) -> str:
        return self.log.read_text(errors="replace")


def start_relay(
    tmp: Path,
    api_url: str,
    window: float = WINDOW,
    port: int | None = None,
    repository: str = REPO,
) -> RelayProc:
    port = port or free_port()
    log = tmp / f"relay-{port}.log"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT / "src"),
        "REGOPS_WEBHOOK_SECRET": SECRET,
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_REPOSITORY": repository,
        "GITHUB_API_URL": api_url,
    }
    cmd = [sys.executable, "-m", "regops", "relay", "--listen", f"127.0.0.1:{port}"]
    cmd += ["--coalesce-seconds", str(window)]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                return RelayProc(url, proc, log)
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("relay did not answer /healthz: " + log.read_text())


def stop(relay: RelayProc) -> int:
    if relay.proc.poll() is None:
        relay.proc.send_signal(signal.SIGTERM)
    return relay.proc.wait(timeout=60)
