"""The pure planner, table-driven: every change kind, ordering, policy, gate, drift mode."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from regops.core.plan import Action, Plan
from regops.core.planner import diff
from tests.support.builders import desired, live, policy
from tests.support.paths import SCHEMAS

PLAN_SCHEMA = json.loads((SCHEMAS / "plan.schema.json").read_text())
GATED = policy(
    stages={
        "Production": {
            "max_versions": 1,
            "require_from": ["Staging", "Production"],
            "require_tags": {"validation_status": "passed", "smoke_test_status": "passed"},
        },
        "Staging": {"require_tags": {"validation_status": "passed"}},
    }
)
PASSED = {"validation_status": "passed", "smoke_test_status": "passed"}


def summary(p: Plan) -> list[tuple[str | None, str, str | None, str | None, str | None, str]]:
    """(version, kind, alias, before, after, action) per change, in plan order."""
    return [(c.version, c.kind, c.alias, c.before, c.after, c.action) for c in p.changes]


CASES = [
    pytest.param(desired({"1": "Production"}), live({"1": "Production"}), [], id="in-sync"),
    pytest.param(
        desired({"1": "Staging"}),
        live({"1": "None"}),
        [("1", "stage", None, "None", "Staging", Action.APPLY)],
        id="stage-transition",
    ),
    pytest.param(
        desired({"1": "Archived", "2": "Production"}),
        live({"1": "Production", "2": "Staging"}),
        [
            ("2", "stage", None, "Staging", "Production", Action.APPLY),
            ("1", "stage", None, "Production", "Archived", Action.APPLY),
        ],
        id="new-production-enters-before-old-leaves",
    ),
    pytest.param(
        desired({"1": ("Production", ["champion"])}),
        live({"1": "Production"}),
        [("1", "alias_set", "champion", None, "1", Action.APPLY)],
        id="alias-set",
    ),
    pytest.param(
        desired({"1": ("Archived", []), "2": ("Production", ["champion"])}),
        live({"1": "Production", "2": "Staging"}, aliases={"champion": "1"}),
        [
            ("2", "stage", None, "Staging", "Production", Action.APPLY),
            ("2", "alias_move", "champion", "1", "2", Action.APPLY),
            ("1", "stage", None, "Production", "Archived", Action.APPLY),
        ],
        id="alias-move-is-one-change-and-precedes-archiving",
    ),
    pytest.param(
        desired({"1": "Production"}),
        live({"1": "Production"}, aliases={"old": "1"}),
        [("1", "alias_delete", "old", "1", None, Action.APPLY)],
        id="alias-delete-on-listed-version",
    ),
    pytest.param(
        desired({"1": "Production"}),
        live({"1": "Production", "2": "Staging"}, aliases={"mine": "2"}),
        [],
        id="unlisted-ignored-with-its-alias",
    ),
    pytest.param(
        desired({"1": "Production"}, pol=policy(unlisted="archive")),
        live({"1": "Production", "2": "Staging", "3": "Archived"}, aliases={"mine": "2"}),
        [
            ("2", "alias_delete", "mine", "2", None, Action.APPLY),
            ("2", "stage", None, "Staging", "Archived", Action.APPLY),
        ],
        id="unlisted-archived-under-archive-policy",
    ),
    pytest.param(
        desired({"1": (None, ["champion"])}),
        live({"1": "Staging"}),
        [("1", "alias_set", "champion", None, "1", Action.APPLY)],
        id="stage-omitted-is-unmanaged",
    ),
    pytest.param(
        desired({"1": "Staging"}, pol=GATED),
        live({"1": ("None", {"validation_status": "passed"})}),
        [("1", "stage", None, "None", "Staging", Action.APPLY)],
        id="gate-require-tags-passes",
    ),
    pytest.param(
        desired({"1": "Staging"}, pol=GATED),
        live({"1": ("None", {"validation_status": "failed"})}),
        [("1", "stage", None, "None", "Staging", Action.BLOCKED)],
        id="gate-require-tags-fails",
    ),
    pytest.param(
        desired({"1": "Production"}, pol=GATED),
        live({"1": ("None", PASSED)}),
        [("1", "stage", None, "None", "Production", Action.BLOCKED)],
        id="gate-require-from-fails",
    ),
    pytest.param(
        desired({"2": "Production"}, pol=GATED),
        live({"1": ("Production", PASSED), "2": ("Staging", PASSED)}),
        [("2", "stage", None, "Staging", "Production", Action.BLOCKED)],
        id="gate-max-versions-counts-unlisted-holders",
    ),
    pytest.param(
        desired({"1": "Production"}, suspend=True),
        live({"1": "Staging"}),
        [("1", "stage", None, "Staging", "Production", Action.SUSPENDED)],
        id="suspended-model-shown-not-applied",
    ),
    pytest.param(
        desired({"1": "Production"}),
        live({"1": "Production"}, has_stages=False),
        [],
        id="no-stages-registry-plans-no-stage-change",
    ),
]


@pytest.mark.parametrize(("want", "have", "expected"), CASES)
def test_plan_changes(want, have, expected) -> None:  # type: ignore[no-untyped-def]
    p = diff(want, have)
    assert summary(p) == expected
    doc = p.to_dict()
    Draft202012Validator(PLAN_SCHEMA).validate(doc)
    assert Plan.from_dict(json.loads(json.dumps(doc))) == p


def test_description_change_and_unmanaged_description() -> None:
    p = diff(desired({"1": "None"}, description="new"), live({"1": "None"}, description="old"))
    assert [(c.kind, c.before, c.after) for c in p.changes] == [("description", "old", "new")]
    assert diff(desired({"1": "None"}), live({"1": "None"}, description="old")).changes == ()


DRIFT = [
    # (policy, desired, live stage, applied record, expected (action, drift, reason), exit code)
    pytest.param(
        "correct",
        "Production",
        "Archived",
        ["Production"],
        (Action.APPLY, True, "drift"),
        3,
        id="drift-correct",
    ),
    pytest.param(
        "warn",
        "Production",
        "Archived",
        ["Production"],
        (Action.WARN, True, "drift"),
        3,
        id="drift-warn",
    ),
    pytest.param("ignore", "Production", "Archived", ["Production"], None, 0, id="drift-ignore"),
    pytest.param(
        "ignore",
        "Staging",
        "Archived",
        ["Production"],
        (Action.APPLY, True, "state"),
        3,
        id="drift-and-git-change-applies-git",
    ),
    pytest.param(
        "correct",
        "Production",
        "Staging",
        ["Staging"],
        (Action.APPLY, False, "state"),
        2,
        id="git-change-no-drift",
    ),
    pytest.param(
        "correct",
        "Production",
        "Staging",
        None,
        (Action.APPLY, False, "state"),
        2,
        id="never-applied-is-not-drift",
    ),
]


@pytest.mark.parametrize(("mode", "want", "have", "record", "expected", "code"), DRIFT)
def test_drift_modes(mode, want, have, record, expected, code) -> None:  # type: ignore[no-untyped-def]
    applied = {"1": record} if record else None
    p = diff(desired({"1": want}, pol=policy(drift=mode)), live({"1": have}, applied=applied))
    if expected is None:
        assert p.changes == ()
    else:
        (c,) = p.changes
        assert (c.action, c.drift, c.reason) == expected
    assert p.exit_code(detailed=True) == code


def test_alias_drift_is_detected_and_corrected() -> None:
    p = diff(
        desired({"1": ("Production", ["champion"]), "2": ("Staging", [])}),
        live(
            {"1": "Production", "2": "Staging"},
            aliases={"champion": "2"},
            applied={"1": ["Production", "champion"], "2": ["Staging"]},
        ),
    )
    (c,) = p.changes
    assert (c.kind, c.before, c.after, c.drift, c.reason) == ("alias_move", "2", "1", True, "drift")


def test_restoring_drift_skips_require_from_but_not_tags() -> None:
    p = diff(
        desired({"1": "Production"}, pol=GATED),
        live({"1": ("Archived", PASSED)}, applied={"1": ["Production"]}),
    )
    (c,) = p.changes
    assert c.action == Action.APPLY
    assert [g.gate for g in c.gates] == ["require_tags", "require_tags", "max_versions"]


def test_gate_verdicts_explain_failures() -> None:
    p = diff(desired({"1": "Production"}, pol=GATED), live({"1": ("None", {})}))
    (c,) = p.changes
    failed = {g.gate: g.detail for g in c.gates if not g.passed}
    assert (
        failed["require_from"]
        == "live stage is None; Production requires one of: Staging, Production"
    )
    assert "validation_status is missing; needs 'passed'" in [
        g.detail for g in c.gates if g.gate == "require_tags"
    ]
    assert p.exit_code(detailed=False) == 1
    assert not p.ok


@pytest.mark.parametrize(
    ("want", "have", "error"),
    [
        pytest.param(
            desired({"1": "None"}, name="Gone"),
            live({"1": "None"}),
            "state.yaml:3: model Gone is not in the registry",
            id="missing-model",
        ),
        pytest.param(
            desired({"7": "Staging"}),
            live({"1": "None", "2": "None"}),
            "state.yaml:10: M version 7 is not in the registry (latest is 2)",
            id="missing-version",
        ),
        pytest.param(
            desired({"1": ("Staging", [], "abc")}),
            live({"1": "None"}, run_ids={"1": "xyz"}),
            "state.yaml:10: M version 1 has run_id xyz in the registry, not abc",
            id="run-id-mismatch",
        ),
    ],
)
def test_plan_errors(want, have, error) -> None:  # type: ignore[no-untyped-def]
    p = diff(want, have)
    assert p.errors
    assert p.errors[0].startswith(error)
    assert p.exit_code(detailed=True) == 1


def test_exit_codes() -> None:
    assert diff(desired({"1": "None"}), live({"1": "None"})).exit_code(detailed=True) == 0
    assert diff(desired({"1": "Staging"}), live({"1": "None"})).exit_code(detailed=True) == 2
    assert diff(desired({"1": "Staging"}), live({"1": "None"})).exit_code(detailed=False) == 0
    suspended = diff(desired({"1": "Staging"}, suspend=True), live({"1": "None"}))
    assert suspended.exit_code(detailed=True) == 0
    assert suspended.suspended == ("M",)


def test_applied_record_written_only_when_it_changes() -> None:
    want = desired({"1": ("Production", ["champion"])})
    first = diff(want, live({"1": "Production"}, aliases={"champion": "1"}))
    assert json.loads(first.records["M"]) == {"1": ["Production", "champion"]}
    again = diff(
        want,
        live(
            {"1": "Production"},
            aliases={"champion": "1"},
            applied={"1": ["Production", "champion"]},
        ),
    )
    assert again.records == {}
    assert again.changes == ()
    assert diff(desired({"1": "None"}, suspend=True), live({"1": "None"})).records == {}


def test_only_limits_models_and_order_is_deterministic() -> None:
    want = desired({"1": "Staging"}, extra={})
    p1 = diff(want, live({"1": "None"}), only=["M"])
    p2 = diff(want, live({"1": "None"}), only=["M"])
    assert p1.changes == p2.changes
    assert p1.models == ("M",)
    assert diff(want, live({"1": "None"}), only=[]).changes == ()


def test_returning_to_a_stage_held_before_is_a_rollback_not_a_promotion() -> None:
    held = {**PASSED, "regops.held": "Production,Staging"}
    p = diff(desired({"1": "Production"}, pol=GATED), live({"1": ("Archived", held)}))
    (c,) = p.changes
    assert c.action == Action.APPLY
    assert c.gates[0].detail == "version 1 held Production before (a rollback)"
    never = diff(desired({"1": "Production"}, pol=GATED), live({"1": ("Archived", PASSED)}))
    assert never.changes[0].action == Action.BLOCKED
