"""Benchmark: how long regops takes to give up on a registry that is not there.

Issue 9, class 1: `regops plan` against a refused port once took 992 s (regops' 4 tries
around MLflow's 7). Measured here, each command in a fresh process with the defaults a
user gets (no MLFLOW_HTTP_* variables set: regops fills its own, src/regops/tracking.py):

- a refused port (nothing listens): `plan`, `list-models`;
- a port that accepts connections and never answers: `plan`;
- `history` with an unreachable registry: it shows the git side and says the registry
  was not read (refused port, silent port); it tries the registry once.

For comparison, the silent-port `plan` also runs with the earlier default of 3 tries.

Each must fail (or, for history, fall back) within 30 s, naming the masked URI; the
password in the URI must never show. Run: .venv/bin/python bench/bench_failfast.py
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REGOPS = str(Path(sys.executable).with_name("regops"))
LIMIT_S = 30.0
SECRET = "hunter2"
STATE = 'apiVersion: regops/v1\nmodels:\n  M:\n    versions:\n      "1": {stage: Production}\n'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def run(args: list[str], cwd: Path, extra: dict[str, str] | None = None) -> tuple[int, str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_HTTP_REQUEST")}
    env.update(extra or {})
    env.pop("MLFLOW_TRACKING_URI", None)
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [REGOPS, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    return proc.returncode, proc.stdout + proc.stderr, time.perf_counter() - t0


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="regops-failfast-"))
    state = tmp / "registry-state"
    state.mkdir()
    (state / "m.yaml").write_text(STATE)
    git(tmp, "init", "-q")
    git(tmp, "-c", "user.name=bench", "-c", "user.email=b@e", "add", ".")
    git(tmp, "-c", "user.name=bench", "-c", "user.email=b@e", "commit", "-qm", "state")
    refused = f"http://alice:{SECRET}@127.0.0.1:{free_port()}"
    silent_sock = socket.socket()
    silent_sock.bind(("127.0.0.1", 0))
    silent_sock.listen(64)  # accepts (the kernel completes the handshake), never answers
    silent = f"http://alice:{SECRET}@127.0.0.1:{silent_sock.getsockname()[1]}"
    cases = [
        ("plan, refused port", ["plan", "--tracking-uri", refused], 1, "connection was refused"),
        ("list-models, refused port", ["list-models", "--tracking-uri", refused], 1, "refused"),
        ("plan, port that never answers", ["plan", "--tracking-uri", silent], 1, "no answer"),
        ("history, refused port", ["history", "--tracking-uri", refused], 0, "Registry: not read"),
        ("history, port that never answers", ["history", "--tracking-uri", silent], 0,
         "Registry: not read"),
    ]  # fmt: skip
    print(
        f"bench_failfast: regops against a registry that is not there, fresh process each, "
        f"default HTTP settings; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    print("-" * 100)
    print(f"{'case':40}{'exit':>6}{'wall':>10}  {'says':<40}")
    print("-" * 100)
    failures = []
    try:
        for label, args, want, says in cases:
            code, out, wall = run(args, tmp)
            masked = "http://***@127.0.0.1:" in out
            ok = code == want and says in out and SECRET not in out and masked and wall < LIMIT_S
            line = next((x for x in out.splitlines() if "127.0.0.1" in x), "")[:60]
            print(f"{label:40}{code:>6}{wall:>9.1f}s  {line}")
            if not ok:
                failures.append(f"{label}: exit {code}, {wall:.1f} s, output: {out[-400:]}")
        # For comparison, not a target: the earlier default of 3 tries (2 retries).
        code, out, wall = run(cases[2][1], tmp, {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2"})
        print(f"{'plan, never answers, 3 tries (earlier)':40}{code:>6}{wall:>9.1f}s")
    finally:
        silent_sock.close()
    print("-" * 100)
    for f in failures:
        print(f"[FAIL] {f}")
    if not failures:
        print(
            f"[PASS] every case ends within {LIMIT_S:.0f} s with exit 1 (history: 0, git side "
            "shown), naming the masked URI; the password never shows"
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
