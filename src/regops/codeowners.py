"""CODEOWNERS from the state files: each state file -> the owners of the models in it.

With branch protection's "require review from code owners", only a model's
owners can then approve a pull request that changes its state file, that is,
its promotion. regops owns one marked block of `.github/CODEOWNERS` and keeps
every other line as it is. The block goes at the end of a new file: in
CODEOWNERS the last matching pattern wins, so no broader rule above it can
override a model's owners.

A file holding models with different owners cannot be mapped exactly (anyone
of the union could approve any of them): it is reported. One file per model
(what `regops export --output DIR` writes) makes the mapping exact.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from regops.state import DesiredState

BEGIN = "# BEGIN regops codeowners: generated from the `owners` of registry-state models"
HINT = "# (edit the owners in the state files, then run `regops codeowners`)"
END = "# END regops codeowners"
MARK = "# BEGIN regops codeowners"
DEFAULT_FILE = Path(".github") / "CODEOWNERS"


@dataclass(frozen=True)
class Codeowners:
    """The CODEOWNERS text regops wants, and what it found wrong on the way."""

    path: Path
    before: str  # "" when the file does not exist
    after: str
    lines: tuple[str, ...]  # the generated rules
    problems: tuple[str, ...]  # files holding models with different owners

    @property
    def changed(self) -> bool:
        return self.before != self.after


def repo_root(start: Path) -> Path:
    """The git work tree holding `start` (the directory with `.git`); else `start` itself."""
    here = start.resolve()
    for d in (here, *here.parents):
        if (d / ".git").exists():
            return d
    return here


def pattern(path: Path, root: Path) -> str:
    """A CODEOWNERS pattern matching exactly this file, rooted at the repository."""
    rel = path.resolve().relative_to(root.resolve()).as_posix()
    return "/" + rel.replace("\\", "\\\\").replace(" ", "\\ ").replace("#", "\\#")


def rules(desired: DesiredState, root: Path) -> tuple[list[str], list[str]]:
    """(CODEOWNERS lines, problems) for the state files of `desired`."""
    by_file: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for spec in desired.models.values():
        by_file.setdefault(spec.file, []).append((spec.name, spec.owners))
    lines, problems = [], []
    for file in sorted(by_file):
        models = sorted(by_file[file])
        owner_sets = {frozenset(owners) for _name, owners in models}
        owners = list(dict.fromkeys(o for _name, os_ in models for o in os_))
        if len(owner_sets) > 1:
            detail = "; ".join(f"{n}: {' '.join(o) or '(no owners)'}" for n, o in models)
            problems.append(
                f"{file} holds models with different owners ({detail}): any of them could "
                "approve a change to any model of the file; split it, one file per model "
                "(`regops export --output DIR` writes that layout)"
            )
        if owners:
            lines.append(f"{pattern(Path(file), root)} {' '.join(owners)}")
    return lines, problems


def merge(existing: str, lines: Iterable[str]) -> str:
    """`existing` with regops' block replaced (or appended); every other line kept."""
    block = [BEGIN, HINT, *lines, END]
    text = existing.replace("\r\n", "\n")
    old = text.split("\n")
    if old and old[-1] == "":
        old = old[:-1]
    if any(line.startswith(MARK) for line in old):
        start = next(i for i, line in enumerate(old) if line.startswith(MARK))
        end = next((i for i in range(start, len(old)) if old[i].strip() == END), len(old) - 1)
        new = old[:start] + block + old[end + 1 :]
    else:
        new = [*old, *([""] if old and old[-1].strip() else []), *block]
    out = "\n".join(new) + "\n"
    return out.replace("\n", "\r\n") if "\r\n" in existing else out


def compute(desired: DesiredState, state_dir: Path, file: Path | None = None) -> Codeowners:
    """What `.github/CODEOWNERS` (or `file`) should say for these state files."""
    root = repo_root(state_dir)
    path = file if file is not None else root / DEFAULT_FILE
    before = path.read_text(encoding="utf-8") if path.is_file() else ""
    lines, problems = rules(desired, root)
    # No owners anywhere and no block yet: nothing to write (not even a new file).
    after = merge(before, lines) if lines or MARK in before else before
    return Codeowners(path, before, after, tuple(lines), tuple(problems))
