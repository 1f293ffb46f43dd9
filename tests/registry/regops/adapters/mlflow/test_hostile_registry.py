"""Hostile registries: what other clients of a shared registry may write there must not
break regops for everyone.

The corpus is built with `MlflowClient` (one registry holding every odd thing MLflow
accepts), and the one thing no client API can write (a version still registering) is set
in the registry's database, as another registry could show it. Each test runs the commands
a user runs against it, in-process sqlite and REST (one real `mlflow server` for the
module), and checks the expected behaviour of every odd item:

- a name, alias or description the state format can hold is listed and exported so that
  `plan --detailed-exitcode` on the export exits 0;
- one it cannot hold is listed, and skipped by `export` with a warning naming it (escaped);
- a hand-edited `regops.applied` or a corrupt `regops.audit` is a warning, treated as absent;
- a version that is not READY is never promoted, and the plan says why;
- nothing crashes (exit 70) and no odd item breaks the others.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from regops.cli import cli
from tests.support.servers import MlflowServer, start_mlflow_server

# Names MLflow accepts that a state file cannot declare: listed, never exported.
ODD_NAMES = [
    "with space",
    "hash#tag",
    "new\nline",
    "tab\tname",
    "emoji\U0001f600",
    "na\u00efve",
    "quote'd\"x",
    "back\\slash",
    "zero\u200bwidth",
    "bidi\u202eesrever",
    "M" * 300,
]
# Names a state file can declare although YAML would type them: exported quoted.
YAML_TYPED_NAMES = ["on", "null", "017", "1.0", "True"]
# Aliases MLflow accepts that YAML would type: exported quoted.
YAML_TYPED_ALIASES = ["017", "true", "null", "0x1A", "-x"]
NON_ASCII_ALIAS = "ch\u00e4mpion"  # MLflow's \w takes it; the state format does not
DESCRIPTIONS = {
    "Desc_emoji": "Gradient boosting \U0001f680 on crash records",
    "Desc_newline": "first line\nsecond line\n",
    "Desc_hidden": "looks short\u2028\u202e but is not\u200b, tab\there, nul\x00, nbsp\xa0",
}
CORRUPT_APPLIED = "{hand edited: yes"
CORRUPT_AUDIT = '["not", "a stamp"]'
NOT_READY = "PENDING_REGISTRATION"

STATE = """\
apiVersion: regops/v1
models:
  Shared:
    versions:
      "1": {stage: Staging}
      "2": {stage: Production, aliases: [champion]}
"""


def client(uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def build_corpus(uri: str, db: Path) -> None:
    """The hostile registry, as other clients of a shared registry could leave it."""
    c = client(uri)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        for name in [*ODD_NAMES, *YAML_TYPED_NAMES, *DESCRIPTIONS, "Aliased", "Typed_aliases"]:
            c.create_registered_model(name, description=DESCRIPTIONS.get(name))
            c.create_model_version(name, source=f"s3://b/{len(name)}", run_id=None)
        for name in YAML_TYPED_NAMES:
            c.transition_model_version_stage(name, "1", "Staging")
        c.set_registered_model_alias("Aliased", NON_ASCII_ALIAS, "1")
        c.set_registered_model_alias("Aliased", "ok", "1")
        for alias in YAML_TYPED_ALIASES:
            c.set_registered_model_alias("Typed_aliases", alias, "1")
        # The model regops manages: foreign hands edited its regops tags; version 2 is
        # still registering (what a registry with asynchronous registration shows).
        c.create_registered_model("Shared")
        for _ in range(2):
            c.create_model_version("Shared", source="s3://b/shared", run_id=None)
        c.set_registered_model_tag("Shared", "regops.applied", CORRUPT_APPLIED)
        c.set_model_version_tag("Shared", "1", "regops.audit", CORRUPT_AUDIT)
    with sqlite3.connect(db) as conn:
        n = conn.execute(
            "UPDATE model_versions SET status = ? WHERE name = 'Shared' AND version = 2",
            (NOT_READY,),
        ).rowcount
    assert n == 1


@dataclass
class Registry:
    uri: str
    db: Path


@pytest.fixture(scope="module")
def _server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """This module's own server: its odd models must not show in other tests' registries."""
    server = start_mlflow_server(tmp_path_factory.mktemp("hostile-server"))
    yield server
    server.stop()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("rest", marks=pytest.mark.server)])
def hostile(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """The corpus, built once per backend; tests only read it or reconcile `Shared`."""
    if request.param == "sqlite":
        db = tmp_path_factory.mktemp("hostile-sqlite") / "mlflow.db"
        shutil.copyfile(request.getfixturevalue("_empty_registry_db"), db)
        reg = Registry(f"sqlite:///{db}", db)
    else:
        server: MlflowServer = request.getfixturevalue("_server")
        reg = Registry(server.url, Path(server.cmd[server.cmd.index("--backend-store-uri") + 1]
                                        .removeprefix("sqlite:///")))  # fmt: skip
    build_corpus(reg.uri, reg.db)
    return reg


@pytest.fixture(scope="session")
def empty_db(_empty_registry_db: Path) -> Path:
    """A migrated, empty MLflow database to copy (migrations take seconds)."""
    return _empty_registry_db


def regops(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code != 70, result.output  # never an internal error
    assert "Traceback" not in result.output, result.output
    return result


def warning_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("warning: ")]


def test_list_models_lists_every_model_whatever_its_name(hostile: Registry) -> None:
    result = regops("list-models", "--tracking-uri", hostile.uri, "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {r["model"]: r for r in json.loads(result.stdout)["models"]}
    everything = [*ODD_NAMES, *YAML_TYPED_NAMES, *DESCRIPTIONS, "Aliased", "Shared"]
    assert set(everything) <= set(rows)
    assert rows["Aliased"]["aliases"] == {NON_ASCII_ALIAS: "1", "ok": "1"}
    assert rows["Desc_emoji"]["description"] == DESCRIPTIONS["Desc_emoji"]
    # The text table keeps one line per model: a newline or tab in a name is shown escaped.
    text = regops("list-models", "--tracking-uri", hostile.uri)
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert len(lines) == 1 + len(rows)
    assert any(line.startswith("new\\nline ") for line in lines)
    assert any(line.startswith("tab\\tname ") for line in lines)


def test_list_versions_of_an_odd_name(hostile: Registry) -> None:
    for name in ("new\nline", "quote'd\"x", "back\\slash", "emoji\U0001f600"):
        result = regops("list-versions", "--tracking-uri", hostile.uri, "--model-name", name,
                        "--format", "json")  # fmt: skip
        assert result.exit_code == 0, (name, result.output)
        assert [r["model"] for r in json.loads(result.stdout)["versions"]] == [name]


def test_export_round_trips_and_names_what_it_skipped(
    hostile: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = regops("export", "--tracking-uri", hostile.uri, "--output", "exported")
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in Path("exported").iterdir())
    exportable = [*YAML_TYPED_NAMES, *DESCRIPTIONS, "Shared", "Typed_aliases"]
    assert written == sorted(f"{n}.yaml" for n in exportable)
    # Each skipped model is named in its own warning, escaped (one line, no raw control).
    warned = warning_lines(result)
    for name in [*ODD_NAMES, "Aliased"]:
        hits = [w for w in warned if w.startswith(f"warning: model {ascii(name)} not exported")]
        assert len(hits) == 1, (name, warned)
    assert any(ascii(NON_ASCII_ALIAS) in w for w in warned)
    assert all(w.isprintable() for w in warned)
    # The export declares exactly what is live: the plan on it shows no change.
    plan = regops("plan", "--tracking-uri", hostile.uri, "--state-dir", "exported",
                  "--detailed-exitcode")  # fmt: skip
    assert plan.exit_code == 0, plan.output
    # The JSON report says the same, model by model.
    doc = json.loads(regops("export", "--tracking-uri", hostile.uri, "--format", "json").stdout)
    assert {k["model"] for k in doc["skipped"]} == {*ODD_NAMES, "Aliased"}
    assert all(k["reason"] for k in doc["skipped"])


def test_export_of_a_model_that_cannot_be_declared_is_an_error(hostile: Registry) -> None:
    result = regops("export", "--tracking-uri", hostile.uri, "--model", "new\nline")
    assert result.exit_code == 1, result.output
    assert "model 'new\\nline' not exported: a state file cannot name it" in result.stderr
    assert "nothing was exported" in result.stderr


def test_descriptions_and_typed_names_read_back_as_themselves(hostile: Registry) -> None:
    result = regops("export", "--tracking-uri", hostile.uri)
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "\U0001f680" in text  # an emoji stays readable, never lone surrogates
    assert "\ud83d" not in text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    for hidden in ("\u2028", "\u202e", "\u200b", "\x00"):
        assert hidden not in text  # shown as escapes for the reviewer
    from regops.files.yamlio import read

    doc = read(text).data
    for name, description in DESCRIPTIONS.items():
        assert doc["models"][name]["description"] == description
    assert set(YAML_TYPED_NAMES) <= set(doc["models"])
    assert doc["models"]["Typed_aliases"]["versions"]["1"]["aliases"] == sorted(YAML_TYPED_ALIASES)


def test_corrupt_regops_tags_are_warnings_and_treated_as_absent(
    hostile: Registry, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "models.yaml").write_text(STATE)
    result = regops("plan", "--tracking-uri", hostile.uri, "--state-dir", str(state),
                    "--format", "json")  # fmt: skip
    assert result.exit_code in (0, 1), result.output  # a plan, with its verdicts
    warned = warning_lines(result)
    assert any("'Shared': tag regops.applied is not a record regops wrote" in w for w in warned)
    assert any("'Shared' version 1: tag regops.audit is not a stamp" in w for w in warned)
    doc = json.loads(result.stdout)
    assert len(doc["warnings"]) == 2
    # Treated as absent: no drift is claimed from the hand-edited record.
    assert not any(c["drift"] for c in doc["changes"])
    assert {(c["version"], c["kind"], c["after"]) for c in doc["changes"]} >= {
        ("1", "stage", "Staging"),
        ("2", "stage", "Production"),
    }


def test_a_version_that_is_not_ready_is_never_promoted(hostile: Registry, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "models.yaml").write_text(STATE)
    result = regops("reconcile", "--tracking-uri", hostile.uri, "--state-dir", str(state))
    assert result.exit_code == 1, result.output  # blocked: nothing of it applied
    assert f"version 2 is {NOT_READY}, not READY" in result.stdout
    versions = {str(v.version): v for v in client(hostile.uri).search_model_versions(
        "name = 'Shared'")}  # fmt: skip
    assert versions["2"].current_stage == "None"
    assert client(hostile.uri).get_registered_model("Shared").aliases == {}


# ---- export round-trip over generated registries ------------------------------------

_ASCII_NAME = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True)
_ALIAS = st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True).filter(
    lambda a: a.lower() != "latest" and not (a[0] in "vV" and a[1:].isdigit())
)
_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=40
)  # any character MLflow stores (no lone surrogates: not text)
_NAME = st.one_of(_ASCII_NAME, st.text(min_size=1, max_size=12).filter(
    lambda n: n.strip() and "/" not in n and ":" not in n and n not in (".", "..")
))  # fmt: skip


@st.composite
def _registries(draw: st.DrawFn) -> list[tuple[str, str, list[tuple[str, int]], int]]:
    names = draw(st.lists(_NAME, min_size=1, max_size=3, unique_by=str.lower))
    out = []
    for name in names:
        n_versions = draw(st.integers(1, 3))
        aliases = draw(st.lists(_ALIAS, max_size=3, unique_by=str.lower))
        placed = [(a, draw(st.integers(1, n_versions))) for a in aliases]
        out.append((name, draw(_TEXT), placed, n_versions))
    return out


@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(models=_registries())
def test_export_then_plan_shows_no_change(
    models: list[tuple[str, str, list[tuple[str, int]], int]],
    tmp_path_factory: pytest.TempPathFactory,
    empty_db: Path,
) -> None:
    work = tmp_path_factory.mktemp("roundtrip")
    db = work / "mlflow.db"
    shutil.copyfile(empty_db, db)
    uri = f"sqlite:///{db}"
    c = client(uri)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        for name, description, aliases, n_versions in models:
            try:
                c.create_registered_model(name, description=description or None)
            except MlflowException as exc:  # a name MLflow refuses is not in a registry
                assume(exc.error_code != "INVALID_PARAMETER_VALUE")
                raise
            for _ in range(n_versions):
                c.create_model_version(name, source="s3://b/m", run_id=None)
            for alias, version in aliases:
                c.set_registered_model_alias(name, alias, str(version))
            c.transition_model_version_stage(name, "1", "Staging")
    out = work / "exported"
    result = regops("export", "--tracking-uri", uri, "--output", str(out))
    skipped = [line for line in result.stderr.splitlines() if " not exported: " in line]
    names = [m[0] for m in models]
    if len(skipped) == len(names):
        assert result.exit_code == 1, result.output  # nothing exported: an error, said why
        assert "nothing was exported" in result.stderr
        return
    assert result.exit_code == 0, result.output
    assert len(skipped) + len(list(out.iterdir())) == len(names)
    plan = regops("plan", "--tracking-uri", uri, "--state-dir", str(out),
                  "--detailed-exitcode")  # fmt: skip
    assert plan.exit_code == 0, (models, plan.output)
