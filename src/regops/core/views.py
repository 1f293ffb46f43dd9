"""Read-only views of the live registry: rows of models and versions, the version
serving a stage or an alias (the export as state files is regops.files.export)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from regops.core.live import LiveModel, LiveState, LiveVersion
from regops.core.state import version_key
from regops.errors import RegopsError


def _when(ms: int | None) -> str:
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M")


def require_model(live: LiveState, name: str) -> LiveModel:
    if name not in live.models:
        known = ", ".join(sorted(live.models)) or "none"
        raise RegopsError(f"no registered model named {name!r} (registered: {known})")
    return live.models[name]


def version_row(m: LiveModel, v: LiveVersion) -> dict[str, Any]:
    return {
        "model": m.name,
        "version": v.version,
        "stage": v.stage,
        "aliases": list(m.aliases_of(v.version)),
        "run_id": v.run_id,
        "created": _when(v.created_ms),
        "validation_status": v.tags.get("validation_status"),
        "smoke_test_status": v.tags.get("smoke_test_status"),
        "source": v.source,
    }


def model_rows(live: LiveState) -> list[dict[str, Any]]:
    rows = []
    for m in live.models.values():
        stages: dict[str, list[str]] = {}
        for v in sorted(m.versions.values(), key=lambda v: version_key(v.version)):
            if v.stage != "None":
                stages.setdefault(v.stage, []).append(v.version)
        rows.append(
            {
                "model": m.name,
                "versions": len(m.versions),
                "latest": max(m.versions, key=version_key, default=None),
                "stages": stages,
                "aliases": dict(sorted(m.aliases.items())),
                "description": m.description,
            }
        )
    return rows


def find_version(m: LiveModel, *, stage: str | None, alias: str | None) -> LiveVersion:
    """The version holding `alias`, or the latest version in `stage`."""
    if alias is not None:
        if alias not in m.aliases:
            have = ", ".join(sorted(m.aliases)) or "none"
            raise RegopsError(f"{m.name} has no alias {alias!r} (aliases: {have})")
        return m.versions[m.aliases[alias]]
    in_stage = [v for v in m.versions.values() if v.stage == stage]
    if not in_stage:
        held = sorted({v.stage for v in m.versions.values()})
        raise RegopsError(
            f"{m.name} has no version in stage {stage} (stages in use: {', '.join(held)})"
        )
    return max(in_stage, key=lambda v: version_key(v.version))
