"""Plan as data: an immutable tuple of changes plus what it was computed from.

Computing (planner.py), rendering (render.py) and applying (executor.py) are
three separate things. `to_dict`/`from_dict` are the JSON form described by
schemas/plan.schema.json; a saved plan round-trips through them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any

from regops.errors import EXIT_DRIFT, EXIT_ERROR, EXIT_OK, EXIT_PENDING

FORMAT_VERSION = "1"  # of every JSON document regops writes (plans, reports, snapshots)
DEFAULT_PARALLEL = 4  # writers applying a plan; executor.apply says why four


class _Named(str, Enum):
    """A str-valued enum whose str() and format() are its value on every Python.

    Members compare, hash and serialise (json.dumps) as their value; `__str__` is set so
    f-strings give the value on 3.12+ too, where Enum.__format__ would give `Kind.X`.
    """

    def __str__(self) -> str:
        return str(self.value)


class ChangeKind(_Named):
    """What a change does; `symbol` is its mark in a plan (terraform's: + add, - remove, ~)."""

    STAGE = "stage"
    ALIAS_SET = "alias_set"  # the alias is new for this model
    ALIAS_MOVE = "alias_move"  # the alias moves from one version to another: one call
    ALIAS_DELETE = "alias_delete"
    DESCRIPTION = "description"
    # A version of another environment copied here (promotion.py): version is the state
    # key (`dev@7`), before the full source reference (`dev/Model@7`), after this environment.
    COPY = "copy"

    @property
    def symbol(self) -> str:
        if self in (ChangeKind.ALIAS_SET, ChangeKind.COPY):
            return "+"
        return "-" if self is ChangeKind.ALIAS_DELETE else "~"


class Action(_Named):
    """What reconcile does with a change; `note` is how a plan annotates it (None: nothing)."""

    APPLY = "apply"
    BLOCKED = "blocked"  # a gate failed: nothing in the plan is applied
    SUSPENDED = "suspended"  # the model is suspended: shown, skipped
    WARN = "warn"  # drift under `drift: warn`: shown, not corrected

    @property
    def note(self) -> str | None:
        if self is Action.BLOCKED:
            return "BLOCKED"
        if self is Action.SUSPENDED:
            return "suspended: not applied"
        if self is Action.WARN:
            return "drift: not corrected (policy drift: warn)"
        return None


class OutcomeStatus(_Named):
    """What happened to one change of an applied plan; `icon` marks it in markdown."""

    APPLIED = "applied"
    FAILED = "failed"
    SKIPPED = "skipped"

    @property
    def icon(self) -> str:
        if self is OutcomeStatus.APPLIED:
            return "✅"
        return "❌" if self is OutcomeStatus.FAILED else "⏭️"


@dataclass(frozen=True)
class GateVerdict:
    gate: str  # require_from | require_tags | max_versions | require_metrics | freeze | ...
    passed: bool
    detail: str


@dataclass(frozen=True)
class MetricCheck:
    """One `require_metrics` entry judged on one change: the numbers and the verdict."""

    metric: str
    goal: str  # maximize | minimize
    passed: bool
    detail: str  # why, in words ("no incumbent", "rollback: beats skipped", "below min")
    candidate: float | None = None  # the candidate's value (None: not read)
    incumbent: float | None = None  # the incumbent's value, when compared
    incumbent_version: str | None = None
    beats: str | None = None  # the alias or stage it had to beat
    min: float | None = None
    max: float | None = None
    by: float | None = None  # the margin, when `beats` is set

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "goal": self.goal,
            "passed": self.passed,
            "detail": self.detail,
            "candidate": self.candidate,
            "incumbent": self.incumbent,
            "incumbent_version": self.incumbent_version,
            "beats": self.beats,
            "min": self.min,
            "max": self.max,
            "by": self.by,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MetricCheck:
        return cls(
            metric=d["metric"],
            goal=d["goal"],
            passed=d["passed"],
            detail=d["detail"],
            candidate=d.get("candidate"),
            incumbent=d.get("incumbent"),
            incumbent_version=d.get("incumbent_version"),
            beats=d.get("beats"),
            min=d.get("min"),
            max=d.get("max"),
            by=d.get("by"),
        )


@dataclass(frozen=True)
class RuleVerdict:
    """One `policy.rules` rule judged on one change (rules.py).

    `result`: pass (the expression was true), fail (false) or error (it could not be
    evaluated: a missing key, a wrong type; `detail` says why). `blocks`: whether it
    stops the change (a failed or erring hard rule; a soft one not overridden).
    """

    rule: str
    level: str  # hard | soft | advisory
    result: str  # pass | fail | error
    blocks: bool
    detail: str  # the rule's message, or why it could not be evaluated
    override_reason: str | None = None  # a soft rule let through by --override
    override_actor: str | None = None

    def to_dict(self) -> dict[str, Any]:
        override = (
            {"reason": self.override_reason, "actor": self.override_actor}
            if self.override_reason is not None
            else None
        )
        return {
            "rule": self.rule,
            "level": self.level,
            "result": self.result,
            "blocks": self.blocks,
            "detail": self.detail,
            "override": override,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RuleVerdict:
        override = d.get("override") or {}
        return cls(
            rule=d["rule"],
            level=d["level"],
            result=d["result"],
            blocks=d["blocks"],
            detail=d["detail"],
            override_reason=override.get("reason"),
            override_actor=override.get("actor"),
        )


@dataclass(frozen=True)
class Change:
    model: str
    version: str | None
    kind: ChangeKind
    before: str | None
    after: str | None
    alias: str | None = None
    reason: str = "state"  # state: git says so | drift: live moved outside git | unlisted
    drift: bool = False
    action: Action = Action.APPLY
    gates: tuple[GateVerdict, ...] = ()
    metrics: tuple[MetricCheck, ...] = ()  # the numbers behind its require_metrics verdicts
    rules: tuple[RuleVerdict, ...] = ()  # its policy.rules verdicts

    @property
    def blocked(self) -> bool:
        return self.action == Action.BLOCKED

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "kind": self.kind.value,
            "alias": self.alias,
            "before": self.before,
            "after": self.after,
            "reason": self.reason,
            "drift": self.drift,
            "action": self.action.value,
            "gates": [{"gate": g.gate, "passed": g.passed, "detail": g.detail} for g in self.gates],
            # only on a change gated by require_metrics: plans without such gates keep
            # their shape (and saved plans their bytes)
            **({"metrics": [m.to_dict() for m in self.metrics]} if self.metrics else {}),
            **({"rules": [r.to_dict() for r in self.rules]} if self.rules else {}),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Change:
        return cls(
            model=d["model"],
            version=d["version"],
            kind=ChangeKind(d["kind"]),
            alias=d.get("alias"),
            before=d["before"],
            after=d["after"],
            reason=d["reason"],
            drift=d["drift"],
            action=Action(d["action"]),
            gates=tuple(GateVerdict(g["gate"], g["passed"], g["detail"]) for g in d["gates"]),
            metrics=tuple(MetricCheck.from_dict(m) for m in d.get("metrics", ())),
            rules=tuple(RuleVerdict.from_dict(r) for r in d.get("rules", ())),
        )


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]
    models: tuple[str, ...]  # the managed models this plan covers
    live_fingerprint: str
    state_digest: str = ""
    errors: tuple[str, ...] = ()  # problems that make the plan unappliable (missing version...)
    records: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # model -> the assignment to record as applied (regops.applied) once its changes land
    registry: str = ""  # masked registry URI
    state_files: tuple[str, ...] = ()
    created_at: str = ""
    suspended: tuple[str, ...] = ()
    # (model, version) whose live state changed since the last record but that carries no
    # stamp of it: a change that landed while its stamp was lost. Reconcile stamps them.
    restamps: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()  # what was read but could not be used (corrupt tags...)

    @property
    def actionable(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.action == Action.APPLY)

    @property
    def blocked(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.action == Action.BLOCKED)

    @property
    def drifted(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.drift)

    @property
    def pending(self) -> bool:
        """Whether reconcile has anything to write (changes, records or lost stamps)."""
        return bool(self.changes or self.records or self.restamps)

    @property
    def ok(self) -> bool:
        """True when reconcile may apply it: no errors and no failed gate."""
        return not self.errors and not self.blocked

    def exit_code(self, detailed: bool) -> int:
        """0 in sync; 1 error or blocked; with `detailed`: 3 drift, 2 changes pending."""
        if not self.ok:
            return EXIT_ERROR
        if not detailed:
            return EXIT_OK
        if any(c.drift and c.action in (Action.APPLY, Action.WARN) for c in self.changes):
            return EXIT_DRIFT
        return EXIT_PENDING if self.actionable else EXIT_OK

    def summary(self) -> dict[str, int]:
        counts = {a: 0 for a in Action}
        for c in self.changes:
            counts[c.action] += 1
        return {
            "to_apply": counts[Action.APPLY],
            "blocked": counts[Action.BLOCKED],
            "suspended": counts[Action.SUSPENDED],
            "drift_warnings": counts[Action.WARN],
            "drift": sum(1 for c in self.changes if c.drift),
            "errors": len(self.errors),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "created_at": self.created_at,
            "registry": self.registry,
            "state_files": list(self.state_files),
            "state_digest": self.state_digest,
            "live_fingerprint": self.live_fingerprint,
            "models": list(self.models),
            "suspended_models": list(self.suspended),
            "errors": list(self.errors),
            "changes": [c.to_dict() for c in self.changes],
            "records": dict(self.records),
            "restamps": [list(mv) for mv in self.restamps],
            "warnings": list(self.warnings),
            "summary": self.summary(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Plan:
        return cls(
            changes=tuple(Change.from_dict(c) for c in d["changes"]),
            models=tuple(d["models"]),
            live_fingerprint=d["live_fingerprint"],
            state_digest=d.get("state_digest", ""),
            errors=tuple(d.get("errors", ())),
            records=MappingProxyType(dict(d.get("records", {}))),
            registry=d.get("registry", ""),
            state_files=tuple(d.get("state_files", ())),
            created_at=d.get("created_at", ""),
            suspended=tuple(d.get("suspended_models", ())),
            restamps=tuple((str(m), str(v)) for m, v in d.get("restamps", ())),
            warnings=tuple(d.get("warnings", ())),
        )
