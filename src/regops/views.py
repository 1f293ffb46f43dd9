"""Read-only views of the live registry and the export of it as state files."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from regops import yamlio
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


# ---- export: live state as state files -------------------------------------------------
# What a state file can declare (the schema the loader validates against): a live model,
# alias or run id outside it cannot be written so that it reads back as itself.
_SCHEMA = Path(__file__).parent / "schemas" / "registry-state.schema.json"


@lru_cache(maxsize=1)
def _limits() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str], int]:
    defs = json.loads(_SCHEMA.read_text(encoding="utf-8"))["$defs"]

    def whole(pattern: str) -> re.Pattern[str]:  # `$` would also match before a final "\n"
        return re.compile(pattern.removeprefix("^").removesuffix("$"))

    return (
        whole(defs["modelName"]["pattern"]),
        whole(defs["alias"]["pattern"]),
        whole(defs["version"]["properties"]["run_id"]["pattern"]),
        int(defs["model"]["properties"]["description"]["maxLength"]),
    )


RESERVED_ALIAS = re.compile(r"(latest|v[0-9]+)", re.IGNORECASE)


def shown(text: str) -> str:
    """A name from the registry as a warning shows it: quoted, every odd character escaped."""
    return ascii(text) if not text.isprintable() or not text.isascii() else repr(text)


def yaml_str(text: str) -> str:
    """`text` as a YAML double-quoted scalar that reads back as exactly `text`.

    Printable characters stay as they are (an emoji, an accent); everything a reviewer
    could not see or that changes how the file displays (line breaks, bidi controls,
    zero-width and other invisible characters) is written as an escape.
    """
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable() and ch not in yamlio.DISPLAY_CHARS:
            out.append(ch)
        else:  # Python's escape (\n, \t, \x85, \u200b, \U000e0001) is a YAML escape too
            out.append(ascii(ch)[1:-1])
    return '"' + "".join(out) + '"'


def _scalar(text: str) -> str:
    """A plain scalar when YAML reads it back as this string, else a quoted one."""
    return yaml_str(text) if yamlio.needs_quotes(text) else text


@dataclass(frozen=True)
class Export:
    """What `export` writes: the models it can declare, and why it left out the others."""

    models: tuple[LiveModel, ...]
    skipped: tuple[tuple[str, str], ...]  # (model name, why it cannot be declared)
    notes: tuple[str, ...] = ()  # what was exported with a part left unmanaged, and why

    def warnings(self) -> list[str]:
        out = [
            f"model {shown(name)} not exported: {why}; it stays unmanaged"
            for name, why in self.skipped
        ]
        return out + list(self.notes)


def unexportable(m: LiveModel) -> str | None:
    """Why `m` cannot be declared in a state file exactly as it is live (None: it can)."""
    name_re, alias_re, _run_re, _max = _limits()
    if not name_re.fullmatch(m.name):
        return (
            "a state file cannot name it (model names there: ASCII letters, digits, "
            "'_', '.', '-', at most 256)"
        )
    bad = sorted(a for a in m.aliases if not alias_re.fullmatch(a) or RESERVED_ALIAS.fullmatch(a))
    if bad:
        return (
            f"alias {', '.join(map(shown, bad))} cannot be declared in a state file (aliases "
            "there: ASCII letters, digits, '_' and '-', not 'latest' or 'v<digits>'); "
            "exporting the model without it would make reconcile delete it"
        )
    return None


def plan_export(live: LiveState, names: Iterable[str] | None = None) -> Export:
    """The models of `live` (or of `names`) to export, and the ones left out with why."""
    chosen = [live.models[n] for n in names] if names else list(live.models.values())
    keep, skipped, notes = [], [], []
    _n, _a, run_re, max_description = _limits()
    for m in chosen:
        why = unexportable(m)
        if why is not None:
            skipped.append((m.name, why))
            continue
        keep.append(m)
        if m.description and len(m.description) > max_description:
            notes.append(
                f"model {shown(m.name)}: description not exported (longer than "
                f"{max_description} characters, the most a state file holds); it stays "
                "unmanaged"
            )
        for v in sorted(m.versions.values(), key=lambda v: version_key(v.version)):
            if v.run_id and not run_re.fullmatch(v.run_id):
                notes.append(
                    f"model {shown(m.name)} version {v.version}: run id {shown(v.run_id)} "
                    "not exported (a state file's run_id: ASCII letters, digits, '_', '-'); "
                    "the version is not guarded by its run id"
                )
    return Export(tuple(keep), tuple(skipped), tuple(notes))


def export_yaml(models: Iterable[LiveModel], *, has_stages: bool) -> str:
    """State-file text that declares exactly what is live (reconciling it changes nothing).

    Give it models `unexportable` accepts (`plan_export` chooses them).
    """
    _n, _a, run_re, max_description = _limits()
    models = list(models)
    out = [
        "# yaml-language-server: $schema=../schemas/registry-state.schema.json",
        "# Exported from the live registry by `regops export`.",
        "apiVersion: regops/v1",
        "models:" if models else "models: {}",
    ]
    for m in models:
        out.append(f"  {_scalar(m.name)}:")
        if m.description and len(m.description) <= max_description:
            out.append(f"    description: {yaml_str(m.description)}")
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
                fields.append(f"aliases: [{', '.join(map(_scalar, aliases))}]")
            if v.run_id and run_re.fullmatch(v.run_id):
                fields.append(f"run_id: {_scalar(v.run_id)}")
            out.append(f'      "{v.version}": {{{", ".join(fields)}}}')
    return "\n".join(out) + "\n"
