"""One renderer per format, all from the plan's JSON form (so text and JSON cannot drift)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from regops.core.plan import FORMAT_VERSION, Action, ChangeKind, OutcomeStatus
from regops.errors import EXIT_DRIFT, EXIT_ERROR, EXIT_OK, EXIT_PENDING
from regops.render.mdsafe import ljust, md, md_code, md_fence, safe, width

METRIC_GATE = "require_metrics"
RULE_GATE = "rule"

__all__ = ["ljust", "md", "md_code", "md_fence", "safe", "width"]  # the one escaping home

if TYPE_CHECKING:  # annotations only: `regops validate` does not load the history modules
    from regops.core.time_travel import Holding, StateAt
    from regops.core.timeline import Applied, Entry, History
    from regops.files.environments import Environment
    from regops.render.reports import Candidate


# ---- escaping: every renderer passes untrusted text (names, descriptions, commit
# messages, gate details, server errors) through one of these (see regops.render.mdsafe) ---


def md_row(cells: Iterable[str]) -> str:
    """One table row from cells already escaped (md / md_code)."""
    return "| " + " | ".join(cells) + " |"


def describe(c: Mapping[str, Any]) -> str:
    """One line saying what a change does, e.g. `version 3 stage: Staging -> Production`."""
    kind = c["kind"]
    if kind == ChangeKind.STAGE:
        return f"version {c['version']} stage: {c['before']} -> {c['after']}"
    if kind == ChangeKind.ALIAS_SET:
        return f"alias {c['alias']}: set on version {c['after']}"
    if kind == ChangeKind.ALIAS_MOVE:
        return f"alias {c['alias']}: version {c['before']} -> {c['after']}"
    if kind == ChangeKind.ALIAS_DELETE:
        return f"alias {c['alias']}: removed from version {c['before']}"
    if kind == ChangeKind.COPY:
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
            "drift: changed outside git" + (", corrected" if c["action"] == Action.APPLY else "")
        )
    if c["reason"] == "unlisted":
        notes.append("not listed in the state (unlisted_versions: archive)")
    note = Action(c["action"]).note
    if note:
        notes.append(note)
    return notes


# ---- metric gates: one small table per gated change --------------------------------------

METRIC_COLUMNS = ("metric", "candidate", "incumbent", "bound", "margin", "verdict")


def _num(x: Any) -> str:
    return "-" if x is None else format(float(x), ".6g")


def metric_cells(m: Mapping[str, Any]) -> list[str]:
    """A require_metrics row of a change (its JSON form) as the table's six cells."""
    goal = "max" if m["goal"] == "maximize" else "min"
    incumbent = "-"
    if m["incumbent"] is not None:
        incumbent = f"{_num(m['incumbent'])} (v{m['incumbent_version']})"
    elif m["incumbent_version"] is not None:
        incumbent = f"- (v{m['incumbent_version']})"
    lo, hi = m["min"], m["max"]
    if lo is not None and hi is not None:
        bound = f"{_num(lo)}..{_num(hi)}"
    elif lo is not None or hi is not None:
        bound = f">= {_num(lo)}" if lo is not None else f"<= {_num(hi)}"
    else:
        bound = "-"
    margin = "-"
    if m["beats"] is not None:
        if m["candidate"] is not None and m["incumbent"] is not None:
            gain = m["candidate"] - m["incumbent"]
            gain = gain if m["goal"] == "maximize" else -gain
            margin = f"{format(gain, '+.6g')} (by {_num(m['by'])}, vs {m['beats']})"
        else:
            margin = f"not compared (vs {m['beats']})"
    return [
        f"{m['metric']} ({goal})",
        _num(m["candidate"]),
        incumbent,
        bound,
        margin,
        "ok" if m["passed"] else "FAIL",
    ]


def metric_table_text(metrics: Sequence[Mapping[str, Any]], indent: str = "      ") -> list[str]:
    """The table of a gated change for `plan`'s text, each row's reason below it."""
    rows = [[safe(v, oneline=True) for v in metric_cells(m)] for m in metrics]
    widths = [max([len(c)] + [width(r[i]) for r in rows]) for i, c in enumerate(METRIC_COLUMNS)]
    lines = [indent + "  ".join(c.ljust(w) for c, w in zip(METRIC_COLUMNS, widths, strict=True))]
    for m, row in zip(metrics, rows, strict=True):
        lines.append(indent + "  ".join(ljust(v, w) for v, w in zip(row, widths, strict=True)))
        lines.append(f"{indent}  {m['metric']}: {m['detail']}")
    return [line.rstrip() for line in lines]


def metric_table_markdown(metrics: Sequence[Mapping[str, Any]]) -> list[str]:
    """The table of a gated change for the markdown report (every cell escaped)."""
    lines = [md_row(c.capitalize() for c in METRIC_COLUMNS), "|---|---:|---:|---|---|---|"]
    for m in metrics:
        *cells, _verdict = metric_cells(m)
        verdict = f"{'✅' if m['passed'] else '❌'} {md(m['detail'])}"
        lines.append(md_row([md_code(cells[0]), *(md(x) for x in cells[1:]), verdict]))
    return lines


# ---- rules: one line per rule judged on a change -----------------------------------------


def rule_mark(r: Mapping[str, Any]) -> str:
    """ok (passed), FAIL (blocks), OVER (a soft rule overridden), WARN (advisory failed)."""
    if r["result"] == "pass":
        return "ok"
    if r["blocks"]:
        return "FAIL"
    return "OVER" if r.get("override") else "WARN"


RULE_ICONS = {"ok": "✅", "FAIL": "❌", "OVER": "⚠️", "WARN": "⚠️"}


def rule_text(r: Mapping[str, Any]) -> str:
    """`rule not-on-friday (soft): fail: no promotions on Fridays; overridden by ...`"""
    text = f"rule {r['rule']} ({r['level']}): {r['result']}: {r['detail']}"
    o = r.get("override")
    if o and not r["blocks"]:
        text += f"; overridden by {o.get('actor') or '(unknown)'}: {o.get('reason')}"
    return text


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
        mark = "!" if c["action"] == Action.BLOCKED else ChangeKind(c["kind"]).symbol
        notes = _notes(c)
        lines.append(f"  {mark} {describe(c)}" + (f"  [{'; '.join(notes)}]" if notes else ""))
        metrics = c.get("metrics") or []
        judged = c.get("rules") or []
        for g in c["gates"]:
            if metrics and g["gate"] == METRIC_GATE:
                continue  # in the table below, with its numbers
            if judged and g["gate"] == RULE_GATE:
                continue  # below, with their level and any override
            lines.append(f"      {'ok  ' if g['passed'] else 'FAIL'} {g['gate']}: {g['detail']}")
        for r in judged:
            lines.append(f"      {rule_mark(r):<4} {rule_text(r)}")
        if metrics:
            lines += metric_table_text(metrics)
    if d["errors"] or d["changes"]:
        lines.append("")
    lines.append(summary_line(d))
    if d["summary"]["blocked"]:
        lines.append("A gate failed: reconcile will apply nothing until the evidence is there.")
    # Names, descriptions and gate details come from the registry and the files: shown, not
    # obeyed, and a newline inside one cannot forge a line of its own.
    return "\n".join(safe(line, oneline=True) for line in lines)


def render_markdown(d: Mapping[str, Any]) -> str:
    lines = ["### regops plan", "", f"**{summary_line(d)}**", ""]
    files = ", ".join(d["state_files"])
    lines.append(f"Registry {md_code(d['registry'])} · state {md_code(files)}")
    lines.append("")
    if d["errors"]:
        lines += ["#### Errors", ""] + [f"- {md(e)}" for e in d["errors"]] + [""]
    if d["changes"]:
        lines += ["| | Model | Change | Gates | Notes |", "|---|---|---|---|---|"]
        for c in d["changes"]:
            mark = "⛔" if c["action"] == Action.BLOCKED else ChangeKind(c["kind"]).symbol
            metrics = c.get("metrics") or []
            judged = c.get("rules") or []
            gates = "<br>".join(
                [
                    f"{'✅' if g['passed'] else '❌'} {md(g['gate'])}: {md(g['detail'])}"
                    for g in c["gates"]
                    if not (metrics and g["gate"] == METRIC_GATE)
                    and not (judged and g["gate"] == RULE_GATE)
                ]
                + [f"{RULE_ICONS[rule_mark(r)]} {md(rule_text(r))}" for r in judged]
            )
            if metrics:
                passed = sum(1 for m in metrics if m["passed"])
                icon = "✅" if passed == len(metrics) else "❌"
                tally = f"{icon} {METRIC_GATE}: {passed} of {len(metrics)} passed (table below)"
                gates = f"{gates}<br>{tally}" if gates else tally
            lines.append(
                md_row(
                    [
                        mark,
                        md_code(c["model"]),
                        md(describe(c)),
                        gates or "—",
                        md("; ".join(_notes(c))) or "—",
                    ]
                )
            )
        lines.append("")
    gated = [c for c in d["changes"] if c.get("metrics")]
    if gated:
        lines += ["#### Metric gates", ""]
        for c in gated:
            lines += [f"{md_code(c['model'])} {md(describe(c))}", ""]
            lines += metric_table_markdown(c["metrics"]) + [""]
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
    return {"format_version": FORMAT_VERSION, "environments": dict(docs)}


def render_environments(docs: Mapping[str, Mapping[str, Any]], fmt: str) -> str:
    """One report, one section per environment (the PR comment shows them all)."""
    if fmt == "json":
        return render_json(environments_doc(docs))
    out = []
    for name, d in docs.items():
        if fmt == "markdown":
            head = f"### regops plan: {md_code(name)}"
            if "error" in d:  # quotes the files and the server: a code block, never markup
                out.append("\n".join([head, "", "**error:**", "", *md_fence(d["error"])]))
            else:
                out.append(render_markdown(d).replace("### regops plan", head, 1))
        else:
            body = f"error: {safe(d['error'])}" if "error" in d else render_text(d)
            out.append(f"== Environment {safe(name, oneline=True)} ==\n{body}")
    return "\n\n".join(out)


def environments_exit_code(docs: Mapping[str, Mapping[str, Any]], detailed: bool) -> int:
    """1 when any environment errs or is blocked; with `detailed`: 3 drift, 2 pending."""
    codes = []
    for d in docs.values():
        if "error" in d or d["summary"]["errors"] or d["summary"]["blocked"]:
            return EXIT_ERROR
        if not detailed:
            continue
        s = d["summary"]
        drift = any(c["drift"] and c["action"] in (Action.APPLY, Action.WARN) for c in d["changes"])
        codes.append(EXIT_DRIFT if drift else EXIT_PENDING if s["to_apply"] else EXIT_OK)
    return max(codes, default=EXIT_OK)


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
                icon = OutcomeStatus(o["status"]).icon
                c = o["change"]
                detail = o.get("error") or o.get("note")
                out.append(
                    md_row(
                        [
                            f"{icon} {o['status']}",
                            md_code(c["model"]),
                            md(describe(c)),
                            md(detail) if detail else "—",
                        ]
                    )
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
    return "\n".join(safe(x, oneline=True) for x in out)


# ---- history ------------------------------------------------------------------------------


def _applied_text(a: Applied | None) -> str:
    if a is None:
        return ""
    if a.status == "applied":
        text = f"applied {a.at or '(time unknown)'} by {a.actor or '(unknown)'}"
    elif a.status == "superseded":
        text = f"superseded: the stamp now names {(a.commit or '')[:7]} ({a.at} by {a.actor})"
    elif a.status in ("pending", "unstamped"):
        text = "not applied yet"
    elif a.status == "in_effect":
        text = "in effect"
    else:
        text = a.status
    return text + (f" ({a.note})" if a.note and a.status != "superseded" else "")


def _who(e: Entry) -> str:
    who = f"{e.author} <{e.author_email}>"
    others = [a for a in e.merged_authors if a != who]
    return who + (f"; authored by {', '.join(others)}" if others else "")


def _filter_text(h: History) -> str:
    parts = [f"{k} {v}" for k, v in h.filters.items() if v]
    return f" for {', '.join(parts)}" if parts else ""


def history_text(h: History) -> str:
    lines = [safe(f"History of {h.state_dir} (git log, newest first)")]
    if h.registry:
        lines.append(safe(f"Registry: {h.registry} (audit stamps read)"))
    else:
        lines.append(safe(f"Registry: not read ({h.registry_error}); showing the git side only"))
    if h.truncated:
        lines.append(f"warning: {h.truncated}")
    if not h.entries:
        lines += ["", safe("No commits touched the state files" + _filter_text(h) + ".")]
    for e in h.entries:
        pr = f"  PR #{e.pr}" if e.pr else ""
        lines += [
            "",
            safe(f"{e.commit[:7]}  {e.committed_at}{pr}  {_who(e)}"),
            f"    {safe(e.subject)}",
        ]
        if e.reverts:
            pr = next((f" (PR #{x.pr})" for x in h.entries if x.commit == e.reverts and x.pr), "")
            lines.append(f"    reverts {e.reverts[:7]}{pr}")
        if e.note:
            lines.append(safe(f"    note: {e.note}"))
        if not e.changes and not e.note:
            lines.append("    (no stage or alias change)")
        described = [safe(c.describe(), oneline=True) for c in e.changes]
        columns = max(map(width, described), default=0)
        for c, text in zip(e.changes, described, strict=True):
            applied = safe(_applied_text(c.applied), oneline=True)
            lines.append(f"    {ljust(text, columns)}   {applied}".rstrip())
            for m in c.applied.metrics if c.applied else ():
                lines.append(safe(f"        metric gate passed: {m}", oneline=True))
            for r in c.applied.rules if c.applied else ():
                lines.append(safe(f"        {r}", oneline=True))
    return "\n".join(lines)


def history_markdown(h: History) -> str:
    lines = [f"### regops history: {md_code(h.state_dir)}{md(_filter_text(h))}", ""]
    lines.append(
        f"Registry {md_code(h.registry)}: audit stamps read"
        if h.registry
        else f"Registry not read ({md(h.registry_error)}): git side only"
    )
    if h.truncated:
        lines += ["", f"> **Warning:** {md(h.truncated)}"]
    lines += ["", "| Commit | Date | Author | PR | Change | Applied |", "|---|---|---|---|---|---|"]
    for e in h.entries:
        rows = [
            (
                c.describe(),
                _applied_text(c.applied) or "—",
                c.applied.metrics if c.applied else (),
                c.applied.rules if c.applied else (),
            )
            for c in e.changes
        ] or [(e.note or "(no stage or alias change)", "—", (), ())]
        for change, applied, metrics, ruled in rows:
            cells = [md_code(e.commit[:7]), md(e.committed_at), md(_who(e))]
            shown = "<br>".join(
                [
                    md(applied),
                    *(f"metric gate passed: {md(m)}" for m in metrics),
                    *(md(r) for r in ruled),
                ]
            )
            cells += [f"#{e.pr}" if e.pr else "—", md(change), shown]
            lines.append(md_row(cells))
    return "\n".join(lines)


def render_history(h: History, fmt: str, lineage: Sequence[Mapping[str, Any]] = ()) -> str:
    """The timeline, then the versions copied from other environments (`lineage`) if any."""
    if fmt == "json":
        doc = h.to_dict()
        if lineage:
            doc["lineage"] = list(lineage)
        return json.dumps(doc, indent=2)
    out = history_markdown(h) if fmt == "markdown" else history_text(h)
    if not lineage:
        return out
    rows = render_lineage(list(lineage))
    return out + "\n\n" + (rows if fmt == "text" else "\n".join(md_fence(rows)))


# ---- history at a time (history --at) --------------------------------------------------------


def _holding_from(h: Holding) -> str:
    pr = f" PR #{h.pr}" if h.pr else ""
    return f"{h.commit[:7]}{pr} ({h.author}, {h.committed_at})"


def _holding_effect(h: Holding) -> str:
    by = f" by {h.actor}" if h.actor and h.effect == "in_effect" else ""
    return h.effect_detail + by


def history_at_text(s: StateAt) -> str:
    scope = f" for {s.model}" if s.model else ""
    lines = [safe(f"State of {s.state_dir}{scope} at {s.at}")]
    if s.truncated:
        lines.append(f"warning: {s.truncated}")
    if s.commit is None:
        lines.append("No commit touched the state files by then.")
        return "\n".join(lines)
    pr = f" (PR #{s.pr})" if s.pr else ""
    lines.append(f"Desired state from commit {s.commit[:7]}{pr}, committed {safe(s.committed_at)}")
    if s.registry:
        lines.append(safe(f"Registry: {s.registry} (audit stamps read)"))
    else:
        lines.append(
            safe(f"Registry: not read ({s.registry_error}); when each took effect is unknown")
        )
    current = None
    for h in s.holdings:
        if h.model != current:
            current = h.model
            lines += ["", safe(h.model)]
        what = safe(f"{h.kind} {h.name}", oneline=True)
        version = safe(f"v{h.version}", oneline=True)
        lines.append(f"  {ljust(what, 22)} {ljust(version, 6)} from {safe(_holding_from(h))}")
        lines.append(f"  {'':<22} {'':<6} {safe(_holding_effect(h))}")
    if not s.holdings:
        lines += ["", "No stage or alias was declared."]
    return "\n".join(lines)


def history_at_markdown(s: StateAt) -> str:
    scope = f" for {md_code(s.model)}" if s.model else ""
    lines = [f"### regops history at {md(s.at)}: {md_code(s.state_dir)}{scope}", ""]
    if s.truncated:
        lines += [f"> **Warning:** {md(s.truncated)}", ""]
    if s.commit is None:
        return "\n".join([*lines, "No commit touched the state files by then."])
    pr = f" (PR #{s.pr})" if s.pr else ""
    committed = md(s.committed_at)
    lines += [f"Desired state from commit {md_code(s.commit[:7])}{pr}, committed {committed}", ""]
    lines += ["| Model | Held | Version | From | Took effect |", "|---|---|---|---|---|"]
    for h in s.holdings:
        cells = [md_code(h.model), md(f"{h.kind} {h.name}"), md(h.version)]
        cells += [md(_holding_from(h)), md(_holding_effect(h))]
        lines.append(md_row(cells))
    return "\n".join(lines)


def render_history_at(s: StateAt, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(s.to_dict(), indent=2)
    return history_at_markdown(s) if fmt == "markdown" else history_at_text(s)


# ---- validate, export, edits, read-only views -------------------------------------------


def validate_doc(
    files: list[str], models: int, versions: int, problems: list[Any]
) -> dict[str, Any]:
    """The JSON form of `regops validate` (problems are Diagnostics: file, line, message)."""
    return {
        "format_version": FORMAT_VERSION,
        "valid": not problems,
        "files": files,
        "models": models,
        "versions": versions,
        "problems": [{"file": d.file, "line": d.line, "message": d.message} for d in problems],
    }


def render_validate(d: Mapping[str, Any], fmt: str) -> str:
    if fmt == "json":
        return render_json(d)
    n = len(d["problems"])
    if d["valid"]:
        head = (
            f"{len(d['files'])} file(s) valid: {d['models']} model(s), {d['versions']} version(s)"
        )
    else:
        head = f"{n} problem(s) in the state files; nothing was changed"
    if fmt == "text":
        lines = [safe(f"{p['file']}:{p['line']}: {p['message']}") for p in d["problems"]]
        return "\n".join([*lines, head if d["valid"] else f"error: {head}"])
    out = ["### regops validate", "", f"**{'✅' if d['valid'] else '❌'} {head}**"]
    if d["problems"]:
        out += ["", "| File | Line | Problem |", "|---|---|---|"]
        out += [
            md_row([md_code(p["file"]), str(p["line"]), md(p["message"])]) for p in d["problems"]
        ]
    return "\n".join(out)


def render_export(
    text: str | None,
    written: list[dict[str, Any]],
    fmt: str,
    skipped: Sequence[Mapping[str, str]] = (),
) -> str:
    """`regops export`: the state text (to stdout) or the files written (--output).

    `skipped`: the models left out and why (text and markdown say it on stderr as warnings).
    """
    if fmt == "json":
        doc = {
            "format_version": FORMAT_VERSION,
            "yaml": text,
            "written": written,
            "skipped": list(skipped),
        }
        return render_json(doc)
    if text is not None:
        return text if fmt == "text" else "\n".join(md_fence(text, "yaml"))
    if fmt == "text":
        return "\n".join(safe(f"wrote {w['file']} ({w['versions']} versions)") for w in written)
    out = ["### regops export", "", "| File | Model | Versions |", "|---|---|---|"]
    out += [md_row([md_code(w["file"]), md_code(w["model"]), str(w["versions"])]) for w in written]
    if skipped:
        out += ["", "Not exported (they stay unmanaged):", ""]
        out += [f"- {md_code(k['model'])}: {md(k['reason'])}" for k in skipped]
    return "\n".join(out)


def render_edit(d: Mapping[str, Any], fmt: str) -> str:
    """An editing command's report: the file edit, then (with --apply) what the registry got.

    `d` holds `file`, `changed`, `summary`, `lines` (the edit), `apply` (a reconcile result or
    None) and `outcome` (what happened to the file and to the registry, in words).
    """
    if fmt == "json":
        return render_json(d)
    name = d["file"]
    if fmt == "markdown":
        out = [f"### regops edit: {md_code(name)}", ""]
        if not d["changed"]:
            out.append("Already so; nothing changed.")
        out += [f"- {md(what)}" for what in d["summary"]]
        if d["lines"]:
            out += [
                "",
                *md_fence("\n".join(f"{ln['op']} {ln['text']}" for ln in d["lines"]), "diff"),
            ]
        if d.get("apply") is not None:
            out += ["", render_result(d["apply"], "markdown")]
        if d.get("outcome"):
            out += ["", f"**{md(d['outcome'])}**"]
        return "\n".join(out)
    lines = []
    if not d["changed"]:
        lines.append(safe(f"{name}: already so; nothing changed"))
    lines += [safe(f"{name}: {what}") for what in d["summary"]]
    lines += [safe(f"  {ln['line']:>4} {ln['op']} {ln['text']}") for ln in d["lines"]]
    if d.get("apply") is not None:
        lines.append(render_result(d["apply"], "text"))
    if d.get("outcome"):
        lines.append(safe(d["outcome"]))
    return "\n".join(lines)


def render_migration(d: Mapping[str, Any], fmt: str) -> str:
    """`migrate-to-aliases`: each file's rewrite, as the editing commands show theirs."""
    if fmt == "json":
        return render_json(d)
    files = [{**f, "apply": None} for f in d["files"]]
    out = []
    for f in files:
        if not f["changed"]:
            line = f"{f['file']}: nothing to migrate"
            out.append(md(line) if fmt == "markdown" else safe(line))
        else:
            out.append(render_edit(f, fmt))
    if d["dry_run"]:
        out.append("Dry run: nothing was written.")
    elif d["written"]:
        out.append(
            "Next: review the diff, commit and open a pull request; its plan moves aliases only."
        )
    return ("\n\n" if fmt == "markdown" else "\n").join(out)


def render_codeowners(d: Mapping[str, Any], fmt: str) -> str:
    """`codeowners [--check]`: whether the file is up to date, and the rules regops owns."""
    if fmt == "json":
        return render_json(d)
    name, n = d["file"], len(d["rules"])
    if d["check"]:
        head = (
            f"{name} is up to date ({n} rule(s))"
            if d["up_to_date"]
            else f"{name} is out of date: run `regops codeowners` and commit it"
        )
    else:
        head = f"{'wrote' if d['written'] else 'already up to date:'} {name} ({n} rule(s))"
    if fmt == "markdown":
        out = [f"### regops codeowners: {md(head)}", ""]
        out += [f"- {md_code(rule)}" for rule in d["rules"]]
        out += [f"- **Warning:** {md(p)}" for p in d["problems"]]
        return "\n".join(out)
    if d["check"]:
        return safe(head)
    return "\n".join([safe(head), *(safe(f"  {rule}") for rule in d["rules"])])


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_cell(v)}" for k, v in value.items()) or "-"
    if isinstance(value, list):
        return ",".join(map(str, value)) or "-"
    return "-" if value in (None, "") else str(value)


def render_rows(rows: list[dict[str, Any]], columns: list[str], fmt: str, key: str) -> str:
    """A read-only view (list-models, list-versions): aligned text, a markdown table or JSON."""
    if fmt == "json":
        return render_json({key: rows})
    data = [[_cell(r.get(c)) for c in columns] for r in rows]
    if fmt == "markdown":
        out = [md_row(c for c in columns), "|" + "---|" * len(columns)]
        out += [md_row(md(v) for v in row) for row in data]
        return "\n".join(out)
    # One line per row, aligned by display width (a CJK or emoji name takes two columns).
    data = [[safe(v, oneline=True) for v in row] for row in data]
    widths = [max([len(c)] + [width(row[i]) for row in data]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(ljust(v, w) for v, w in zip(row, widths, strict=True)) for row in data]
    return "\n".join(line.rstrip() for line in lines)


def render_record(row: Mapping[str, Any], fmt: str) -> str:
    """One record (get-model): `key: value` lines, a two-column markdown table, or JSON."""
    if fmt == "json":
        return render_json(row)
    if fmt == "markdown":
        out = ["| Field | Value |", "|---|---|"]
        out += [md_row([md(k), md(_cell(v))]) for k, v in row.items()]
        return "\n".join(out)
    return "\n".join(
        safe(f"{key + ':':<19} {_cell(value)}", oneline=True) for key, value in row.items()
    )


def render_lineage(rows: Sequence[Mapping[str, Any]]) -> str:
    """Text lines, e.g. `M v3 <- dev M v7 (run 3f2a..., asked for by commit 67eaae0)`."""
    if not rows:
        return ""
    lines = ["Copied from other environments (lineage on the version):"]
    for r in rows:
        run = f"run {r['source_run_id']}" if r["source_run_id"] else "no run"
        commit = f"asked for by commit {(r['commit'] or 'unknown')[:7]}"
        line = (
            f"  {r['model']} v{r['version']} <- {r['source_env']} {r['source_model']} "
            f"v{r['source_version']} ({run}, {commit})"
        )
        # The lineage tag is registry data: shown, not obeyed, one line per copy.
        lines.append(safe(line, oneline=True))
    return "\n".join(lines)


# ---- small documents: candidates, environments, snapshot files ------------------------------


def render_file_json(doc: Mapping[str, Any]) -> str:
    """A JSON file regops writes (a snapshot, a saved plan): indented, one final newline."""
    return render_json(doc) + "\n"


def render_candidates_json(rows: Sequence[Candidate]) -> str:
    """`regops candidates --format json`: every candidate with its verdict."""
    doc = [{"model": c.model, "version": c.version, "passed": c.passed, "why": c.why} for c in rows]
    return json.dumps(doc, indent=2)


def render_candidates_file(rows: Sequence[Candidate]) -> str:
    """`regops candidates --out`: the passing versions, one line of JSON (`propose` reads it)."""
    passed = [{"model": c.model, "version": c.version} for c in rows if c.passed]
    return json.dumps(passed, separators=(",", ":")) + "\n"


def render_environment_list(envs: Sequence[Environment], fmt: str) -> str:
    """`regops environments`: JSON, the names (a CI matrix); text, a line each ("" for none).

    Variable names only, never a value; regops.yaml's text is shown, not obeyed."""
    if fmt == "json":
        return json.dumps([e.name for e in envs])
    return "\n".join(
        safe(
            f"{e.name}: state {e.state_dir}, registry {e.tracking_uri_template}, "
            f"login from {e.describe_credentials()}",
            oneline=True,
        )
        for e in envs
    )


def render_init(d: Mapping[str, Any], fmt: str) -> str:
    """`init`: the files written, kept and unchanged, the registry adopted, the next steps."""
    if fmt == "json":
        return render_json(d)
    if d["created"] or d["overwritten"]:
        head = f"regops init: {len(d['created']) + len(d['overwritten'])} file(s) written"
    else:
        head = "regops init: nothing to do, the repository is already set up (nothing changed)"
    lines = [f"created {p}" for p in d["created"]]
    lines += [f"overwrote {p} (--force)" for p in d["overwritten"]]
    lines += [f"unchanged {p}" for p in d["unchanged"]]
    lines += [f"kept {p}/ (it holds state files already)" for p in d["kept_state"]]
    lines += [
        f"adopted {n} model(s) of the live registry into {p}/" if n else f"{p}/: empty state"
        for p, n in d["adopted"].items()
    ]
    notes = [f"note: {n}" for n in d["notes"]]
    if fmt == "markdown":
        out = [f"### {md(head)}", ""]
        out += [f"- {md(line)}" for line in lines + notes]
        if d["next_steps"]:
            out += ["", "Next steps:", ""]
            out += [f"{i}. {md_code(s)}" for i, s in enumerate(d["next_steps"], 1)]
        return "\n".join(out)
    out = [safe(head), *(safe(f"  {line}") for line in lines + notes)]
    if d["next_steps"]:
        out += ["", "Next steps:"]
        out += [safe(f"  {i}. {s}") for i, s in enumerate(d["next_steps"], 1)]
    return "\n".join(out)
