"""Alias gates and alias-only registries, on a real sqlite registry and real git."""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType

import pytest
from click.testing import CliRunner, Result

from regops.cli import cli
from regops.core.audit import Stamp
from regops.core.planner import diff
from regops.core.state import AliasPolicy, Policy
from regops.errors import StateError
from regops.files.loader import load_state
from tests.support import builders as b
from tests.support.repo import (
    ALIAS_STATE,
    PASSED,
    Repo,
    client,
    line_diff,
    live_stage,
    tag_version,
    write_state,
)
from tests.support.servers import make_registry


def regops(uri: str, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--tracking-uri", uri, "--state-dir", "registry-state"])


def aliases(uri: str, name: str = "Fraud") -> dict[str, str]:
    return {a: str(v) for a, v in client(uri).get_registered_model(name).aliases.items()}


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_uri: str) -> str:
    """Fraud v1..v3 (v1 in Staging from the stage era), champion on 1 and challenger on 2 live.

    The state file says the same, so the first plan is in sync.
    """
    monkeypatch.chdir(tmp_path)
    make_registry(sqlite_uri, {"Fraud": 3}, stage_of={("Fraud", "1"): "Staging"})
    client(sqlite_uri).set_registered_model_alias("Fraud", "champion", "1")
    client(sqlite_uri).set_registered_model_alias("Fraud", "challenger", "2")
    tag_version(sqlite_uri, "1", PASSED)
    write_state(tmp_path / "registry-state", ALIAS_STATE)
    return sqlite_uri


def move_champion(tmp_path: Path, to: str) -> None:
    path = tmp_path / "registry-state" / "models.yaml"
    text = path.read_text()
    text = text.replace('"1": {aliases: [champion]}', '"1": {}')
    text = text.replace(
        f'"{to}": {{aliases: [challenger]}}', f'"{to}": {{aliases: [challenger, champion]}}'
    )
    if f'"{to}":' not in text:
        text += f'      "{to}": {{aliases: [champion]}}\n'
    path.write_text(text)


def test_in_sync_to_begin_with(registry: str) -> None:
    result = regops(registry, "plan", "--detailed-exitcode")
    assert result.exit_code == 0, result.output
    assert "No changes" in result.output


def test_champion_move_blocked_by_require_from(registry: str, tmp_path: Path) -> None:
    tag_version(registry, "3", PASSED)  # all the evidence, but never the challenger
    move_champion(tmp_path, "3")
    result = regops(registry, "plan")
    assert result.exit_code == 1, result.output
    assert "! alias champion: version 1 -> 3  [BLOCKED]" in result.output
    assert (
        "FAIL require_from: version 3 holds none of: challenger; champion requires one of them"
        in result.output
    )
    assert "ok   require_tags: smoke_test_status=passed" in result.output
    assert regops(registry, "reconcile").exit_code == 1
    assert aliases(registry) == {"champion": "1", "challenger": "2"}  # nothing written


def test_champion_move_blocked_by_require_tags(registry: str, tmp_path: Path) -> None:
    tag_version(registry, "2", {"validation_status": "passed"})  # no smoke test yet
    move_champion(tmp_path, "2")
    result = regops(registry, "plan", "--format", "json")
    assert result.exit_code == 1, result.output
    (change,) = json.loads(result.stdout)["changes"]
    assert (change["alias"], change["action"]) == ("champion", "blocked")
    assert [(g["gate"], g["passed"], g["detail"]) for g in change["gates"]] == [
        ("require_from", True, "version 2 holds challenger: may take champion"),
        ("require_tags", False, "smoke_test_status is missing; needs 'passed'"),
        ("require_tags", True, "validation_status=passed"),
    ]
    result = regops(registry, "reconcile")
    assert result.exit_code == 1, result.output
    assert aliases(registry) == {"champion": "1", "challenger": "2"}


def test_allowed_champion_move_applies_and_is_held(registry: str, tmp_path: Path) -> None:
    tag_version(registry, "2", PASSED)
    move_champion(tmp_path, "2")
    result = regops(registry, "plan")
    assert result.exit_code == 0, result.output
    assert "~ alias champion: version 1 -> 2" in result.output
    assert "ok   require_from: version 2 holds challenger: may take champion" in result.output
    result = regops(registry, "reconcile")
    assert result.exit_code == 0, result.output
    assert aliases(registry) == {"champion": "2", "challenger": "2"}
    stamp = Stamp.from_tags(client(registry).get_model_version("Fraud", "2").tags)[0]
    assert stamp is not None
    assert stamp.held == {"@champion"}
    assert live_stage(registry, "Fraud", "1") == "Staging"  # alias-only: stages left alone
    assert regops(registry, "plan", "--detailed-exitcode").exit_code == 0


def test_rollback_by_git_revert_passes_require_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_uri: str
) -> None:
    """champion 1 -> 2 by pull request, then `git revert`: 1 no longer holds challenger,
    but it held champion under regops, so the return is a rollback, not a promotion."""
    repo = Repo(tmp_path / "repo")  # the registry (tmp_path/mlflow.db) stays outside it
    monkeypatch.chdir(repo.root)
    make_registry(sqlite_uri, {"Fraud": 2})
    client(sqlite_uri).set_registered_model_alias("Fraud", "challenger", "1")
    tag_version(sqlite_uri, "1", PASSED)
    tag_version(sqlite_uri, "2", PASSED)
    state = ALIAS_STATE.replace('"2": {aliases: [challenger]}', '"2": {}').replace(
        '"1": {aliases: [champion]}', '"1": {aliases: [champion, challenger]}'
    )
    write_state(repo.root / "registry-state", state)
    repo.commit("champion: Fraud v1", who="alice")
    assert regops(sqlite_uri, "reconcile").exit_code == 0
    assert aliases(sqlite_uri) == {"champion": "1", "challenger": "1"}

    # The challenger moves to v2 and is applied; then v2 becomes champion.
    for args, message in (
        (("--version", "2", "--alias", "challenger"), "challenger: Fraud v2"),
        (("--version", "2", "--alias", "champion"), "champion: Fraud v2"),
    ):
        edit = regops(sqlite_uri, "alias", "--model-name", "Fraud", *args)
        assert edit.exit_code == 0, edit.output
        repo.commit(message, who="bob")
        applied = regops(sqlite_uri, "reconcile")
        assert applied.exit_code == 0, applied.output
    promotion = repo.head()
    assert aliases(sqlite_uri) == {"champion": "2", "challenger": "2"}

    repo.git("revert", "--no-edit", promotion, who="carol")
    result = regops(sqlite_uri, "plan")
    assert result.exit_code == 0, result.output
    assert "~ alias champion: version 2 -> 1" in result.output
    assert "ok   require_from: version 1 held champion before (a rollback)" in result.output
    assert regops(sqlite_uri, "reconcile").exit_code == 0
    assert aliases(sqlite_uri) == {"champion": "1", "challenger": "2"}


def test_protected_alias_removal_is_refused_with_file_and_line(
    registry: str, tmp_path: Path
) -> None:
    path = tmp_path / "registry-state" / "models.yaml"
    path.write_text(path.read_text().replace('"1": {aliases: [champion]}', '"1": {}'))
    result = regops(registry, "plan")
    assert result.exit_code == 1, result.output
    line = ALIAS_STATE.splitlines().index("  Fraud:") + 1
    assert (
        f"registry-state/models.yaml:{line}: Fraud: alias 'champion' is protected: "
        "it may move to another version but never be removed"
    ) in result.output
    assert regops(registry, "reconcile").exit_code == 1
    assert aliases(registry) == {"champion": "1", "challenger": "2"}


def test_protected_alias_cannot_be_removed_by_the_editing_command(
    registry: str, tmp_path: Path
) -> None:
    before = (tmp_path / "registry-state" / "models.yaml").read_text()
    result = regops(
        registry, "alias", "--model-name", "Fraud", "--version", "1", "--alias", "champion",
        "--remove",
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "alias 'champion' is protected" in result.output
    assert (tmp_path / "registry-state" / "models.yaml").read_text() == before


def test_a_stage_in_an_alias_only_file_is_a_validation_error(tmp_path: Path) -> None:
    state = ALIAS_STATE.replace('"2": {aliases: [challenger]}', '"2": {stage: Staging}')
    path = write_state(tmp_path / "registry-state", state)
    with pytest.raises(StateError) as err:
        load_state(tmp_path / "registry-state")
    line = state.splitlines().index('      "2": {stage: Staging}') + 1
    assert [(d.line, d.message) for d in err.value.diagnostics] == [
        (
            line,
            "model Fraud version 2: stage is not allowed with policy.use_stages: false "
            "(alias-only); use aliases",
        )
    ]
    assert err.value.diagnostics[0].file.endswith(path.name)


def test_stage_policies_in_an_alias_only_file_are_an_error(tmp_path: Path) -> None:
    state = ALIAS_STATE.replace(
        "  aliases:\n", "  stages:\n    Production: {max_versions: 1}\n  aliases:\n", 1
    )
    write_state(tmp_path / "registry-state", state)
    with pytest.raises(StateError) as err:
        load_state(tmp_path / "registry-state")
    assert [d.line for d in err.value.diagnostics] == [5]
    assert "policy.stages has no effect with use_stages: false" in str(err.value.diagnostics[0])


def test_unity_catalog_implies_alias_only(tmp_path: Path) -> None:
    state = ALIAS_STATE.replace("  use_stages: false            # alias-only\n", "")
    write_state(tmp_path / "registry-state", state)
    desired = load_state(tmp_path / "registry-state", stages_supported=False)
    assert desired.models["Fraud"].policy.use_stages is False
    assert desired.models["Fraud"].owners == ("@acme/ml-platform", "@alice")
    write_state(
        tmp_path / "registry-state", state.replace("policy:\n", "policy:\n  use_stages: true\n")
    )
    with pytest.raises(StateError, match="use_stages is true, but this registry has no stages"):
        load_state(tmp_path / "registry-state", stages_supported=False)


@pytest.mark.parametrize("owner", ["alice", "@", "@org/", "@a b"], ids=str)
def test_bad_owner_is_reported_at_its_line(tmp_path: Path, owner: str) -> None:
    write_state(tmp_path / "registry-state", ALIAS_STATE.replace('"@alice"', json.dumps(owner)))
    with pytest.raises(StateError) as err:
        load_state(tmp_path / "registry-state")
    (d,) = err.value.diagnostics
    assert d.line == ALIAS_STATE.splitlines().index("  Fraud:") + 2
    assert "is not a GitHub @user, @org/team or an e-mail address" in d.message


# ---- the pure planner: no stage call ever, whatever live says -----------------------------

ALIAS_ONLY = Policy(
    unlisted_versions="archive",
    use_stages=False,
    aliases=MappingProxyType(
        {"champion": AliasPolicy(require_from=("challenger", "Production"), protected=True)}
    ),
)


@pytest.mark.parametrize(
    ("live_versions", "live_aliases", "expected"),
    [
        ({"1": "Production", "2": "Staging"}, {"champion": "1"}, []),
        (
            {"1": "Production", "2": "None"},
            {"champion": "2"},
            [("alias_move", "champion", "apply", ("require_from",))],
        ),
        (
            {"1": "None", "2": "None", "3": "Staging"},
            {"champion": "1", "old": "3"},
            [("alias_delete", "old", "apply", ())],
        ),
    ],
    ids=["stages-ignored", "held-stage-satisfies-require-from", "unlisted-no-archive-call"],
)
def test_alias_only_plans_no_stage_change(
    live_versions: dict[str, str],
    live_aliases: dict[str, str],
    expected: list[tuple[str, str, str, tuple[str, ...]]],
) -> None:
    desired = b.desired({"1": (None, ["champion"]), "2": (None, [])}, pol=ALIAS_ONLY)
    live = b.live(live_versions, aliases=live_aliases)
    p = diff(desired, live)
    assert not p.errors
    assert [(c.kind, c.alias, c.action, tuple(g.gate for g in c.gates)) for c in p.changes] == (
        expected
    )


def test_propose_in_an_alias_only_state_proposes_challenger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = write_state(tmp_path / "registry-state", ALIAS_STATE)
    (tmp_path / "c.json").write_text('[{"model":"Fraud","version":"3"}]')
    result = CliRunner().invoke(cli, ["propose", "--candidates", "c.json", "--body", "pr.md"])
    assert result.exit_code == 0, result.output
    assert "Fraud v3 -> alias challenger" in result.output
    removed, added = line_diff(ALIAS_STATE, path.read_text())
    assert (removed, added) == (
        ['      "2": {aliases: [challenger]}'],
        ['      "2": {}', '      "3": {aliases: [challenger]}'],
    )
    assert "proposed as **alias challenger**" in (tmp_path / "pr.md").read_text()
    both = ["propose", "--candidates", "c.json", "--body", "pr.md", "--stage", "Staging"]
    assert CliRunner().invoke(cli, [*both, "--alias", "challenger"]).exit_code == 64


def test_held_records_stages_and_aliases_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_uri: str
) -> None:
    """One reconcile puts v1 in Staging and gives it challenger: both are remembered."""
    monkeypatch.chdir(tmp_path)
    make_registry(sqlite_uri, {"Fraud": 1})
    write_state(
        tmp_path / "registry-state",
        "apiVersion: regops/v1\nmodels:\n  Fraud:\n    versions:\n"
        '      "1": {stage: Staging, aliases: [challenger]}\n',
    )
    result = regops(sqlite_uri, "reconcile")
    assert result.exit_code == 0, result.output
    stamp = Stamp.from_tags(client(sqlite_uri).get_model_version("Fraud", "1").tags)[0]
    assert stamp is not None
    assert stamp.held == {"@challenger", "Staging"}


# ---- the alias gates, table-driven on the pure planner -------------------------------------

GATED_ALIASES = Policy(
    aliases=MappingProxyType(
        {
            "champion": AliasPolicy(
                require_from=("challenger", "Staging"),
                require_tags=MappingProxyType({"validation_status": "passed"}),
            )
        }
    )
)
OK_TAGS = {"validation_status": "passed"}


TAGS_OK = (True, "validation_status=passed")
MAY = ": may take champion"
HELD = {"challenger": "2"}  # live: version 2 is the challenger


@pytest.mark.parametrize(
    ("tags", "stage", "live_aliases", "expected"),
    [
        (OK_TAGS, "None", HELD, [(True, "version 2 holds challenger" + MAY), TAGS_OK]),
        (OK_TAGS, "Staging", {}, [(True, "version 2 holds Staging" + MAY), TAGS_OK]),
        (
            {**OK_TAGS, "regops.held": "@champion"}, "None", {},
            [(True, "version 2 held champion before (a rollback)"), TAGS_OK],
        ),
        (
            {**OK_TAGS, "regops.held": "@challenger"}, "None", {},
            [(True, "version 2 held challenger before" + MAY), TAGS_OK],
        ),
        (
            {**OK_TAGS, "regops.held": "Staging"}, "None", {},
            [(True, "version 2 held Staging before" + MAY), TAGS_OK],
        ),
        (
            OK_TAGS, "Production", {},
            [
                (False, "version 2 holds none of: challenger, Staging; "
                 "champion requires one of them"),
                TAGS_OK,
            ],
        ),
        (
            {"validation_status": "failed"}, "None", HELD,
            [
                (True, "version 2 holds challenger" + MAY),
                (False, "validation_status is 'failed'; needs 'passed'"),
            ],
        ),
        (
            {}, "None", HELD,
            [
                (True, "version 2 holds challenger" + MAY),
                (False, "validation_status is missing; needs 'passed'"),
            ],
        ),
    ],
    ids=["holds-alias", "holds-stage", "rollback", "held-required-alias", "held-required-stage",
         "holds-nothing", "tag-wrong", "tag-missing"],
)  # fmt: skip
def test_alias_gate_verdicts(
    tags: dict[str, str],
    stage: str,
    live_aliases: dict[str, str],
    expected: list[tuple[bool, str]],
) -> None:
    desired = b.desired({"1": (None, []), "2": (None, ["champion"])}, pol=GATED_ALIASES)
    live = b.live({"1": "None", "2": (stage, tags)}, aliases={"champion": "1", **live_aliases})
    p = diff(desired, live)
    (change,) = [c for c in p.changes if c.alias == "champion"]
    assert [(g.passed, g.detail) for g in change.gates] == expected
    assert change.blocked == (not all(ok for ok, _ in expected))
    assert p.ok == (not change.blocked)


def test_restoring_a_drifted_alias_skips_require_from() -> None:
    """Someone moved champion by hand: putting it back is no promotion."""
    desired = b.desired({"1": (None, ["champion"]), "2": (None, [])}, pol=GATED_ALIASES)
    live = b.live(
        {"1": ("None", OK_TAGS), "2": "None"},
        aliases={"champion": "2"},
        applied={"1": [None, "champion"], "2": [None]},
    )
    (change,) = diff(desired, live).changes
    assert (change.reason, change.action) == ("drift", "apply")
    assert [g.gate for g in change.gates] == ["require_tags"]
