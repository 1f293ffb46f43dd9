"""The git side of `regops history`: read what the timeline needs, through regops.adapters.gitio.

Reads the first-parent log of the state directory, the state files' blobs at each
listed commit (and at the parent of the oldest), and the commits each merge brought
in: a constant number of git calls plus one `ls-tree` per listed commit.
"""

from __future__ import annotations

from pathlib import Path

from regops.adapters import gitio
from regops.core.timeline import REFUSED, GitSide, Snapshot, Tree
from regops.errors import HistoryError
from regops.files import yamlio
from regops.files.loader import MAX_FILE_BYTES, check_state_dir, name_problem

# The loader's cap: a bigger blob is never read (git's --batch-check gives its size first).
MAX_BLOB_BYTES = MAX_FILE_BYTES


class StateRepo:
    """The git repository holding a state directory."""

    def __init__(self, state_dir: Path) -> None:
        if not state_dir.is_dir():
            raise HistoryError(f"state directory {state_dir} not found")
        check_state_dir(state_dir)  # a symlink out of the repository: StateError, as everywhere
        root = gitio.toplevel(state_dir)
        if root is None:
            raise HistoryError(
                f"{state_dir} is not in a git repository: history is the git log of the state files"
            )
        self.root = root
        try:
            rel = state_dir.resolve().relative_to(root.resolve()).as_posix()
        except ValueError as exc:
            raise HistoryError(f"{state_dir} is not inside {root}") from exc
        self.rel = "" if rel == "." else rel
        self._ancestry: dict[tuple[str, str], bool | None] = {}

    @property
    def pathspec(self) -> str:
        return self.rel or "."

    def tree(self, commit: str) -> Tree | None:
        """State file name -> blob sha at `commit`; None when the commit is not available."""
        entries = gitio.ls_tree(self.root, commit, self.rel)
        if entries is None:
            return None
        # A name the loader refuses (a newline, a glob, a leading '#') is listed as refused
        # at that commit, and its blob is never read. Every blob read is parsed by the one
        # YAML reader (parse_state below): aliases and deep nesting are refused there.
        return {
            name: REFUSED if name_problem(name) else sha
            for name, (kind, sha) in entries.items()
            if kind == "blob" and name.endswith((".yaml", ".yml"))
        }

    def read(self) -> GitSide:
        commits = gitio.log(self.root, self.pathspec)
        boundary = gitio.shallow_boundary(self.root)
        trees: dict[str, Tree | None] = {c.sha: self.tree(c.sha) for c in commits}
        if commits and commits[-1].parents and commits[-1].sha not in boundary:
            oldest_parent = commits[-1].parents[0]
            trees[oldest_parent] = self.tree(oldest_parent)
        shas = {
            sha for files in trees.values() if files for sha in files.values() if sha != REFUSED
        }
        merged = {
            c.sha: gitio.authors_between(self.root, c.parents[0], c.parents[1], self.pathspec)
            for c in commits
            if len(c.parents) > 1
        }
        return GitSide(
            commits=tuple(commits),
            trees=trees,
            states={
                sha: parse_state(raw)
                for sha, raw in gitio.blobs(self.root, shas, max_bytes=MAX_BLOB_BYTES).items()
            },
            merged=merged,
            boundary=boundary,
        )

    def is_ancestor(self, older: str, newer: str) -> bool | None:
        key = (older, newer)
        if key not in self._ancestry:
            self._ancestry[key] = gitio.is_ancestor(self.root, older, newer)
        return self._ancestry[key]


def parse_state(raw: bytes | None) -> Snapshot | None:
    """Stages and aliases declared in one state file; None when it cannot be read at all.

    Read by the one YAML reader in its lenient mode: keys are the text written (a model
    named `on` or `017` stays that name), aliases and nesting are capped, and a value
    YAML cannot construct is kept as its text. Never raises.
    """
    if raw is None:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    doc = yamlio.read(text, lenient=True)
    if not doc.parsed:
        return None
    models = doc.data.get("models") if isinstance(doc.data, dict) else None
    out: Snapshot = {}
    for name, spec in models.items() if isinstance(models, dict) else ():
        versions = spec.get("versions") if isinstance(spec, dict) else None
        entry: dict[str, tuple[str | None, tuple[str, ...]]] = {}
        for ver, vspec in versions.items() if isinstance(versions, dict) else ():
            vspec = vspec if isinstance(vspec, dict) else {}
            stage = vspec.get("stage")
            aliases = vspec.get("aliases") or []
            entry[ver] = (
                None if stage is None or isinstance(stage, dict | list) else str(stage),
                tuple(str(a) for a in aliases if not isinstance(a, dict | list))
                if isinstance(aliases, list)
                else (),
            )
        out[name] = entry
    return out
