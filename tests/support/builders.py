"""Small builders for pure planner tests: compact dicts -> frozen state objects."""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any

from regops.core.live import APPLIED_TAG, LiveModel, LiveState, LiveVersion
from regops.core.state import DesiredState, ModelSpec, Policy, StagePolicy, VersionSpec


def policy(
    unlisted: str = "ignore",
    drift: str = "correct",
    stages: dict[str, dict[str, Any]] | None = None,
) -> Policy:
    return Policy(
        unlisted_versions=unlisted,
        drift=drift,
        stages=MappingProxyType(
            {
                s: StagePolicy(
                    max_versions=sp.get("max_versions"),
                    require_from=tuple(sp["require_from"]) if "require_from" in sp else None,
                    require_tags=MappingProxyType(sp.get("require_tags", {})),
                )
                for s, sp in (stages or {}).items()
            }
        ),
    )


def desired(
    versions: dict[str, Any],
    *,
    name: str = "M",
    pol: Policy | None = None,
    description: str | None = None,
    suspend: bool = False,
    extra: dict[str, ModelSpec] | None = None,
) -> DesiredState:
    """versions: {"1": "Staging"} or {"1": ("Production", ["champion"])} or {"1": (None, ["a"])}."""
    specs = {}
    for v, spec in versions.items():
        stage, aliases, run_id = (
            (spec, (), None) if not isinstance(spec, tuple) else (*spec, None)[:3]
        )
        specs[v] = VersionSpec(v, stage=stage, aliases=tuple(aliases), run_id=run_id, line=10)
    model = ModelSpec(
        name=name,
        versions=MappingProxyType(specs),
        policy=pol or Policy(),
        description=description,
        suspend=suspend,
        file="state.yaml",
        line=3,
    )
    return DesiredState(
        models=MappingProxyType({name: model, **(extra or {})}), files=("state.yaml",)
    )


def live(
    versions: dict[str, Any],
    *,
    name: str = "M",
    aliases: dict[str, str] | None = None,
    applied: dict[str, list[Any]] | None = None,
    description: str | None = None,
    has_stages: bool = True,
    run_ids: dict[str, str] | None = None,
) -> LiveState:
    """versions: {"1": "Production"} or {"1": ("Staging", {"validation_status": "passed"})}."""
    vs = {}
    for v, spec in versions.items():
        stage, tags = (spec, {}) if not isinstance(spec, tuple) else spec
        vs[v] = LiveVersion(
            v, stage=stage, run_id=(run_ids or {}).get(v), tags=MappingProxyType(tags)
        )
    tags = {APPLIED_TAG: json.dumps(applied)} if applied is not None else {}
    model = LiveModel(
        name=name,
        versions=MappingProxyType(vs),
        aliases=MappingProxyType(aliases or {}),
        description=description,
        tags=MappingProxyType(tags),
    )
    return LiveState(models=MappingProxyType({name: model}), has_stages=has_stages)
