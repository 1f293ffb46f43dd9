"""`regops relay`: MLflow webhooks in, GitHub `repository_dispatch` out.

The stack is Starlette (routing, request streaming) on uvicorn (the ASGI server, its
graceful SIGTERM handling): both are maintained by the encode team, both are already
installed with mlflow-skinny (MLflow's own server runs on them), so the `relay` extra
costs no new package. The rules (signature, replays, which events, coalescing) are
pure and live in regops.core.webhooks; this module does the I/O around them.

Shape of the service:
- `POST /mlflow`: bounded read, verify, parse, de-duplicate, hand to the Throttle;
  answers 202 before GitHub is called (MLflow's sender must not wait on GitHub).
- A dispatcher task sends what the Throttle releases, a few at a time, each with a
  bounded exponential backoff (429, 5xx and network errors are retried; any other 4xx
  is final, logged and dropped).
- `GET /healthz`: 200 with counters while serving; 503 once shutdown began.
- SIGTERM/SIGINT: stop accepting, flush what is pending, finish in-flight sends within
  `drain_seconds`, exit 0.
- Logs: one JSON object a line on stderr, every value masked (tokens, secrets).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from regops.adapters.tracking import mask_secrets, mask_values
from regops.core import webhooks
from regops.core.webhooks import Dispatch, Refused
from regops.errors import UsageError

DEFAULT_GITHUB_API = "https://api.github.com"
_REPOSITORY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


@dataclass(frozen=True)
class RelayConfig:
    secret: str
    token: str
    repository: str
    api_url: str = DEFAULT_GITHUB_API
    host: str = "127.0.0.1"
    port: int = 8080
    window: float = 2.0
    tolerance: int = webhooks.DEFAULT_TOLERANCE
    max_body: int = webhooks.DEFAULT_MAX_BODY
    attempts: int = 6  # one try and five retries: 0.5 + 1 + 2 + 4 + 8 s of backoff at most
    backoff: float = 0.5
    backoff_max: float = 8.0
    timeout: float = 10.0
    senders: int = 4
    drain_seconds: float = 20.0

    @classmethod
    def from_env(cls, env: Mapping[str, str], listen: str, **overrides: Any) -> RelayConfig:
        """Settings from the environment (REGOPS_WEBHOOK_SECRET, GITHUB_TOKEN,
        GITHUB_REPOSITORY, GITHUB_API_URL) and `--listen HOST:PORT`."""
        missing = [
            k
            for k in ("REGOPS_WEBHOOK_SECRET", "GITHUB_TOKEN", "GITHUB_REPOSITORY")
            if not env.get(k, "").strip()
        ]
        if missing:
            raise UsageError("regops relay needs " + ", ".join(missing) + " in the environment")
        repo = env["GITHUB_REPOSITORY"].strip()
        owner, slash, name = repo.partition("/")
        if not (slash and owner and name and set(owner + name) <= _REPOSITORY_CHARS):
            raise UsageError("GITHUB_REPOSITORY must be OWNER/NAME")
        api_url = (env.get("GITHUB_API_URL") or DEFAULT_GITHUB_API).strip().rstrip("/")
        if not api_url.startswith(("https://", "http://")):
            raise UsageError("GITHUB_API_URL must be an http(s) URL")
        host, colon, port = listen.rpartition(":")
        if not colon or not port.isdigit() or not 0 < int(port) < 65536:
            raise UsageError("--listen must be HOST:PORT (e.g. 127.0.0.1:8080)")
        return cls(
            secret=env["REGOPS_WEBHOOK_SECRET"],
            token=env["GITHUB_TOKEN"].strip(),
            repository=repo,
            api_url=api_url,
            host=host.strip("[]") or "127.0.0.1",
            port=int(port),
            **overrides,
        )


class JsonLog:
    """Structured logs: one JSON object a line, secrets masked."""

    def __init__(self, secrets: list[str], stream: Any = None) -> None:
        self.secrets = [s for s in secrets if s]
        self.stream = stream or sys.stderr

    def __call__(self, event: str, **fields: Any) -> None:
        record = {"time": round(time.time(), 3), "event": event, **fields}
        line = json.dumps(record, default=str, ensure_ascii=True)
        line = mask_values(mask_secrets(line), self.secrets)
        with contextlib.suppress(Exception):  # a closed stderr must not stop the relay
            self.stream.write(line + "\n")
            self.stream.flush()


@dataclass
class Stats:
    accepted: int = 0
    refused: dict[int, int] = field(default_factory=dict)
    dispatched: int = 0
    failed: int = 0
    retried: int = 0


class GitHubDispatcher:
    """Sends `repository_dispatch` events with bounded retries (requests, in threads)."""

    def __init__(self, config: RelayConfig, log: JsonLog, stats: Stats) -> None:
        import requests

        self.config = config
        self.log = log
        self.stats = stats
        self.session = requests.Session()
        self.session.trust_env = False  # GITHUB_API_URL, not an ambient proxy, decides
        self.url = f"{config.api_url}/repos/{config.repository}/dispatches"
        self.headers = {
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {config.token}",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "regops-relay",
        }

    def _post(self, body: bytes) -> int:
        import requests

        try:
            r = self.session.post(
                self.url, data=body, headers=self.headers, timeout=self.config.timeout
            )
        except requests.RequestException:
            return 0  # a network error: retried like a 5xx
        r.close()
        return r.status_code

    async def send(self, d: Dispatch) -> bool:
        body = json.dumps({"event_type": d.event_type, "client_payload": d.client_payload})
        delay = self.config.backoff
        for attempt in range(1, self.config.attempts + 1):
            status = await asyncio.to_thread(self._post, body.encode())
            if 200 <= status < 300:
                self.stats.dispatched += 1
                self.log(
                    "dispatched",
                    event_type=d.event_type,
                    model=d.client_payload.get("model"),
                    events=d.client_payload.get("events"),
                    delivery_id=d.client_payload.get("delivery_id"),
                    attempt=attempt,
                )
                return True
            final = status not in (0, 429) and status < 500
            if final or attempt == self.config.attempts:
                break
            self.stats.retried += 1
            self.log("dispatch_retry", status=status, attempt=attempt, delay=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.config.backoff_max)
        self.stats.failed += 1
        self.log(
            "dispatch_failed",
            status=status,
            event_type=d.event_type,
            model=d.client_payload.get("model"),
            delivery_id=d.client_payload.get("delivery_id"),
        )
        return False

    def close(self) -> None:
        self.session.close()


class Relay:
    """The service's state: the replay guard, the throttle, the queue of dispatches."""

    def __init__(self, config: RelayConfig, log: JsonLog | None = None) -> None:
        self.config = config
        self.log = log or JsonLog([config.secret, config.token])
        self.stats = Stats()
        self.guard = webhooks.ReplayGuard(tolerance=config.tolerance)
        self.throttle = webhooks.Throttle(window=config.window)
        self.queue: asyncio.Queue[Dispatch] = asyncio.Queue()
        self.dispatcher = GitHubDispatcher(config, self.log, self.stats)
        self.closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()

    # ---- the receiving side ------------------------------------------------------------
    async def receive(self, headers: Mapping[str, str], chunks: AsyncIterator[bytes]) -> int:
        """Handle one delivery; return the HTTP status (the answer has no body to echo)."""
        try:
            if self.closing:
                raise Refused(503, "shutting down")
            length = headers.get("content-length", "")
            if length.isdigit() and int(length) > self.config.max_body:
                raise Refused(413, "body too large")
            body = bytearray()
            async for chunk in chunks:
                body += chunk
                if len(body) > self.config.max_body:
                    raise Refused(413, "body too large")
            now = time.time()
            lower = {k.lower(): v for k, v in headers.items()}
            delivery_id, _ts = webhooks.verify(
                self.config.secret, lower, bytes(body), now, self.config.tolerance
            )
            event = webhooks.parse(bytes(body), delivery_id)
            self.guard.check_and_remember(delivery_id, now)
            try:
                ready = self.throttle.add(event, time.monotonic())
            except Refused:
                self.guard.forget(delivery_id)  # not taken: MLflow's retry must be accepted
                raise
        except Refused as r:
            self.stats.refused[r.status] = self.stats.refused.get(r.status, 0) + 1
            self.log("refused", status=r.status, reason=r.reason)
            return r.status
        self.stats.accepted += 1
        self.log(
            "accepted",
            event_type=event.event_type,
            model=event.model,
            version=event.version,
            delivery_id=delivery_id,
        )
        for d in ready:
            self.queue.put_nowait(d)
        self._wake.set()
        return 202

    # ---- the sending side --------------------------------------------------------------
    async def _tick(self) -> None:
        """Move what the Throttle releases to the queue, waking when the next window ends."""
        while True:
            for d in self.throttle.due(time.monotonic()):
                self.queue.put_nowait(d)
            nxt = self.throttle.next_due()
            timeout = None if nxt is None else max(0.0, nxt - time.monotonic())
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _sender(self) -> None:
        while True:
            d = await self.queue.get()
            try:
                await self.dispatcher.send(d)
            finally:
                self.queue.task_done()

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._tick())]
        self._tasks += [asyncio.create_task(self._sender()) for _ in range(self.config.senders)]
        self.log(
            "started",
            listen=f"{self.config.host}:{self.config.port}",
            repository=self.config.repository,
            api_url=self.config.api_url,
            window=self.config.window,
        )

    async def stop(self) -> None:
        """Stop taking deliveries, send what is pending (within drain_seconds), stop."""
        self.closing = True
        for d in self.throttle.flush():
            self.queue.put_nowait(d)
        try:
            await asyncio.wait_for(self.queue.join(), self.config.drain_seconds)
        except asyncio.TimeoutError:
            self.log("shutdown_unsent", dispatches=self.queue.qsize())
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.dispatcher.close()
        self.log("stopped", **self.health())

    def health(self) -> dict[str, Any]:
        return {
            "accepted": self.stats.accepted,
            "refused": {str(k): v for k, v in sorted(self.stats.refused.items())},
            "dispatched": self.stats.dispatched,
            "failed": self.stats.failed,
            "retried": self.stats.retried,
            "pending": self.throttle.pending + self.queue.qsize(),
            "remembered_ids": len(self.guard),
        }


def build_app(config: RelayConfig, log: JsonLog | None = None) -> Any:
    """The Starlette application (the relay's state on `app.state.relay`)."""
    from starlette.applications import Starlette
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    holder: dict[str, Relay] = {}

    async def mlflow_hook(request: Request) -> Response:
        try:
            status = await holder["relay"].receive(request.headers, request.stream())
        except ClientDisconnect:  # the sender went away mid-body: nothing was taken
            status = 400
        return Response(status_code=status)

    async def healthz(_request: Request) -> Response:
        relay = holder["relay"]
        status = 503 if relay.closing else 200
        return JSONResponse({"ok": not relay.closing, **relay.health()}, status_code=status)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        relay = Relay(config, log)
        holder["relay"] = relay
        app.state.relay = relay
        await relay.start()
        try:
            yield
        finally:
            await relay.stop()

    return Starlette(
        routes=[
            Route("/mlflow", mlflow_hook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def serve(config: RelayConfig) -> int:
    """Run the relay until SIGTERM or SIGINT; return the exit code (0 after a clean stop)."""
    import uvicorn

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Any:
            # uvicorn re-raises the signal after a graceful stop; a relay that drained
            # cleanly exits 0 instead (systemd and Kubernetes count that as a clean stop).
            import signal

            previous = {s: signal.signal(s, self.handle_exit) for s in _SIGNALS}
            try:
                yield
            finally:
                for s, h in previous.items():
                    signal.signal(s, h)

    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    log = JsonLog([config.secret, config.token])
    uv_config = uvicorn.Config(
        build_app(config, log),
        host=config.host,
        port=config.port,
        access_log=False,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=int(config.drain_seconds) + 5,
        server_header=False,
    )
    server = _Server(uv_config)
    server.run()
    return 0 if server.started else 1


def _signals() -> tuple[int, ...]:
    import signal

    return (signal.SIGINT, signal.SIGTERM)


_SIGNALS = _signals()
