"""`regops export`: the live registry as state files that read back as themselves."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from regops.core.live import LiveModel, LiveState
from regops.core.state import ALIAS, MODEL_NAME, RESERVED_ALIAS, RUN_ID, version_key
from regops.files import SCHEMAS, yamlio

# ---- export: live state as state files -------------------------------------------------
# What a state file can declare (the schema the loader validates against): a live model,
# alias or run id outside it (core.state's names) cannot be written so that it reads back
# as itself.
_SCHEMA = SCHEMAS / "registry-state.schema.json"


@lru_cache(maxsize=1)
def _max_description() -> int:
    defs = json.loads(_SCHEMA.read_text(encoding="utf-8"))["$defs"]
    return int(defs["model"]["properties"]["description"]["maxLength"])


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
    if not MODEL_NAME.fullmatch(m.name):
        return (
            "a state file cannot name it (model names there: ASCII letters, digits, "
            "'_', '.', '-', at most 256)"
        )
    bad = sorted(a for a in m.aliases if not ALIAS.fullmatch(a) or RESERVED_ALIAS.fullmatch(a))
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
    max_description = _max_description()
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
            if v.run_id and not RUN_ID.fullmatch(v.run_id):
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
    max_description = _max_description()
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
            if v.run_id and RUN_ID.fullmatch(v.run_id):
                fields.append(f"run_id: {_scalar(v.run_id)}")
            out.append(f'      "{v.version}": {{{", ".join(fields)}}}')
    return "\n".join(out) + "\n"
