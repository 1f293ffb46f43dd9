"""The registry's REST reads without importing mlflow, where MLflow would send the same.

Importing mlflow costs a `regops plan` about 1.3 s of CPU and 150 MB before its first
request (bench/bench_scale.py), while a plan only reads two GET endpoints. For an
http(s) registry with one of MLflow's plain logins, this module sends those GETs the way
MLflow's client does (`mlflow.utils.rest_utils.http_request` with the host credentials of
`get_default_host_creds`), with `requests`, which mlflow-skinny depends on:

- login: MLFLOW_TRACKING_USERNAME + MLFLOW_TRACKING_PASSWORD (HTTP basic), else
  MLFLOW_TRACKING_TOKEN (bearer); a user:password in the URI as `requests` sends it;
- TLS: MLFLOW_TRACKING_SERVER_CERT_PATH (the CA bundle to trust) or
  MLFLOW_TRACKING_INSECURE_TLS (both: MLflow refuses the pair); MLFLOW_TRACKING_CLIENT_CERT_PATH;
- retries and timeout: MLFLOW_HTTP_REQUEST_MAX_RETRIES / _BACKOFF_FACTOR /
  _BACKOFF_JITTER / _TIMEOUT (regops fills them first, see tracking.http_defaults),
  MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER, MLFLOW_ALLOW_HTTP_REDIRECTS, on MLflow's status
  codes; MLflow's User-Agent and client-version headers;
- an answer other than 200 raises RestError carrying MLflow's error code (the server's,
  or the one MLflow derives from the HTTP status) and MLflow's wording.

The server's answers are untrusted input (issue 17), on this path and on MLflow's:

- time: each call (with MLflow's retries) ends within its budget, `call_budget`:
  MLFLOW_HTTP_REQUEST_TIMEOUT per try plus the backoff between tries (and a second's
  grace), however slowly the
  server drips its headers or body (`requests`' timeout bounds each socket read only);
  past it, SlowAnswerError (reported as an unreachable registry);
- size: an answer's body is read up to MAX_ANSWER_BYTES (else AnswerError, nothing
  parsed) and an error answer's up to MAX_ERROR_BYTES (cut, then shown and masked);
- the URI's path prefix is kept and its query parameters are sent with every request:
  `https://h/prefix/?x=1` reads `https://h/prefix/api/2.0/mlflow/...?x=1&...`.

Everything else stays MLflow's (`plain_login` is False): an auth plugin
(MLFLOW_TRACKING_AUTH), AWS SigV4, a credentials file, a workspace, request-header
plugins, Databricks and every other scheme. Writes always go through MLflow.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Callable, Mapping
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from regops.errors import AnswerError, RestError, SlowAnswerError

T = TypeVar("T")
API = "/api/2.0/mlflow"
# What both read paths hand the reads: (endpoint, payload) -> JSON answer; a GET sends the
# payload as query parameters, a POST as its JSON body.
Get = Callable[[str, dict[str, Any]], dict[str, Any]]
Post = Callable[[str, dict[str, Any]], dict[str, Any]]

# Any of these makes the login or the request MLflow's own business.
MLFLOW_ONLY_ENV = ("MLFLOW_TRACKING_AUTH", "MLFLOW_WORKSPACE", "_MLFLOW_DATABRICKS_TRAFFIC_ID")
MLFLOW_ONLY_FLAGS = ("MLFLOW_TRACKING_AWS_SIGV4",)
CREDENTIALS_FILE = "~/.mlflow/credentials"  # MLflow reads a login from it
HEADER_PLUGINS = "mlflow.request_header_provider"  # entry points that add request headers
RETRY_STATUS = (408, 429, 500, 502, 503, 504)  # MLflow's transient failure codes
# MLflow's error code for an error answer whose body is not JSON (mlflow.exceptions).
STATUS_ERROR_CODE = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "ENDPOINT_NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL_ERROR",
    501: "NOT_IMPLEMENTED",
    503: "TEMPORARILY_UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
# MLflow's defaults when a variable is unset (mlflow.environment_variables).
DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "7",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "1.0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "120",
}
# An answer's body is read up to this (a page of 10,000 versions with tags is a few MB).
MAX_ANSWER_BYTES = 256 * 1024 * 1024
# An error answer's body is cut here before it is parsed, shown or masked.
MAX_ERROR_BYTES = 64 * 1024
CHUNK_BYTES = 64 * 1024
BACKOFF_MAX = 120.0  # urllib3's cap on one backoff sleep (Retry.DEFAULT_BACKOFF_MAX)
# Over the tries' timeouts: a server that says nothing is reported by `requests`' own
# timeout ("no answer"), one that drips by the budget ("no complete answer").
BUDGET_GRACE_S = 1.0


def call_budget(environ: Mapping[str, str] | None = None) -> float:
    """Seconds a call may take with MLflow's retries: MLFLOW_HTTP_REQUEST_TIMEOUT per try,
    plus each backoff sleep (factor x 2^n, capped as urllib3 caps it) and its jitter, and
    BUDGET_GRACE_S."""
    env = os.environ if environ is None else environ
    timeout = float(_setting(env, "MLFLOW_HTTP_REQUEST_TIMEOUT"))
    retries = max(0, int(_setting(env, "MLFLOW_HTTP_REQUEST_MAX_RETRIES")))
    factor = float(_setting(env, "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"))
    jitter = float(_setting(env, "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER"))
    sleeps = sum(min(BACKOFF_MAX, factor * (1 << n)) + jitter for n in range(retries))
    return timeout * (1 + retries) + sleeps + BUDGET_GRACE_S


def within(budget: float, call: Callable[[threading.Event], T]) -> T:
    """`call(expired)` in a worker thread; SlowAnswerError if it has not returned after
    `budget` seconds. `expired` is set then: a call reading a body stops at its next chunk
    (a call stalled in a socket read ends at `requests`' own per-read timeout; the daemon
    worker never holds the process)."""
    expired = threading.Event()
    done = threading.Event()
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = call(expired)
        except BaseException as exc:  # handed to the caller
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name="regops-http", daemon=True).start()
    if not done.wait(budget):
        expired.set()
        raise SlowAnswerError(budget)
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


def read_body(response: Any, expired: threading.Event, endpoint: str) -> bytes:
    """A streamed answer's body: an error's cut at MAX_ERROR_BYTES, a success's refused
    past MAX_ANSWER_BYTES; reading stops as soon as the call's budget is spent."""
    limit = MAX_ANSWER_BYTES if response.status_code == 200 else MAX_ERROR_BYTES
    chunks: list[bytes] = []
    size = 0
    preset = getattr(response, "_content", False)  # MLflow builds some answers whole
    stream = [preset] if isinstance(preset, bytes) else response.iter_content(CHUNK_BYTES)
    try:
        for chunk in stream:
            if expired.is_set():
                return b""  # the caller has already reported SlowAnswerError
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                break
    finally:
        response.close()
    body = b"".join(chunks)
    if size <= limit:
        return body
    if response.status_code == 200:
        raise AnswerError(
            f"{endpoint}: the answer is larger than {MAX_ANSWER_BYTES // 2**20} MiB; "
            "not read (regops reads pages of at most 10,000 versions)"
        )
    return body[:limit] + f" [... cut at {limit // 1024} KiB]".encode()


def parse_answer(content: bytes, endpoint: str) -> dict[str, Any]:
    """A 200 answer's JSON object, or AnswerError saying why it is not one."""
    try:
        doc = json.loads(content or b"{}")
    except RecursionError:
        raise AnswerError(f"{endpoint}: the answer nests too deep to read") from None
    except ValueError as exc:
        raise AnswerError(f"{endpoint}: the answer is not JSON ({str(exc)[:80]})") from None
    if not isinstance(doc, dict):
        raise AnswerError(f"{endpoint}: the answer is a JSON {type(doc).__name__}, not an object")
    return doc


def split_uri(uri: str) -> tuple[str, list[tuple[str, str]]]:
    """(the base URL the API paths follow, the URI's own query parameters): the path
    prefix is kept, its trailing '/' dropped; the fragment is not sent."""
    parts = urlsplit(uri)
    base = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
    return base, parse_qsl(parts.query, keep_blank_values=True)


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1")


def plain_login(uri: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether this module sends what MLflow would to `uri` (else: read through MLflow)."""
    env = os.environ if environ is None else environ
    if urlsplit(uri).scheme.lower() not in ("http", "https"):
        return False
    if any((env.get(k) or "").strip() for k in MLFLOW_ONLY_ENV):
        return False
    if any(_flag(env.get(k)) for k in MLFLOW_ONLY_FLAGS):
        return False
    if _flag(env.get("MLFLOW_TRACKING_INSECURE_TLS")) and env.get(
        "MLFLOW_TRACKING_SERVER_CERT_PATH"
    ):
        return False  # MLflow refuses the pair with its own message
    if Path(CREDENTIALS_FILE).expanduser().exists():
        return False
    return not _header_plugins()


@lru_cache(maxsize=1)
def _header_plugins() -> bool:
    return bool(metadata.entry_points(group=HEADER_PLUGINS))


@lru_cache(maxsize=1)
def _client_headers() -> dict[str, str]:
    """MLflow's default request headers (mlflow.tracking.request_header)."""
    for dist in ("mlflow", "mlflow-skinny"):
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
        return {"User-Agent": f"mlflow-python-client/{version}", "X-MLflow-Client-Version": version}
    return {}


@lru_cache(maxsize=8)
def _session(retries: int, backoff: float, jitter: float, respect_retry_after: bool) -> Any:
    """One pooled session per retry policy, as MLflow keeps (per process)."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    policy: dict[str, Any] = {
        "total": retries,
        "connect": retries,
        "read": retries,
        "redirect": retries,
        "status": retries,
        "status_forcelist": RETRY_STATUS,
        "backoff_factor": backoff,
        "allowed_methods": None,
        "respect_retry_after_header": respect_retry_after,
    }
    try:
        retry = Retry(**policy, backoff_jitter=jitter)
    except TypeError:  # urllib3 < 2 has no jitter (MLflow adds its own there)
        retry = Retry(**policy)
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _setting(env: Mapping[str, str], name: str) -> str:
    return (env.get(name) or "").strip() or DEFAULTS[name]


def request_options(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What MLflow's client adds to a request, from the environment: headers (login
    included), TLS verification, client certificate, timeout."""
    env = os.environ if environ is None else environ
    headers = dict(_client_headers())
    user = env.get("MLFLOW_TRACKING_USERNAME") or None
    password = env.get("MLFLOW_TRACKING_PASSWORD") or None
    token = env.get("MLFLOW_TRACKING_TOKEN") or None
    if user and password:
        pair = base64.standard_b64encode(f"{user}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {pair}"
    elif token:
        headers["Authorization"] = f"Bearer {token}"
    ca = env.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or None
    options: dict[str, Any] = {
        "headers": headers,
        "verify": ca if ca else not _flag(env.get("MLFLOW_TRACKING_INSECURE_TLS")),
        "timeout": float(_setting(env, "MLFLOW_HTTP_REQUEST_TIMEOUT")),
        "allow_redirects": env.get("MLFLOW_ALLOW_HTTP_REDIRECTS", "true").lower() in ("true", "1"),
    }
    if cert := env.get("MLFLOW_TRACKING_CLIENT_CERT_PATH") or None:
        options["cert"] = cert
    return options


def check(status: int, text: str, endpoint: str) -> None:
    """Raise RestError for an answer other than 200, in MLflow's words."""
    if status == 200:
        return
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's stack
        doc = None
    if isinstance(doc, dict):
        said = str(doc.get("error_code") or "INTERNAL_ERROR")
        # A proxy may answer an HTTP status in place of MLflow's code: MLflow maps it.
        # (An HTTP status has 3 ASCII digits: '²' is a digit to isdigit() but not to int(),
        # and 5,000 digits are past int()'s limit.)
        status_like = said.isascii() and said.isdigit() and len(said) == 3
        code = STATUS_ERROR_CODE.get(int(said), said) if status_like else said
        body = doc.get("message", f"Response: {doc}")
        raise RestError(f"{said}: {body}", code)
    raise RestError(
        f"API request to endpoint {endpoint} failed with error code {status} != 200. "
        f"Response body: '{text}'",
        STATUS_ERROR_CODE.get(status, "INTERNAL_ERROR"),
    )


def _json_call(uri: str, method: str) -> Get:
    """`(endpoint, payload) -> JSON` against the registry at `uri`: a GET sends the payload
    as query parameters, a POST as its JSON body. Settings are read from the environment
    at each call, as MLflow reads them; the call keeps within its budget."""
    host, own_query = split_uri(uri)

    def send(endpoint: str, payload: dict[str, Any]) -> dict[str, Any]:
        env = os.environ
        session = _session(
            int(_setting(env, "MLFLOW_HTTP_REQUEST_MAX_RETRIES")),
            float(_setting(env, "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR")),
            float(_setting(env, "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER")),
            _flag(env.get("MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER", "true")),
        )
        path = f"{API}/{endpoint}"
        options = request_options(env)
        if method == "GET":
            query: list[tuple[str, Any]] = [*own_query, *payload.items()]
            sent: dict[str, Any] = {"params": query}
        else:
            sent = {"params": own_query, "json": payload}

        def call(expired: threading.Event) -> tuple[int, bytes]:
            response = session.request(method, f"{host}{path}", stream=True, **sent, **options)
            return response.status_code, read_body(response, expired, path)

        status, content = within(call_budget(env), call)
        check(status, content.decode("utf-8", errors="replace"), path)
        return parse_answer(content, path)

    return send


def json_poster(uri: str) -> Post:
    """POST a JSON body to an endpoint of the registry at `uri` (a search MLflow serves by
    POST only, such as runs/search) and return its JSON, as json_getter does."""
    return _json_call(uri, "POST")


def json_getter(uri: str) -> Get:
    """GET an endpoint of the registry at `uri` and return its JSON (settings are read from
    the environment at each call, as MLflow reads them), within the call's budget."""
    return _json_call(uri, "GET")
