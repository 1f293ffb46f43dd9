"""Plain REST reads (rest_http) send what MLflow's own client sends, and fail as it fails.

Side by side against one listening socket that records each request and answers what
the test asks: MLflow's request helpers (rest_reads.json_getter over its RestStore) and
rest_http's getter, with the same environment. Then `regops plan` in a fresh process
against a real `mlflow server`: the plan is read without importing mlflow.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from regops.adapters.mlflow import rest_http, rest_reads
from regops.adapters.mlflow.registry import MlflowRegistry, classify
from regops.errors import RegistryUnreachable, RestError
from tests.support.paths import ROOT
from tests.support.servers import MlflowServer

COMPARED = ("Authorization", "User-Agent", "X-MLflow-Client-Version")


class Recorder:
    """An HTTP listener that records each request's path, query and headers, and answers
    with `status` and `body`."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.body = b'{"registered_models": []}'
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                recorder.requests.append({"path": self.path, "headers": dict(self.headers)})
                self.send_response(recorder.status)
                self.send_header("Content-Length", str(len(recorder.body)))
                self.end_headers()
                self.wfile.write(recorder.body)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def seen(self) -> dict[str, Any]:
        last = self.requests[-1]
        return {"path": last["path"], **{h: last["headers"].get(h) for h in COMPARED}}


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    r = Recorder()
    yield r
    r.server.shutdown()


def both_getters(url: str) -> tuple[rest_http.Get, rest_http.Get]:
    """(MLflow's request helpers, rest_http) for the registry at `url`."""
    registry = MlflowRegistry(url)
    return rest_reads.json_getter(registry._store), rest_http.json_getter(url)


PARAMS = {"max_results": 1000, "order_by": ["name ASC", "version_number ASC"], "filter": "x"}


@pytest.mark.parametrize(
    "login",
    [
        {},
        {"MLFLOW_TRACKING_USERNAME": "ann", "MLFLOW_TRACKING_PASSWORD": "pa:ss wörd"},
        {"MLFLOW_TRACKING_TOKEN": "tok-123"},
        {  # basic wins over a token, as in MLflow
            "MLFLOW_TRACKING_USERNAME": "ann",
            "MLFLOW_TRACKING_PASSWORD": "pw",
            "MLFLOW_TRACKING_TOKEN": "tok-123",
        },
        {"MLFLOW_TRACKING_USERNAME": "ann", "MLFLOW_TRACKING_TOKEN": "tok-123"},  # no password
    ],
    ids=["anonymous", "basic", "token", "basic-over-token", "user-without-password"],
)
def test_requests_match_mlflows(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch, login: dict[str, str]
) -> None:
    for k, v in login.items():
        monkeypatch.setenv(k, v)
    assert rest_http.plain_login(recorder.url)
    theirs, ours = both_getters(recorder.url)
    assert theirs("registered-models/search", PARAMS) == ours("registered-models/search", PARAMS)
    want, got = recorder.requests[-2], recorder.requests[-1]
    assert got["path"] == want["path"]  # same endpoint, same query string
    assert {h: got["headers"].get(h) for h in COMPARED} == {
        h: want["headers"].get(h) for h in COMPARED
    }


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, b"You are not authenticated. Please see the docs."),
        (403, b'{"error_code": "PERMISSION_DENIED", "message": "Permission denied"}'),
        (400, b'{"error_code": "INVALID_PARAMETER_VALUE", "message": "bad filter"}'),
        (400, b"<html>bad request</html>"),
        (404, b"not here"),
        (418, b'{"error_code": "404", "message": "from a proxy"}'),
        (418, b'{"detail": "no message"}'),
    ],
)
def test_error_answers_match_mlflows(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch, status: int, body: bytes
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    recorder.status, recorder.body = status, body
    theirs, ours = both_getters(recorder.url)
    with pytest.raises(Exception) as want:
        theirs("registered-models/search", PARAMS)
    with pytest.raises(RestError) as got:
        ours("registered-models/search", PARAMS)
    assert str(got.value) == str(want.value)
    assert got.value.error_code == want.value.error_code  # type: ignore[attr-defined]
    assert classify(got.value) == classify(want.value)


def test_status_codes_table_is_mlflows() -> None:
    from mlflow.exceptions import HTTP_STATUS_TO_ERROR_CODE

    assert dict(HTTP_STATUS_TO_ERROR_CODE) == rest_http.STATUS_ERROR_CODE


def test_tls_and_timeout_settings_follow_mlflows_variables(tmp_path: Path) -> None:
    ca, cert = str(tmp_path / "ca.pem"), str(tmp_path / "client.pem")
    base = rest_http.request_options({})
    assert base["verify"] is True
    assert "cert" not in base
    assert base["timeout"] == 120
    assert rest_http.request_options({"MLFLOW_TRACKING_INSECURE_TLS": "true"})["verify"] is False
    trust = {"MLFLOW_TRACKING_SERVER_CERT_PATH": ca}
    assert rest_http.request_options(trust)["verify"] == ca
    both = {"MLFLOW_TRACKING_INSECURE_TLS": "true", **trust}
    assert not rest_http.plain_login("https://h", both)  # MLflow refuses the pair itself
    opts = rest_http.request_options(
        {"MLFLOW_TRACKING_CLIENT_CERT_PATH": cert, "MLFLOW_HTTP_REQUEST_TIMEOUT": "7"}
    )
    assert opts["cert"] == cert
    assert opts["timeout"] == 7

    from mlflow.utils.credentials import get_default_host_creds

    for env in ({}, {"MLFLOW_TRACKING_INSECURE_TLS": "true"}, trust):
        with pytest.MonkeyPatch.context() as mp:
            for k, v in env.items():
                mp.setenv(k, v)
            creds = get_default_host_creds("https://example.invalid")
            assert rest_http.request_options(env)["verify"] == creds.verify


def test_other_logins_and_schemes_stay_with_mlflow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = rest_http.plain_login
    assert plain("http://h:5000")
    assert plain("https://h/mlflow")
    assert plain("https://h", {"MLFLOW_TRACKING_AWS_SIGV4": "false"})
    for uri in ("sqlite:///mlflow.db", "databricks", "databricks-uc", "postgresql://h/db"):
        assert not plain(uri), uri
    for env in (
        {"MLFLOW_TRACKING_AUTH": "my_auth_plugin"},
        {"MLFLOW_TRACKING_AWS_SIGV4": "true"},
        {"MLFLOW_WORKSPACE": "team-a"},
    ):
        assert not plain("https://h", env), env
    monkeypatch.setenv("HOME", str(tmp_path))
    assert plain("https://h")
    (tmp_path / ".mlflow").mkdir()
    (tmp_path / ".mlflow" / "credentials").write_text("[mlflow]\nmlflow_tracking_username = a\n")
    assert not plain("https://h")  # MLflow reads a login from that file
    registry = MlflowRegistry("http://127.0.0.1:9")
    assert registry._opened is not None  # read through MLflow's store


def test_unreachable_is_reported_as_through_mlflow(
    monkeypatch: pytest.MonkeyPatch, dead_port: int
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    registry = MlflowRegistry(f"http://127.0.0.1:{dead_port}")
    assert registry._opened is None  # plain reads: mlflow not opened
    with pytest.raises(RegistryUnreachable, match="the connection was refused"):
        registry.snapshot(["m"])


@pytest.mark.server
def test_plan_reads_a_server_without_importing_mlflow(
    mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    c = MlflowClient(tracking_uri=mlflow_server.url, registry_uri=mlflow_server.url)
    name = f"PlainRead{tmp_path.name[-6:]}"
    c.create_registered_model(name)
    c.create_model_version(name, source="s3://b/1", run_id=None)
    c.set_registered_model_alias(name, "champion", "1")
    state = tmp_path / "state"
    state.mkdir()
    (state / "m.yaml").write_text(
        "apiVersion: regops/v1\nmodels:\n"
        f'  {name}:\n    versions:\n      "1": {{aliases: [champion, shadow]}}\n'
    )
    code = (
        "import sys, json; from click.testing import CliRunner; from regops.cli import cli;"
        f"r = CliRunner().invoke(cli, ['plan', '--tracking-uri', {mlflow_server.url!r},"
        f" '--state-dir', {str(state)!r}, '--format', 'json']);"
        "print(json.dumps([r.exit_code, 'mlflow' in sys.modules, r.stdout]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    exit_code, imported, output = json.loads(out.stdout)
    assert exit_code == 0, output
    assert imported is False
    plan = json.loads(output)
    assert [(ch["model"], ch["kind"], ch.get("alias")) for ch in plan["changes"]] == [
        (name, "alias_set", "shadow")
    ]


@pytest.mark.parametrize("suffix", ["/prefix", "/prefix/", "/a/b/"])
def test_a_path_prefix_is_kept_as_mlflow_keeps_it(recorder: Recorder, suffix: str) -> None:
    theirs, ours = both_getters(recorder.url + suffix)
    assert theirs("registered-models/search", PARAMS) == ours("registered-models/search", PARAMS)
    want, got = recorder.requests[-2]["path"], recorder.requests[-1]["path"]
    assert got == want
    assert got.startswith(suffix.rstrip("/") + "/api/2.0/mlflow/registered-models/search?")


def test_a_query_string_in_the_uri_is_sent_with_every_read(recorder: Recorder) -> None:
    """MLflow appends the API path after the whole URI (`...?x=1/api/2.0/...`, a path the
    server never sees); regops' reads keep the path prefix and send the URI's parameters
    before their own."""
    ours = rest_http.json_getter(recorder.url + "/prefix/?x=1&y=")
    ours("registered-models/search", PARAMS)
    path, _, query = recorder.requests[-1]["path"].partition("?")
    assert path == "/prefix/api/2.0/mlflow/registered-models/search"
    assert query.startswith("x=1&y=&max_results=1000&order_by=")


@pytest.mark.parametrize(
    "text",
    [
        "[" * 60_000 + "]" * 60_000,  # under the 64 KiB cut, past the parser's stack
        '{"error_code": "' + "4" * 5_000 + '", "message": "m"}',  # past int()'s digits
        '{"error_code": "4\u00b20", "message": "m"}',  # a digit to isdigit(), not to int()
    ],
    ids=["deep", "huge-numeric-code", "unicode-digit-code"],
)
def test_a_hostile_error_body_is_a_rest_error(text: str) -> None:
    with pytest.raises(RestError):
        rest_http.check(400, text, "registered-models/search")
