"""The rule verdicts in the `regops.audit` stamp: what regops writes reads back, stays
within MLflow's 5,000 characters (overrides kept first), and a foreign `rules` entry
makes the stamp unreadable (treated as absent), never a crash. Pure."""

from __future__ import annotations

import json

import pytest

from regops.core.audit import MAX_TAG_CHARS, RuleEvidence, Stamp, rule_evidence_of
from regops.core.plan import Action, Change, ChangeKind, RuleVerdict


def test_round_trip() -> None:
    rules = (
        RuleEvidence("champion", "friday", "soft", "fail", "hotfix #12", "carol"),
        RuleEvidence("champion", "pii", "hard", "pass"),
    )
    raw = Stamp(commit="abc1234", stage="None", aliases=("champion",), rules=rules).dump()
    stamp, problems = Stamp.from_tags({"regops.audit": raw})
    assert problems == []
    assert stamp is not None
    assert stamp.rules == rules
    assert (
        rules[0].describe() == "champion: rule friday (soft) fail, overridden by carol: hotfix #12"
    )


def test_many_rules_fit_the_tag_overrides_first() -> None:
    rules = tuple(
        RuleEvidence("champion", f"rule-{i:03}", "advisory", "pass") for i in range(200)
    ) + (RuleEvidence("champion", "friday", "soft", "fail", "r" * 400, "carol"),)
    raw = Stamp(commit="abc1234", rules=rules).dump()
    assert len(raw) <= MAX_TAG_CHARS
    kept = json.loads(raw)["rules"]
    assert kept[0]["rule"] == "friday"
    assert kept[0]["override"] == {"reason": "r" * 400, "actor": "carol"}
    assert 1 < len(kept) < len(rules)


@pytest.mark.parametrize(
    "rules",
    [
        '"not a list"',
        '[{"for": "champion", "rule": "x", "level": "soft"}]',
        '[{"for": "champion", "rule": "x", "level": "soft", "result": 1}]',
        '[{"for": "champion", "rule": "x", "level": "soft", "result": "fail", "override": "x"}]',
        '[{"for": "c", "rule": "x", "level": "s", "result": "f", "override": {"reason": 3}}]',
    ],
    ids=["not-a-list", "no-result", "number", "override-text", "reason-number"],
)
def test_a_foreign_rules_entry_is_not_read(rules: str) -> None:
    raw = '{"commit": "abc1234", "rules": ' + rules + "}"
    stamp, problems = Stamp.from_tags({"regops.audit": raw})
    assert stamp is None
    assert problems == [
        f"tag regops.audit is not a stamp regops wrote (rules must list rule verdicts "
        f"(for, rule, level, result): {raw[:60]!r})"
    ]


def test_only_applied_changes_leave_evidence() -> None:
    verdict = RuleVerdict("friday", "soft", "fail", False, "no", "hotfix", "carol")
    change = Change("M", "2", ChangeKind.ALIAS_MOVE, "1", "2", alias="champion", rules=(verdict,))
    assert rule_evidence_of(change) == (
        RuleEvidence("champion", "friday", "soft", "fail", "hotfix", "carol"),
    )
    blocked = Change(
        "M",
        "2",
        ChangeKind.ALIAS_MOVE,
        "1",
        "2",
        alias="champion",
        rules=(verdict,),
        action=Action.BLOCKED,
    )
    assert rule_evidence_of(blocked) == ()
