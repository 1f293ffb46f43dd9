"""`regops history --format html`: one self-contained page of who held each stage and alias.

The page makes no request: CSS and script are inline, allowed by their hashes in a
Content-Security-Policy meta tag whose default is 'none'. Every string on it came from
git or a registry and is hostile: the data travels as JSON inside
`<script type="application/json">` blocks (with `<`, `>` and `&` written as `\\u003c`...,
so neither `</script>` nor `<!--` can end the block) and the script builds the DOM with
`textContent` only. Each model's data is its own block, parsed and drawn when its
section scrolls into view (IntersectionObserver), so 1,000 models open as fast as ten.
Past the first screen a block holds its JSON gzipped, as one base64 string, inflated by
the browser's DecompressionStream when first shown: the browser has a tenth of the
text to scan before the page is whole, and base64 cannot end a `<script>` block.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from datetime import datetime, timezone
from importlib import resources
from typing import Any

from regops.core.lanes import Page, Tenure, epoch, no_gc, plan_version
from regops.core.metric_gates import num
from regops.core.plan import Change as PlanChange
from regops.render.mdsafe import safe

MAX_TEXT = 300  # characters of one string shown (a commit subject, an actor, a name)
DATA_VERSION = 1
FIRST_SCREEN = 12  # models whose data precedes the program (more than one screen holds)
COMPRESS_LEVEL = 6  # gzip's default
_HERE = resources.files("regops.render")
CSS = (_HERE / "history_page.css").read_text(encoding="utf-8")
SCRIPT = (_HERE / "history_page.js").read_text(encoding="utf-8")


class _Strings:
    """Hostile strings made inert for display (controls escaped, length bounded), each
    computed once; `index` numbers the repeated ones (actors, authors, statuses)."""

    def __init__(self) -> None:
        self.shown: dict[str, str] = {}
        self.table: list[str] = []
        self.numbers: dict[str, int] = {}

    def __call__(self, text: object, limit: int = MAX_TEXT) -> str | None:
        if text is None:
            return None
        raw = str(text)
        done = self.shown.get(raw)
        if done is None:
            done = raw if raw.isascii() and raw.isprintable() else safe(raw, oneline=True)
            if len(done) > limit:
                done = done[: limit - 1] + "\u2026"
            self.shown[raw] = done
        return done

    def index(self, text: object) -> int | None:
        shown = self(text)
        if shown is None:
            return None
        n = self.numbers.get(shown)
        if n is None:
            n = self.numbers[shown] = len(self.table)
            self.table.append(shown)
        return n


def _iso(epoch_: int | None) -> str | None:
    if epoch_ is None:
        return None
    return datetime.fromtimestamp(epoch_, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json_block(obj: object) -> str:
    """JSON that cannot leave its `<script type="application/json">` block."""
    text = json.dumps(obj, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _tenure(t: Tenure, local: dict[int, int], s: _Strings) -> list[Any]:
    # [version, start, end, commit, end commit, status, applied at (when not the start),
    #  actor, flags, notes?, gate numbers?]: positional, since a large history holds
    #  100,000s of them.
    applied = None if t.applied_at is None or epoch(t.applied_at) == t.start else s(t.applied_at)
    row: list[Any] = [
        s(t.version),
        t.start,
        t.end,
        local[t.commit],
        None if t.end_commit is None else local[t.end_commit],
        s.index(t.status),
        applied,
        s.index(t.actor),
        t.flags,
    ]
    if t.notes or t.metrics:
        row.append([s(n) for n in t.notes] if t.notes else None)
    if t.metrics:
        row.append([[s(short(m)), s(m)] for m in t.metrics])
    return row


def short(describe: str) -> str:
    """`auc 0.82` of a stamp's `champion: auc 0.82 (maximize): ...` (the bar's label)."""
    _, _, rest = describe.partition(": ")
    return (rest or describe).split(" (", 1)[0]


def _check(m: Any) -> str:
    """One require_metrics check of a pending change, in words."""
    text = f"{m.metric} {num(m.candidate)}"
    if m.incumbent is not None:
        text += f" vs {num(m.incumbent)} (version {m.incumbent_version})"
    return f"{text}: {'passes' if m.passed else 'fails'}: {m.detail}"


def _pending(c: PlanChange, s: _Strings) -> list[Any]:
    # [version, what it does, blocked (0/1), why blocked, gate numbers, action]
    from regops.render import describe

    return [
        s(plan_version(c)),
        s(describe(c.to_dict())),
        1 if c.blocked else 0,
        [s(f"{g.gate}: {g.detail}") for g in c.gates if not g.passed],
        [s(_check(m)) for m in c.metrics],
        s(c.action.value),
    ]


def page_data(page: Page) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the page's index, one block per model): plain JSON-ready data."""
    s = _Strings()
    blocks: list[dict[str, Any]] = []
    index: list[list[Any]] = []
    first = page.now
    for m in page.models:
        local: dict[int, int] = {}
        commits: list[list[Any]] = []
        lanes = []
        count = planned = 0
        for lane in m.lanes.values():
            for t in lane.tenures:
                first = min(first, t.start)
                for ci in (t.commit, t.end_commit):
                    if ci is not None and ci not in local:
                        local[ci] = len(commits)
                        e = page.commits[ci]
                        commits.append(
                            [
                                s(e.commit, 64),
                                e.pr,
                                s.index(e.author),
                                s(e.subject),
                                epoch(e.committed_at),
                                s(e.reverts, 64),
                            ]
                        )
            row: list[Any] = [
                lane.kind,
                s(lane.name),
                [_tenure(t, local, s) for t in lane.tenures],
            ]
            if lane.pending:
                row.append([_pending(c, s) for c in lane.pending])
            lanes.append(row)
            count += len(lane.tenures)
            planned += len(lane.pending)
        blocks.append({"c": commits, "l": lanes})
        index.append([s(m.name), len(lanes), count, planned])
    h = page.history
    at = None
    if page.at is not None:
        at = {
            "t": page.at_epoch,
            "iso": s(page.at.at),
            "commit": s(page.at.commit, 64),
            "pr": page.at.pr,
            "held": [
                [
                    s(x.model),
                    x.kind,
                    s(x.name),
                    s(x.version),
                    s(x.commit[:12]),
                    x.pr,
                    s(x.author),
                    s(x.effect),
                    s(x.effect_detail),
                ]
                for x in page.at.holdings
            ],
        }
    meta = {
        "v": DATA_VERSION,
        "generated": _iso(page.now),
        "now": page.now,
        "since": page.since,
        "start": page.since if page.since is not None else first,
        "at": at,
        "state_dir": s(h.state_dir),
        "registry": {
            "read": h.registry is not None,
            "uri": s(h.registry),
            "error": s(h.registry_error),
        },
        "truncated": s(h.truncated),
        "plan": _plan_meta(page, s),
        "models": index,
        "s": s.table,
    }
    return meta, blocks


def _plan_meta(page: Page, s: _Strings) -> dict[str, Any] | None:
    """What the summary says of the current plan (None: not asked, as with --git-only)."""
    if page.plan is None:
        return None if page.plan_error is None else {"error": s(page.plan_error)}
    p = page.plan
    return {
        "error": None,
        "changes": len(p.changes),
        "blocked": len(p.blocked),
        "errors": [s(e) for e in p.errors[:20]],
    }


def _hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def _packed_block(obj: object) -> str:
    """The JSON, gzipped, as one base64 JSON string (the page inflates it when shown):
    a tenth of the text for the browser to scan while it parses the page."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    packed = gzip.compress(text, compresslevel=COMPRESS_LEVEL, mtime=0)
    return '"' + base64.b64encode(packed).decode("ascii") + '"'


def render_html(page: Page, title: str = "regops history", *, packed: bool = True) -> str:
    """The whole page, one string (write it as UTF-8). `packed`: the models past the
    first screen travel gzipped (see _packed_block); False keeps them plain JSON."""
    with no_gc():
        meta, blocks = page_data(page)
    csp = (
        f"default-src 'none'; style-src {_hash(CSS)}; script-src {_hash(SCRIPT)}; "
        "img-src 'none'; connect-src 'none'; base-uri 'none'; form-action 'none'"
    )
    parts = [
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n',
        '<meta name="referrer" content="no-referrer">\n',
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
        f"<title>{_text(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        '<header><h1 id="title"></h1><p id="summary"></p><p id="legend"></p></header>\n',
        '<main id="models" aria-live="polite"></main>\n',
        "<noscript>This page draws its timeline with a script; the data is in the page "
        "source as JSON.</noscript>\n",
        f'<script type="application/json" id="regops-meta">{_json_block(meta)}</script>\n',
    ]
    data = [
        f'<script type="application/json" id="m{i}">'
        f"{_packed_block(b) if packed and i >= FIRST_SCREEN else _json_block(b)}</script>\n"
        for i, b in enumerate(blocks)
    ]
    # The program runs right after the first screen's data: it draws that screen while
    # the browser still parses the rest (lanes further down wait for it, drawn lazily).
    parts += data[:FIRST_SCREEN]
    parts.append(f"<script>{SCRIPT}</script>\n")
    parts += data[FIRST_SCREEN:]
    parts.append("</body>\n</html>\n")
    return "".join(parts)


def _text(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )
