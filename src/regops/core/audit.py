"""Who applied what, from which commit: the audit stamp written on each changed version.

One version tag, `regops.audit`, one write per changed version, JSON readable in the MLflow UI:
`{"commit": "<sha>", "at": "2026-01-02T03:04:05Z", "actor": "octocat",
"state_file": "registry-state/models.yaml", "stage": "Production", "aliases": ["champion"],
"held": ["Production", "Staging"]}`. `stage`/`aliases` are what the version held once the
change landed (so a later plan can tell a change that landed without its stamp); `held`
is every stage regops has put the version in (a return to one is a rollback).
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

    def dump(self) -> str:
        doc: dict[str, Any] = {k: getattr(self, k) for k in _FIELDS if getattr(self, k)}
        if self.stage is not None:
            doc["stage"] = self.stage
        if self.aliases is not None:
            doc["aliases"] = list(self.aliases)
        if self.held:
            doc["held"] = sorted(self.held)
        raw = json.dumps(doc, ensure_ascii=False, separators=(", ", ": "))
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
        stamp = cls(
            **{k: v for k, v in text.items() if v},
            held=frozenset(held),
            stage=stage,
            aliases=None if aliases is None else tuple(aliases),
        )
        return stamp, ""


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: UP017 (3.10)


def stamp_tags(state_file: str, *, commit: str, who: str, at: str) -> dict[str, str]:
    """The stamp's fields for one model's changes (the executor adds what each version held)."""
    return {"commit": commit, "at": at, "actor": who, "state_file": state_file}
