"""tests/support/servers.py's own promise: the server a test starts is that test's server."""

from __future__ import annotations

import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support import servers


class _HealthOnly(BaseHTTPRequestHandler):
    """Answers /health as an MLflow server does, and nothing else."""

    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.server
def test_a_port_taken_before_the_server_binds_it_is_retried_on_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worst case of the race: what took the port answers /health too (as another
    # test's mlflow server would), so only the server's own log tells the two apart.
    impostor = ThreadingHTTPServer(("127.0.0.1", 0), _HealthOnly)
    threading.Thread(target=impostor.serve_forever, daemon=True).start()
    taken = int(impostor.server_address[1])
    first = iter([taken])
    real_free_port = servers.free_port
    monkeypatch.setattr(servers, "free_port", lambda: next(first, 0) or real_free_port())
    try:
        server = servers.start_mlflow_server(tmp_path)
    finally:
        impostor.shutdown()
        impostor.server_close()
    try:
        assert server.url != f"http://127.0.0.1:{taken}"
        assert server.proc.poll() is None
        assert "address already in use" in server.log.read_text().lower()  # the lost race
        # The server returned is MLflow: it answers the registry API (the impostor 404s).
        search = f"{server.url}/api/2.0/mlflow/registered-models/search?max_results=1"
        with urllib.request.urlopen(search, timeout=10) as answer:  # noqa: S310
            assert answer.status == 200
            assert isinstance(json.loads(answer.read()), dict)
    finally:
        server.stop()
