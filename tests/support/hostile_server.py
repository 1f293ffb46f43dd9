"""A hostile MLflow server: answers MLflow's REST read paths with whatever a test asks.

A small threaded HTTP (or HTTPS, with a certificate made for the test) server on
127.0.0.1, on a free port. Each endpoint under `/api/2.0/mlflow/` has a handler the test
sets (`server.on("registered-models/search", handler)`); a handler gets the request's
query parameters and returns an `Answer`: a status, a body, and how to send it (all at
once, or a byte at a time from some offset: a server that drips). Unset endpoints answer
an empty registry. Every request is recorded (path and query; for a POST, such as
runs/search, its JSON body) so a test can count pages.

Used by tests/unit/regops/adapters/mlflow/test_hostile_server.py: endless and looping
pages, drips, huge bodies, wrong JSON types, untrusted TLS, path prefixes.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

API = "/api/2.0/mlflow/"


@dataclass(frozen=True)
class Answer:
    """What the server sends: `drip` seconds between bytes from byte `drip_from` of the
    raw response (0: the status line and headers drip too)."""

    body: bytes = b"{}"
    status: int = 200
    drip: float = 0.0
    drip_from: int = 0
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)
    hang: bool = False  # accept the request and never answer

    @classmethod
    def json(cls, doc: Any, **kw: Any) -> Answer:
        return cls(body=json.dumps(doc).encode(), **kw)


Query = dict[str, list[str]]
Handler = Callable[[Query], Answer]


def empty(key: str) -> Handler:
    return lambda _q: Answer.json({key: []})


@dataclass
class HostileServer:
    """See the module docstring. Stop it with `stop()` (the fixture does)."""

    tls: tuple[Path, Path] | None = None  # (certificate, key) PEM files: serve HTTPS
    handlers: dict[str, Handler] = field(default_factory=dict)
    requests: list[tuple[str, Query]] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.on("registered-models/search", empty("registered_models"))
        self.on("model-versions/search", empty("model_versions"))
        server = self

        class Handle(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                parts = urlsplit(self.path)
                query = parse_qs(parts.query, keep_blank_values=True)
                server.requests.append((parts.path, query))
                endpoint = parts.path.split(API, 1)[1] if API in parts.path else ""
                handler = server.handlers.get(endpoint)
                answer = handler(query) if handler else Answer(b"no such endpoint", 404)
                server.send(self, answer)

            def do_POST(self) -> None:  # noqa: N802 - searches MLflow serves by POST only
                parts = urlsplit(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw or b"{}")
                server.requests.append((parts.path, body))  # the JSON body, for POSTs
                endpoint = parts.path.split(API, 1)[1] if API in parts.path else ""
                handler = server.handlers.get(endpoint)
                answer = handler(body) if handler else Answer(b"no such endpoint", 404)
                server.send(self, answer)

            def log_message(self, *_args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handle)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda *_a: None  # type: ignore[method-assign] # a client gave up
        scheme = "http"
        if self.tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def on(self, endpoint: str, handler: Handler) -> None:
        self.handlers[endpoint] = handler

    def hits(self, endpoint: str) -> int:
        return sum(1 for path, _ in self.requests if path.endswith(API + endpoint))

    def send(self, req: BaseHTTPRequestHandler, answer: Answer) -> None:
        if answer.hang:
            self.stopping.wait(600)
            return
        reason = "OK" if answer.status == 200 else "Error"
        head = [f"HTTP/1.1 {answer.status} {reason}", f"Content-Length: {len(answer.body)}"]
        head += [f"{k}: {v}" for k, v in answer.headers]
        raw = ("\r\n".join(head) + "\r\n\r\n").encode() + answer.body
        try:
            if not answer.drip:
                req.wfile.write(raw)
                return
            req.wfile.write(raw[: answer.drip_from])
            req.wfile.flush()
            for i in range(answer.drip_from, len(raw)):
                if self.stopping.wait(answer.drip):
                    return
                req.wfile.write(raw[i : i + 1])
                req.wfile.flush()
        except OSError:  # the client gave up: what a drip is for
            return

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def model(name: Any, **fields: Any) -> dict[str, Any]:
    """A registered model as MLflow's JSON shows it."""
    return {"name": name, "creation_timestamp": 1_700_000_000_000, **fields}


def version(name: Any, number: Any, **fields: Any) -> dict[str, Any]:
    """A model version as MLflow's JSON shows it."""
    doc = {
        "name": name,
        "version": number,
        "creation_timestamp": 1_700_000_000_000,
        "current_stage": "None",
        "source": f"s3://bucket/{name}/{number}",
        "run_id": "",
        "status": "READY",
    }
    return {**doc, **fields}


def registry(models: list[dict[str, Any]], versions: list[dict[str, Any]]) -> dict[str, Handler]:
    """Handlers answering one page of `models` and one of `versions`."""
    return {
        "registered-models/search": lambda _q: Answer.json({"registered_models": models}),
        "model-versions/search": lambda _q: Answer.json({"model_versions": versions}),
    }


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, signed by itself, and its key (PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "regops hostile test server")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "server.pem", directory / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def serving(tls: tuple[Path, Path] | None = None) -> Iterator[HostileServer]:
    """For a fixture: a server, stopped afterwards."""
    server = HostileServer(tls=tls)
    try:
        yield server
    finally:
        server.stop()
