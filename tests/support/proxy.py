"""A reverse proxy in front of a real `mlflow server` that counts, slows and breaks writes.

Fault injection without mocks: the client talks HTTP to the proxy, the proxy to the
real server. At a chosen write the proxy can cut the connection before forwarding it
(the write never lands) or after the server answered (it landed, the answer is lost),
and from then on refuse every request until `revive()`: to the client this is a
server that died at that point. `on_write` lets a test do more at that moment (kill
the real server process).

A test that must act while a request is in flight (send a signal mid-run, start a second
reconciler) holds it there instead of racing a delay: with `hold_writes_after=N` every
write after the N-th, and with `hold_reads` every read, waits in the proxy until
`release()`; `held` is set once one waits (`proxy.held.wait()`), so the test acts at a
known point whatever the machine's load.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

WRITE_METHODS = ("POST", "PATCH", "DELETE", "PUT")
BEFORE, AFTER = "before", "after"  # where a write is cut: before it lands or after


@dataclass
class Write:
    method: str
    path: str
    body: bytes
    status: int | None = None  # the server's answer; None when it never got the request


@dataclass
class FaultProxy:
    upstream: str
    delay_writes: float = 0.0
    delay_reads: float = 0.0  # GET requests (a slow snapshot)
    cut_at: int | None = None  # the n-th write (1-based) is cut...
    cut_when: str = BEFORE  # ...before it lands or after
    cut_on: Callable[[Write], bool] | None = None  # or the first write this matches
    on_write: Callable[[int, Write], None] | None = None  # called at the cut
    hold_writes_after: int | None = None  # writes after the n-th wait for release()
    hold_reads: bool = False  # reads wait for release()
    held: threading.Event = field(default_factory=threading.Event)  # one is waiting
    _released: threading.Event = field(default_factory=threading.Event)
    writes: list[Write] = field(default_factory=list)
    requests: int = 0
    down: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: object) -> None:
                pass

            def _handle(self) -> None:
                proxy._relay(self)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def revive(self, upstream: str | None = None) -> None:
        """The server is back (maybe at a new address after a restart)."""
        with self._lock:
            self.upstream = upstream or self.upstream
            self.down = False
            self.cut_at = self.cut_on = None

    def release(self) -> None:
        """Let every held request (and every later one) through."""
        self._released.set()

    def landed(self) -> list[Write]:
        return [w for w in self.writes if w.status is not None and w.status < 400]

    # ---- relaying ------------------------------------------------------------------
    def _relay(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        with self._lock:
            self.requests += 1
            if self.down:
                return _cut(h)
            write: Write | None = None
            n = 0
            if h.command in WRITE_METHODS:
                write = Write(h.command, h.path, body)
                self.writes.append(write)
                n = len(self.writes)
            cutting = write is not None and (
                n == self.cut_at or (self.cut_on is not None and self.cut_on(write))
            )
            if cutting:
                self.down = True  # every later request is refused until revive()
            upstream = self.upstream
        if write is None:
            holding = self.hold_reads
        else:
            holding = self.hold_writes_after is not None and n > self.hold_writes_after
        if holding and not self._released.is_set():
            self.held.set()
            self._released.wait(timeout=120)  # a test that never releases fails, not hangs
        if write is not None and self.delay_writes:
            time.sleep(self.delay_writes)
        elif write is None and self.delay_reads:
            time.sleep(self.delay_reads)
        if cutting and self.cut_when == BEFORE:
            self._fire(n, write)
            return _cut(h)
        try:
            status, headers, data = _forward(upstream, h, body)
        except OSError:
            return _cut(h)
        if write is not None:
            write.status = status
        if cutting:  # it landed; the answer is lost
            self._fire(n, write)
            return _cut(h)
        h.send_response(status)
        for key, value in headers:
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                h.send_header(key, value)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
        return None

    def _fire(self, n: int, write: Write | None) -> None:
        if self.on_write is not None and write is not None:
            self.on_write(n, write)


def _forward(
    upstream: str, h: BaseHTTPRequestHandler, body: bytes
) -> tuple[int, list[tuple[str, str]], bytes]:
    target = urlsplit(upstream)
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
    try:
        headers = {k: v for k, v in h.headers.items() if k.lower() not in ("host", "connection")}
        conn.request(h.command, h.path, body=body or None, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.getheaders(), resp.read()
    finally:
        conn.close()


def _cut(h: BaseHTTPRequestHandler) -> None:
    """Drop the connection without an answer, as a dying server does."""
    h.close_connection = True
    with contextlib.suppress(OSError):
        h.connection.shutdown(socket.SHUT_RDWR)
