"""Typed, frozen desired state: what the state files say, already validated.

Nothing past the loader re-checks these values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

STAGES = ("None", "Staging", "Production", "Archived")

# What a valid name is, in one place: the loader, edit, migrate and export check with
# these, and tests/regops/test_loader.py checks they are the state schema's patterns.
# Always matched with `fullmatch` (`$` would also match before a final "\n").
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,255}")
VERSION_KEY = re.compile(r"[1-9][0-9]{0,9}")  # a version number, as state files write it
ALIAS = re.compile(r"[A-Za-z0-9_-]{1,255}")
RESERVED_ALIAS = re.compile(r"latest|v[0-9]+", re.IGNORECASE)  # MLflow's own: never settable
RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


MAXIMIZE, MINIMIZE = "maximize", "minimize"


@dataclass(frozen=True)
class MetricRequirement:
    """One entry of `require_metrics`: what the version's source run must have logged.

    `min`/`max` bound the value; `beats` names the alias (or stage) whose live holder
    the version must beat by at least `by`, in the direction of `goal`.
    """

    metric: str
    goal: str = MAXIMIZE  # maximize | minimize
    min: float | None = None
    max: float | None = None
    beats: str | None = None
    by: float = 0.0
    line: int = 0


@dataclass(frozen=True)
class StagePolicy:
    """Gates and limits for entering one stage."""

    max_versions: int | None = None
    require_from: tuple[str, ...] | None = None
    require_tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    require_metrics: tuple[MetricRequirement, ...] = ()


@dataclass(frozen=True)
class AliasPolicy:
    """Gates for pointing one alias at a version, and whether the alias may be removed."""

    # Aliases (or stages) the version must hold, or have held under regops, before it
    # may take this alias.
    require_from: tuple[str, ...] | None = None
    require_tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    protected: bool = False  # may move to another version, never be removed
    require_metrics: tuple[MetricRequirement, ...] = ()


@dataclass(frozen=True)
class FreezeWindow:
    """`policy.freeze`: from `start` (inclusive) to `end` (exclusive), UTC epoch seconds,
    forward changes are refused; `allow_rollback` lets a rollback through."""

    start: float
    end: float
    reason: str
    allow_rollback: bool = False
    text: str = ""  # how the file wrote it ("2026-12-20T00:00:00Z .. 2027-01-04T00:00:00Z")
    line: int = 0

    def covers(self, now: float) -> bool:
        return self.start <= now < self.end


HARD, SOFT, ADVISORY = "hard", "soft", "advisory"
RULE_LEVELS = (HARD, SOFT, ADVISORY)


@dataclass(frozen=True)
class Rule:
    """`policy.rules`: a CEL expression judged on every change of the file's models (rules.py).

    `hard` blocks when it fails; `soft` blocks unless overridden (`--override NAME`);
    `advisory` only reports. The loader has compiled `expr` once already.
    """

    name: str
    expr: str
    level: str = HARD
    message: str = ""
    line: int = 0

    def reads_metrics(self) -> bool:
        """Whether the rule may read run metrics (`version.metrics`, `incumbent.metrics`)."""
        return "metrics" in self.expr


@dataclass(frozen=True)
class Policy:
    """How a file's models are reconciled. Default: no gates, unlisted ignored, drift corrected."""

    unlisted_versions: str = "ignore"  # ignore | archive
    drift: str = "correct"  # correct | warn | ignore
    stages: Mapping[str, StagePolicy] = field(default_factory=lambda: MappingProxyType({}))
    aliases: Mapping[str, AliasPolicy] = field(default_factory=lambda: MappingProxyType({}))
    # False: alias-only (no stage is declared, planned or written). Always False on
    # registries without stages (Unity Catalog).
    use_stages: bool = True
    freeze: tuple[FreezeWindow, ...] = ()
    rules: tuple[Rule, ...] = ()

    def metric_gated(self) -> bool:
        """Whether any alias or stage of this policy has `require_metrics`."""
        return any(p.require_metrics for p in self.stages.values()) or any(
            p.require_metrics for p in self.aliases.values()
        )

    def for_stage(self, stage: str) -> StagePolicy:
        return self.stages.get(stage, StagePolicy())

    def for_alias(self, alias: str) -> AliasPolicy:
        return self.aliases.get(alias, AliasPolicy())


@dataclass(frozen=True)
class VersionSpec:
    """Desired assignment of one model version. `stage=None` leaves the stage unmanaged."""

    version: str
    stage: str | None = None
    aliases: tuple[str, ...] = ()
    run_id: str | None = None
    line: int = 0


@dataclass(frozen=True)
class ModelSpec:
    """Desired state of one registered model, and where it was declared."""

    name: str
    versions: Mapping[str, VersionSpec]
    policy: Policy = field(default_factory=Policy)
    description: str | None = None
    suspend: bool = False
    owners: tuple[str, ...] = ()  # GitHub users/teams who review its changes (CODEOWNERS)
    file: str = ""
    line: int = 0

    def alias_owner(self) -> dict[str, str]:
        """alias -> version, as declared."""
        return {a: v.version for v in self.versions.values() for a in v.aliases}


@dataclass(frozen=True)
class DesiredState:
    """All models declared across the state files (merged)."""

    models: Mapping[str, ModelSpec]
    files: tuple[str, ...] = ()
    digest: str = ""  # sha256 of the files' bytes, for "what was this plan computed from"
    # file -> its policy (also for a file that declares no model yet: the edit commands
    # read a stage's max_versions here, the one reading of that rule)
    policies: Mapping[str, Policy] = field(default_factory=lambda: MappingProxyType({}))


def version_key(version: str) -> int:
    """Sort key for version strings ("10" after "9")."""
    return int(version) if version.isdigit() else -1


def shown(text: str) -> str:
    """`text` with every character but printable ASCII escaped (`\\n`, `\\t`, `\\u202e`,
    `\\\\`): a name a fork chose must not print a newline or move the cursor."""
    return "".join(ch if " " <= ch <= "~" and ch != "\\" else ascii(ch)[1:-1] for ch in text)
