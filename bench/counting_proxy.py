"""A counting reverse proxy on 127.0.0.1: forwards every request to one upstream
HTTP server and counts requests per endpoint (method + path, query ignored).

Counting at the HTTP layer sees every call a client makes, whatever library or
code path made it. Standard library only; one keep-alive upstream connection per
proxy thread so the proxy itself adds little latency.

`latency_ms` adds a fixed delay to every forwarded call (slept before forwarding,
concurrent calls sleep side by side): a local server then answers like a remote one.
Answers with an HTTP error status are counted per status (`Calls.errors`).
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

API_PREFIX = "/api/2.0/mlflow/"
# Headers that describe one hop, not the message; never forwarded as they are.
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
    "host",
}


class Calls(Counter[str]):
    """Requests per endpoint; `seconds`: time in upstream round-trips per endpoint;
    `writes`: every non-GET request in order, as (endpoint, JSON body); `errors`: answers
    with status >= 400, per status; `spans`: each round-trip's (start, end)."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: Counter[str] = Counter()
        self.writes: list[tuple[str, Any]] = []
        self.errors: Counter[int] = Counter()
        self.spans: list[tuple[float, float]] = []

    def time_in(self, keys: Collection[str] | None = None) -> float:
        """Seconds spent in calls to `keys` (None: all endpoints), summed over calls."""
        return float(sum(v for k, v in self.seconds.items() if keys is None or k in keys))

    def wall_in(self) -> float:
        """Seconds during which at least one call was in flight: calls side by side
        count once (time_in sums them)."""
        total, end = 0.0, float("-inf")
        for a, b in sorted(self.spans):
            if b > end:
                total += b - max(a, end)
                end = b
        return total


def endpoint(method: str, path: str) -> str:
    """`GET /api/2.0/mlflow/registered-models/search?x` -> `GET registered-models/search`."""
    path = path.split("?", 1)[0]
    if path.startswith(API_PREFIX):
        path = path[len(API_PREFIX) :]
    return f"{method} {path}"


class CountingProxy:
    """`with CountingProxy(upstream_url) as proxy:` then point clients at `proxy.url`."""

    def __init__(self, upstream: str, *, latency_ms: float = 0.0) -> None:
        parts = urlsplit(upstream)
        self.latency = latency_ms / 1000
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self._lock = threading.Lock()
        self._counts = Calls()
        self._local = threading.local()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # ---- counting ------------------------------------------------------------------
    def reset(self) -> None:
        with self._lock:
            self._counts = Calls()

    def counts(self) -> Calls:
        with self._lock:
            out = Calls()
            out.update(self._counts)
            out.seconds.update(self._counts.seconds)
            out.writes = list(self._counts.writes)
            out.errors.update(self._counts.errors)
            out.spans = list(self._counts.spans)
            return out

    @contextmanager
    def measure(self) -> Iterator[Calls]:
        """The requests made inside the block (filled in when it exits)."""
        out = Calls()
        before = self.counts()
        try:
            yield out
        finally:
            after = self.counts()
            out.update(after - before)
            out.seconds.update(after.seconds - before.seconds)
            out.writes = after.writes[len(before.writes) :]
            out.errors.update(after.errors - before.errors)
            out.spans = after.spans[len(before.spans) :]

    def _count(
        self, key: str, start: float, seconds: float, body: bytes | None, status: int
    ) -> None:
        with self._lock:
            self._counts[key] += 1
            self._counts.spans.append((start, start + seconds))
            if status >= 400:
                self._counts.errors[status] += 1
            self._counts.seconds[key] += seconds
            if not key.startswith(("GET ", "HEAD ")):
                try:
                    doc = json.loads(body) if body else None
                except ValueError:
                    doc = body
                self._counts.writes.append((key, doc))

    # ---- forwarding ----------------------------------------------------------------
    def _upstream(self, fresh: bool = False) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=120)
            conn.connect()
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._local.conn = conn
        return conn

    def _forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        for attempt in (1, 2):
            conn = self._upstream(fresh=attempt == 2)
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                return resp.status, resp.reason, resp.getheaders(), data
            except (http.client.HTTPException, ConnectionError):
                # A kept-alive upstream connection the server closed: reconnect once.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Without it, Nagle + delayed ACK add ~40 ms to every small response.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                if proxy.latency:
                    time.sleep(proxy.latency)  # before t0: `seconds` stays the server's time
                t0 = time.perf_counter()
                status = 502
                try:
                    status, reason, resp_headers, data = proxy._forward(
                        self.command, self.path, headers, body
                    )
                except OSError as exc:
                    self.send_error(502, f"upstream unreachable: {exc}")
                    return
                finally:
                    elapsed = time.perf_counter() - t0
                    proxy._count(endpoint(self.command, self.path), t0, elapsed, body, status)
                self.send_response(status, reason)
                for key, value in resp_headers:
                    if key.lower() not in HOP_BY_HOP and key.lower() not in ("server", "date"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = do_HEAD = _relay

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass  # quiet: the counts are the report

        return Handler

    # ---- lifecycle -----------------------------------------------------------------
    def __enter__(self) -> CountingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
