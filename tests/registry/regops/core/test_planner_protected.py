"""The pure planner, table-driven, on what the state files no longer say:

- a protected alias held live by a version no state file lists (and declared nowhere)
  is named in the plan's warnings: model, alias and version;
- copies planned against a snapshot (`plan --live`): the source environment is not in
  it, so each copy still to make is BLOCKED with a `source` verdict saying why, per
  change; a copy already made is planned as the version it became.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

import pytest
from jsonschema import Draft202012Validator

from regops.core.lineage import LINEAGE_TAG, Lineage
from regops.core.live import LiveState
from regops.core.plan import Action, Plan
from regops.core.planner import diff, diff_snapshot
from regops.core.state import AliasPolicy, Policy, StagePolicy
from tests.support.builders import desired, live
from tests.support.paths import SCHEMAS

PLAN_SCHEMA = json.loads((SCHEMAS / "plan.schema.json").read_text())


def protecting(*aliases: str, unlisted: str = "ignore") -> Policy:
    return Policy(
        unlisted_versions=unlisted,
        aliases=MappingProxyType({a: AliasPolicy(protected=True) for a in aliases}),
    )


def summary(p: Plan) -> list[tuple[str | None, str, str | None, str | None, str | None, str]]:
    return [(c.version, c.kind, c.alias, c.before, c.after, c.action) for c in p.changes]


def valid(p: Plan) -> None:
    errors = list(Draft202012Validator(PLAN_SCHEMA).iter_errors(p.to_dict()))
    assert not errors, errors


HELD_BY_UNLISTED = (
    "state.yaml:3: model 'M': protected alias 'champion' is held by version 1, which no state "
    "file lists any more: the state no longer says who holds champion; list version 1 with "
    "aliases: [champion] (or declare champion on the version that should hold it)"
)

PROTECTED = [
    pytest.param(
        protecting("champion"),
        {"2": "Staging"},
        {"1": "Production", "2": "Staging"},
        {"champion": "1"},
        [HELD_BY_UNLISTED],
        [],
        id="protected-held-by-unlisted-version",
    ),
    pytest.param(
        Policy(),
        {"2": "Staging"},
        {"1": "Production", "2": "Staging"},
        {"champion": "1"},
        [],
        [],
        id="unprotected-alias-left-alone-quietly",
    ),
    pytest.param(
        protecting("champion"),
        {"2": ("Staging", ["champion"])},
        {"1": "Production", "2": "Staging"},
        {"champion": "1"},
        [],
        [("2", "alias_move", "champion", "1", "2", Action.APPLY)],
        id="declared-elsewhere-moves-instead",
    ),
    pytest.param(
        protecting("champion"),
        {"1": ("Production", ["champion"])},
        {"1": "Production"},
        {"champion": "1"},
        [],
        [],
        id="listed-and-declared-in-sync",
    ),
    pytest.param(
        protecting("champion"),
        {"2": "Staging"},
        {"1": "Production", "2": "Staging", "3": "None"},
        {"champion": "1", "challenger": "3"},
        [HELD_BY_UNLISTED],
        [],
        id="only-the-protected-one-of-two-unlisted-aliases",
    ),
    pytest.param(
        protecting("champion", "challenger"),
        {"2": "Staging"},
        {"1": "Production", "2": "Staging", "3": "None"},
        {"champion": "1", "challenger": "3"},
        [
            HELD_BY_UNLISTED.replace("champion", "challenger")
            .replace("version 1", "version 3")
            .replace("list version 1", "list version 3"),  # fmt: skip
            HELD_BY_UNLISTED,
        ],
        [],
        id="each-protected-alias-its-own-warning-in-alias-order",
    ),
]


@pytest.mark.parametrize(("pol", "want", "have", "aliases", "warnings", "changes"), PROTECTED)
def test_a_protected_alias_the_state_no_longer_names(
    pol: Policy,
    want: dict[str, object],
    have: dict[str, object],
    aliases: dict[str, str],
    warnings: list[str],
    changes: list[tuple[str, ...]],
) -> None:
    p = diff(desired(want, pol=pol), live(have, aliases=aliases))
    assert list(p.warnings) == warnings
    assert summary(p) == changes
    assert p.ok  # a warning, not a block: nothing in git asks to move it
    valid(p)


@pytest.mark.parametrize(
    ("pol", "errors"),
    [
        (protecting("champion"), "alias 'champion' is protected: it may move"),
        (protecting("champion", unlisted="archive"), "alias 'champion' is protected: it may move"),
    ],
    ids=["listed-holder-alias-undeclared", "unlisted-holder-under-archive"],
)
def test_a_plan_that_would_remove_it_is_still_refused(pol: Policy, errors: str) -> None:
    want = {"1": ("Production", [])} if pol.unlisted_versions == "ignore" else {"2": "Staging"}
    p = diff(desired(want, pol=pol), live({"1": "Production", "2": "Staging"}, aliases={
        "champion": "1"}))  # fmt: skip
    assert any(errors in e for e in p.errors), p.errors
    assert not p.warnings  # the error already says it


def test_a_suspended_model_still_says_it() -> None:
    d = desired({"2": "Staging"}, pol=protecting("champion"), suspend=True)
    p = diff(d, live({"1": "Production", "2": "Staging"}, aliases={"champion": "1"}))
    assert list(p.warnings) == [HELD_BY_UNLISTED]


# ---- plan --live with copies from another environment --------------------------------------


def copied(state: LiveState, version: str, ref: tuple[str, str, str]) -> LiveState:
    """`state` with `version` of model M carrying the lineage of a copy of `ref`."""
    m = state.models["M"]
    lv = m.versions[version]
    tags = {**lv.tags, LINEAGE_TAG: Lineage(*ref).to_tag()}
    versions = {**m.versions, version: replace(lv, tags=MappingProxyType(tags))}
    model = replace(m, versions=MappingProxyType(versions))
    return replace(state, models=MappingProxyType({"M": model}))


UNREAD = (
    "dev M v7 cannot be read from a snapshot: --live holds prod's registry only, not dev's; "
    "the copy, the source's evidence and the gates are checked when the plan reads both "
    "registries (regops plan --env prod)"
)

SNAPSHOT = [
    pytest.param(
        {"dev@7": "Staging"},
        live({"1": "Production"}),
        [
            ("dev@7", "copy", None, "dev/M@7", "prod", Action.BLOCKED),
            ("dev@7", "stage", None, "None", "Staging", Action.BLOCKED),
        ],
        id="copy-to-make-and-its-stage",
    ),
    pytest.param(
        {"1": ("Archived", []), "dev@7": ("Production", ["champion"])},
        live({"1": "Production"}, aliases={"champion": "1"}),
        [
            ("dev@7", "copy", None, "dev/M@7", "prod", Action.BLOCKED),
            ("dev@7", "stage", None, "None", "Production", Action.BLOCKED),
            ("dev@7", "alias_move", "champion", "1", "dev@7", Action.BLOCKED),
            ("1", "stage", None, "Production", "Archived", Action.APPLY),
        ],
        id="champion-moving-to-a-copy",
    ),
    pytest.param(
        {"dev@7": ("Production", ["champion"])},
        copied(live({"3": "Production"}, aliases={"champion": "3"}), "3", ("dev", "M", "7")),
        [],
        id="copy-already-made-in-sync",
    ),
    pytest.param(
        {"dev@7": ("Production", [])},
        copied(live({"3": "Staging"}), "3", ("dev", "M", "7")),
        [("3", "stage", None, "Staging", "Production", Action.APPLY)],
        id="copy-already-made-then-promoted",
    ),
    pytest.param(
        {"dev@7": "Staging"},
        copied(live({"3": "Staging"}), "3", ("dev", "M", "6")),
        [
            ("dev@7", "copy", None, "dev/M@7", "prod", Action.BLOCKED),
            ("dev@7", "stage", None, "None", "Staging", Action.BLOCKED),
        ],
        id="a-copy-of-another-version-is-not-this-one",
    ),
]


@pytest.mark.parametrize(("want", "have", "changes"), SNAPSHOT)
def test_copies_planned_against_a_snapshot(
    want: dict[str, object], have: LiveState, changes: list[tuple[str, ...]]
) -> None:
    p = diff_snapshot(desired(want), have, env="prod")
    assert summary(p) == changes
    for c in p.changes:
        if c.action == Action.BLOCKED:  # each blocked change says why, and only that
            assert [(g.gate, g.passed, g.detail) for g in c.gates] == [("source", False, UNREAD)]
    assert p.ok == (not any(c.action == Action.BLOCKED for c in p.changes))
    assert p.live_fingerprint == have.fingerprint(["M"])  # the snapshot's, no placeholder
    valid(p)


def test_gates_that_would_judge_the_copy_give_way_to_the_one_verdict() -> None:
    gated = Policy(
        stages=MappingProxyType(
            {
                "Production": StagePolicy(
                    require_from=("Staging",),
                    require_tags=MappingProxyType({"validation_status": "passed"}),
                )
            }
        ),
        aliases=MappingProxyType({"champion": AliasPolicy(require_from=("Production",))}),
    )
    d = desired({"dev@7": ("Production", ["champion"])}, pol=gated)
    p = diff_snapshot(d, live({"1": "None"}), env="prod")
    assert [(c.kind, c.action) for c in p.changes] == [
        ("copy", Action.BLOCKED),
        ("stage", Action.BLOCKED),
        ("alias_set", Action.BLOCKED),
    ]
    for c in p.changes:
        assert [(g.gate, g.passed, g.detail) for g in c.gates] == [("source", False, UNREAD)]


def test_a_suspended_model_stays_suspended() -> None:
    p = diff_snapshot(desired({"dev@7": "Staging"}, suspend=True), live({"1": "None"}), env="prod")
    assert [(c.kind, c.action) for c in p.changes] == [
        ("copy", Action.SUSPENDED),
        ("stage", Action.SUSPENDED),
    ]
    assert p.ok  # shown, skipped: as the real plan does


def test_without_an_environment_the_verdict_says_how_to_name_one() -> None:
    p = diff_snapshot(desired({"dev@7": "Staging"}), live({"1": "None"}), env=None)
    detail = p.changes[0].gates[0].detail
    assert "--live holds this environment's registry only, not dev's" in detail
    assert "(regops plan --env NAME)" in detail


def test_only_the_models_asked_for() -> None:
    other = desired({"dev@2": "Staging"}, name="Other").models["Other"]
    d = desired({"dev@7": "Staging"}, extra={"Other": other})
    state = live({"1": "None"})
    state = replace(
        state,
        models=MappingProxyType(
            {**state.models, "Other": replace(state.models["M"], name="Other")}
        ),
    )
    p = diff_snapshot(d, state, env="prod", only=["M"])
    assert {c.model for c in p.changes} == {"M"}
    assert p.changes[0].before == "dev/M@7"


# ---- through the CLI, on a real registry ---------------------------------------------------


def test_plan_says_it_on_a_real_registry(
    sqlite_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import warnings

    from mlflow import MlflowClient

    from tests.support.repo import regops, write_state

    c = MlflowClient(tracking_uri=sqlite_uri, registry_uri=sqlite_uri)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        c.create_registered_model("Fraud")
        for _ in range(2):
            c.create_model_version("Fraud", "mlflow-artifacts:/0/r/artifacts/model")
        c.set_registered_model_alias("Fraud", "champion", "1")
    monkeypatch.chdir(tmp_path)
    write_state(
        tmp_path / "registry-state",
        "apiVersion: regops/v1\npolicy:\n  aliases:\n    champion: {protected: true}\n"
        'models:\n  Fraud:\n    versions:\n      "2": {}\n',
        "fraud.yaml",
    )
    result = regops("plan", "--tracking-uri", sqlite_uri, "--format", "json")
    assert result.exit_code == 0, result.output
    said = (
        "registry-state/fraud.yaml:6: model 'Fraud': protected alias 'champion' is held by "
        "version 1, which no state file lists any more"
    )
    assert said in result.stderr
    assert any(said in w for w in json.loads(result.stdout)["warnings"])
    # Reviewers read the pull-request comment, not the job log: the warning is there too.
    report = tmp_path / "report.md"
    result = regops("plan", "--tracking-uri", sqlite_uri, "--report", str(report))
    assert result.exit_code == 0, result.output
    text = report.read_text()
    assert "**Warnings:**" in text
    assert "protected alias 'champion' is held by version 1" in text
