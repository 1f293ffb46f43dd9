"""The audit timeline: `git log` of the state files joined with the registry's audit stamps.

Answers "who put version 7 in Production, when, through which pull request, and
when did it take effect". The git side follows the first-parent history of the
state directory (a merged pull request is one entry: its merge or squash commit),
and each entry's stage/alias changes are computed by diffing the state files at
the commit against its first parent, so a `git revert` shows as the reverse change.
The registry side reads the `regops.*` stamps reconcile writes on each version it
changes. A version keeps only its latest stamp: an older application shows as
"superseded" by the later commit that re-stamped the version.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from regops.errors import RegopsError
from regops.live import LiveState
from regops.state import version_key

FORMAT_VERSION = "1"
MAX_BLOB_BYTES = 1 << 20  # as the loader: a state file is small, hand-edited text
PR_PATTERNS = (
    re.compile(r"^Merge pull request #(\d+)\b"),  # GitHub merge commit
    re.compile(r"\(#(\d+)\)\s*$"),  # GitHub squash merge: "Subject (#12)"
)
REVERTS = re.compile(r"This reverts commit ([0-9a-f]{7,40})")
SEP, END = "\x1f", "\x1e"

# model -> version -> (stage or None, aliases)
Snapshot = dict[str, dict[str, tuple[str | None, tuple[str, ...]]]]


class HistoryError(RegopsError):
    """The git history of the state directory cannot be read."""


@dataclass(frozen=True)
class Applied:
    """What the registry's stamp on a version says about one change."""

    status: str  # applied | superseded | in_effect | pending | unstamped | unknown
    at: str | None = None
    actor: str | None = None
    commit: str | None = None  # the commit the stamp names
    note: str | None = None


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
        if self.kind == "stage":
            return (
                f"{self.model} v{self.version} stage: "
                f"{self.before or '(not declared)'} -> {self.after or '(not declared)'}"
            )
        if self.before is None:
            return f"{self.model} alias {self.alias}: set on v{self.after}"
        if self.after is None:
            return f"{self.model} alias {self.alias}: removed from v{self.before}"
        return f"{self.model} alias {self.alias}: v{self.before} -> v{self.after}"


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "state_dir": self.state_dir,
            "filters": dict(self.filters),
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
                "applied": None if c.applied is None else vars(c.applied),
            }
            for c in e.changes
        ],
    }


# ---- git ----------------------------------------------------------------------------------


class Git:
    """Just enough git, by subprocess, rooted at the repository holding the state directory."""

    def __init__(self, state_dir: Path) -> None:
        if not state_dir.is_dir():
            raise HistoryError(f"state directory {state_dir} not found")
        top = self._run(["rev-parse", "--show-toplevel"], cwd=state_dir, check=False)
        if top is None:
            raise HistoryError(
                f"{state_dir} is not in a git repository: history is the git log of the state files"
            )
        self.root = Path(top.strip())
        rel = state_dir.resolve().relative_to(self.root.resolve()).as_posix()
        self.rel = "" if rel == "." else rel
        self._ancestry: dict[tuple[str, str], bool | None] = {}

    def _run(self, args: list[str], *, cwd: Path | None = None, check: bool = True) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args],
                cwd=cwd or self.root,
                capture_output=True,
                text=True,
                encoding="utf-8",
                errors="replace",
                check=check,
            )
        except subprocess.CalledProcessError as exc:
            raise HistoryError(f"git {' '.join(args[:2])} failed: {exc.stderr.strip()}") from exc
        except OSError as exc:
            raise HistoryError(f"cannot run git: {exc}") from exc
        return out.stdout if out.returncode == 0 else None

    @property
    def pathspec(self) -> str:
        return self.rel or "."

    def log(self, rev: str = "HEAD") -> list[dict[str, str]]:
        """First-parent commits that touched the state directory, newest first."""
        fmt = SEP.join(["%H", "%P", "%an", "%ae", "%aI", "%cI", "%s", "%b"]) + END
        out = self._run(
            ["log", "--first-parent", f"--format={fmt}", rev, "--", self.pathspec], check=False
        )
        if out is None:
            return []  # no commits yet
        keys = ("sha", "parents", "author", "email", "authored", "committed", "subject", "body")
        return [
            dict(zip(keys, rec.strip("\n").split(SEP), strict=True))
            for rec in out.split(END)
            if rec.strip()
        ]

    def branch_commits(self, base: str, tip: str) -> list[tuple[str, str]]:
        """(sha, author) of commits in base..tip that touched the state directory."""
        out = self._run(
            ["log", f"--format=%H{SEP}%an <%ae>", f"{base}..{tip}", "--", self.pathspec],
            check=False,
        )
        pairs = [line.split(SEP, 1) for line in (out or "").splitlines() if SEP in line]
        return [(p[0], p[1]) for p in pairs]

    def tree(self, commit: str) -> dict[str, str] | None:
        """State file name -> blob sha at `commit`; None when the commit is not available."""
        spec = f"{commit}:{self.rel}" if self.rel else f"{commit}:"
        out = self._run(["ls-tree", "-z", spec], check=False)
        if out is None:
            exists = self._run(["cat-file", "-e", f"{commit}^{{commit}}"], check=False)
            return {} if exists is not None else None  # the directory did not exist yet
        files = {}
        for rec in out.split("\0"):
            if not rec:
                continue
            meta, name = rec.split("\t", 1)
            _mode, kind, sha = meta.split()
            if kind == "blob" and name.endswith((".yaml", ".yml")):
                files[name] = sha
        return files

    def blobs(self, shas: Iterable[str]) -> dict[str, bytes]:
        """Read many blobs with one `git cat-file --batch`."""
        wanted = sorted(set(shas))
        if not wanted:
            return {}
        proc = subprocess.run(
            ["git", "cat-file", "--batch"],
            cwd=self.root,
            input=("\n".join(wanted) + "\n").encode(),
            capture_output=True,
            check=True,
        )
        out, pos, blobs = proc.stdout, 0, {}
        for sha in wanted:
            nl = out.index(b"\n", pos)
            header = out[pos:nl].split()
            if len(header) < 3:  # "<sha> missing"
                pos = nl + 1
                continue
            size = int(header[2])
            blobs[sha] = out[nl + 1 : nl + 1 + size]
            pos = nl + 1 + size + 1
        return blobs

    def is_ancestor(self, older: str, newer: str) -> bool | None:
        """Whether `older` is an ancestor of `newer`; None when git does not know one of them."""
        key = (older, newer)
        if key not in self._ancestry:
            proc = subprocess.run(
                ["git", "merge-base", "--is-ancestor", older, newer],
                cwd=self.root,
                capture_output=True,
                check=False,
            )
            self._ancestry[key] = {0: True, 1: False}.get(proc.returncode)
        return self._ancestry[key]


# ---- the state at a commit, leniently ---------------------------------------------------------


def parse_state(raw: bytes) -> Snapshot | None:
    """Stages and aliases declared in one state file; None when it is not readable YAML.

    Lenient on purpose: history must show old commits even where today's loader
    would refuse them (a commit that broke the file is part of the audit trail).
    """
    if len(raw) > MAX_BLOB_BYTES:
        return None
    try:
        doc = yaml.load(raw.decode("utf-8"), Loader=_NoAliasSafeLoader)  # noqa: S506
    except (yaml.YAMLError, UnicodeDecodeError):
        return None
    models = doc.get("models") if isinstance(doc, dict) else None
    out: Snapshot = {}
    for name, spec in (models or {}).items() if isinstance(models, dict) else ():
        versions = spec.get("versions") if isinstance(spec, dict) else None
        entry: dict[str, tuple[str | None, tuple[str, ...]]] = {}
        for ver, vspec in (versions or {}).items() if isinstance(versions, dict) else ():
            vspec = vspec if isinstance(vspec, dict) else {}
            stage = vspec.get("stage")
            aliases = vspec.get("aliases") or []
            entry[str(ver)] = (
                None if stage is None else str(stage),
                tuple(str(a) for a in aliases) if isinstance(aliases, list) else (),
            )
        out[str(name)] = entry
    return out


class _NoAliasSafeLoader(yaml.SafeLoader):
    """Refuses YAML aliases, so a hostile committed file cannot expand (as the loader)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("YAML aliases are not allowed in state files")
        return super().compose_node(parent, index)


def diff_states(before: Snapshot, after: Snapshot) -> list[Change]:
    """Stage and alias changes from one desired state to the next, in a stable order."""
    changes: list[Change] = []
    for model in sorted(set(before) | set(after)):
        old, new = before.get(model, {}), after.get(model, {})
        for ver in sorted(set(old) | set(new), key=version_key):
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


def _merge_files(files: Mapping[str, str], parsed: Mapping[str, Snapshot | None]) -> Snapshot:
    state: Snapshot = {}
    for name in sorted(files):
        state.update(parsed.get(files[name]) or {})
    return state


def git_history(
    state_dir: Path, *, model: str | None = None, version: str | None = None
) -> tuple[Git, list[Entry]]:
    """The git side of the timeline, newest first."""
    git = Git(state_dir)
    commits = git.log()
    trees: dict[str, dict[str, str] | None] = {c["sha"]: git.tree(c["sha"]) for c in commits}
    # The state before a listed commit is the state at the next one listed (nothing in
    # between touched the directory), except for the oldest: read its parent.
    if commits and commits[-1]["parents"]:
        oldest_parent = commits[-1]["parents"].split()[0]
        trees[oldest_parent] = git.tree(oldest_parent)
    blob_shas = {sha for files in trees.values() if files for sha in files.values()}
    parsed = {sha: parse_state(raw) for sha, raw in git.blobs(blob_shas).items()}
    entries = []
    for i, c in enumerate(commits):
        parents = c["parents"].split()
        after_files = trees[c["sha"]] or {}
        if i + 1 < len(commits):
            before_files: dict[str, str] | None = trees[commits[i + 1]["sha"]]
        else:
            before_files = trees.get(parents[0]) if parents else {}
        note = None
        if before_files is None:
            note = "parent commit not available (shallow clone?): changes shown against nothing"
        broken = [n for n, sha in after_files.items() if parsed.get(sha) is None]
        if broken:
            note = f"unreadable at this commit: {', '.join(sorted(broken))}"
        changes = [
            ch
            for ch in diff_states(
                _merge_files(before_files or {}, parsed), _merge_files(after_files, parsed)
            )
            if (model is None or ch.model == model)
            and (
                version is None
                or version in (ch.version, ch.before if ch.kind == "alias" else None)
            )
        ]
        if (model or version) and not changes:
            continue
        merged: list[tuple[str, str]] = []
        if len(parents) > 1:
            merged = git.branch_commits(parents[0], parents[1])
        entries.append(
            Entry(
                commit=c["sha"],
                author=c["author"],
                author_email=c["email"],
                authored_at=c["authored"],
                committed_at=c["committed"],
                subject=c["subject"],
                pr=pr_number(c["subject"]),
                reverts=_reverts(c["subject"], c["body"]),
                merged=tuple(sha for sha, _ in merged),
                merged_authors=tuple(dict.fromkeys(a for _, a in merged)),
                changes=tuple(changes),
                note=note,
            )
        )
    return git, entries


def pr_number(subject: str) -> int | None:
    """The pull request number in a merge or squash commit's subject, if any."""
    for pattern in PR_PATTERNS:
        m = pattern.search(subject)
        if m:
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
        from regops.promotion import copy_in

        version = copy_in(model, c.version)  # a `dev@7` key: the copy of dev's version 7
    if version is None:
        return Applied("unknown", note="version not in the registry")
    found = version.stamp()  # regops.audit, or the five tags of earlier versions
    raw = found.commit if found else None
    if not raw:
        if _live_matches(c, live):
            return Applied("in_effect", note="live matches; no regops stamp on this version")
        return Applied("unstamped", note="no regops stamp on this version")
    stamp = raw.split("+", 1)[0]  # "<sha>+uncommitted": applied from local edits on top of it
    at, actor = found.at if found else None, found.actor if found else None
    if len(stamp) >= 7 and any(sha.startswith(stamp) or stamp.startswith(sha) for sha in own):
        note = "from uncommitted edits on top of this commit" if raw != stamp else None
        return Applied("applied", at=at, actor=actor, commit=raw, note=note)
    later = is_ancestor(own[0], stamp)
    if later:
        return Applied(
            "superseded", at=at, actor=actor, commit=raw, note="re-stamped by a later reconcile"
        )
    if later is False:
        if _live_matches(c, live):
            return Applied("in_effect", commit=raw, note="live already matches; not stamped by it")
        return Applied("pending", commit=raw, note="the last reconcile of it predates this commit")
    return Applied("unknown", commit=raw, note="the stamp names a commit git does not know")


def _live_matches(c: Change, live: LiveState) -> bool:
    model = live.models[c.model]
    if c.kind == "alias":
        return model.aliases.get(c.alias or "") == c.after
    return c.after is not None and model.versions[c.version].stage == c.after


def build_history(
    state_dir: Path,
    tracking_uri: str | None,
    *,
    model: str | None = None,
    version: str | None = None,
) -> History:
    """The whole timeline; the registry is read when `tracking_uri` is given."""
    git, entries = git_history(state_dir, model=model, version=version)
    filters = {"model": model, "version": version}
    if tracking_uri is None:
        return History(
            str(state_dir), tuple(entries), registry_error="not requested", filters=filters
        )
    from regops.tracking import mask_secrets, mask_uri

    names = sorted({c.model for e in entries for c in e.changes})
    try:
        from regops.registry import MlflowRegistry  # deferred: the git side needs no mlflow

        registry = MlflowRegistry(tracking_uri)
        live = registry.snapshot(names)
    except Exception as exc:
        # The git side stands on its own: say the registry was not read, do not fail.
        shown = mask_secrets(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
        return History(str(state_dir), tuple(entries), registry_error=shown, filters=filters)
    joined = join_stamps(entries, live, git.is_ancestor)
    return History(str(state_dir), tuple(joined), registry=mask_uri(tracking_uri), filters=filters)


# ---- rendering --------------------------------------------------------------------------------


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


def render_text(h: History) -> str:
    lines = [f"History of {h.state_dir} (git log, newest first)"]
    if h.registry:
        lines.append(f"Registry: {h.registry} (audit stamps read)")
    else:
        lines.append(f"Registry: not read ({h.registry_error}); showing the git side only")
    if not h.entries:
        lines += ["", "No commits touched the state files" + _filter_text(h) + "."]
    for e in h.entries:
        pr = f"  PR #{e.pr}" if e.pr else ""
        lines += ["", f"{e.commit[:7]}  {e.committed_at}{pr}  {_who(e)}", f"    {e.subject}"]
        if e.reverts:
            pr = next((f" (PR #{x.pr})" for x in h.entries if x.commit == e.reverts and x.pr), "")
            lines.append(f"    reverts {e.reverts[:7]}{pr}")
        if e.note:
            lines.append(f"    note: {e.note}")
        if not e.changes:
            lines.append("    (no stage or alias change)")
        width = max((len(c.describe()) for c in e.changes), default=0)
        for c in e.changes:
            applied = _applied_text(c.applied)
            lines.append(f"    {c.describe():<{width}}   {applied}".rstrip())
    return "\n".join(lines)


def _filter_text(h: History) -> str:
    parts = [f"{k} {v}" for k, v in h.filters.items() if v]
    return f" for {', '.join(parts)}" if parts else ""


def render_markdown(h: History) -> str:
    lines = [f"### regops history: `{h.state_dir}`{_filter_text(h)}", ""]
    lines.append(
        f"Registry `{h.registry}`: audit stamps read"
        if h.registry
        else f"Registry not read ({h.registry_error}): git side only"
    )
    lines += ["", "| Commit | Date | Author | PR | Change | Applied |", "|---|---|---|---|---|---|"]
    for e in h.entries:
        rows = [(c.describe(), _applied_text(c.applied) or "—") for c in e.changes] or [
            ("(no stage or alias change)", "—")
        ]
        for change, applied in rows:
            cells = [f"`{e.commit[:7]}`", e.committed_at, _who(e), f"#{e.pr}" if e.pr else "—"]
            cells += [change, applied]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def render(h: History, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(h.to_dict(), indent=2)
    return render_markdown(h) if fmt == "markdown" else render_text(h)
