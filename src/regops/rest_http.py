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

Everything else stays MLflow's (`plain_login` is False): an auth plugin
(MLFLOW_TRACKING_AUTH), AWS SigV4, a credentials file, a workspace, request-header
plugins, Databricks and every other scheme. Writes always go through MLflow.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from regops.rest_reads import API, Get

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


class RestError(Exception):
    """An error answer, as MLflow's RestException / MlflowException would report it."""

    def __init__(self, message: str, error_code: str) -> None:
        super().__init__(message)
        self.error_code = error_code


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
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        said = str(doc.get("error_code") or "INTERNAL_ERROR")
        # A proxy may answer an HTTP status in place of MLflow's code: MLflow maps it.
        code = STATUS_ERROR_CODE.get(int(said), said) if said.isdigit() else said
        body = doc.get("message", f"Response: {doc}")
        raise RestError(f"{said}: {body}", code)
    raise RestError(
        f"API request to endpoint {endpoint} failed with error code {status} != 200. "
        f"Response body: '{text}'",
        STATUS_ERROR_CODE.get(status, "INTERNAL_ERROR"),
    )


def json_getter(uri: str) -> Get:
    """GET an endpoint of the registry at `uri` and return its JSON (settings are read from
    the environment at each call, as MLflow reads them)."""
    host = uri.rstrip("/")

    def get(endpoint: str, params: dict[str, Any]) -> dict[str, Any]:
        env = os.environ
        session = _session(
            int(_setting(env, "MLFLOW_HTTP_REQUEST_MAX_RETRIES")),
            float(_setting(env, "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR")),
            float(_setting(env, "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER")),
            _flag(env.get("MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER", "true")),
        )
        path = f"{API}/{endpoint}"
        response = session.get(f"{host}{path}", params=params, **request_options(env))
        check(response.status_code, response.text, path)
        doc: dict[str, Any] = json.loads(response.content or b"{}")
        return doc

    return get
