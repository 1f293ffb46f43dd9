"""Benchmark: event-to-dispatch latency of `regops relay`, and what a burst costs.

Real parts on 127.0.0.1: an `mlflow server` (sqlite store, allowed to deliver webhooks
over http to loopback), `regops relay` as a subprocess, the fake GitHub API of the
tests recording each repository_dispatch with its arrival time.

- latency: N out-of-band alias moves (MlflowClient.set_registered_model_alias), each
  timed from the call to the dispatch arriving at the fake GitHub (MLflow's write, its
  asynchronous delivery, the relay's checks, the GitHub call); one at a time, each
  outside the previous one's coalescing window. Printed: min, median, p95, max, beside
  the scheduled drift check's interval (6 h).
- burst: E signed deliveries (MLflow's signer) for M models, paced over S seconds,
  straight to the relay: dispatches sent, events counted in them, relay RSS before and
  after (bounded memory).

Run: .venv/bin/python bench/bench_relay.py [--moves 20] [--events 1000] [--models 20] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.webhooks.delivery import _generate_hmac_signature  # noqa: E402
from tests.support.fake_github import FakeGitHubServer  # noqa: E402
from tests.support.servers import free_port, start_mlflow_server  # noqa: E402

SECRET = "bench-webhook-secret"
WINDOW = 1.0


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def start_relay(tmp: Path, api: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "REGOPS_WEBHOOK_SECRET": SECRET,
        "GITHUB_TOKEN": "bench-token",
        "GITHUB_REPOSITORY": "bench/registry",
        "GITHUB_API_URL": api,
    }
    cmd = [sys.executable, "-m", "regops", "relay", "--listen", f"127.0.0.1:{port}"]
    cmd += ["--coalesce-seconds", str(WINDOW)]
    log = (tmp / "relay.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except requests.ConnectionError:
            time.sleep(0.1)
    raise SystemExit("relay did not start")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--moves", type=int, default=20)
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--models", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=10.0)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-relay-"))
    github = FakeGitHubServer("bench/registry")
    server = start_mlflow_server(
        tmp / "server",
        env={
            "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
            "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
            "MLFLOW_WEBHOOK_CACHE_TTL": "1",
        },
    )
    relay, url = start_relay(tmp, github.proxy)
    try:
        env = {**os.environ, "MLFLOW_TRACKING_URI": server.url, "REGOPS_WEBHOOK_SECRET": SECRET}
        env["PYTHONPATH"] = str(ROOT / "src")
        subprocess.run(
            [sys.executable, "-m", "regops", "webhooks", "install", "--url", f"{url}/mlflow"],
            env=env,
            check=True,
            capture_output=True,
        )
        client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
        client.create_registered_model("Bench_Model")
        for _ in range(2):
            client.create_model_version("Bench_Model", source="s3://b/m", run_id=None)
        time.sleep(2.5)  # webhook cache, and the created events' window
        latencies = []
        for i in range(a.moves):
            before = len(github.fake.dispatches)
            t0 = time.monotonic()
            client.set_registered_model_alias("Bench_Model", "champion", str(1 + i % 2))
            while True:
                hits = [
                    t
                    for t, b, _h in github.fake.dispatches[before:]
                    if b["event_type"] == "mlflow.model_version_alias.created"
                ]
                if hits:
                    latencies.append(hits[0] - t0)
                    break
                if time.monotonic() - t0 > 60:
                    raise SystemExit("no dispatch within 60 s")
                time.sleep(0.005)
            time.sleep(WINDOW + 0.2)
        ms = sorted(x * 1000 for x in latencies)
        p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
        print(
            f"event-to-dispatch latency over {len(ms)} alias moves: min {ms[0]:.0f} ms, "
            f"median {statistics.median(ms):.0f} ms, p95 {p95:.0f} ms, max {ms[-1]:.0f} ms "
            f"(scheduled drift check: every 6 h = {6 * 3600 * 1000:,} ms)"
        )

        # ---- burst ------------------------------------------------------------------
        rss0 = rss_kib(relay.pid)
        models = [f"Burst_{i:03d}" for i in range(a.models)]
        before = len(github.fake.dispatches)
        bodies = []
        for i in range(a.events):
            raw = json.dumps(
                {
                    "entity": "model_version_alias",
                    "action": "created",
                    "timestamp": "2026-01-01T00:00:00+00:00",
                    "data": {"name": models[i % a.models], "alias": "champion", "version": "1"},
                }
            )
            did, ts = str(uuid.uuid4()), str(int(time.time()))
            bodies.append(
                (
                    raw.encode(),
                    {
                        "Content-Type": "application/json",
                        "X-MLflow-Delivery-Id": did,
                        "X-MLflow-Timestamp": ts,
                        "X-MLflow-Signature": _generate_hmac_signature(SECRET, did, ts, raw),
                    },
                )
            )
        session = requests.Session()
        start = time.monotonic()

        def send(i: int) -> int:
            delay = start + i * a.seconds / a.events - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            body, headers = bodies[i]
            return session.post(f"{url}/mlflow", data=body, headers=headers, timeout=30).status_code

        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(send, range(a.events)))
        sent_in = time.monotonic() - start
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            got = github.fake.dispatches[before:]
            if sum(b["client_payload"]["events"] for _t, b, _h in got) >= a.events:
                break
            time.sleep(0.05)
        got = github.fake.dispatches[before:]
        counted = sum(b["client_payload"]["events"] for _t, b, _h in got)
        print(
            f"burst: {a.events} events for {a.models} models in {sent_in:.1f} s "
            f"({codes.count(202)} accepted) -> {len(got)} dispatches carrying {counted} events; "
            f"relay RSS {rss0 / 1024:.1f} MiB before, {rss_kib(relay.pid) / 1024:.1f} MiB after"
        )
    finally:
        relay.send_signal(signal.SIGTERM)
        code = relay.wait(timeout=60)
        print(f"relay stopped on SIGTERM with exit code {code}")
        server.stop()
        github.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
