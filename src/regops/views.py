"""Read-only views of the live registry and the export of it as state files."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from regops.errors import RegopsError
from regops.live import LiveModel, LiveState, LiveVersion
from regops.state import version_key


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


def export_yaml(models: Iterable[LiveModel], *, has_stages: bool) -> str:
    """State-file text that declares exactly what is live (reconciling it changes nothing)."""
    out = [
        "# yaml-language-server: $schema=../schemas/registry-state.schema.json",
        "# Exported from the live registry by `regops export`.",
        "apiVersion: regops/v1",
        "models:",
    ]
    for m in models:
        out.append(f"  {m.name}:")
        if m.description:
            out.append(f"    description: {json.dumps(m.description)}")
        if not m.versions:
            out.append("    versions: {}")
            continue
        out.append("    versions:")
        for v in sorted(m.versions.values(), key=lambda v: version_key(v.version)):
            fields = []
            if has_stages:
                fields.append(f"stage: {v.stage}")
            aliases = m.aliases_of(v.version)
            if aliases:
                fields.append(f"aliases: [{', '.join(aliases)}]")
            if v.run_id:
                fields.append(f"run_id: {v.run_id}")
            out.append(f'      "{v.version}": {{{", ".join(fields)}}}')
    return "\n".join(out) + "\n"
