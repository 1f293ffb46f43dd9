"""The audit timeline as data, computed purely from what git and the registry hold.

No I/O here: `adapters.history_git` reads git, `api.build_history` ties the two sides
together, and render.py renders the result. Everything is lenient on purpose:
history must show old commits even where today's loader would refuse them (a
commit that broke the file is part of the audit trail), and nothing git can
hold may crash it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from regops.core.live import LiveState, LiveVersion
from regops.core.plan import FORMAT_VERSION
from regops.core.state import shown, version_key

PR_PATTERNS = (
    re.compile(r"^Merge pull request #(\d+)\b"),  # GitHub merge commit
    re.compile(r"\(#(\d+)\)\s*$"),  # GitHub squash merge: "Subject (#12)"
)
REVERTS = re.compile(r"This reverts commit ([0-9a-f]{7,40})")
DEEPEN_HINT = "git fetch --unshallow (in GitHub Actions: actions/checkout with fetch-depth: 0)"


@dataclass(frozen=True)
class Commit:
    """One commit as `git log` shows it (all text decoded leniently)."""

    sha: str
    parents: tuple[str, ...]
    author: str
    email: str
    authored: str
    committed: str
    subject: str
    body: str


# model -> version -> (stage or None, aliases)
Snapshot = dict[str, dict[str, tuple[str | None, tuple[str, ...]]]]
# state file name -> blob sha, at one commit; None = the commit is not available
Tree = dict[str, str]
REFUSED = ""  # the "sha" of a file whose name the loader refuses: never read


@dataclass(frozen=True)
class Applied:
    """What the registry's stamp on a version says about one change."""

    status: str  # applied | superseded | in_effect | pending | unstamped | unknown
    at: str | None = None
    actor: str | None = None
    commit: str | None = None  # the commit the stamp names
    note: str | None = None
    # the require_metrics numbers the stamp keeps for this change's alias or stage
    metrics: tuple[str, ...] = ()
    # the policy.rules verdicts (and overrides, with reason and actor) it keeps for them
    rules: tuple[str, ...] = ()


@dataclass(frozen=True)
class Change:
    """One stage or alias change a commit made to the desired state."""

    model: str
    kind: str  # stage | alias
    version: str  # the version concerned (for an alias: the one it moved to, else left)
    before: str | None  # stage, or the version holding the alias; None = not declared
    after: str | None
    alias: str | None = None
    applied: Applied | None = None

    def describe(self) -> str:
        v = _version_label
        if self.kind == "stage":
            return (
                f"{self.model} {v(self.version)} stage: "
                f"{self.before or '(not declared)'} -> {self.after or '(not declared)'}"
            )
        if self.before is None:
            return f"{self.model} alias {self.alias}: set on {v(self.after)}"
        if self.after is None:
            return f"{self.model} alias {self.alias}: removed from {v(self.before)}"
        return f"{self.model} alias {self.alias}: {v(self.before)} -> {v(self.after)}"


def _version_label(key: str | None) -> str:
    """`v7` for a version number; a copy key (`dev@7`) as written."""
    return f"v{key}" if key and "@" not in key else str(key)


@dataclass(frozen=True)
class Entry:
    """One commit that touched the state files, with the changes it made."""

    commit: str
    author: str
    author_email: str
    authored_at: str
    committed_at: str
    subject: str
    pr: int | None = None
    reverts: str | None = None
    merged: tuple[str, ...] = ()  # commits a merge brought in (that touched the state)
    merged_authors: tuple[str, ...] = ()
    changes: tuple[Change, ...] = ()
    note: str | None = None


@dataclass(frozen=True)
class History:
    state_dir: str
    entries: tuple[Entry, ...]
    registry: str | None = None  # masked URI, when it was read
    registry_error: str | None = None
    filters: Mapping[str, str | None] = field(default_factory=dict)
    truncated: str | None = None  # why the history is cut short, and how to deepen it
    warnings: tuple[str, ...] = ()  # regops.* tags read but unusable (each treated as absent)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "state_dir": self.state_dir,
            "filters": dict(self.filters),
            "truncated": self.truncated,
            "registry": {
                "read": self.registry is not None,
                "uri": self.registry,
                "error": self.registry_error,
            },
            "entries": [_entry_dict(e) for e in self.entries],
        }


def _entry_dict(e: Entry) -> dict[str, Any]:
    return {
        "commit": e.commit,
        "short": e.commit[:7],
        "author": {"name": e.author, "email": e.author_email},
        "authored_at": e.authored_at,
        "committed_at": e.committed_at,
        "subject": e.subject,
        "pr": e.pr,
        "reverts": e.reverts,
        "merged_commits": list(e.merged),
        "merged_authors": list(e.merged_authors),
        "note": e.note,
        "changes": [
            {
                "model": c.model,
                "kind": c.kind,
                "version": c.version,
                "alias": c.alias,
                "before": c.before,
                "after": c.after,
                "applied": None if c.applied is None else _applied_dict(c.applied),
            }
            for c in e.changes
        ],
    }


def _applied_dict(a: Applied) -> dict[str, Any]:
    """`metrics` and `rules` only where a stamp keeps some: other histories keep their shape."""
    doc = vars(a).copy()
    for key in ("metrics", "rules"):
        if doc[key]:
            doc[key] = list(doc[key])
        else:
            del doc[key]
    return doc


# ---- the state at a commit, leniently ---------------------------------------------------------


def diff_states(before: Snapshot, after: Snapshot) -> list[Change]:
    """Stage and alias changes from one desired state to the next, in a stable order."""
    changes: list[Change] = []
    for model in sorted(set(before) | set(after)):
        old, new = before.get(model, {}), after.get(model, {})
        for ver in sorted(set(old) | set(new), key=lambda v: (version_key(v), v)):
            s_old = old[ver][0] if ver in old else None
            s_new = new[ver][0] if ver in new else None
            if s_old != s_new:
                changes.append(Change(model, "stage", ver, s_old, s_new))
        owner_old = {a: v for v, (_s, aliases) in old.items() for a in aliases}
        owner_new = {a: v for v, (_s, aliases) in new.items() for a in aliases}
        for alias in sorted(set(owner_old) | set(owner_new)):
            v_old, v_new = owner_old.get(alias), owner_new.get(alias)
            if v_old != v_new:
                concerned = v_new or v_old or ""
                changes.append(Change(model, "alias", concerned, v_old, v_new, alias=alias))
    return changes


def merge_files(files: Mapping[str, str], parsed: Mapping[str, Snapshot | None]) -> Snapshot:
    state: Snapshot = {}
    for name in sorted(files):
        state.update(parsed.get(files[name]) or {})
    return state


@dataclass(frozen=True)
class GitSide:
    """What git holds about the state directory: the input of `entries`.

    `trees` maps each listed commit (and the parent of the oldest) to its state files,
    or None when git does not have that commit (beyond a shallow clone's boundary).
    """

    commits: tuple[Commit, ...]  # first-parent, newest first
    trees: Mapping[str, Tree | None]
    states: Mapping[str, Snapshot | None]  # blob sha -> its state (None: unreadable)
    merged: Mapping[str, Sequence[tuple[str, str]]]  # merge commit -> (sha, author) brought in
    boundary: frozenset[str] = frozenset()  # commits whose parents are not in this clone


def entries(
    git: GitSide, *, model: str | None = None, version: str | None = None
) -> tuple[list[Entry], bool]:
    """The git side of the timeline, newest first; and whether it is cut short."""
    parsed = git.states
    out: list[Entry] = []
    cut_short = False
    commits = git.commits
    for i, c in enumerate(commits):
        after_files = git.trees.get(c.sha) or {}
        before_files: Tree | None
        if c.sha in git.boundary:
            before_files = None
        elif i + 1 < len(commits):
            # Nothing between two listed commits touched the directory.
            before_files = git.trees.get(commits[i + 1].sha)
        else:
            before_files = git.trees.get(c.parents[0]) if c.parents else {}
        note = None
        if before_files is None:
            cut_short = True
            note = (
                "the commit before this one is not in this clone (shallow): "
                "what this commit changed is unknown"
            )
        refused = sorted(shown(n) for n, sha in after_files.items() if sha == REFUSED)
        broken = sorted(
            shown(n) for n, sha in after_files.items() if sha != REFUSED and parsed.get(sha) is None
        )
        for what, names in (
            ("unreadable at this commit", broken),
            ("refused at this commit (not a state file name regops accepts)", refused),
        ):
            if names:
                text = f"{what}: {', '.join(names)}"
                note = f"{note}; {text}" if note else text
        changes: list[Change] = []
        if before_files is not None:
            changes = [
                ch
                for ch in diff_states(
                    merge_files(before_files, parsed), merge_files(after_files, parsed)
                )
                if (model is None or ch.model == model)
                and (
                    version is None
                    or version in (ch.version, ch.before if ch.kind == "alias" else None)
                )
            ]
        if (model or version) and not changes and before_files is not None:
            continue
        merged = git.merged.get(c.sha, ())
        out.append(
            Entry(
                commit=c.sha,
                author=c.author,
                author_email=c.email,
                authored_at=c.authored,
                committed_at=c.committed,
                subject=c.subject,
                pr=pr_number(c.subject),
                reverts=_reverts(c.subject, c.body),
                merged=tuple(sha for sha, _ in merged),
                merged_authors=tuple(dict.fromkeys(a for _, a in merged)),
                changes=tuple(changes),
                note=note,
            )
        )
    return out, cut_short


def pr_number(subject: str) -> int | None:
    """The pull request number in a merge or squash commit's subject, if any."""
    for pattern in PR_PATTERNS:
        m = pattern.search(subject)
        if m and len(m.group(1)) <= 12:
            return int(m.group(1))
    return None


def _reverts(subject: str, body: str) -> str | None:
    if not subject.startswith("Revert "):
        return None
    m = REVERTS.search(body)
    return m.group(1) if m else None


# ---- the registry side ---------------------------------------------------------------------------


def join_stamps(
    entries: Sequence[Entry], live: LiveState, is_ancestor: Callable[[str, str], bool | None]
) -> list[Entry]:
    """Say, for each change, whether the registry's stamp shows it applied."""
    out = []
    for e in entries:
        own = (e.commit, *e.merged)
        changes = tuple(replace(c, applied=_applied(c, own, live, is_ancestor)) for c in e.changes)
        out.append(replace(e, changes=changes))
    return out


def _applied(
    c: Change,
    own: Sequence[str],
    live: LiveState,
    is_ancestor: Callable[[str, str], bool | None],
) -> Applied:
    model = live.models.get(c.model)
    version = model.versions.get(c.version) if model else None
    if version is None and model is not None:
        from regops.core.promotion import copy_in

        version = copy_in(model, c.version)  # a `dev@7` key: the copy of dev's version 7
    if version is None:
        return Applied("unknown", note="version not in the registry")
    found = version.stamp()  # regops.audit, or the five tags of earlier versions
    raw = found.commit if found else None
    if not raw:
        if _live_matches(c, live, version):
            return Applied("in_effect", note="live matches; no regops stamp on this version")
        return Applied("unstamped", note="no regops stamp on this version")
    stamp = raw.split("+", 1)[0]  # "<sha>+uncommitted": applied from local edits on top of it
    at, actor = (found.at, found.actor) if found else (None, None)
    target = c.alias if c.kind == "alias" else c.after
    numbers = tuple(
        e.describe() for e in (found.metrics if found else ()) if target and e.target == target
    )
    ruled = tuple(
        r.describe() for r in (found.rules if found else ()) if target and r.target == target
    )
    if len(stamp) >= 7 and any(sha.startswith(stamp) or stamp.startswith(sha) for sha in own):
        note = "from uncommitted edits on top of this commit" if raw != stamp else None
        return Applied(
            "applied", at=at, actor=actor, commit=raw, note=note, metrics=numbers, rules=ruled
        )
    later = is_ancestor(own[0], stamp) if re.fullmatch(r"[0-9a-f]{7,64}", stamp) else None
    if later:
        return Applied(
            "superseded",
            at=at,
            actor=actor,
            commit=raw,
            note="re-stamped by a later reconcile",
            metrics=numbers,
            rules=ruled,
        )
    if later is False:
        if _live_matches(c, live, version):
            return Applied("in_effect", commit=raw, note="live already matches; not stamped by it")
        return Applied("pending", commit=raw, note="the last reconcile of it predates this commit")
    return Applied("unknown", commit=raw, note="the stamp names a commit git does not know")


def _live_matches(c: Change, live: LiveState, version: LiveVersion) -> bool:
    model = live.models[c.model]
    if c.kind == "alias":
        held = model.aliases.get(c.alias or "")
        return held is None if c.after is None else held in (c.after, version.version)
    return c.after is not None and version.stage == c.after
