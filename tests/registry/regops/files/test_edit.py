"""State editing: the file keeps every untouched byte; bad edits write nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regops.errors import EditError, StateError
from regops.files.edit import prepare_edit, write_edit
from regops.files.loader import load_state
from tests.support.paths import ROOT
from tests.support.repo import (
    EMPTY_STATE,
    STATE,
    line_diff,
    live_stage,
    regops,
    write_state,
)
from tests.support.servers import make_registry

REPO_ROOT = ROOT


def edit_state(state_dir: Path, model: str, version: str, **change: str | None) -> Path:
    """What `regops set-stage`/`set-alias` do: prepare the edit, then write it."""
    return write_edit(prepare_edit(state_dir, model, version, **change))  # type: ignore[arg-type]


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return write_state(tmp_path / "registry-state")


def versions(state_dir: Path, model: str) -> dict[str, tuple[str | None, tuple[str, ...]]]:
    spec = load_state(state_dir).models[model]
    return {v: (s.stage, s.aliases) for v, s in spec.versions.items()}


# ---- byte-for-byte ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "version", "stage", "removed", "added"),
    [
        (
            "Churn",
            "1",
            "Production",
            ['      "1": {stage: Staging}'],
            ['      "1": {stage: Production}'],
        ),
        (
            "Fraud",
            "1",
            "None",
            ['      "1": {stage: Archived}        # the first one'],
            ['      "1": {stage: None}            # the first one'],  # comment column kept
        ),
        (
            "Fraud",
            "9",
            "Staging",
            ["        stage: None   # block style, kept as is"],
            ["        stage: Staging # block style, kept as is"],  # the column, where it fits
        ),
    ],
    ids=["flow-map", "keeps-eol-comment", "block-map"],
)
def test_stage_change_is_a_one_line_diff(
    state: Path, model: str, version: str, stage: str, removed: list[str], added: list[str]
) -> None:
    before = state.read_text()
    assert edit_state(state.parent, model, version, stage=stage) == state
    assert line_diff(before, state.read_text()) == (removed, added)


def test_promotion_archives_the_old_holder_in_the_same_edit(state: Path) -> None:
    before = state.read_text()
    edit_state(state.parent, "Fraud", "3", stage="Production")
    removed, added = line_diff(before, state.read_text())
    # Only the two versions' lines, and only the stage on each.
    assert removed == [
        '      "2": {stage: Production, aliases: [ champion ]}',
        "      '3': {stage: Staging, aliases: [challenger], run_id: abc123}",
    ]
    assert added == [
        '      "2": {stage: Archived, aliases: [ champion ]}',
        "      '3': {stage: Production, aliases: [challenger], run_id: abc123}",
    ]
    assert versions(state.parent, "Fraud")["2"][0] == "Archived"


def test_untidy_lines_elsewhere_are_not_respelled(state: Path) -> None:
    edit_state(state.parent, "Churn", "1", stage="Archived")
    text = state.read_text()
    for line in (
        "  drift:   correct              # out-of-band changes are reverted",
        "      require_from: [ Staging, Production ]",
        "    description: 'Fraud scores: gradient boosting'",
        '      "2": {stage: Production, aliases: [ champion ]}',
        "  # Churn has one version.",
    ):
        assert line in text.split("\n")


def test_noop_edit_writes_nothing(state: Path) -> None:
    mtime = state.stat().st_mtime_ns
    result = prepare_edit(state.parent, "Fraud", "2", stage="Production", alias="champion")
    assert not result.changed
    assert result.summary == ()
    edit_state(state.parent, "Fraud", "2", stage="Production", alias="champion")
    assert state.stat().st_mtime_ns == mtime
    assert state.read_text() == STATE


def test_crlf_line_endings_are_kept(tmp_path: Path) -> None:
    path = write_state(tmp_path / "s", STATE.replace("\n", "\r\n"))
    edit_state(path.parent, "Churn", "1", stage="Production")
    raw = path.read_bytes()
    assert raw.count(b"\r\n") == STATE.count("\n")
    assert b'"1": {stage: Production}\r\n' in raw


# ---- adding versions and models ---------------------------------------------------------------


def test_new_version_is_added_in_numeric_order(state: Path) -> None:
    before = state.read_text()
    edit_state(state.parent, "Fraud", "4", stage="Staging")
    removed, added = line_diff(before, state.read_text())
    assert (removed, added) == ([], ["      '4': {stage: Staging}"])  # quoted like its neighbour
    assert list(versions(state.parent, "Fraud")) == ["1", "2", "3", "4", "9"]


def test_appended_version_stays_above_the_next_models_comment(state: Path) -> None:
    before = state.read_text()
    edit_state(state.parent, "Fraud", "10", stage="Staging")
    after = state.read_text()
    assert line_diff(before, after) == ([], ['      "10": {stage: Staging}'])
    assert after.index('"10": {stage: Staging}') < after.index("# Churn has one version.")
    assert list(versions(state.parent, "Fraud"))[-1] == "10"


def test_new_model_goes_into_the_only_file(tmp_path: Path) -> None:
    path = write_state(tmp_path / "s", EMPTY_STATE)
    edit_state(path.parent, "Accident_Prediction_XGBoost", "3", stage="Staging")
    assert path.read_text() == (
        "# yaml-language-server: $schema=../schemas/registry-state.schema.json\n"
        "apiVersion: regops/v1\n"
        "models:\n"
        "  Accident_Prediction_XGBoost:\n"
        "    versions:\n"
        '      "3": {stage: Staging}\n'
    )
    edit_state(path.parent, "Accident_Prediction_LightGBM", "1", stage="Staging")
    assert set(load_state(path.parent).models) == {
        "Accident_Prediction_XGBoost",
        "Accident_Prediction_LightGBM",
    }


def test_repository_example_state_accepts_a_new_model(tmp_path: Path) -> None:
    example = (REPO_ROOT / "registry-state" / "accident_prediction.yaml").read_text()
    path = write_state(tmp_path / "s", example, name="accident_prediction.yaml")
    edit_state(path.parent, "Accident_Prediction_XGBoost", "1", stage="Staging")
    removed, added = line_diff(example, path.read_text())
    assert removed == ["models: {}"]
    assert added == [
        "models:",
        "  Accident_Prediction_XGBoost:",
        "    versions:",
        '      "1": {stage: Staging}',
    ]


def test_new_model_with_several_files_needs_a_file(state: Path) -> None:
    write_state(state.parent, EMPTY_STATE, name="other.yaml")
    with pytest.raises(EditError, match="say which file"):
        edit_state(state.parent, "Brand_New", "1", stage="Staging")
    path = edit_state(state.parent, "Brand_New", "1", stage="Staging", new_model_file="other.yaml")
    assert path == state.parent / "other.yaml"
    created = edit_state(state.parent, "Newer", "2", stage="Staging", new_model_file="newer.yaml")
    assert created.read_text().startswith("# yaml-language-server: $schema=")
    assert load_state(state.parent).models["Newer"].file.endswith("newer.yaml")


# ---- aliases -----------------------------------------------------------------------------------


def test_alias_moves_off_the_version_that_held_it(state: Path) -> None:
    before = state.read_text()
    result = prepare_edit(state.parent, "Fraud", "3", alias="champion")
    assert result.summary == ("Fraud alias champion: moved from v2 to v3",)
    edit_state(state.parent, "Fraud", "3", alias="champion")
    removed, added = line_diff(before, state.read_text())
    assert added == [
        '      "2": {stage: Production}',
        "      '3': {stage: Staging, aliases: [challenger, champion], run_id: abc123}",
    ]
    assert len(removed) == 2
    assert load_state(state.parent).models["Fraud"].alias_owner()["champion"] == "3"


def test_alias_on_a_version_without_aliases_goes_after_its_stage(state: Path) -> None:
    edit_state(state.parent, "Churn", "1", alias="champion")
    assert '      "1": {stage: Staging, aliases: [champion]}' in state.read_text()


def test_remove_alias(state: Path) -> None:
    edit_state(state.parent, "Fraud", "3", remove_alias="challenger")
    assert "      '3': {stage: Staging, run_id: abc123}" in state.read_text()


# ---- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"alias": "latest"}, StateError, "reserved"),
        ({"alias": "v3"}, StateError, "reserved"),
        ({"alias": "has space"}, StateError, "not allowed"),
        ({"stage": "Live"}, EditError, "not a stage"),
        ({}, EditError, "nothing to edit"),
    ],
    ids=["latest", "v-digits", "bad-chars", "bad-stage", "nothing"],
)
def test_invalid_edit_is_refused_and_writes_nothing(
    state: Path, kwargs: dict[str, str], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        edit_state(state.parent, "Fraud", "3", **kwargs)
    assert state.read_text() == STATE
    assert sorted(p.name for p in state.parent.iterdir()) == ["models.yaml"]  # no temp files


def test_bad_version_number_is_refused(state: Path) -> None:
    with pytest.raises(EditError, match="not a version number"):
        edit_state(state.parent, "Fraud", "03", stage="Staging")


def test_edit_of_an_invalid_state_is_refused_with_file_and_line(state: Path) -> None:
    broken = STATE.replace("drift:   correct", "drift:   sometimes")
    state.write_text(broken)
    with pytest.raises(StateError) as info:
        edit_state(state.parent, "Churn", "1", stage="Production")
    assert any(":7:" in str(d) and "drift" in str(d) for d in info.value.diagnostics)
    assert state.read_text() == broken


def test_max_versions_zero_is_refused(state: Path) -> None:
    state.write_text(
        STATE.replace("max_versions: 1", "max_versions: 0", 1).replace(
            '"2": {stage: Production, aliases: [ champion ]}', '"2": {stage: Staging}'
        )
    )
    before = state.read_text()
    with pytest.raises(StateError, match="at most 0"):
        edit_state(state.parent, "Churn", "1", stage="Production")
    assert state.read_text() == before


# ---- commands ------------------------------------------------------------------------------------


def test_transition_prints_the_file_and_the_new_line(state: Path) -> None:
    result = regops(
        "transition", "--model-name", "Churn", "--version", "1", "--stage", "Production"
    )
    assert result.exit_code == 0, result.output
    assert "registry-state/models.yaml: Churn v1: stage Staging -> Production" in result.output
    assert '  27 +       "1": {stage: Production}' in result.output
    assert "--apply" in result.output  # says how to go on


def test_archive_and_alias_commands(state: Path) -> None:
    assert regops("archive", "--model-name", "Fraud", "--version", "3").exit_code == 0
    result = regops("alias", "--model-name", "Fraud", "--version", "9", "--alias", "champion")
    assert result.exit_code == 0, result.output
    assert "moved from v2 to v9" in result.output
    result = regops(
        "alias", "--model-name", "Fraud", "--version", "9", "--alias", "champion", "--remove"
    )
    assert result.exit_code == 0, result.output
    spec = versions(state.parent, "Fraud")
    assert spec["3"] == ("Archived", ("challenger",))
    assert spec["9"] == ("None", ())
    assert "champion" not in load_state(state.parent).models["Fraud"].alias_owner()


def test_commands_json_output(state: Path) -> None:
    result = regops(
        "transition", "--format", "json", "--model-name", "Fraud", "--version", "5", "--stage",
        "Staging",
    )  # fmt: skip
    doc = json.loads(result.stdout)
    assert doc["format_version"] == "1"
    assert doc["changed"] is True
    assert doc["lines"] == [{"op": "+", "line": 21, "text": "      '5': {stage: Staging}"}]


def test_refused_edit_exits_1_with_file_and_line(state: Path) -> None:
    result = regops("alias", "--model-name", "Fraud", "--version", "3", "--alias", "latest")
    assert result.exit_code == 1
    assert "registry-state/models.yaml:20: alias 'latest' is reserved" in result.output
    assert "nothing was changed" in result.output
    assert state.read_text() == STATE


def test_unknown_stage_is_a_usage_error(state: Path) -> None:
    result = regops("transition", "--model-name", "Fraud", "--version", "3", "--stage", "Live")
    assert result.exit_code == 64


def test_promote_defaults_to_the_latest_registered_version(state: Path, sqlite_uri: str) -> None:
    make_registry(sqlite_uri, {"Churn": 4})
    result = regops(
        "promote", "--model-name", "Churn", "--stage", "Staging", "--tracking-uri", sqlite_uri
    )
    assert result.exit_code == 0, result.output
    assert versions(state.parent, "Churn")["4"] == ("Staging", ())


def test_promote_says_when_the_registry_cannot_be_read(state: Path, dead_port: int) -> None:
    uri = f"http://127.0.0.1:{dead_port}"
    result = regops("promote", "--model-name", "Churn", "--stage", "Staging", "--tracking-uri", uri)
    assert result.exit_code == 1
    assert "cannot find the latest version of Churn" in result.output
    assert "--version" in result.output
    assert state.read_text() == STATE


def test_apply_reconciles_the_edited_model_now(state: Path, sqlite_uri: str) -> None:
    make_registry(
        sqlite_uri,
        {"Churn": 1, "Fraud": 9},
        stage_of={("Churn", "1"): "Staging", ("Fraud", "3"): "Staging"},
    )
    result = regops(
        "transition", "--model-name", "Churn", "--version", "1", "--stage", "Production",
        "--apply", "--tracking-uri", sqlite_uri,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Reconcile: 1 applied" in result.output
    assert live_stage(sqlite_uri, "Churn", "1") == "Production"
    assert live_stage(sqlite_uri, "Fraud", "2") == "None"  # only the edited model is reconciled


# ---- any sequence of edits ---------------------------------------------------------------------

EDITS = st.tuples(
    st.sampled_from(["Fraud", "Churn"]),
    st.integers(min_value=1, max_value=12).map(str),
    st.sampled_from(["None", "Staging", "Production", "Archived", None]),
    st.sampled_from(["champion", "challenger", "shadow", None]),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(edits=st.lists(EDITS, min_size=1, max_size=6))
def test_any_edit_sequence_keeps_comments_and_says_what_it_set(
    tmp_path: Path, edits: list[tuple[str, str, str | None, str | None]]
) -> None:
    path = write_state(tmp_path / "prop", STATE)
    comments = [line for line in STATE.split("\n") if line.lstrip().startswith("#")]
    for model, version, stage, alias in edits:
        if stage is None and alias is None:
            continue
        edit_state(path.parent, model, version, stage=stage, alias=alias)
        spec = load_state(path.parent).models[model].versions[version]
        assert stage is None or spec.stage == stage
        assert alias is None or alias in spec.aliases
        text = path.read_text()
        assert [line for line in text.split("\n") if line.lstrip().startswith("#")] == comments


@pytest.mark.parametrize(
    ("text", "expected_tail"),
    [
        (
            "---\napiVersion: regops/v1\nmodels:\n  M:\n    versions:\n"
            '      "1": {stage: Staging}\n...\n',
            '      "1": {stage: Staging}\n      "2": {stage: Staging}\n...\n',
        ),
        (
            'apiVersion: regops/v1\nmodels:\n  M:\n    versions:\n      "1": {stage: Staging}',
            '      "1": {stage: Staging}\n      "2": {stage: Staging}\n',
        ),
    ],
    ids=["document-markers", "no-final-newline"],
)
def test_appending_at_the_end_of_unusual_files(
    tmp_path: Path, text: str, expected_tail: str
) -> None:
    path = write_state(tmp_path / "s", text)
    edit_state(path.parent, "M", "2", stage="Staging")
    after = path.read_text()
    assert after.endswith(expected_tail)
    assert after.startswith(text.split("models:")[0])
