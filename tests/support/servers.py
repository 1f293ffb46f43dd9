"""Real MLflow servers and registries for tests and benchmarks (never a mock)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

# MLflow's HTTP client retries for minutes by default; tests want fast, clear failures.
FAST_HTTP_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_DISABLE_TELEMETRY": "true",  # no network here: telemetry lookups only cost time
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses every connection for as long as the block runs.

    The socket is bound and never listens: a connect gets ECONNREFUSED, and no server
    started meanwhile (another test's, another process's) can take the port, as it
    could a port that `free_port()` merely found free.
    """
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield int(held.getsockname()[1])


@dataclass
class MlflowServer:
    """A real `mlflow server` subprocess on 127.0.0.1."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    cmd: list[str]
    env: dict[str, str]

    def _signal(self, sig: signal.Signals) -> None:
        # `mlflow server` forks uvicorn/gunicorn workers: signal the whole group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def stop(self) -> None:
        self._signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """Die abruptly, as a crashed server would."""
        self._signal(signal.SIGKILL)
        self.proc.wait()

    def restart(self, timeout: float = 60) -> None:
        self.stop()
        self.proc = _spawn(self.cmd, self.log, self.env)
        wait_healthy(self.url, self.proc, self.log, timeout)


def _spawn(cmd: list[str], log: Path, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    fh = log.open("ab")
    return subprocess.Popen(
        cmd, stdout=fh, stderr=subprocess.STDOUT, env=dict(env), start_new_session=True
    )


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:  # noqa: S310
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(
        f"mlflow server did not answer /health in {timeout}s: {log.read_text()[-3000:]}"
    )


class PortTaken(RuntimeError):
    """The server could not bind its port: someone took it after `free_port()` chose it."""


def _port_taken(proc: subprocess.Popen[bytes], log: Path, since: int) -> bool:
    """Whether the server died because its port was in use (its own log says so)."""
    if proc.poll() is None:
        return False
    with log.open("rb") as fh:
        fh.seek(since)
        said = fh.read().decode(errors="replace").lower()
    return "address already in use" in said or "errno 98" in said


def _check_it_is_ours(
    url: str, proc: subprocess.Popen[bytes], log: Path, since: int, timeout: float
) -> None:
    """Something answered /health at `url`: make sure it is this server, not another that
    took the port first while this one was still starting (it then dies failing to bind).
    Once it listens, the server's log names the URL (uvicorn: "running on", gunicorn:
    "Listening at:", waitress: "Serving on")."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with log.open("rb") as fh:
            fh.seek(since)
            if url.encode() in fh.read():
                return
        if proc.poll() is not None:
            if _port_taken(proc, log, since):
                raise PortTaken(f"{url}: the port was taken before mlflow server bound it")
            raise RuntimeError(f"mlflow server exited: {log.read_text()[-3000:]}")
        time.sleep(0.2)
    raise RuntimeError(
        f"something answers {url}/health but mlflow server's log never said it listens"
        f" there: {log.read_text()[-3000:]}"
    )


def start_mlflow_server(
    workdir: Path,
    *,
    backend_uri: str | None = None,
    extra_args: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    timeout: float = 90,
    attempts: int = 4,
) -> MlflowServer:
    """Start `mlflow server` on a free port; if another process takes that port before the
    server binds it (free_port() only knew it was free then), start again on a new one."""
    workdir.mkdir(parents=True, exist_ok=True)
    backend = backend_uri or f"sqlite:///{workdir / 'server.db'}"
    # No background job runners: they fork ~7 large processes and slow startup here.
    full_env = {
        **os.environ,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        **(env or {}),
    }
    full_env.pop("MLFLOW_TRACKING_URI", None)
    log = workdir / "server.log"
    for attempt in range(1, attempts + 1):
        port = free_port()
        cmd = [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            backend,
            "--default-artifact-root",
            str(workdir / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            *extra_args,
        ]
        since = log.stat().st_size if log.exists() else 0
        proc = _spawn(cmd, log, full_env)
        url = f"http://127.0.0.1:{port}"
        try:
            started = time.monotonic()
            wait_healthy(url, proc, log, timeout)
            _check_it_is_ours(url, proc, log, since, timeout - (time.monotonic() - started))
        except Exception:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            if attempt < attempts and _port_taken(proc, log, since):
                continue  # a race lost, not a broken server: try another port
            raise
        return MlflowServer(url, proc, log, cmd, full_env)
    raise AssertionError("unreachable: the last attempt returns or raises")


def make_registry(
    uri: str, models: Mapping[str, int], *, stage_of: Mapping[tuple[str, str], str] | None = None
) -> None:
    """Create registered models with N versions each (no artifacts needed) via MlflowClient."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        for name, n in models.items():
            client.create_registered_model(name)
            for i in range(n):
                client.create_model_version(
                    name, source=f"s3://regops-test/models/{name}/{i + 1}", run_id=None
                )
        for (name, version), stage in (stage_of or {}).items():
            client.transition_model_version_stage(name, version, stage)
