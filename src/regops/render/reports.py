"""Reports that CI posts for people: the pull-request plan report, the drift issue body,
the list of trained candidates and the proposal pull request's body.

Built from data (the plan's JSON form, diagnostics, candidate rows), never inline in a
command. Whatever they quote from the outside (error messages, file lines) is masked by
the caller with adapters.tracking's redaction (`mask_values` of `report_secrets`), so no
registry URI or credential reaches a comment, issue or summary.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from regops import render
from regops.files import fileio
from regops.render import md, md_code, md_fence

MARKER = "<!-- regops-plan -->"

# GitHub refuses a comment, issue or pull-request body over 65,536 characters. A report
# longer than BUDGET (room left for the marker, a footer and what `gh-sync.sh` adds) is
# posted as a summary, and the whole report is written next to it as FULL_SUFFIX (e.g.
# report.md -> report.full.md), which the workflow uploads with the run's artifacts.
GITHUB_LIMIT = 65_536
BUDGET = 60_000
FULL_SUFFIX = ".full"

# Why a run could not plan, said so a reader knows what to fix.
INVALID = "invalid"  # the state files do not validate
REGISTRY = "registry"  # the registry could not be read (unreachable, refused, ...)
SNAPSHOT = "snapshot"  # the published snapshot is missing or unreadable
ERROR = "error"  # anything else (a bug, a bad flag)

HEADLINE = {
    INVALID: "the state files are invalid",
    REGISTRY: "could not read the registry",
    SNAPSHOT: "no usable registry snapshot",
    ERROR: "could not plan",
}


@dataclass(frozen=True)
class SnapshotNotice:
    """Where a plan's live state came from when it was not the live registry."""

    created_at: str
    age_seconds: float


@dataclass(frozen=True)
class PlanReport:
    """Everything the pull-request report says; `render_plan_report` turns it into markdown."""

    registry: str | None  # its display name; None: not named (the URI is never shown)
    validation: str | None = None  # "1 file(s) valid: ..." once the state files validated
    diagnostics: tuple[str, ...] = ()  # FILE:LINE problems when they did not
    plan: Mapping[str, Any] | None = None  # the plan's JSON form
    failure_kind: str | None = None
    failure: str | None = None  # the error message, when the run could not plan
    snapshot: SnapshotNotice | None = None
    footer: tuple[str, ...] = field(default=())  # commit, run link
    history_url: str | None = None  # the history page CI publishes ($REGOPS_HISTORY_URL)


HISTORY_LINK = "📈 [The registry's history: who held each stage and alias, over time]"
URL_SAFE = ":/?#@!$&*+,;=%~-._"  # kept as is in a link target; the rest is %-encoded


def link_target(url: str | None) -> str | None:
    """`url` fit to be a markdown link target, or None: only an http(s) URL with a host;
    whatever could close the target or start markup (`)`, `<`, spaces...) is %-encoded."""
    if not url or len(url) > 2000:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return quote(url.strip(), safe=URL_SAFE)


def fence(text: str) -> list[str]:
    """`text` in a code block that no line inside it can close (see mdsafe.md_fence)."""
    return md_fence(text)


def age(seconds: float) -> str:
    """`3 h 12 min`, `4 min`, `2 d 5 h`: the age of a snapshot."""
    minutes = max(0, int(seconds // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {mins} min"
    return f"{mins} min"


def render_plan_report(r: PlanReport, full_report: str | None = None) -> str:
    """The pull-request comment (and job summary): validation, plan, gates, provenance.

    `full_report`: the file holding the whole report; the plan is then summarised (counts
    per model, blocked first) so the comment fits GitHub's limit.
    """
    where = f" · registry {md_code(r.registry)}" if r.registry else ""
    called = md_code(r.registry) if r.registry else "(named by MLFLOW_TRACKING_URI)"
    if r.failure_kind is not None:
        head = f"### ❌ regops plan: {HEADLINE[r.failure_kind]}{where}"
    elif r.plan is not None and r.plan["summary"]["blocked"]:
        head = f"### ⛔ regops plan: a promotion gate blocks{where}"
    else:
        head = f"### regops plan{where}"
    lines = [MARKER, head, ""]
    if r.snapshot is not None:
        lines += [
            f"> Planned against the registry snapshot taken {md(r.snapshot.created_at)} "
            f"({age(r.snapshot.age_seconds)} old), not the live registry: pull requests "
            "from forks get no registry credentials. The registry may have moved since; "
            "applying after merge re-reads the live registry.",
            "",
        ]
    if r.validation is not None:
        lines += [f"✅ State files: {md(r.validation)}", ""]
    if r.diagnostics:
        lines += ["The state files do not validate; nothing was planned:", ""]
        shown = _fitting(r.diagnostics, BUDGET // 2) if full_report else list(r.diagnostics)
        if len(shown) < len(r.diagnostics):
            shown.append(f"... and {len(r.diagnostics) - len(shown)} more: see {full_report}")
        lines += fence("\n".join(shown)) + [""]
    elif r.failure_kind == REGISTRY:
        lines += [
            f"The state files are fine, but the registry {called} could not be read, "
            "so nothing was planned. Re-run the job once it is reachable.",
            "",
        ]
    elif r.failure_kind == SNAPSHOT:
        lines += [
            "The state files are fine, but there is no usable registry snapshot to plan "
            "against (the trusted workflows publish one after each apply and on a schedule).",
            "",
        ]
    if r.failure and not r.diagnostics:
        failure = r.failure if not full_report else r.failure[: BUDGET // 2]
        lines += fence(failure) + [""]
    if r.plan is not None and full_report:
        lines += plan_summary(r.plan, full_report)
    elif r.plan is not None:
        body = render.render_markdown(r.plan).split("\n")
        # Our own heading and registry line replace the plain plan's.
        body = [x for x in body if x != "### regops plan" and not x.startswith("Registry `")]
        lines += body
        if any(c["drift"] for c in r.plan["changes"]):
            lines += [
                "",
                "Drift: the live registry was changed outside git. Either revert that "
                "change in the registry (the next reconcile does, under `policy.drift: "
                "correct`) or make the state files say what the registry should hold, "
                "by pull request.",
            ]
    if r.plan is not None and r.plan.get("warnings"):
        lines += ["", *plan_warnings(r.plan["warnings"], full_report)]
    target = link_target(r.history_url)
    if target is not None:
        lines += ["", f"{HISTORY_LINK}({target})"]
    if r.footer:
        lines += ["", "<sub>" + " · ".join(r.footer) + "</sub>"]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines))
    return text.strip("\n") + "\n"


WARNINGS_SHOWN = 20


def plan_warnings(warnings: Sequence[str], full_report: str | None) -> list[str]:
    """The plan's warnings (a protected alias no file names, an unreadable stamp...) as a
    list: reviewers see them in the comment, not only in the job's log."""
    lines = ["**Warnings:**", ""]
    lines += [f"- {md(w)}" for w in warnings[:WARNINGS_SHOWN]]
    if len(warnings) > WARNINGS_SHOWN:
        rest = f": see {md_code(full_report)}" if full_report else ""
        lines.append(f"- ... and {len(warnings) - WARNINGS_SHOWN} more{rest}")
    return lines


# ---- reports too long for one comment -------------------------------------------------------


def full_report_path(report: Path) -> Path:
    """Where the whole report goes when the comment is a summary: report.full.md."""
    return report.with_name(report.stem + FULL_SUFFIX + report.suffix)


def write_report(report: Path, text: str, summary: Callable[[str], str]) -> None:
    """Write `text` to `report`; over BUDGET, write it to full_report_path(report) and the
    comment `summary(name of that file)` to `report` (both whole, or neither replaced)."""
    if len(text) <= BUDGET:
        fileio.write_atomic(report, text)
        return
    full = full_report_path(report)
    short = summary(full.name)
    if len(short) > BUDGET:  # a summary of a summary: cut, saying where the rest is
        short = short[: BUDGET - 200].rsplit("\n", 1)[0] + f"\n\n(cut: see {full.name})\n"
    fileio.write_all({full: text, report: short})


def _fitting(items: Sequence[str], budget: int) -> list[str]:
    """The first items whose lines fit in `budget` characters."""
    out, used = [], 0
    for item in items:
        used += len(item) + 1
        if used > budget:
            break
        out.append(item)
    return out


def too_long(full_report: str) -> list[str]:
    """The notice a summarised report starts with: why, and where the whole report is."""
    return [
        f"> **This report is too long for one comment** (GitHub takes {GITHUB_LIMIT:,} "
        f"characters): below are the counts per model, blocked ones first. The whole report "
        f"is {md_code(full_report)}, uploaded with this workflow run's artifacts.",
        "",
    ]


def plan_summary(d: Mapping[str, Any], full_report: str, budget: int = BUDGET // 2) -> list[str]:
    """A plan's changes as counts per model (blocked first), for a report over BUDGET."""
    lines = too_long(full_report) + [f"**{md(render.summary_line(d))}**", ""]
    if d["errors"]:
        shown = _fitting([f"- {md(e)}" for e in d["errors"]], budget // 4)
        lines += ["#### Errors", "", *shown]
        if len(shown) < len(d["errors"]):
            lines.append(f"- ... and {len(d['errors']) - len(shown)} more")
        lines.append("")
    per: dict[str, Counter[str]] = {}
    for c in d["changes"]:
        n = per.setdefault(c["model"], Counter())
        n["blocked" if c["action"] == "blocked" else "to apply"] += 1
        n["drift"] += bool(c["drift"])
        n[f"kind:{c['kind']}"] += 1
    order = sorted(per, key=lambda m: (-per[m]["blocked"], m))
    rows = []
    for model in order:
        n = per[model]
        kinds = ", ".join(f"{k[5:]} {v}" for k, v in sorted(n.items()) if k.startswith("kind:"))
        cells = [md_code(model), str(n["blocked"]), str(n["to apply"]), str(n["drift"]), kinds]
        rows.append(render.md_row(cells))
    if rows:
        shown = _fitting(rows, budget)
        lines += ["| Model | Blocked | To apply | Drift | Changes |", "|---|---|---|---|---|"]
        lines += shown
        if len(shown) < len(rows):
            lines += ["", f"... and {len(rows) - len(shown)} more model(s): see {full_report}"]
        lines.append("")
    if d["summary"]["blocked"]:
        lines.append("> A gate failed: reconcile will apply nothing until the evidence is there.")
    return lines


def environments_summary(docs: Mapping[str, Mapping[str, Any]], full_report: str) -> str:
    """`plan --all-envs` over BUDGET: each environment's counts (its error cut short)."""
    out = []
    share = BUDGET // (2 * max(1, len(docs)))
    for name, d in docs.items():
        lines = [f"### regops plan: {md_code(name)}", ""]
        if "error" in d:
            lines += ["**error:**", "", *md_fence(str(d["error"])[:share])]
        else:
            lines += plan_summary(d, full_report, budget=share)
        out.append("\n".join(lines))
    return "\n\n".join(out)


# ---- candidates and the proposal --------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    model: str
    version: str
    passed: bool
    why: str  # "passed", or what is missing


def render_candidates(rows: Sequence[Candidate], fmt: str) -> str:
    passed = [c for c in rows if c.passed]
    if fmt == "markdown":
        lines = [f"### Candidates: {len(passed)} of {len(rows)} passed their gates", ""]
        lines += [
            f"- {'✅' if c.passed else '❌'} {md_code(c.model, table=False)} "
            f"version {md(c.version)}: {md(c.why)}"
            for c in rows
        ]
        return "\n".join(lines)
    lines = [render.safe(f"{c.model} v{c.version}: {c.why}", oneline=True) for c in rows]
    lines.append(f"{len(passed)} of {len(rows)} candidate(s) passed")
    return "\n".join(lines)


def render_proposal(rows: Sequence[Candidate], stage: str, changed: Sequence[str]) -> str:
    """The proposal pull request's body: which versions of which models, and why."""
    lines = [
        f"Freshly trained versions that passed their gates, proposed as **{md(stage)}**:",
        "",
    ]
    listed = [
        f"- {md_code(c.model, table=False)} version {md(c.version)} ({md(c.why)})"
        for c in rows
        if c.passed
    ]
    shown = _fitting(listed, BUDGET // 2)  # a pull request's body has the comment's limit
    lines += shown
    if len(shown) < len(listed):
        lines.append(f"- ... and {len(listed) - len(shown)} more (see the diff)")
    edited = [md_code(p, table=False) for p in changed]
    named = _fitting(edited, BUDGET // 4)
    if len(named) < len(edited):
        named.append(f"and {len(edited) - len(named)} more")
    lines += [
        "",
        "Edited: " + (", ".join(named) or "nothing (already so)"),
        "",
        "The registry-plan check shows what merging would change; this pull request is "
        "updated in place by the next training run.",
    ]
    return "\n".join(lines) + "\n"
