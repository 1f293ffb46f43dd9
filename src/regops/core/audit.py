"""Who applied what, from which commit: the audit stamp written on each changed version.

One version tag, `regops.audit`, one write per changed version, JSON readable in the MLflow UI:
`{"commit": "<sha>", "at": "2026-01-02T03:04:05Z", "actor": "octocat",
"state_file": "registry-state/models.yaml", "stage": "Production", "aliases": ["champion"],
"held": ["Production", "Staging"]}`. `stage`/`aliases` are what the version held once the
change landed (so a later plan can tell a change that landed without its stamp); `held`
is every stage regops has put the version in (a return to one is a rollback).
`metrics` are the `require_metrics` numbers that let a change through, per alias or stage
it let the version take (`{"for": "champion", "metric": "auc", "value": 0.82,
"incumbent": 0.8, "incumbent_version": "1", "by": 0.005, "min": 0.7, "note": "..."}`);
kept when a later change to the version has none of its own, cut (notes first, then
entries) to keep the tag within MLflow's 5,000 characters.
`rules` are the `policy.rules` verdicts of the changes that let the version through
(`{"for": "champion", "rule": "not-on-friday", "level": "soft", "result": "fail",
"override": {"reason": "hotfix #12", "actor": "octocat"}}`); an override is kept with its
reason and who gave it. Cut (passed rules first) like the metrics to fit the tag.
Registries stamped by earlier versions carry five tags instead (`regops.commit`,
`regops.applied_at`, `regops.actor`, `regops.state_file`, `regops.held`): still read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from regops.core import jsonio
from regops.core.plan import Action, Change, RuleVerdict
from regops.core.state import STAGES
from regops.errors import JsonInputError

AUDIT_TAG = "regops.audit"
# The tags of earlier versions, still read.
COMMIT_TAG = "regops.commit"
APPLIED_AT_TAG = "regops.applied_at"
ACTOR_TAG = "regops.actor"
STATE_FILE_TAG = "regops.state_file"
HELD_TAG = "regops.held"
_FIELDS = ("commit", "at", "actor", "state_file")
_LEGACY = {
    COMMIT_TAG: "commit",
    APPLIED_AT_TAG: "at",
    ACTOR_TAG: "actor",
    STATE_FILE_TAG: "state_file",
}
MAX_TAG_CHARS = 5000  # MLflow's limit on a model-version tag value


def _held_entry(entry: object) -> bool:
    """A stage name, or `@alias` for an alias regops pointed at the version."""
    return isinstance(entry, str) and (entry in STAGES or (entry[:1] == "@" and len(entry) > 1))


_EVIDENCE_NUMBERS = ("value", "incumbent", "min", "max", "by")
_EVIDENCE_TEXT = ("for", "metric", "goal", "incumbent_version", "note")


@dataclass(frozen=True)
class MetricEvidence:
    """One `require_metrics` verdict that let a change through, as the stamp keeps it."""

    target: str  # the alias or stage the version took
    metric: str
    value: float
    goal: str = "maximize"
    incumbent: float | None = None
    incumbent_version: str | None = None
    min: float | None = None
    max: float | None = None
    by: float | None = None
    note: str = ""  # the verdict in words ("no incumbent", "rollback: beats skipped", ...)

    def to_doc(self, *, notes: bool = True) -> dict[str, Any]:
        doc: dict[str, Any] = {"for": self.target, "metric": self.metric, "value": self.value}
        if self.goal != "maximize":
            doc["goal"] = self.goal
        for key in ("incumbent", "incumbent_version", "min", "max", "by"):
            if getattr(self, key) is not None:
                doc[key] = getattr(self, key)
        if notes and self.note:
            doc["note"] = self.note
        return doc

    @classmethod
    def from_doc(cls, doc: Any) -> MetricEvidence | None:
        """The entry, or None when it is not one regops wrote (anyone can write the tag)."""
        if not isinstance(doc, dict) or not {"for", "metric", "value"} <= doc.keys():
            return None
        for key in _EVIDENCE_NUMBERS:
            v = doc.get(key)
            if v is not None and (type(v) not in (int, float)):
                return None
        if not all(doc.get(k) is None or isinstance(doc.get(k), str) for k in _EVIDENCE_TEXT):
            return None
        if doc.get("goal", "maximize") not in ("maximize", "minimize"):
            return None

        def opt(key: str) -> float | None:
            return None if doc.get(key) is None else float(doc[key])

        return cls(
            target=doc["for"],
            metric=doc["metric"],
            value=float(doc["value"]),
            goal=doc.get("goal", "maximize"),
            incumbent=opt("incumbent"),
            incumbent_version=doc.get("incumbent_version"),
            min=opt("min"),
            max=opt("max"),
            by=opt("by"),
            note=doc.get("note") or "",
        )

    def describe(self) -> str:
        """`champion: auc 0.82 (maximize): 0.02 better than champion (version 1: 0.8)...`"""
        head = f"{self.target}: {self.metric} {self.value:.6g} ({self.goal})"
        if self.note:
            return f"{head}: {self.note}"
        if self.incumbent is not None:  # the words were cut to fit the tag
            by = f", margin {self.by:.6g}" if self.by is not None else ""
            return f"{head}: version {self.incumbent_version} had {self.incumbent:.6g}{by}"
        return head


def evidence_of(change: Change) -> tuple[MetricEvidence, ...]:
    """The metric verdicts of an applied change, as its version's stamp keeps them."""
    if change.action != Action.APPLY or not change.metrics:
        return ()
    target = change.alias or change.after or ""
    return tuple(
        MetricEvidence(
            target=target,
            metric=m.metric,
            value=m.candidate,
            goal=m.goal,
            incumbent=m.incumbent,
            incumbent_version=m.incumbent_version,
            min=m.min,
            max=m.max,
            by=m.by if m.incumbent is not None else None,
            note=m.detail,
        )
        for m in change.metrics
        if m.passed and m.candidate is not None
    )


def merge_evidence(
    old: tuple[MetricEvidence, ...], new: tuple[MetricEvidence, ...]
) -> tuple[MetricEvidence, ...]:
    """`old` with the entries of every target `new` speaks for replaced by `new`'s."""
    targets = {e.target for e in new}
    return tuple(e for e in old if e.target not in targets) + new


@dataclass(frozen=True)
class RuleEvidence:
    """One `policy.rules` verdict of a change that went through, as the stamp keeps it."""

    target: str  # the alias or stage the version took ("" for a copy)
    rule: str
    level: str
    result: str  # pass | fail | error (a failed advisory rule, or an overridden soft one)
    override_reason: str | None = None
    override_actor: str | None = None

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "for": self.target,
            "rule": self.rule,
            "level": self.level,
            "result": self.result,
        }
        if self.override_reason is not None:
            doc["override"] = {"reason": self.override_reason, "actor": self.override_actor}
        return doc

    @classmethod
    def from_doc(cls, doc: Any) -> RuleEvidence | None:
        """The entry, or None when it is not one regops wrote."""
        if not isinstance(doc, dict):
            return None
        target, rule, level, result = (doc.get(k) for k in ("for", "rule", "level", "result"))
        if not all(isinstance(t, str) for t in (target, rule, level, result)):
            return None
        override = doc.get("override")
        reason = actor = None
        if override is not None:
            if not isinstance(override, dict):
                return None
            reason, actor = override.get("reason"), override.get("actor")
            if not isinstance(reason, str) or not (actor is None or isinstance(actor, str)):
                return None
        return cls(
            str(target),
            str(rule),
            str(level),
            str(result),
            override_reason=reason,
            override_actor=actor,
        )

    def describe(self) -> str:
        """`champion: rule not-on-friday (soft) fail, overridden by octocat: hotfix #12`"""
        head = f"{self.target + ': ' if self.target else ''}rule {self.rule} ({self.level})"
        head += f" {self.result}"
        if self.override_reason is not None:
            head += f", overridden by {self.override_actor or '(unknown)'}: {self.override_reason}"
        return head


def rule_evidence_of(change: Change) -> tuple[RuleEvidence, ...]:
    """The rule verdicts of an applied change, as its version's stamp keeps them."""
    if change.action != Action.APPLY or not change.rules:
        return ()
    target = "" if change.kind.value == "copy" else (change.alias or change.after or "")
    return tuple(_rule_evidence(target, r) for r in change.rules)


def _rule_evidence(target: str, r: RuleVerdict) -> RuleEvidence:
    return RuleEvidence(target, r.rule, r.level, r.result, r.override_reason, r.override_actor)


def merge_rules(
    old: tuple[RuleEvidence, ...], new: tuple[RuleEvidence, ...]
) -> tuple[RuleEvidence, ...]:
    """`old` with the entries of every target `new` speaks for replaced by `new`'s."""
    targets = {e.target for e in new}
    return tuple(e for e in old if e.target not in targets) + new


@dataclass(frozen=True)
class Stamp:
    """Who changed a version, when, from which commit and file; what it then held."""

    commit: str | None = None
    at: str | None = None
    actor: str | None = None
    state_file: str | None = None
    held: frozenset[str] = field(default_factory=frozenset)  # stages and `@alias` entries
    stage: str | None = None  # None: not recorded (stamps of earlier versions)
    aliases: tuple[str, ...] | None = None
    metrics: tuple[MetricEvidence, ...] = ()  # the numbers that let changes through
    rules: tuple[RuleEvidence, ...] = ()  # the rule verdicts (and overrides) of its changes

    def dump(self) -> str:
        doc: dict[str, Any] = {k: getattr(self, k) for k in _FIELDS if getattr(self, k)}
        if self.stage is not None:
            doc["stage"] = self.stage
        if self.aliases is not None:
            doc["aliases"] = list(self.aliases)
        if self.held:
            doc["held"] = sorted(self.held)

        # overrides first, then the rules that did not pass, then those that did: what is
        # cut to fit the tag is what says least
        ranked = sorted(self.rules, key=lambda e: (e.override_reason is None, e.result == "pass"))
        rules = [e.to_doc() for e in ranked]

        def text(metrics: list[dict[str, Any]]) -> str:
            full = {**doc, "metrics": metrics} if metrics else doc
            if rules:
                full = {**full, "rules": rules}
            return json.dumps(full, ensure_ascii=False, separators=(", ", ": "))

        while rules and len(text([])) > MAX_TAG_CHARS:
            rules.pop()
        raw = text([e.to_doc() for e in self.metrics])
        if len(raw) > MAX_TAG_CHARS:  # many metrics: their words first, then entries
            bare = [e.to_doc(notes=False) for e in self.metrics]
            while bare and len(text(bare)) > MAX_TAG_CHARS:
                bare.pop()
            raw = text(bare)
        if len(raw) > MAX_TAG_CHARS:  # a huge actor or path: keep what drives behaviour
            slim = {k: doc[k] for k in ("commit", "stage", "aliases", "held") if k in doc}
            raw = json.dumps(slim, ensure_ascii=False, separators=(", ", ": "))
        return raw

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> Stamp:
        """From `{"commit": ...}` or the legacy tag names (`{"regops.commit": ...}`)."""
        norm = {_LEGACY.get(k, k): v for k, v in fields.items()}
        return cls(
            commit=norm.get("commit") or None,
            at=norm.get("at") or None,
            actor=norm.get("actor") or None,
            state_file=norm.get("state_file") or None,
        )

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> tuple[Stamp | None, list[str]]:
        """The stamp in a version's tags (new or legacy format) and any problems reading it."""
        problems: list[str] = []
        legacy_held = tags.get(HELD_TAG)
        held: frozenset[str] = frozenset()
        if legacy_held is not None:
            parts = [p for p in legacy_held.split(",") if p]
            held = frozenset(p for p in parts if _held_entry(p))
            if len(held) != len(parts):
                problems.append(f"tag {HELD_TAG}={legacy_held[:60]!r} names unknown stages")
        stamp: Stamp | None = None
        raw = tags.get(AUDIT_TAG)
        if raw is not None:
            stamp, why = cls._parse(raw)
            if stamp is None:
                problems.append(
                    f"tag {AUDIT_TAG} is not a stamp regops wrote ({why}: {raw[:60]!r})"
                )
        if stamp is None and any(k in tags for k in _LEGACY):
            stamp = cls.from_fields({k: v for k, v in tags.items() if k in _LEGACY})
        if stamp is None:
            return (cls(held=held) if held else None), problems
        if held - stamp.held:
            stamp = cls(**{**stamp.__dict__, "held": stamp.held | held})
        return stamp, problems

    @classmethod
    def _parse(cls, raw: str) -> tuple[Stamp | None, str]:
        """The stamp in the tag's text, or None and why not (anyone can write the tag)."""
        try:
            doc = jsonio.parse_tag(raw, max_chars=MAX_TAG_CHARS)  # what dump() writes at most
        except JsonInputError as exc:
            return None, str(exc)
        if not isinstance(doc, dict):
            return None, "not a JSON object"
        text = {k: doc.get(k) for k in _FIELDS}
        held, stage, aliases = doc.get("held", []), doc.get("stage"), doc.get("aliases")
        if not all(v is None or isinstance(v, str) for v in text.values()):
            return None, f"{', '.join(_FIELDS)} must be strings"
        if not (isinstance(held, list) and all(_held_entry(h) for h in held)):
            return None, "held must list stages and @aliases"
        if not (stage is None or stage in STAGES):
            return None, "stage is not a stage"
        if aliases is not None and not (
            isinstance(aliases, list) and all(isinstance(a, str) for a in aliases)
        ):
            return None, "aliases must list strings"
        raw_metrics = doc.get("metrics", [])
        metrics = (
            [MetricEvidence.from_doc(m) for m in raw_metrics]
            if isinstance(raw_metrics, list)
            else [None]
        )
        if not all(metrics):
            return None, "metrics must list metric verdicts (for, metric, value)"
        raw_rules = doc.get("rules", [])
        ruled = (
            [RuleEvidence.from_doc(r) for r in raw_rules] if isinstance(raw_rules, list) else [None]
        )
        if not all(ruled):
            return None, "rules must list rule verdicts (for, rule, level, result)"
        stamp = cls(
            **{k: v for k, v in text.items() if v},
            held=frozenset(held),
            stage=stage,
            aliases=None if aliases is None else tuple(aliases),
            metrics=tuple(m for m in metrics if m is not None),
            rules=tuple(r for r in ruled if r is not None),
        )
        return stamp, ""


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: UP017 (3.10)


def stamp_tags(state_file: str, *, commit: str, who: str, at: str) -> dict[str, str]:
    """The stamp's fields for one model's changes (the executor adds what each version held)."""
    return {"commit": commit, "at": at, "actor": who, "state_file": state_file}
