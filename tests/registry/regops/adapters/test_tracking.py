"""Tracking URIs and credentials: one resolver, one masker, every way of opening a registry.

Every bad URI ends in exit 1 with a message naming the (masked) URI, never a traceback
and never a secret; a refused registry fails in seconds, a silent one within the HTTP
timeout; the masking holds for any generated URI and secret (hypothesis).
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from regops.adapters import tracking
from regops.adapters.mlflow.registry import (
    FATAL,
    TRANSIENT,
    UNREACHABLE,
    MlflowRegistry,
    RetryPolicy,
    classify,
)
from regops.adapters.tracking import mask_secrets, mask_uri, resolve_tracking_uri
from regops.cli import cli
from regops.errors import TrackingUriError

STATE = 'apiVersion: regops/v1\nmodels:\n  M:\n    versions:\n      "1": {stage: Production}\n'
REGOPS_BIN = str(Path(sys.executable).with_name("regops"))


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    d = tmp_path / "registry-state"
    d.mkdir()
    (d / "m.yaml").write_text(STATE, encoding="utf-8")
    return d


def run(uri: str, state_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli, [*(args or ("plan",)), "--tracking-uri", uri, "--state-dir", str(state_dir)]
    )
    return result.exit_code, result.output


# ---- resolution -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("flag", "env", "config", "expected"),
    [
        (
            "http://flag",
            {"MLFLOW_TRACKING_URI": "http://env"},
            "c",
            ("http://flag", "--tracking-uri"),
        ),
        (None, {"MLFLOW_TRACKING_URI": " http://env "}, "c", ("http://env", "MLFLOW_TRACKING_URI")),
        (None, {"DAGSHUB_REPO": "o/r"}, "c", ("https://dagshub.com/o/r.mlflow", "DAGSHUB_REPO")),
        (None, {"MLFLOW_TRACKING_URI": ""}, "sqlite:///c.db", ("sqlite:///c.db", "config")),
        (None, {}, None, ("sqlite:///mlflow.db", "default")),
    ],
    ids=["flag", "env", "dagshub", "config", "default"],
)
def test_resolution_order(
    flag: str | None, env: dict[str, str], config: str | None, expected: tuple[str, str]
) -> None:
    target = resolve_tracking_uri(flag, config, env)
    assert (target.uri, target.source) == expected


def test_bad_dagshub_repo_is_a_clear_error() -> None:
    with pytest.raises(TrackingUriError, match="DAGSHUB_REPO must look like OWNER/REPO"):
        resolve_tracking_uri(None, None, {"DAGSHUB_REPO": "just-a-name"})


# ---- masking ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://bob:s3cret@host/x", "https://***@host/x"),
        ("https://alice:p@ss@w0rd@host:5000/x", "https://***@host:5000/x"),  # '@' in the password
        ("postgresql+psycopg2://u:p%40ss@db/x", "postgresql+psycopg2://***@db/x"),
        ("https://host/x?token=abcd1234&page=2", "https://host/x?token=***&page=2"),
        ("https://host/x?X-Amz-Signature=deadbeef", "https://host/x?X-Amz-Signature=***"),
        (
            "error at http://u:pw@h:1/api and http://v:pw2@k/",
            "error at http://***@h:1/api and http://***@k/",
        ),
        ("sqlite:///mlflow.db", "sqlite:///mlflow.db"),
        ("mail bob@example.com about http://host/x", "mail bob@example.com about http://host/x"),
    ],
)
def test_masking(text: str, shown: str) -> None:
    assert mask_uri(text) == shown


def test_secret_env_values_are_masked_anywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "hunter2!")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok-123456")
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-abcdef")
    text = "401 for user alice with hunter2! (token tok-123456, dapi-abcdef, hunter2%21)"
    masked = mask_secrets(text)
    assert masked == "401 for user alice with *** (token ***, ***, ***)"


SECRET = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp")),
    min_size=tracking.MIN_SECRET_CHARS,
    max_size=24,
)
HOST = st.from_regex(r"[a-z][a-z0-9-]{0,12}(\.[a-z]{2,5})?(:[0-9]{1,5})?", fullmatch=True)
USER = st.from_regex(r"[A-Za-z0-9._~-]{1,12}", fullmatch=True)


@settings(max_examples=int(os.environ.get("REGOPS_PROPERTY_EXAMPLES", "200")), deadline=None)
@given(
    scheme=st.sampled_from(["http", "https", "postgresql", "mysql+pymysql", "databricks"]),
    user=USER,
    password=SECRET,
    host=HOST,
    token=SECRET,
    encode=st.booleans(),
    prefix=st.text(max_size=20),
)
def test_property_no_generated_secret_survives_masking(
    scheme: str, user: str, password: str, host: str, token: str, encode: bool, prefix: str
) -> None:
    """For any URI with userinfo and a token parameter, quoted in any error text: no secret
    (raw or percent-encoded) is left once the URI was seen by the resolver."""
    pw = quote(password, safe="") if encode else password
    uri = f"{scheme}://{user}:{pw}@{host}/api/2.0?access_token={quote(token, safe='')}&x=1"
    resolve_tracking_uri(uri, None, {})  # what every command does first
    text = f"{prefix} API request to {uri} failed; password was {password}, token {token}"
    masked = mask_secrets(text, environ={})
    for secret in (password, quote(password, safe=""), token, quote(token, safe="")):
        assert secret not in masked


# ---- opening a registry: every way ends in exit 1, a clear message, no secret -------------
@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("htp://alice:hunter2@127.0.0.1:9", "unknown scheme 'htp'"),
        ("mysql://alice:hunter2@127.0.0.1:9/db", "database driver is not installed"),
        ("mssql://alice:hunter2@127.0.0.1:9/db", "database driver is not installed"),
    ],
    ids=["bad-scheme", "no-mysql-driver", "no-mssql-driver"],
)
def test_unopenable_registry_exits_1_without_the_password(
    uri: str, says: str, state_dir: Path
) -> None:
    code, output = run(uri, state_dir)
    assert code == 1, output
    assert says in output
    assert "hunter2" not in output
    assert "Traceback" not in output
    assert "***@127.0.0.1:9" in output


def test_unopenable_sqlite_path_exits_1(state_dir: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code, output = run(f"sqlite:///{blocker}/sub/mlflow.db", state_dir)
    assert code == 1, output
    assert "cannot open the MLflow registry at sqlite:///" in output
    assert "Traceback" not in output


def test_refused_registry_fails_fast_naming_the_masked_uri(state_dir: Path, dead_port: int) -> None:
    uri = f"http://alice:hunter2@127.0.0.1:{dead_port}"
    for command in ("plan", "reconcile", "list-models", "export"):
        code, output = run(uri, state_dir, command)
        assert code == 1, output
        assert "cannot reach the MLflow registry at http://***@127.0.0.1:" in output
        assert "the connection was refused" in output
        assert "hunter2" not in output


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock.getsockname()[1]


def test_silent_registry_fails_with_a_timeout_not_a_hang(state_dir: Path, silent_port: int) -> None:
    """MLflow's own retries are bounded by the env (here 1 s x 2 tries); regops adds none."""
    env = {
        **os.environ,
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "1",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
    }
    proc = subprocess.run(
        [REGOPS_BIN, "plan", "--tracking-uri", f"http://127.0.0.1:{silent_port}"],
        cwd=state_dir.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert "no answer within 1 s" in proc.stderr


def test_history_tries_a_silent_registry_once_then_shows_the_git_side(
    state_dir: Path, silent_port: int
) -> None:
    """history's registry side is optional: one try (no MLflow retries unless the user set
    them), then the git side with a note; never the retried budget of `plan`."""
    repo = state_dir.parent
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "state"]):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@e", *args], cwd=repo,
                       check=True, capture_output=True)  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_HTTP_REQUEST")}
    env["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "1"
    uri = f"http://alice:hunter2@127.0.0.1:{silent_port}"
    proc = subprocess.run([REGOPS_BIN, "history", "--tracking-uri", uri], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Registry: not read (cannot reach the MLflow registry at http://***@127.0.0.1:" in (
        proc.stdout
    )
    assert "no answer within 1 s (0 retries)" in proc.stdout
    assert "M v1 stage: (not declared) -> Production" in proc.stdout
    assert "hunter2" not in proc.stdout + proc.stderr


def test_http_defaults_only_fill_what_the_user_left_unset() -> None:
    env = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "300"}
    added = tracking.http_defaults(env)
    assert env["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "300"
    assert "MLFLOW_HTTP_REQUEST_TIMEOUT" not in added
    assert (
        env["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
        == tracking.HTTP_DEFAULTS["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
    )


# ---- the retry policy: classified by type and code, injected, never around MLflow's --------
def test_classification_by_type_and_code() -> None:
    import requests
    import sqlalchemy.exc
    from mlflow.exceptions import MlflowException, RestException

    try:
        try:
            raise requests.exceptions.ConnectionError("refused")
        except requests.exceptions.ConnectionError:
            raise MlflowException("API request to http://h failed") from None
    except MlflowException as wrapped:  # MLflow raises without `from`: found via __context__
        exhausted = wrapped
    conflict = RestException({"error_code": "BAD_REQUEST", "message": "duplicate key"})
    integrity = MlflowException("x")
    integrity.__cause__ = sqlalchemy.exc.IntegrityError("stmt", {}, Exception("unique"))
    denied = RestException({"error_code": "PERMISSION_DENIED", "message": "Connection refused"})
    assert classify(exhausted) == UNREACHABLE  # never retried again
    assert classify(conflict) == TRANSIENT
    assert classify(integrity) == TRANSIENT
    assert classify(denied) == FATAL  # the prose says "refused": the code decides
    assert classify(ValueError("Max retries exceeded")) == FATAL


def test_injected_policy_retries_transient_failures_only(sqlite_uri: str) -> None:
    from mlflow.exceptions import RestException

    slept: list[float] = []
    policy = RetryPolicy(attempts=3, base_delay=0.25, sleep=slept.append)
    failures = [RestException({"error_code": "BAD_REQUEST", "message": "unique violation"})]

    def flaky() -> str:
        if failures:
            raise failures.pop()
        return "ok"

    assert policy.run(flaky) == ("ok", 2)
    assert slept == [0.25]
    registry = MlflowRegistry(sqlite_uri, policy=policy)
    with pytest.raises(Exception, match="RESOURCE_DOES_NOT_EXIST|not found"):
        registry.transition_stage("Nope", "1", "Staging")
    assert slept == [0.25]  # a missing model is not retried
    assert registry.calls == 1


def test_retry_policy_from_env() -> None:
    policy = RetryPolicy.from_env({"REGOPS_RETRY_ATTEMPTS": "1", "REGOPS_RETRY_DELAY": "0"})
    assert (policy.attempts, policy.base_delay) == (1, 0.0)


# ---- masking untrusted text: every secret removed (speed: bench/bench_masking.py) --------
# Secrets cut from one base string: they overlap, nest and repeat; the text is made of the
# base's pieces and other text, so occurrences touch, overlap and hide in each other.
BASE = st.text(alphabet="ab*?:/@&=%", min_size=4, max_size=16)


@st.composite
def secrets_and_text(draw: st.DrawFn) -> tuple[list[str], str]:
    base = draw(BASE)
    cuts = st.tuples(st.integers(0, len(base) - 4), st.integers(4, len(base)))
    secrets = sorted(
        {base[i : i + n] for i, n in draw(st.lists(cuts, min_size=1, max_size=5))} - {""},
        key=len,
    )
    secrets = [s for s in secrets if len(s) >= tracking.MIN_SECRET_CHARS] or [base]
    pieces = st.one_of(st.sampled_from([*secrets, base]), st.text(alphabet="ab*?c", max_size=6))
    return secrets, "".join(draw(st.lists(pieces, max_size=12)))


@settings(max_examples=int(os.environ.get("REGOPS_PROPERTY_EXAMPLES", "300")), deadline=None)
@given(case=secrets_and_text())
def test_property_masking_removes_every_secret_even_overlapping(
    case: tuple[list[str], str],
) -> None:
    """No secret is left in the masked text, whatever the overlaps; every character of an
    occurrence is gone (not only enough of it to break the match); text holding no secret
    is left as it was."""
    secrets, text = case
    covered = [False] * len(text)
    for s in secrets:
        for i in range(len(text) - len(s) + 1):
            if text.startswith(s, i):
                covered[i : i + len(s)] = [True] * len(s)
    # The oracle, naively: each maximal stretch of covered characters becomes one mask.
    want = "".join(
        tracking.MASK if c else "".join(chars)
        for c, group in itertools.groupby(zip(covered, text, strict=True), key=lambda x: x[0])
        for chars in ([ch for _, ch in group],)
    )
    env = {f"S{i}_TOKEN": s for i, s in enumerate(secrets)}
    hidden_whole = any(tracking.MASK in s for s in secrets)  # could reappear across a mask
    masked = tracking.mask_values(text, secrets)  # what reports are masked with, too
    assert masked == want or (hidden_whole and masked == tracking.MASK)
    for masked in (want, mask_secrets(text, environ=env)):
        assert hidden_whole or not any(s in masked for s in secrets)
    assert not any(s in mask_secrets(text, environ=env) for s in secrets)


def test_masking_overlapping_and_nested_secrets() -> None:
    assert tracking.mask_values("abcdef", ["abcd", "cdef"]) == "***"  # no "ef" left over
    assert tracking.mask_values("xabcdyabcdabcd", ["abcd", "bcd"]) == "x***y***"
    assert tracking.mask_values("x***y", ["x***"]) == "***y"
    assert tracking.mask_values("xx***", ["x***"]) == tracking.MASK  # it would reappear: all hidden
    assert tracking.mask_values("plain", ["", "zzzz"]) == "plain"  # an empty secret masks nothing
