"""What regops prints on a terminal is shown, never obeyed; text tables align on wide text.

Hostile text sits where other clients of a shared registry (or a server) put it: a model
name, a version's evidence tag, a model description, a server's error message. Each holds
a hyperlink (OSC 8), a screen clear (CSI), a carriage return and a right-to-left override;
the commands that show it print none of them raw, but each as a visible escape. Output is
captured as a terminal would get it (`color=True`: click strips nothing).
"""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from mlflow import MlflowClient

from regops.cli import cli
from regops.render.mdsafe import width

HOSTILE = "x\x1b]8;;https://evil.example\x07click\x1b]8;;\x07\x1b[2J\rfake\u202eesrever\x9b"
RAW = ["\x1b", "\x07", "\r", "\u202e", "\x9b"]  # none of these may reach the terminal
SHOWN = ["\\x1b]8;;", "\\x07", "\\x1b[2J", "\\r", "\\u202e", "\\x9b"]
# MLflow refuses `/` and `:` in a model name: the same, with its hyperlink to a bare host.
HOSTILE_NAME = "Name" + HOSTILE.replace("https://", "")


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), color=True)


def shows_none_raw(result: Result) -> str:
    out = result.stdout + result.stderr
    for raw in RAW:
        assert raw not in out, (raw, out)
    for shown in SHOWN:  # the reader sees them, as escapes
        assert shown in out, (shown, out)
    return out


def client(uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@pytest.fixture
def hostile(sqlite_uri: str) -> str:
    c = client(sqlite_uri)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        c.create_registered_model(HOSTILE_NAME, description=HOSTILE)
        c.create_model_version(HOSTILE_NAME, source="s3://b/1", run_id=None)
        c.create_registered_model("Fraud", description=HOSTILE)
        c.create_model_version("Fraud", source="s3://b/2", run_id=None)
        c.set_model_version_tag("Fraud", "1", "validation_status", HOSTILE)
        c.set_registered_model_alias("Fraud", "champion", "1")
    return sqlite_uri


def test_list_models_shows_a_hostile_name_as_escapes(hostile: str) -> None:
    result = run("list-models", "--tracking-uri", hostile)
    assert result.exit_code == 0, result.output
    out = shows_none_raw(result)
    assert len(out.strip().splitlines()) == 3  # header and two models: no forged line


def test_get_model_shows_a_hostile_evidence_tag_as_escapes(hostile: str) -> None:
    result = run("get-model", "--tracking-uri", hostile, "--model-name", "Fraud", "--alias",
                 "champion")  # fmt: skip
    assert result.exit_code == 0, result.output
    out = shows_none_raw(result)
    assert any(line.startswith("validation_status:") for line in out.splitlines())


def test_plan_shows_a_hostile_description_and_gate_detail_as_escapes(
    hostile: str, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "fraud.yaml").write_text(
        "apiVersion: regops/v1\n"
        "policy:\n  stages:\n    Production:\n      require_tags: {validation_status: passed}\n"
        "models:\n  Fraud:\n    description: plain\n"
        '    versions:\n      "1": {stage: Production, aliases: [champion]}\n'
    )
    result = run("plan", "--tracking-uri", hostile, "--state-dir", str(state))
    assert result.exit_code == 1, result.output  # blocked: the tag is not `passed`
    out = result.stdout + result.stderr
    for raw in RAW:
        assert raw not in out, (raw, out)
    assert "\\x1b[2J" in out
    assert "\\u202e" in out
    assert "FAIL require_tags: validation_status" in out


@pytest.fixture
def hostile_server() -> Iterator[str]:
    """A server answering every MLflow REST call with an error whose message is hostile."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"error_code": "INVALID_PARAMETER_VALUE", "message": HOSTILE})
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_a_server_error_message_is_shown_as_escapes(hostile_server: str) -> None:
    result = run("list-models", "--tracking-uri", hostile_server)
    assert result.exit_code == 1, result.output
    for raw in RAW:
        assert raw not in result.output, (raw, result.output)
    # The registry keeps an error's first line (a `\r` ends it); what it keeps is escaped.
    assert "x\\x1b]8;;https://evil.example\\x07click\\x1b]8;;\\x07\\x1b[2J" in result.stderr
    assert result.stderr.startswith("error: ")
    assert "INVALID_PARAMETER_VALUE" in result.stderr


# ---- wide characters -------------------------------------------------------------------

WIDE_NAMES = ["模型", "🚀rocket", "naïve", "cafe\u0301", "ＦＵＬＬ", "plain", "한국어모델"]


def test_text_tables_align_on_wide_characters(sqlite_uri: str) -> None:
    c = client(sqlite_uri)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        for name in WIDE_NAMES:
            c.create_registered_model(name)
            c.create_model_version(name, source="s3://b/x", run_id=None)
    result = run("list-models", "--tracking-uri", sqlite_uri)
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip("\n").splitlines()
    assert len(lines) == 1 + len(WIDE_NAMES)
    assert {line.split("  ", 1)[0].strip() for line in lines[1:]} == set(WIDE_NAMES)
    # Each column starts at its header's display column on every row (a CJK character and
    # an emoji take two columns, a combining accent none).
    header = lines[0]
    for col in ("VERSIONS", "LATEST", "STAGES", "ALIASES"):
        at = width(header[: header.index(col)])
        for line in lines[1:]:
            cut = _at_width(line, at)
            assert cut > 0, (col, line)
            assert line[cut - 1] == " ", (col, line)
            assert line[cut] != " ", (col, line)


def _at_width(line: str, columns: int) -> int:
    """The index in `line` where `columns` display columns have been used."""
    for i in range(len(line) + 1):
        if width(line[:i]) == columns and (i == len(line) or width(line[i]) > 0):
            return i
    return 0
