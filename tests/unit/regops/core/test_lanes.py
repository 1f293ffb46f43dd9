"""core/lanes.py: the audit timeline as lanes of tenures (pure; no git, no registry).

The timelines here are built by hand as `regops history` builds them (newest first, each
change joined with its stamp); the real-git, real-registry version of the same checks,
in a browser, is tests/registry/regops/render/test_history_html.py.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from regops.core.lanes import AT, COPY, DRIFT, PENDING, ROLLBACK, build_lanes, epoch
from regops.core.time_travel import state_at
from regops.core.timeline import Applied, Change, Entry, History
from tests.support.builders import live

T0 = 1_700_000_000


def iso(t: int) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: UP017


def applied(t: int) -> Applied:
    return Applied("applied", at=iso(t), actor="bot", commit="x")


def entry(n: int, changes: list[Change], *, reverts: str | None = None, subject: str = "") -> Entry:
    return Entry(
        commit=f"{n:040x}",
        author="Alice",
        author_email="a@example.com",
        authored_at=iso(T0 + n * 1000),
        committed_at=iso(T0 + n * 1000),
        subject=subject or f"commit {n}",
        pr=n,
        reverts=reverts,
        changes=tuple(changes),
    )


def history(*entries: Entry) -> History:
    return History("registry-state", tuple(reversed(entries)))  # newest first, as built


def stage(v: str, before: str | None, after: str | None, a: Applied | None = None) -> Change:
    return Change("M", "stage", v, before, after, applied=a)


def alias(name: str, before: str | None, after: str | None, a: Applied | None = None) -> Change:
    return Change("M", "alias", after or before or "", before, after, alias=name, applied=a)


def tenures(h: History, **kw: object) -> dict[str, list[tuple[str, int, int | None, int]]]:
    page = build_lanes(h, now=T0 + 100_000, **kw)  # type: ignore[arg-type]
    return {
        f"{kind} {name}": [(t.version, t.start, t.end, t.flags) for t in lane.tenures]
        for m in page.models
        for (kind, name), lane in m.lanes.items()
    }


PROMOTION = history(
    entry(1, [stage("1", None, "Production", applied(T0 + 1500)), alias("champion", None, "1")]),
    entry(
        2,
        [
            stage("1", "Production", "Archived"),
            stage("2", None, "Production", applied(T0 + 2600)),
            alias("champion", "1", "2", applied(T0 + 2600)),
        ],
    ),
)


def test_a_tenure_starts_when_applied_else_at_its_commit_and_ends_at_the_next() -> None:
    assert tenures(PROMOTION) == {
        # applied at T0+1500 (stamp); ended by commit 2's change on v1 (never stamped: commit time)
        "stage Production": [("1", T0 + 1500, T0 + 2000, 0), ("2", T0 + 2600, None, 0)],
        "stage Archived": [("1", T0 + 2000, None, 0)],
        # the champion's move is stamped: v1 held it until that took effect
        "alias champion": [("1", T0 + 1000, T0 + 2600, 0), ("2", T0 + 2600, None, 0)],
    }


def test_a_revert_and_a_return_are_rollbacks() -> None:
    h = history(
        *reversed(PROMOTION.entries),
        entry(
            3,
            [stage("2", "Production", None), stage("1", "Archived", "Production")],
            reverts=f"{2:040x}",
        ),
        entry(4, [alias("champion", "2", "1")]),  # not a revert: a return to v1
    )
    got = tenures(h)
    assert [(v, f & ROLLBACK) for v, _s, _e, f in got["stage Production"]] == [
        ("1", 0),
        ("2", 0),
        ("1", ROLLBACK),
    ]
    assert [(v, f & ROLLBACK) for v, _s, _e, f in got["alias champion"]] == [
        ("1", 0),
        ("2", 0),
        ("1", ROLLBACK),
    ]


@pytest.mark.parametrize(
    ("live_stage", "champion", "pending", "flags"),
    [
        ("Production", "2", False, {"stage Production": 0, "alias champion": 0}),
        ("Staging", "2", False, {"stage Production": DRIFT, "alias champion": 0}),
        ("Production", "1", False, {"stage Production": 0, "alias champion": DRIFT}),
        ("Staging", "1", True, {"stage Production": PENDING, "alias champion": PENDING}),
    ],
    ids=["in-sync", "stage-drifted", "alias-drifted", "pending-is-not-drift"],
)
def test_drift_is_an_open_tenure_the_registry_does_not_show(
    live_stage: str, champion: str, pending: bool, flags: dict[str, int]
) -> None:
    a = Applied("pending", commit="y") if pending else applied(T0 + 2600)
    h = history(
        entry(1, [stage("2", None, "Production", a), alias("champion", None, "2", a)]),
    )
    state = live({"1": "Archived", "2": live_stage}, aliases={"champion": champion})
    got = tenures(h, live=state)
    assert {lane: ts[-1][3] for lane, ts in got.items()} == flags


def test_since_drops_what_ended_before_and_models_filter() -> None:
    got = tenures(PROMOTION, since=T0 + 2100)
    assert got["stage Production"] == [("2", T0 + 2600, None, 0)]
    assert got["alias champion"] == [("1", T0 + 1000, T0 + 2600, 0), ("2", T0 + 2600, None, 0)]
    assert tenures(PROMOTION, models=["Other"]) == {}


def test_lineage_marks_copies() -> None:
    rows = [
        {
            "model": "M",
            "version": "2",
            "source_env": "dev",
            "source_model": "M",
            "source_version": "7",
        }
    ]
    got = tenures(PROMOTION, lineage=rows)
    assert [f & COPY for _v, _s, _e, f in got["stage Production"]] == [0, COPY]


def test_at_marks_what_history_at_names() -> None:
    when = datetime.fromtimestamp(T0 + 1500, timezone.utc)  # after commit 1, before commit 2
    held = state_at(PROMOTION, when)
    got = tenures(PROMOTION, at=held)
    marked = {(lane, v) for lane, ts in got.items() for v, _s, _e, f in ts if f & AT}
    assert marked == {(f"{h.kind} {h.name}", h.version) for h in held.holdings}
    assert marked == {("stage Production", "1"), ("alias champion", "1")}


def test_epoch_reads_git_and_stamp_times_and_refuses_the_rest() -> None:
    assert epoch("2023-11-14T22:13:20Z") == epoch("2023-11-14T23:13:20+01:00") == T0
    assert epoch("not a time") is None
    assert epoch(None) is None


def _verdict(rule: object = "not-on-friday", **more: object) -> dict[str, object]:
    """A `rules` entry of the stamp, as reconcile writes it for an overridden soft rule."""
    doc = {"for": "champion", "rule": rule, "level": "soft", "result": "fail"}
    doc["override"] = {"reason": "hotfix", "actor": "erin"}
    return {**doc, **more}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, []),
        ("", []),
        ("not json", []),
        ('["a list"]', []),
        ('{"commit": "x"}', []),  # no rules: none (stamps before issue 19's rules)
        ('{"rules": "not-on-friday"}', []),
        (json.dumps({"rules": _verdict()}), []),  # an object, not a list
        (json.dumps({"rules": [1, None, "x", _verdict(rule=3), _verdict(rule="")]}), []),
        (json.dumps({"rules": [_verdict()]}), ["override: not-on-friday by erin: hotfix"]),
        (json.dumps({"rules": [_verdict(override=None)]}), []),  # a verdict, not overridden
        (json.dumps({"rules": [_verdict(override={"reason": 7})]}), []),  # not one regops wrote
        (
            json.dumps({"rules": [_verdict(override={"reason": "r"})]}),
            ["override: not-on-friday: r"],
        ),
        (json.dumps({"rules": [_verdict(**{"for": "Production"})]}), []),  # another lane's
        (
            json.dumps({"rules": [_verdict(**{"for": ""})]}),
            ["override: not-on-friday by erin: hotfix"],
        ),
    ],
)
def test_overrides_are_read_defensively(raw: str | None, expected: list[str]) -> None:
    from regops.core.lanes import stamp_overrides

    assert stamp_overrides(raw, "champion") == expected


def test_overrides_are_bounded() -> None:
    import json

    from regops.core.lanes import MAX_OVERRIDES, stamp_overrides

    raw = json.dumps({"rules": [_verdict(rule=f"r{i}") for i in range(30)]})  # a tag's worth
    assert len(stamp_overrides(raw, "champion")) == MAX_OVERRIDES


def test_plan_changes_find_their_lane() -> None:
    from regops.core.lanes import plan_lane, plan_version
    from regops.core.plan import Change as PlanChange
    from regops.core.plan import ChangeKind

    enter = PlanChange("M", "3", ChangeKind.STAGE, "Archived", "Staging")
    leave = PlanChange("M", "3", ChangeKind.STAGE, "Staging", "None")
    move = PlanChange("M", None, ChangeKind.ALIAS_MOVE, "2", "3", alias="champion")
    drop = PlanChange("M", None, ChangeKind.ALIAS_DELETE, "2", None, alias="champion")
    text = PlanChange("M", None, ChangeKind.DESCRIPTION, "a", "b")
    assert [plan_lane(c) for c in (enter, leave, move, drop, text)] == [
        ("stage", "Staging"),
        ("stage", "Staging"),
        ("alias", "champion"),
        ("alias", "champion"),
        None,
    ]
    assert [plan_version(c) for c in (enter, leave, move, drop)] == ["3", "3", "3", "2"]
