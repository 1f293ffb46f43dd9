"""Hostile JSON: every JSON input regops reads but did not write ends in exit 1 naming it.

The inputs: `plan --live SNAPSHOT`, `reconcile --plan PLAN`, `propose --candidates FILE`,
`candidates --manifest FILE` (a fork's pull request or another job writes them) and the
JSON tags regops keeps in the registry (`regops.audit`, `regops.copied_from`,
`regops.applied`: anyone who can write the registry writes them). Each file input is run
through the CLI with each hostile kind (tests/fixtures/hostile_json/ and the ones too big
to keep there, built below) and must exit 1 with a message naming the file (and the field
where there is one), never a traceback (exit 70). A hostile tag, written with MlflowClient
on a real sqlite registry, is a warning naming the model, version and tag, and `plan` and
`history` go on as if it were absent.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from regops.cli import cli
from regops.core import jsonio
from regops.errors import JsonInputError, RegopsError
from tests.support.paths import FIXTURES
from tests.support.repo import Repo, client
from tests.support.servers import MlflowServer, make_registry

HOSTILE = FIXTURES / "hostile_json"

STATE = """\
apiVersion: regops/v1
models:
  Fraud:
    versions:
      "1": {stage: Staging}
"""


def run(*args: str, stdin: bytes | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=stdin)


@dataclass(frozen=True)
class Command:
    """One command reading one JSON input; `args(path, uri)` is its command line."""

    name: str
    args: Callable[[str, str], list[str]]
    max_bytes: int
    top: str  # the JSON type its top level must be


COMMANDS = [
    Command("plan --live", lambda f, _: ["plan", "--live", f], jsonio.SNAPSHOT_MAX_BYTES, "object"),
    Command(
        "reconcile --plan",
        lambda f, uri: ["reconcile", "--plan", f, "--tracking-uri", uri],
        jsonio.PLAN_MAX_BYTES,
        "object",
    ),
    Command(
        "propose --candidates",
        lambda f, _: ["propose", "--candidates", f, "--body", "pr.md"],
        jsonio.CANDIDATES_MAX_BYTES,
        "array",
    ),
    Command(
        "candidates --manifest",
        lambda f, uri: ["candidates", "--manifest", f, "--tracking-uri", uri],
        jsonio.MANIFEST_MAX_BYTES,
        "object",
    ),
]
BY_NAME = {c.name: c for c in COMMANDS}


def sparse(path: Path, size: int) -> None:
    """A file of `size` bytes that takes no disk space (its stat says how big it is)."""
    with path.open("wb") as fh:
        fh.truncate(size)


# kind -> (build the file in a directory for a command: its path, what the message says)
Builder = Callable[[Path, Command], Path]


def fixture(name: str) -> Builder:
    return lambda d, _: HOSTILE / name


def text(body: str | bytes) -> Builder:
    def build(d: Path, _: Command) -> Path:
        p = d / "input.json"
        p.write_bytes(body if isinstance(body, bytes) else body.encode())
        return p

    return build


def oversize(d: Path, c: Command) -> Path:
    p = d / "huge.json"
    sparse(p, c.max_bytes + 1)
    return p


def fifo(d: Path, _: Command) -> Path:
    p = d / "pipe.json"
    os.mkfifo(p)  # opening it for reading would wait for a writer forever
    return p


N = 100_000
KINDS: dict[str, tuple[Builder, str]] = {
    "deep_arrays": (text("[" * N + "]" * N), "nested 100,000 levels deep (at most 32)"),
    "deep_objects": (text('{"a":' * N + "1" + "}" * N), "nested 100,000 levels deep"),
    "deep_unclosed": (text("[" * N), "nested 100,000 levels deep"),
    "huge_int": (text('{"a": ' + "9" * N + "}"), "a number with 100,000 digits (at most 20)"),
    "huge_negative_int": (text("[-" + "1" * 5000 + "]"), "a number with 5,000 digits"),
    "long_float": (text("[0." + "1" * N + "]"), "a number 100,002 characters long"),
    "huge_exponent": (fixture("huge_exponent.json"), "the number 1e999999 is out of range"),
    "nan": (fixture("nan.json"), "NaN is not a number JSON allows"),
    "infinity": (fixture("infinity.json"), "-Infinity is not a number JSON allows"),
    "duplicate_key": (fixture("duplicate_key.json"), "duplicate key 'format_version'"),
    "invalid_utf8": (fixture("invalid_utf8.json"), "not UTF-8: byte 0xff at offset 7"),
    "utf16": (fixture("utf16.json"), "not UTF-8: byte 0xff at offset 0"),
    "lone_surrogate": (fixture("lone_surrogate.json"), "a string holds a lone surrogate"),
    "not_json": (fixture("not_json.json"), "not JSON: Expecting property name"),
    "truncated": (fixture("truncated.json"), "not JSON: Expecting ',' delimiter (line 2"),
    "empty": (fixture("empty.json"), "not JSON: Expecting value (line 1, column 1)"),
    "top_null": (fixture("top_null.json"), "a JSON null, not an"),
    "top_string": (fixture("top_string.json"), "a JSON string, not an"),
    "top_number": (fixture("top_number.json"), "a JSON number, not an"),
    "oversize": (oversize, "larger than the"),
    "fifo": (fifo, "not a regular file"),
    "device": (lambda d, _: Path("/dev/zero"), "not a regular file"),
}


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_uri: str) -> str:
    monkeypatch.chdir(tmp_path)
    make_registry(sqlite_uri, {"Fraud": 1})
    (tmp_path / "registry-state").mkdir()
    (tmp_path / "registry-state" / "fraud.yaml").write_text(STATE)
    return sqlite_uri


def assert_refused(result: Result, path: Path | str, *needles: str) -> None:
    out = result.output
    assert result.exit_code == 1, out
    assert "Traceback" not in out, out
    assert "internal error" not in out, out
    assert f"error: {path}: " in out, out  # the message names the file first
    for needle in needles:
        assert needle in out, out
    assert len(out) < 2000, out  # the hostile input is not echoed back


@pytest.mark.parametrize("kind", list(KINDS), ids=list(KINDS))
@pytest.mark.parametrize("command", COMMANDS, ids=[c.name for c in COMMANDS])
def test_a_hostile_file_is_refused_naming_it(
    repo: str, tmp_path: Path, command: Command, kind: str
) -> None:
    build, says = KINDS[kind]
    path = build(tmp_path, command)
    before = (tmp_path / "registry-state" / "fraud.yaml").read_bytes()
    result = run(*command.args(str(path), repo))
    assert_refused(result, path, says)
    if kind.startswith("top_"):
        assert f"not an {command.top}" in result.output
    if kind == "oversize":
        assert f"larger than the {jsonio._size(command.max_bytes)} a " in result.output
    # Nothing was done on its behalf.
    assert (tmp_path / "registry-state" / "fraud.yaml").read_bytes() == before
    assert not (tmp_path / "pr.md").exists()


@pytest.mark.parametrize(
    ("command", "kind"),
    [(c, k) for c in COMMANDS for k in ("top_number", "oversize")],
    ids=[f"{c.name}-{k}" for c in COMMANDS for k in ("top_number", "oversize")],
)
def test_the_error_says_what_the_file_should_have_been(
    repo: str, tmp_path: Path, command: Command, kind: str
) -> None:
    path = KINDS[kind][0](tmp_path, command)
    result = run(*command.args(str(path), repo))
    what = {
        "plan --live": "not a readable snapshot (",
        "reconcile --plan": "not a regops plan file (",
        "propose --candidates": "not a candidates file (",
        "candidates --manifest": "not a training manifest (",
    }[command.name]
    assert_refused(result, path, what)


def test_an_oversize_candidates_file_on_stdin_is_refused(repo: str) -> None:
    result = run("propose", "--candidates", "-", "--body", "pr.md",
                 stdin=b"[" + b" " * jsonio.CANDIDATES_MAX_BYTES + b"]")  # fmt: skip
    assert_refused(result, "stdin", "larger than the 1 MiB a candidates file may be")


def test_a_hostile_candidates_file_on_stdin_is_refused(repo: str) -> None:
    result = run("propose", "--candidates", "-", "--body", "pr.md", stdin=b"[" * N)
    assert_refused(result, "stdin", "nested 100,000 levels deep")


# ---- the right JSON with the wrong fields -----------------------------------------------------

SNAPSHOT = {
    "format_version": "1",
    "kind": "regops-snapshot",
    "created_at": "2026-01-01T00:00:00Z",
    "registry": "prod",
    "has_stages": True,
    "live_fingerprint": "0" * 64,
    "models": {
        "Fraud": {
            "description": None,
            "aliases": {},
            "tags": {},
            "versions": {"1": {"stage": "None", "run_id": None, "tags": {}}},
        }
    },
}
PLAN = {
    "format_version": "1",
    "created_at": "2026-01-01T00:00:00Z",
    "registry": "sqlite:///x.db",
    "state_files": [],
    "state_digest": "",
    "live_fingerprint": "0" * 64,
    "models": ["Fraud"],
    "suspended_models": [],
    "errors": [],
    "changes": [
        {
            "model": "Fraud",
            "version": "1",
            "kind": "stage",
            "alias": None,
            "before": "None",
            "after": "Staging",
            "reason": "state",
            "drift": False,
            "action": "apply",
            "gates": [],
        }
    ],
    "records": {},
    "summary": {
        "to_apply": 1,
        "blocked": 0,
        "suspended": 0,
        "drift_warnings": 0,
        "drift": 0,
        "errors": 0,
    },
}


def edited(doc: dict[str, object], path: list[str | int], value: object) -> dict[str, object]:
    """A deep copy of `doc` with the value at `path` replaced."""
    out: dict[str, object] = json.loads(json.dumps(doc))
    node: object = out
    for key in path[:-1]:
        node = node[key]  # type: ignore[index]
    node[path[-1]] = value  # type: ignore[index]
    return out


def renamed_version(doc: dict[str, object], new: str) -> dict[str, object]:
    out: dict[str, Any] = json.loads(json.dumps(doc))
    versions = out["models"]["Fraud"]["versions"]
    versions[new] = versions.pop("1")
    return out


BIG = "9" * 5000  # Python refuses int() of more than 4,300 digits
WRONG_FIELDS: list[tuple[str, str, object, str]] = [
    # (command, id, document, what the message names)
    ("plan --live", "models_list", edited(SNAPSHOT, ["models"], []), "models: [] is not"),
    ("plan --live", "has_stages_string", edited(SNAPSHOT, ["has_stages"], "yes"), "has_stages:"),
    ("plan --live", "stage_number",
     edited(SNAPSHOT, ["models", "Fraud", "versions", "1", "stage"], 7),
     "models/Fraud/versions/1/stage:"),
    ("plan --live", "tag_null",
     edited(SNAPSHOT, ["models", "Fraud", "versions", "1", "tags"], {"k": None}),
     "models/Fraud/versions/1/tags/k:"),
    ("plan --live", "created_ms_string",
     edited(SNAPSHOT, ["models", "Fraud", "versions", "1", "created_ms"], "yesterday"),
     "models/Fraud/versions/1/created_ms:"),
    ("plan --live", "version_5000_digits", renamed_version(SNAPSHOT, BIG),
     "models/Fraud/versions:"),
    ("plan --live", "alias_5000_digits",
     edited(SNAPSHOT, ["models", "Fraud", "aliases"], {"champion": BIG}),
     "models/Fraud/aliases/champion:"),
    ("reconcile --plan", "changes_object", edited(PLAN, ["changes"], {}), "changes: {} is not"),
    ("reconcile --plan", "count_string", edited(PLAN, ["summary", "to_apply"], "3"),
     "summary.to_apply:"),
    ("reconcile --plan", "gates_null", edited(PLAN, ["changes", 0, "gates"], None),
     "changes.0.gates:"),
    ("reconcile --plan", "model_list", edited(PLAN, ["changes", 0, "model"], ["Fraud"]),
     "changes.0.model:"),
    ("reconcile --plan", "version_5000_digits", edited(PLAN, ["changes", 0, "version"], BIG),
     "changes.0.version: '99999"),
    ("reconcile --plan", "version_words", edited(PLAN, ["changes", 0, "version"], "one"),
     "changes.0.version: 'one' is not a version number"),
    ("reconcile --plan", "restamp_not_a_version",
     {**PLAN, "restamps": [["Fraud", "1e5"]]}, "restamps.0.1: '1e5' is not a version number"),
    # kinds and actions are enums in regops.core.plan: an unknown one is refused, not a ValueError
    ("reconcile --plan", "kind_unknown", edited(PLAN, ["changes", 0, "kind"], "teleport"),
     "changes.0.kind: 'teleport' is not one of"),
    ("reconcile --plan", "action_unknown", edited(PLAN, ["changes", 0, "action"], "maybe"),
     "changes.0.action: 'maybe' is not one of"),
    ("reconcile --plan", "format_version_huge", edited(PLAN, ["format_version"], "1" * N),
     "plan format_version '111"),
    ("propose --candidates", "object_not_list", {"model": "Fraud", "version": "1"},
     "a JSON object, not an array"),
    ("propose --candidates", "row_string", ["Fraud"], "[0]: an object is expected"),
    ("propose --candidates", "model_number", [{"model": 1, "version": "1"}],
     "[0].model: a model name is expected"),
    ("propose --candidates", "model_list", [{"model": ["Fraud"], "version": "1"}],
     "[0].model: a model name is expected"),
    ("propose --candidates", "version_null", [{"model": "Fraud", "version": None}],
     "[0].version: a version number is expected"),
    ("propose --candidates", "version_5000_digits", [{"model": "Fraud", "version": BIG}],
     "[0].version: a version number is expected"),
    ("propose --candidates", "version_float", [{"model": "Fraud", "version": 1.5}],
     "[0].version: a version number is expected"),
    ("propose --candidates", "second_row_bad",
     [{"model": "Fraud", "version": "1"}, {"model": "Fraud"}],
     "[1].version: a version number is expected"),
    ("candidates --manifest", "no_models", {}, "models: missing"),
    ("candidates --manifest", "models_object", {"models": {"Fraud": 1}},
     "models: a JSON array is expected"),
    ("candidates --manifest", "model_null",
     {"models": [{"registered_model": None, "version": 1}]},
     "models[0].registered_model: a model name is expected"),
    ("candidates --manifest", "version_list",
     {"models": [{"registered_model": "Fraud", "version": [1]}]},
     "models[0].version: a version number is expected"),
    ("candidates --manifest", "version_bool",
     {"models": [{"registered_model": "Fraud", "version": True}]},
     "models[0].version: a version number is expected"),
    ("candidates --manifest", "version_negative",
     {"models": [{"registered_model": "Fraud", "version": -1}]},
     "models[0].version: a version number is expected"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("command", "doc", "names"),
    [(c, d, n) for c, _, d, n in WRONG_FIELDS],
    ids=[f"{c}-{i}" for c, i, _, _ in WRONG_FIELDS],
)
def test_a_wrong_field_is_refused_naming_file_and_field(
    repo: str, tmp_path: Path, command: str, doc: object, names: str
) -> None:
    path = tmp_path / "input.json"
    path.write_text(json.dumps(doc))
    result = run(*BY_NAME[command].args(str(path), repo))
    assert_refused(result, path, names)
    assert not (tmp_path / "pr.md").exists()


def test_the_valid_documents_above_are_accepted(repo: str, tmp_path: Path) -> None:
    """The wrong-field cases differ from these by their one field only."""
    (tmp_path / "plan.json").write_text(json.dumps(PLAN))
    result = run("reconcile", "--plan", "plan.json", "--dry-run", "--tracking-uri", repo)
    assert result.exit_code == 0, result.output
    (tmp_path / "c.json").write_text(json.dumps([{"model": "Fraud", "version": 1}]))
    result = run("propose", "--candidates", "c.json", "--body", "pr.md")
    assert result.exit_code == 0, result.output
    (tmp_path / "m.json").write_text(
        json.dumps({"models": [{"registered_model": "Fraud", "version": 1}]})
    )
    result = run("candidates", "--manifest", "m.json", "--tracking-uri", repo)
    assert result.exit_code == 0, result.output
    (tmp_path / "snap.json").write_text(json.dumps(SNAPSHOT))
    result = run("plan", "--live", "snap.json")  # schema-valid: only its fingerprint is off
    assert_refused(result, "snap.json", "does not match its live_fingerprint")


# ---- tags written by other clients of the registry -------------------------------------------

# (id, value): each written as regops.audit and regops.copied_from on version 1, and as
# regops.applied on the model. MLflow stores up to 100,000 characters in a tag.
HOSTILE_TAGS = [
    ("deep_arrays", "[" * 4999),
    ("deep_objects", '{"env": ' * 5000),
    ("huge_int", '{"commit": ' + "9" * 4500 + "}"),
    ("nan", '{"commit": NaN, "env": NaN}'),
    ("huge_exponent", '{"at": 1e999999}'),
    ("duplicate_key", '{"commit": "a", "commit": "b", "env": "x", "env": "y"}'),
    ("wrong_type", '["not", "a", "stamp"]'),
    ("wrong_field_types", '{"commit": {"a": 1}, "held": "Production", "env": 1, "model": []}'),
    ("lone_surrogate", '{"commit": "\\ud800", "env": "\\udfff"}'),
    ("long", '{"commit": "' + "a" * 90_000 + '"}'),
]
TAGS = ("regops.audit", "regops.copied_from")


@pytest.fixture
def history_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_uri: str) -> str:
    """A git repository whose state declares Fraud v1, over a registry holding it."""
    repo = Repo(tmp_path / "repo")
    monkeypatch.chdir(repo.root)
    (repo.root / "registry-state").mkdir()
    (repo.root / "registry-state" / "fraud.yaml").write_text(STATE)
    repo.commit("Declare Fraud", who="alice")
    make_registry(sqlite_uri, {"Fraud": 1})
    return sqlite_uri


def warning_lines(result: Result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("warning: ")]


@pytest.mark.parametrize("value", [v for _, v in HOSTILE_TAGS], ids=[i for i, _ in HOSTILE_TAGS])
def test_a_hostile_tag_is_a_warning_naming_it_and_treated_as_absent(
    history_repo: str, value: str
) -> None:
    uri = history_repo
    c = client(uri)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        for tag in TAGS:
            c.set_model_version_tag("Fraud", "1", tag, value)
        c.set_registered_model_tag("Fraud", "regops.applied", value)

    plan = run("plan", "--tracking-uri", uri, "--format", "json")
    assert plan.exit_code == 0, plan.output
    assert "Traceback" not in plan.output
    warned = warning_lines(plan)
    for tag in TAGS:
        assert any(f"model 'Fraud' version 1: tag {tag} is not" in w for w in warned), warned
    assert any("model 'Fraud': tag regops.applied is not a record" in w for w in warned), warned
    assert all("treated as absent" in w and len(w) < 400 for w in warned), warned
    # Treated as absent: the plan is the plan of a version regops never touched.
    doc = json.loads(plan.stdout)
    assert [(c["version"], c["after"], c["drift"]) for c in doc["changes"]] == [
        ("1", "Staging", False)
    ]
    assert len(doc["warnings"]) == 3

    history = run("history", "--tracking-uri", uri)
    assert history.exit_code == 0, history.output
    assert "Traceback" not in history.output
    warned = warning_lines(history)
    for tag in TAGS:
        assert any(f"model 'Fraud' version 1: tag {tag} is not" in w for w in warned), warned
    assert "Fraud v1 stage: (not declared) -> Staging" in history.output
    assert "no regops stamp on this version" in history.output

    at = run("history", "--at", "2100-01-01T00:00Z", "--tracking-uri", uri)
    assert at.exit_code == 0, at.output
    assert "Traceback" not in at.output


def test_a_hostile_stamp_is_read_as_absent_over_rest_too(
    mlflow_server: MlflowServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The REST reader (a remote registry) meets the same tags as the in-process one."""
    uri = mlflow_server.url
    name = f"JsonHostile_{tmp_path.name}"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "registry-state").mkdir()
    (tmp_path / "registry-state" / "m.yaml").write_text(STATE.replace("Fraud", name))
    c = client(uri)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        c.create_registered_model(name)
        c.create_model_version(name, source="s3://b/1", run_id=None)
        c.set_model_version_tag(name, "1", "regops.audit", "[" * 4999)
        c.set_model_version_tag(name, "1", "regops.copied_from", '{"env": ' * 5000)
    result = run("plan", "--tracking-uri", uri)
    assert result.exit_code == 0, result.output
    warned = warning_lines(result)
    assert any(f"'{name}' version 1: tag regops.audit is not a stamp" in w for w in warned)
    assert any(f"'{name}' version 1: tag regops.copied_from is not a" in w for w in warned)
    assert "nested 4,999 levels deep (at most 8)" in result.output


# ---- the reader itself ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("x" * (jsonio.TAG_MAX_CHARS + 1), "100,001 characters long (at most 100,000)"),
        ("[" * 9 + "]" * 9, "nested 9 levels deep (at most 8)"),
        ('{"a": 1, "a": 1}', "duplicate key 'a'"),
        ("Infinity", "Infinity is not a number JSON allows"),
    ],
    ids=["oversize", "deep", "duplicate", "infinity"],
)
def test_a_tag_is_bounded(raw: str, why: str) -> None:
    with pytest.raises(JsonInputError) as exc:
        jsonio.parse_tag(raw)
    assert str(exc.value) == why


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = json.dumps({"a": "[" * 1000 + '"\\' + "{" * 1000, "b": [[["]]]"]]]})
    assert jsonio.depth(text) == 4
    assert jsonio.loads(text, source="x", top=dict)["b"] == [[["]]]"]]]


@pytest.mark.parametrize("levels", [1, 31, 32, 33, 1000], ids=lambda n: f"{n}_levels")
def test_nesting_is_refused_just_above_the_limit(levels: int) -> None:
    text = "[" * levels + "]" * levels
    if levels <= jsonio.MAX_DEPTH:
        assert jsonio.loads(text, source="x", top=list) is not None
    else:
        with pytest.raises(JsonInputError, match=f"nested {levels:,} levels deep"):
            jsonio.loads(text, source="x", top=list)


# What a JSON text is made of, and what breaks parsers: any mix of it must parse or be refused.
PIECES = st.sampled_from(
    ["[", "]", "{", "}", '"', "\\", ",", ":", " ", "0", "-", "1e999", "NaN", "Infinity",
     "true", "null", '"a"', '"\\ud800"', '"\\u00e9"', "9" * 30, "1.5", "\xff", "\ufeff"]
)  # fmt: skip
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=20,
)


def attempt(call: Callable[[], Any]) -> tuple[Any, RegopsError | None]:
    """What `call` returns, or the RegopsError it raises; any other exception fails the test."""
    try:
        return call(), None
    except RegopsError as exc:
        return None, exc


@settings(max_examples=300, deadline=None)
@given(st.lists(PIECES, max_size=60).map("".join))
def test_any_text_is_a_value_or_a_regops_error(text: str) -> None:
    for top in (dict, list):
        value, error = attempt(lambda t=top: jsonio.loads(text, source="x", top=t))  # type: ignore[misc]
        assert isinstance(value, top) if error is None else str(error).startswith("x: refused (")
    value, error = attempt(lambda: jsonio.parse_tag(text))
    assert error is None or isinstance(error, JsonInputError)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=200_000), st.sampled_from(["[]", "{}", '{"a":}']))
def test_any_nesting_depth_is_a_value_or_a_regops_error(levels: int, pair: str) -> None:
    opener, closer = (pair[:-1], pair[-1]) if len(pair) > 2 else (pair[0], pair[1])
    inner = "1" if len(pair) > 2 else ""
    text = opener * levels + inner + closer * levels
    value, error = attempt(
        lambda: jsonio.loads(text, source="x", top=dict if "{" in pair else list)
    )
    if error is None:
        assert 0 < levels <= jsonio.MAX_DEPTH
        assert value is not None
    elif levels > jsonio.MAX_DEPTH:
        assert f"nested {levels:,} levels deep" in str(error)
    else:
        assert "not JSON" in str(error) or levels == 0, str(error)


@settings(max_examples=200, deadline=None)
@given(JSON_VALUES)
def test_what_json_dumps_writes_within_the_limits_reads_back(value: object) -> None:
    top = dict if isinstance(value, dict) else list
    back, error = attempt(lambda: jsonio.loads(json.dumps(value), source="x", top=top))
    if error is None:
        assert back == value
    else:  # only what JSON has no form for, or what is beyond the limits, is refused
        refusals = ("NaN", "Infinity", "digits", "a JSON", "surrogate")
        assert any(w in str(error) for w in refusals), error
