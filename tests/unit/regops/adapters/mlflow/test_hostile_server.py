"""A hostile (or broken) MLflow server cannot hang regops, exhaust it or crash it.

The server's answers are untrusted input (issue 17, class 2). Against the hostile server
(tests/support/hostile_server.py: a real HTTP(S) server on 127.0.0.1), `regops plan` and
the read commands end with exit 1 and a message naming what was wrong, never a traceback:

- pages whose token repeats stop at once; pages that never end stop after max_pages;
- a server that drips its answer a byte at a time fails within the call's budget
  (MLFLOW_HTTP_REQUEST_TIMEOUT with no retries), shown by a subprocess timeout;
- a huge error body is cut before it is shown or masked; a huge answer is refused;
- a wrong value (version, stage, types, nesting) names the model, version and field;
- any JSON value in any field of a model or version (hypothesis) is exit 0-3, never 70;
- an untrusted TLS certificate says so and how to trust it, unlike refused or timed out;
- a tracking URI with a path prefix and a query string reads the right URLs.

Processes run the installed `regops` with MLFLOW_HTTP_REQUEST_MAX_RETRIES=0; the
in-process ones (CliRunner) lower a cap to keep an endless server short.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regops.adapters.mlflow import rest_http, rest_reads
from regops.adapters.mlflow.registry import SHOWN_CHARS
from regops.cli import cli
from regops.errors import RegistryUnreachable
from tests.support.hostile_server import (
    Answer,
    HostileServer,
    Query,
    model,
    registry,
    self_signed,
    serving,
    version,
)

REGOPS = str(Path(sys.executable).with_name("regops"))
STATE = 'apiVersion: regops/v1\nmodels:\n  M:\n    versions:\n      "1": {stage: Production}\n'
TIMEOUT_S = 2  # MLFLOW_HTTP_REQUEST_TIMEOUT in these tests
BUDGET_S = TIMEOUT_S + rest_http.BUDGET_GRACE_S  # with no retries (call_budget)
# A fresh process imports regops (and, for some reads, mlflow) before its first request:
# generous on a busy 2-CPU runner, and far below what a drip would take without a budget.
START_SLACK_S = 25


@pytest.fixture
def server() -> Iterator[HostileServer]:
    yield from serving()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    d = tmp_path / "registry-state"
    d.mkdir()
    (d / "m.yaml").write_text(STATE, encoding="utf-8")
    return d


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
    return {
        **base,
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(TIMEOUT_S),
        **extra,
    }


def regops(
    url: str, state_dir: Path, *args: str, timeout: float = 120, **extra: str
) -> tuple[int, str]:
    """`regops ARGS` in a fresh process against `url`: (exit code, stdout + stderr)."""
    cmd = [REGOPS, *(args or ("plan",)), "--tracking-uri", url]
    if not args or args[0] == "plan":
        cmd += ["--state-dir", str(state_dir)]
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env=env(**extra), check=False
    )
    return done.returncode, done.stdout + done.stderr


def in_process(url: str, state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    for k, v in env().items():
        if k.startswith("MLFLOW_HTTP_"):
            monkeypatch.setenv(k, v)
    result = CliRunner().invoke(cli, ["plan", "--tracking-uri", url, "--state-dir", str(state_dir)])
    return result.exit_code, result.output


def failed_cleanly(code: int, out: str, *says: str) -> None:
    assert code == 1, out
    assert "Traceback" not in out, out
    for s in says:
        assert s in out, out


ONE_MODEL = registry([model("M")], [version("M", "1", current_stage="Production")])


def test_the_hostile_server_answers_a_registry_regops_plans_against(
    server: HostileServer, state_dir: Path
) -> None:
    """The baseline: a well-formed answer plans (in sync), so each failure below is the
    hostile part's doing."""
    server.handlers.update(ONE_MODEL)
    code, out = regops(server.url, state_dir, "plan", "--detailed-exitcode")
    assert code == 0, out


# ---- paging -------------------------------------------------------------------------------
def test_a_repeated_page_token_stops_at_once(server: HostileServer, state_dir: Path) -> None:
    server.on(
        "registered-models/search",
        lambda _q: Answer.json({"registered_models": [model("M")], "next_page_token": "again"}),
    )
    code, out = regops(server.url, state_dir)
    failed_cleanly(code, out, "registered-models/search", "page token", "sent before")
    assert server.hits("registered-models/search") == 2  # the second page repeats the token


def test_pages_that_never_end_stop_after_the_documented_cap(
    server: HostileServer, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every page has a new token: the read stops after max_pages(page size) pages."""
    assert rest_reads.max_pages(rest_reads.MODELS_PAGE) == 1_001  # MAX_ITEMS = 1,000,000
    monkeypatch.setattr(rest_reads, "MAX_ITEMS", 5_000)  # 6 pages of 1,000: a short test
    count = iter(range(10**9))

    def endless(_q: Query) -> Answer:
        return Answer.json({"registered_models": [], "next_page_token": f"t{next(count)}"})

    server.on("registered-models/search", endless)
    code, out = in_process(server.url, state_dir, monkeypatch)
    failed_cleanly(code, out, "still more pages after 6")
    assert server.hits("registered-models/search") == 6


def test_versions_pages_that_never_end_stop_too(
    server: HostileServer, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rest_reads, "MAX_ITEMS", 25_000)  # 3 pages of 10,000
    server.on("registered-models/search", ONE_MODEL["registered-models/search"])
    count = iter(range(10**9))
    server.on(
        "model-versions/search",
        lambda _q: Answer.json(
            {"model_versions": [version("M", "1")], "next_page_token": f"v{next(count)}"}
        ),
    )
    code, out = in_process(server.url, state_dir, monkeypatch)
    failed_cleanly(code, out, "model-versions/search: still more pages after 3")
    assert server.hits("model-versions/search") == 3


# ---- time ---------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["body", "headers"])
def test_a_server_that_drips_fails_within_the_timeout(
    server: HostileServer, state_dir: Path, where: str
) -> None:
    """One byte every 0.2 s: each socket read gets its byte well within the 2 s read
    timeout, so only a deadline on the whole answer ends it (the answer would take
    minutes). The subprocess timeout is the assertion on time."""
    body = Answer.json({"registered_models": [model("M" * 40)] * 20}).body
    head_len = 0 if where == "headers" else 120  # the status line and headers fit in 120
    server.on(
        "registered-models/search",
        lambda _q: Answer(body=body, drip=0.2, drip_from=head_len),
    )
    assert len(body) * 0.2 > 10 * (BUDGET_S + START_SLACK_S)
    code, out = regops(server.url, state_dir, timeout=BUDGET_S + START_SLACK_S)
    failed_cleanly(code, out, f"no complete answer within {BUDGET_S:g} s", "a byte at a time")


@pytest.mark.parametrize("command", ["list-models", "list-versions", "get-model"])
def test_read_commands_are_bounded_too(
    server: HostileServer, state_dir: Path, command: str
) -> None:
    body = Answer.json({"registered_models": [model("M")] * 50}).body
    server.on("registered-models/search", lambda _q: Answer(body=body, drip=0.2, drip_from=0))
    args = [command] + ([] if command == "list-models" else ["--model-name", "M"])
    args += ["--stage", "Production"] if command == "get-model" else []
    code, out = regops(server.url, state_dir, *args, timeout=BUDGET_S + START_SLACK_S)
    failed_cleanly(code, out, f"no complete answer within {BUDGET_S:g} s")


def test_the_budget_counts_every_try_and_backoff() -> None:
    budget = rest_http.call_budget
    grace = rest_http.BUDGET_GRACE_S
    one_try = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "2", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    assert budget(one_try) == 2 + grace
    two_tries = {
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "7",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
        "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    }
    assert budget(two_tries) == 7 * 2 + 1 + 0.5 + grace  # regops' defaults (tracking.HTTP_DEFAULTS)


def test_mlflows_own_read_path_is_bounded_too(
    server: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads through MLflow's request helpers (another login than a plain one) keep the
    same budget."""
    from regops.adapters.mlflow.registry import MlflowRegistry

    for k, v in env().items():
        if k.startswith("MLFLOW_HTTP_"):
            monkeypatch.setenv(k, v)
    body = Answer.json({"registered_models": [model("M")] * 50}).body
    server.on("registered-models/search", lambda _q: Answer(body=body, drip=0.2, drip_from=100))
    reg = MlflowRegistry(server.url)
    get = rest_reads.json_getter(reg._store)  # MLflow's http_request, not rest_http
    reg._json_get = lambda e, p: reg._run(lambda: get(e, p))[0]
    with pytest.raises(RegistryUnreachable, match=f"no complete answer within {BUDGET_S:g} s"):
        reg.snapshot(["M"])


# ---- size ---------------------------------------------------------------------------------
def test_a_huge_error_body_is_cut_before_it_is_shown_or_masked(
    server: HostileServer, state_dir: Path
) -> None:
    secret = "hunter2-very-secret"
    body = ("x" * 1000 + secret) * 20_000  # ~20 MB on one line, the secret all through it
    server.on(
        "registered-models/search",
        lambda _q: Answer(body=body.encode(), status=400, headers=()),  # 5xx is retried, unshown
    )
    code, out = regops(server.url, state_dir, MLFLOW_TRACKING_PASSWORD=secret)
    failed_cleanly(code, out, "could not read the registry", "x" * 900)
    assert secret not in out
    assert "***" in out  # masked, not cut away before it
    # Read up to 64 KiB (then masked), shown up to SHOWN_CHARS, with what was left out.
    left_out = re.search(r"\[\.\.\. ([\d,]+) more characters\]", out)
    assert left_out is not None, out
    assert int(left_out.group(1).replace(",", "")) < rest_http.MAX_ERROR_BYTES
    assert len(out) < 2 * SHOWN_CHARS


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 60_000 + b"]" * 60_000,  # under the 64 KiB cut, past the parser's stack
        b'{"error_code": "' + b"4" * 5_000 + b'", "message": "m"}',  # past int()'s digits
        '{"error_code": "4²0", "message": "m"}'.encode(),  # digits to isdigit(), not int()
    ],
    ids=["deep-error-body", "huge-numeric-error-code", "unicode-digit-error-code"],
)
def test_a_hostile_error_body_is_an_error_not_a_traceback(
    server: HostileServer, state_dir: Path, body: bytes
) -> None:
    server.on(
        "registered-models/search",
        lambda _q: Answer(body=body, status=400, headers=()),
    )
    code, out = regops(server.url, state_dir)
    failed_cleanly(code, out, "could not read the registry")


def test_a_huge_answer_is_refused_not_parsed(
    server: HostileServer, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rest_http, "MAX_ANSWER_BYTES", 2**20)
    doc = {"registered_models": [model("M", description="d" * 2**21)]}
    server.on("registered-models/search", lambda _q: Answer.json(doc))
    code, out = in_process(server.url, state_dir, monkeypatch)
    failed_cleanly(code, out, "registered-models/search: the answer is larger than 1 MiB")


# ---- values -------------------------------------------------------------------------------
BAD_VERSIONS: list[tuple[str, dict[str, Any], str]] = [
    ("version-not-a-number", version("M", "1x"), "field 'version' is not a version number"),
    ("version-a-float", version("M", 1.5), "field 'version' is not a version number"),
    ("version-negative", version("M", -3), "field 'version' is not a version number"),
    ("version-huge", version("M", "9" * 5000), "field 'version' is not a version number"),
    ("version-zero", version("M", 0), "field 'version' is not a version number"),
    ("stage-outside-enum", version("M", "1", current_stage="Deployed"), "'current_stage'"),
    ("tags-a-dict", version("M", "1", tags={"a": "b"}), "field 'tags' is not a list of objects"),
    ("tag-value-a-list", version("M", "1", tags=[{"key": "a", "value": [1]}]), "field 'tags'"),
    ("timestamp-text", version("M", "1", creation_timestamp="yesterday"), "creation_timestamp"),
    ("timestamp-huge", version("M", "1", creation_timestamp=10**30), "creation_timestamp"),
    ("run-id-a-number", version("M", "1", run_id=7), "field 'run_id'"),
    ("name-a-list", version(["M"], "1"), "a version's field 'name'"),
]


@pytest.mark.parametrize(("bad", "says"), [(b, s) for _, b, s in BAD_VERSIONS],
                         ids=[i for i, _, _ in BAD_VERSIONS])  # fmt: skip
def test_a_wrong_version_value_names_model_version_and_field(
    server: HostileServer, state_dir: Path, bad: dict[str, Any], says: str
) -> None:
    server.handlers.update(registry([model("M")], [bad]))
    code, out = regops(server.url, state_dir)
    failed_cleanly(code, out, "answered what regops cannot read", says)
    if "name" not in says:
        assert "model 'M'" in out


BAD_MODELS: list[tuple[str, Any, str]] = [
    ("name-a-number", model(7), "a registered model's field 'name' is int"),
    ("aliases-not-numbers", model("M", aliases=[{"alias": "c", "version": "x"}]), "alias 'c'"),
    ("aliases-a-string", model("M", aliases="champion"), "field 'aliases'"),
    ("description-a-dict", model("M", description={"a": 1}), "field 'description'"),
    ("model-a-string", "M", "a model is a str"),
    (
        "alias-to-no-version",
        model("M", aliases=[{"alias": "champion", "version": "99"}]),
        "model 'M' alias 'champion': version 99 is not one of the model's versions",
    ),
]


@pytest.mark.parametrize(("bad", "says"), [(b, s) for _, b, s in BAD_MODELS],
                         ids=[i for i, _, _ in BAD_MODELS])  # fmt: skip
def test_a_wrong_model_value_names_the_field(
    server: HostileServer, state_dir: Path, bad: Any, says: str
) -> None:
    server.handlers.update(registry([bad], [version("M", "1", current_stage="Production")]))
    code, out = regops(server.url, state_dir)
    failed_cleanly(code, out, says)
    if "alias" in says:  # get-model read it as a holder once (exit 70)
        code, out = regops(
            server.url, state_dir, "get-model", "--model-name", "M", "--alias", "champion"
        )
        failed_cleanly(code, out, says)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"[1, 2]", "the answer is a JSON list, not an object"),
        (b"<html>hello</html>", "the answer is not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nests too deep"),
        (b'{"registered_models": {"name": "M"}}', "'registered_models' is a dict, not a list"),
        (b'{"registered_models": [], "next_page_token": 5}', "next_page_token is a int"),
        (b'{"registered_models": [{"name": "M", "x": ' + b"1" * 5000 + b"}]}", "not JSON"),
    ],
    ids=["a-list", "html", "deep-nesting", "models-a-dict", "token-a-number", "huge-int"],
)
def test_an_answer_of_the_wrong_shape_is_exit_1(
    server: HostileServer, state_dir: Path, body: bytes, says: str
) -> None:
    server.on("registered-models/search", lambda _q: Answer(body=body))
    code, out = regops(server.url, state_dir)
    failed_cleanly(code, out, says)


def test_a_deeply_nested_regops_tag_is_a_warning_not_a_crash(
    server: HostileServer, state_dir: Path
) -> None:
    """MLflow accepts any text as a tag value: a regops tag holding JSON nested 100,000
    deep is treated as absent, with a warning naming the model and version."""
    deep = "[" * 100_000 + "]" * 100_000
    tags = [{"key": "regops.audit", "value": deep}]
    server.handlers.update(
        registry(
            [model("M", tags=[{"key": "regops.applied", "value": deep}])],
            [version("M", "1", current_stage="Production", tags=tags)],
        )
    )
    code, out = regops(server.url, state_dir, "plan", "--detailed-exitcode")
    assert code in (0, 2), out
    assert "Traceback" not in out
    assert "model 'M'" in out


# ---- TLS and network failures -------------------------------------------------------------
@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[HostileServer, Path]]:
    cert, key = self_signed(tmp_path)
    for s in serving(tls=(cert, key)):
        s.handlers.update(ONE_MODEL)
        yield s, cert


def test_an_untrusted_certificate_is_named_with_the_fix(
    tls_server: tuple[HostileServer, Path], state_dir: Path
) -> None:
    server, cert = tls_server
    code, out = regops(server.url, state_dir)
    failed_cleanly(
        code,
        out,
        "the server's TLS certificate is not trusted",
        "self-signed certificate",
        "MLFLOW_TRACKING_SERVER_CERT_PATH",
        "REQUESTS_CA_BUNDLE",
    )
    assert "refused" not in out
    for trust in ("MLFLOW_TRACKING_SERVER_CERT_PATH", "REQUESTS_CA_BUNDLE"):
        code, out = regops(
            server.url, state_dir, "plan", "--detailed-exitcode", **{trust: str(cert)}
        )
        assert code == 0, (trust, out)


def test_an_untrusted_certificate_is_named_through_mlflows_client_too(
    tls_server: tuple[HostileServer, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from regops.adapters.mlflow.registry import MlflowRegistry

    server, cert = tls_server
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    reg = MlflowRegistry(server.url)
    get = rest_reads.json_getter(reg._store)  # MLflow's http_request, not rest_http
    reg._json_get = lambda e, p: reg._run(lambda: get(e, p))[0]
    with pytest.raises(RegistryUnreachable, match="TLS certificate is not trusted") as failed:
        reg.snapshot(["M"])
    assert "MLFLOW_TRACKING_SERVER_CERT_PATH" in str(failed.value)
    monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", str(cert))
    assert set(reg.snapshot(["M"]).models) == {"M"}


def test_refused_timed_out_and_untrusted_say_different_things(
    tls_server: tuple[HostileServer, Path],
    server: HostileServer,
    state_dir: Path,
    dead_port: int,
) -> None:
    server.on("registered-models/search", lambda _q: Answer(hang=True))
    said = {
        "refused": regops(f"http://127.0.0.1:{dead_port}", state_dir)[1],
        "timed out": regops(server.url, state_dir)[1],
        "untrusted": regops(tls_server[0].url, state_dir)[1],
    }
    assert "the connection was refused" in said["refused"]
    assert f"no answer within {TIMEOUT_S} s" in said["timed out"]
    assert "TLS certificate is not trusted" in said["untrusted"]
    marks = {"refused": "refused", "timed out": "no answer within", "untrusted": "TLS"}
    for what, out in said.items():
        assert "Traceback" not in out
        assert [w for w, mark in marks.items() if mark in out] == [what], out


# ---- URIs ---------------------------------------------------------------------------------
def test_a_path_prefix_and_a_query_string_build_the_right_urls(
    server: HostileServer, state_dir: Path
) -> None:
    server.handlers.update(ONE_MODEL)
    code, out = regops(f"{server.url}/prefix/?x=1", state_dir, "plan", "--detailed-exitcode")
    assert code == 0, out
    paths = {path for path, _ in server.requests}
    assert paths == {
        "/prefix/api/2.0/mlflow/registered-models/search",
        "/prefix/api/2.0/mlflow/model-versions/search",
    }
    for _path, query in server.requests:
        assert query["x"] == ["1"]
        assert "max_results" in query


# ---- any JSON at any field: exit 0-3, never a traceback -----------------------------------
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
GOOD_VERSION = version("M", "1", current_stage="Production", tags=[{"key": "k", "value": "v"}])
GOOD_MODEL = model("M", aliases=[{"alias": "champion", "version": "1"}], tags=[], description="d")


@st.composite
def spoiled(draw: st.DrawFn, good: dict[str, Any]) -> Any:
    """`good` with some of its fields (or the whole item) replaced by any JSON value."""
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON)
    doc = dict(good)
    for key in draw(st.lists(st.sampled_from([*good, "extra"]), max_size=3)):
        doc[key] = draw(JSON)
    return doc


@settings(
    max_examples=int(os.environ.get("REGOPS_PROPERTY_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    models=st.lists(spoiled(GOOD_MODEL), min_size=1, max_size=2),
    versions=st.lists(spoiled(GOOD_VERSION), max_size=3),
)
def test_property_any_json_in_any_field_is_never_a_traceback(
    server: HostileServer, state_dir: Path, models: list[Any], versions: list[Any]
) -> None:
    server.handlers.update(registry(models, versions))
    for args in (
        ["plan", "--state-dir", str(state_dir)],
        ["get-model", "--model-name", "M", "--alias", "champion"],
        ["list-versions", "--model-name", "M"],
    ):
        result = CliRunner().invoke(cli, [*args, "--tracking-uri", server.url])
        assert result.exit_code in (0, 1, 2, 3), (args, result.output)
        assert "Traceback" not in result.output


def test_https_to_a_plain_http_server_is_a_failed_handshake(
    server: HostileServer, state_dir: Path
) -> None:
    code, out = regops(server.url.replace("http://", "https://"), state_dir)
    failed_cleanly(code, out, "the TLS handshake failed", "scheme")
    assert "certificate" not in out
    assert "refused" not in out
