"""One renderer per format, all from the plan's JSON form (so text and JSON cannot drift)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

SYMBOL = {
    "stage": "~",
    "alias_set": "+",
    "alias_move": "~",
    "alias_delete": "-",
    "description": "~",
    "copy": "+",
}
NOTE = {
    "blocked": "BLOCKED",
    "suspended": "suspended: not applied",
    "warn": "drift: not corrected (policy drift: warn)",
}


def describe(c: Mapping[str, Any]) -> str:
    """One line saying what a change does, e.g. `version 3 stage: Staging -> Production`."""
    kind = c["kind"]
    if kind == "stage":
        return f"version {c['version']} stage: {c['before']} -> {c['after']}"
    if kind == "alias_set":
        return f"alias {c['alias']}: set on version {c['after']}"
    if kind == "alias_move":
        return f"alias {c['alias']}: version {c['before']} -> {c['after']}"
    if kind == "alias_delete":
        return f"alias {c['alias']}: removed from version {c['before']}"
    if kind == "copy":
        env, rest = c["before"].split("/", 1)
        model, version = rest.rsplit("@", 1)
        return f"copy {env} {model} v{version} -> {c['after']} (new version)"
    return f"description: {_short(c['before'])} -> {_short(c['after'])}"


def _short(text: str | None, n: int = 40) -> str:
    if text is None:
        return "(none)"
    text = " ".join(text.split())
    return repr(text if len(text) <= n else text[: n - 1] + "…")


def _notes(c: Mapping[str, Any]) -> list[str]:
    notes = []
    if c["drift"]:
        notes.append(
            "drift: changed outside git" + (", corrected" if c["action"] == "apply" else "")
        )
    if c["reason"] == "unlisted":
        notes.append("not listed in the state (unlisted_versions: archive)")
    if c["action"] in NOTE:
        notes.append(NOTE[c["action"]])
    return notes


def summary_line(d: Mapping[str, Any]) -> str:
    s = d["summary"]
    parts = [f"{s['to_apply']} to apply", f"{s['blocked']} blocked", f"{s['drift']} drift"]
    if s["suspended"]:
        parts.append(f"{s['suspended']} suspended")
    if s["errors"]:
        parts.append(f"{s['errors']} error(s)")
    head = "Plan" if d["changes"] or d["errors"] else "No changes. Registry in sync"
    return f"{head}: {', '.join(parts)}."


def render_text(d: Mapping[str, Any]) -> str:
    lines = [f"Registry: {d['registry']}", f"State: {', '.join(d['state_files']) or '(none)'}", ""]
    for err in d["errors"]:
        lines.append(f"error: {err}")
    current = None
    for c in d["changes"]:
        if c["model"] != current:
            current = c["model"]
            lines.append(current)
        mark = "!" if c["action"] == "blocked" else SYMBOL[c["kind"]]
        notes = _notes(c)
        lines.append(f"  {mark} {describe(c)}" + (f"  [{'; '.join(notes)}]" if notes else ""))
        for g in c["gates"]:
            lines.append(f"      {'ok  ' if g['passed'] else 'FAIL'} {g['gate']}: {g['detail']}")
    if d["errors"] or d["changes"]:
        lines.append("")
    lines.append(summary_line(d))
    if d["summary"]["blocked"]:
        lines.append("A gate failed: reconcile will apply nothing until the evidence is there.")
    return "\n".join(lines)


def render_markdown(d: Mapping[str, Any]) -> str:
    lines = ["### regops plan", "", f"**{summary_line(d)}**", ""]
    lines.append(f"Registry `{d['registry']}` · state `{', '.join(d['state_files'])}`")
    lines.append("")
    if d["errors"]:
        lines += ["#### Errors", ""] + [f"- {e}" for e in d["errors"]] + [""]
    if d["changes"]:
        lines += ["| | Model | Change | Gates | Notes |", "|---|---|---|---|---|"]
        for c in d["changes"]:
            mark = "⛔" if c["action"] == "blocked" else SYMBOL[c["kind"]]
            gates = "<br>".join(
                f"{'✅' if g['passed'] else '❌'} {g['gate']}: {g['detail']}" for g in c["gates"]
            )
            lines.append(
                f"| {mark} | `{c['model']}` | {describe(c)} | {gates or '—'} | "
                f"{'; '.join(_notes(c)) or '—'} |"
            )
        lines.append("")
    if d["summary"]["blocked"]:
        lines.append("> A gate failed: reconcile will apply nothing until the evidence is there.")
    return "\n".join(lines)


def render_json(d: Mapping[str, Any]) -> str:
    return json.dumps(d, indent=2, sort_keys=False)


def render(d: Mapping[str, Any], fmt: str) -> str:
    return {"text": render_text, "markdown": render_markdown, "json": render_json}[fmt](d)


# ---- several environments (plan --all-envs) -------------------------------------------


def environments_doc(docs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The JSON form: each environment's plan (or its error) under its name."""
    return {"format_version": "1", "environments": dict(docs)}


def render_environments(docs: Mapping[str, Mapping[str, Any]], fmt: str) -> str:
    """One report, one section per environment (the PR comment shows them all)."""
    if fmt == "json":
        return render_json(environments_doc(docs))
    out = []
    for name, d in docs.items():
        if fmt == "markdown":
            body = f"**error:** {d['error']}" if "error" in d else render_markdown(d)
            body = body.replace("### regops plan", f"### regops plan: `{name}`", 1)
            if "error" in d:
                body = f"### regops plan: `{name}`\n\n" + body
            out.append(body)
        else:
            body = f"error: {d['error']}" if "error" in d else render_text(d)
            out.append(f"== Environment {name} ==\n{body}")
    return "\n\n".join(out)


def environments_exit_code(docs: Mapping[str, Mapping[str, Any]], detailed: bool) -> int:
    """1 when any environment errs or is blocked; with `detailed`: 3 drift, 2 pending."""
    codes = []
    for d in docs.values():
        if "error" in d or d["summary"]["errors"] or d["summary"]["blocked"]:
            return 1
        if not detailed:
            continue
        s = d["summary"]
        drift = any(c["drift"] and c["action"] in ("apply", "warn") for c in d["changes"])
        codes.append(3 if drift else 2 if s["to_apply"] else 0)
    return max(codes, default=0)


# ---- apply results ---------------------------------------------------------------------


def render_result(d: Mapping[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(d, indent=2)
    counts = d["summary"]
    line = (
        f"Reconcile: {counts['applied']} applied, {counts['failed']} failed, "
        f"{counts['skipped']} skipped."
    )
    if fmt == "markdown":
        out = ["### regops reconcile", "", f"**{line}**", ""]
        if d["outcomes"]:
            out += ["| Outcome | Model | Change | Detail |", "|---|---|---|---|"]
            for o in d["outcomes"]:
                icon = {"applied": "✅", "failed": "❌", "skipped": "⏭️"}[o["status"]]
                c = o["change"]
                out.append(
                    f"| {icon} {o['status']} | `{c['model']}` | {describe(c)} | "
                    f"{o.get('error') or o.get('note') or '—'} |"
                )
        return "\n".join(out)
    out = []
    for o in d["outcomes"]:
        c = o["change"]
        detail = o.get("error") or o.get("note")
        out.append(
            f"{o['status']:>8}  {c['model']}: {describe(c)}" + (f"  ({detail})" if detail else "")
        )
    out.append(line)
    return "\n".join(out)
