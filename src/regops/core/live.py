"""Typed, frozen snapshot of the live registry (what MLflow says now)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from regops.core import jsonio
from regops.core.audit import Stamp
from regops.core.lineage import LINEAGE_TAG, Lineage
from regops.core.state import STAGES
from regops.errors import JsonInputError

AUDIT_PREFIX = "regops."
APPLIED_TAG = "regops.applied"  # registered-model tag: the assignment regops last applied
READY = "READY"
ALIAS_MARK = "@"  # an alias in the held set: "@champion" (no stage name starts with "@")


@dataclass(frozen=True)
class LiveVersion:
    version: str
    stage: str = "None"
    run_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    source: str | None = None  # informational: not part of the fingerprint
    created_ms: int | None = None
    # A copy of another environment's version (promotion.py): that version's stage there,
    # which `require_from` accepts, and what it is ("dev Model v7").
    origin_stage: str | None = None
    origin: str = ""
    status: str = READY  # MLflow's registration status: only READY versions are promoted

    def held_entries(self) -> frozenset[str]:
        """The raw held set: stage names and `@alias` entries (from either stamp format)."""
        stamp = self.stamp()
        return stamp.held if stamp else frozenset()

    def stamp(self) -> Stamp | None:
        """regops' audit stamp on this version (either format), None if absent or corrupt."""
        return Stamp.from_tags(self.tags)[0]

    def held(self) -> frozenset[str]:
        """Stages regops has put this version in before (a return to one is a rollback)."""
        return frozenset(s for s in self.held_entries() if not s.startswith(ALIAS_MARK))

    def held_aliases(self) -> frozenset[str]:
        """Aliases regops has pointed at this version before (a return to one is a rollback)."""
        return frozenset(
            s[len(ALIAS_MARK) :] for s in self.held_entries() if s.startswith(ALIAS_MARK)
        )


@dataclass(frozen=True)
class LiveModel:
    name: str
    versions: Mapping[str, LiveVersion]
    # alias -> version
    aliases: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    description: str | None = None
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def aliases_of(self, version: str) -> tuple[str, ...]:
        return tuple(sorted(a for a, v in self.aliases.items() if v == version))

    def applied(self) -> AppliedRecord | None:
        """What regops last applied to this model, if it ever did."""
        raw = self.tags.get(APPLIED_TAG)
        return AppliedRecord.parse(raw) if raw else None


@dataclass(frozen=True)
class LiveState:
    models: Mapping[str, LiveModel]
    has_stages: bool = True
    # regops.* tags another client wrote that regops cannot read (each treated as absent)
    warnings: tuple[str, ...] = ()
    # run id -> metric key -> latest value, for the runs `require_metrics` gates read
    # (metric_gates.runs_to_read); None: not read (no gate needs them, or a snapshot).
    # Not part of the fingerprint: the gates were judged when the plan was made.
    run_metrics: Mapping[str, Mapping[str, float]] | None = None

    def fingerprint(self, names: Iterable[str]) -> str:
        """Hash of everything a plan for `names` depends on; regops' own stamps excluded."""

        def strip(tags: Mapping[str, str]) -> dict[str, str]:
            return {k: v for k, v in sorted(tags.items()) if not k.startswith(AUDIT_PREFIX)}

        doc = {}
        for name in sorted(set(names)):
            m = self.models.get(name)
            doc[name] = (
                None
                if m is None
                else {
                    "description": m.description,
                    "aliases": dict(sorted(m.aliases.items())),
                    "tags": strip(m.tags),
                    "versions": {
                        v.version: [v.stage, v.run_id, strip(v.tags)]
                        + ([v.status] if v.status != READY else [])
                        for v in m.versions.values()
                    },
                }
            )
        blob = json.dumps(doc, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class AppliedRecord:
    """Per version: the stage (None = unmanaged) and aliases regops last applied.

    Stored compactly as JSON on the registered model: {"2": ["Production", "champion"]}.
    """

    versions: Mapping[str, tuple[str | None, tuple[str, ...]]]

    @classmethod
    def parse(cls, raw: str) -> AppliedRecord | None:
        """The record, or None for a hand-edited or foreign tag (no drift knowledge, no crash)."""
        try:
            doc = jsonio.parse_tag(raw)
        except JsonInputError:
            return None
        if not isinstance(doc, dict):
            return None
        out: dict[str, tuple[str | None, tuple[str, ...]]] = {}
        for v, entry in doc.items():
            if not (v.isascii() and v.isdigit() and v[0] != "0" and len(v) <= 19):
                return None
            if not isinstance(entry, list) or not entry:
                return None
            stage, *aliases = entry
            if not (stage is None or stage in STAGES):
                return None
            if not all(isinstance(a, str) and a for a in aliases):
                return None
            out[v] = (stage, tuple(aliases))
        return cls(MappingProxyType(out))

    @classmethod
    def of_live(cls, model: LiveModel) -> AppliedRecord:
        """What is live now, as a record (the baseline of a model regops never recorded)."""
        return cls(
            MappingProxyType(
                {v: (lv.stage, model.aliases_of(v)) for v, lv in model.versions.items()}
            )
        )

    def dump(self) -> str:
        doc = {
            v: [stage, *aliases]
            # A copy not made yet has its state key (`dev@7`) for a version: after the numbers.
            for v, (stage, aliases) in sorted(
                self.versions.items(), key=lambda kv: (not kv[0].isdigit(), len(kv[0]), kv[0])
            )
        }
        return json.dumps(doc, separators=(",", ":"))

    def stage_of(self, version: str) -> str | None:
        entry = self.versions.get(version)
        return entry[0] if entry else None

    def holder_of(self, alias: str) -> str | None:
        for version, (_stage, aliases) in self.versions.items():
            if alias in aliases:
                return version
        return None


def tag_problems(model: LiveModel) -> list[str]:
    """regops.* tags on `model` that regops cannot read: each is treated as absent."""
    problems = []
    raw = model.tags.get(APPLIED_TAG)
    if raw is not None and AppliedRecord.parse(raw) is None:
        problems.append(
            f"model {model.name!r}: tag {APPLIED_TAG} is not a record regops wrote "
            f"({raw[:60]!r}); treated as absent (no drift detection until the next reconcile)"
        )
    for v in sorted(model.versions, key=lambda x: (len(x), x)):
        tags = model.versions[v].tags
        for problem in Stamp.from_tags(tags)[1]:
            problems.append(f"model {model.name!r} version {v}: {problem}; treated as absent")
        lineage = tags.get(LINEAGE_TAG)
        if lineage and (why := Lineage.parse_checked(lineage)[1]):
            problems.append(
                f"model {model.name!r} version {v}: tag {LINEAGE_TAG} is not a lineage regops "
                f"wrote ({why}: {lineage[:60]!r}); treated as absent (not a copy)"
            )
    return problems
