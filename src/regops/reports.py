"""Reports that CI posts for people: the pull-request plan report, the drift issue body,
the list of trained candidates and the proposal pull request's body.

Built from data (the plan's JSON form, diagnostics, candidate rows), never inline in a
command. Whatever they quote from the outside (error messages, file lines) passes
through `redact`, so no registry URI or credential reaches a comment, issue or summary.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from regops import render

MARKER = "<!-- regops-plan -->"

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


def fence(text: str) -> list[str]:
    """`text` in a code block that no backtick run inside it can close."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return [ticks, text.rstrip("\n"), ticks]


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


def render_plan_report(r: PlanReport) -> str:
    """The pull-request comment (and job summary): validation, plan, gates, provenance."""
    where = f" · registry `{r.registry}`" if r.registry else ""
    called = f"`{r.registry}`" if r.registry else "(named by MLFLOW_TRACKING_URI)"
    if r.failure_kind is not None:
        head = f"### ❌ regops plan: {HEADLINE[r.failure_kind]}{where}"
    elif r.plan is not None and r.plan["summary"]["blocked"]:
        head = f"### ⛔ regops plan: a promotion gate blocks{where}"
    else:
        head = f"### regops plan{where}"
    lines = [MARKER, head, ""]
    if r.snapshot is not None:
        lines += [
            f"> Planned against the registry snapshot taken {r.snapshot.created_at} "
            f"({age(r.snapshot.age_seconds)} old), not the live registry: pull requests "
            "from forks get no registry credentials. The registry may have moved since; "
            "applying after merge re-reads the live registry.",
            "",
        ]
    if r.validation is not None:
        lines += [f"✅ State files: {r.validation}", ""]
    if r.diagnostics:
        lines += ["The state files do not validate; nothing was planned:", ""]
        lines += fence("\n".join(r.diagnostics)) + [""]
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
        lines += fence(r.failure) + [""]
    if r.plan is not None:
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
    if r.footer:
        lines += ["", "<sub>" + " · ".join(r.footer) + "</sub>"]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines))
    return text.strip("\n") + "\n"


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
            f"- {'✅' if c.passed else '❌'} `{c.model}` version {c.version}: {c.why}" for c in rows
        ]
        return "\n".join(lines)
    lines = [f"{c.model} v{c.version}: {c.why}" for c in rows]
    lines.append(f"{len(passed)} of {len(rows)} candidate(s) passed")
    return "\n".join(lines)


def render_proposal(rows: Sequence[Candidate], stage: str, changed: Sequence[str]) -> str:
    """The proposal pull request's body: which versions of which models, and why."""
    lines = [
        f"Freshly trained versions that passed their gates, proposed as **{stage}**:",
        "",
    ]
    lines += [f"- `{c.model}` version {c.version} ({c.why})" for c in rows if c.passed]
    lines += [
        "",
        "Edited: " + (", ".join(f"`{p}`" for p in changed) or "nothing (already so)"),
        "",
        "The registry-plan check shows what merging would change; this pull request is "
        "updated in place by the next training run.",
    ]
    return "\n".join(lines) + "\n"


# ---- redaction -----------------------------------------------------------------------------


def secret_values(uris: Iterable[str | None], others: Iterable[str | None]) -> list[str]:
    """The strings a report must never show: each URI, its host and user info; credentials."""
    out: set[str] = set()
    for uri in uris:
        if not uri or uri.startswith(("sqlite:", "file:")) or "://" not in uri:
            continue
        out.add(uri)
        out.add(uri.split("://", 1)[1])
        parts = urlsplit(uri)
        for piece in (parts.netloc, parts.hostname, parts.username, parts.password):
            if piece:
                out.add(piece)
    out.update(v for v in others if v)
    # Longest first, so a URI is replaced whole before its host is.
    return sorted((s for s in out if len(s) >= 4), key=len, reverse=True)


def redact(text: str, secrets: Sequence[str]) -> str:
    """`text` with every occurrence of each secret masked, overlapping ones included, in
    one pass linear in `text` (tracking.mask_values)."""
    from regops.tracking import mask_values

    return mask_values(text, secrets, "***")
