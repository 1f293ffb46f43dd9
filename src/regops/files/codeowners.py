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

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from regops.core.state import DesiredState, shown
from regops.errors import CodeownersError, FileReadError
from regops.files import fileio
from regops.files.loader import NAME_CHARS, PATH_PART

BEGIN = "# BEGIN regops codeowners: generated from the `owners` of registry-state models"
HINT = "# (edit the owners in the state files, then run `regops codeowners`)"
END = "# END regops codeowners"
MARK = "# BEGIN regops codeowners"
DEFAULT_FILE = Path(".github") / "CODEOWNERS"
MAX_CODEOWNERS_BYTES = 3 << 20  # GitHub ignores a CODEOWNERS file larger than 3 MB


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
    """The repository holding `start`: where `.github/CODEOWNERS` lives (fileio's rule:
    the git work tree, else the current directory)."""
    return fileio.repository_root(start)


def _pattern_of(rel: str, file: str) -> str:
    parts = rel.split("/")
    if rel.startswith("/") or not all(PATH_PART.fullmatch(p) for p in parts):
        raise CodeownersError(
            f"cannot write a CODEOWNERS rule for {shown(file)}: its path in the "
            f"repository ({shown(rel)}) has a part that is not made of {NAME_CHARS} "
            "(CODEOWNERS cannot escape the rest); rename it. Nothing was written."
        )
    return "/" + rel


def patterns(path: Path, root: Path) -> list[str]:
    """CODEOWNERS patterns that each match exactly one file: the state file as named in
    the repository, and, when a symlink inside the repository leads elsewhere, the file
    it reads (whoever may change either may change the model's state).

    No escaping is ever needed: every part of the path is made of the characters a
    state file name may hold (letters, digits, '.', '_', '-', not first '.' or '-'),
    which gitignore-style matching (what CODEOWNERS uses) reads literally.
    """
    lexical = Path(os.path.normpath(path.absolute()))
    real = Path(os.path.realpath(lexical))
    real_root = Path(os.path.realpath(root))
    out = []
    for p, base in ((lexical, root), (real, real_root)):
        try:
            rel = p.relative_to(base).as_posix()
        except ValueError as exc:
            raise CodeownersError(
                f"cannot write a CODEOWNERS rule for {shown(str(path))}: "
                f"it is not inside the repository {shown(str(root))}"
            ) from exc
        rule = _pattern_of(rel, str(path))
        if rule not in out:
            out.append(rule)
    return out


def pattern(path: Path, root: Path) -> str:
    """The CODEOWNERS pattern matching exactly this file (as named), rooted at the repository."""
    return patterns(path, root)[0]


def rules(desired: DesiredState, root: Path) -> tuple[list[str], list[str]]:
    """(CODEOWNERS lines, problems) for the state files of `desired`."""
    by_file: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for spec in desired.models.values():
        by_file.setdefault(spec.file, []).append((spec.name, spec.owners))
    lines: list[str] = []
    problems: list[str] = []
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
            lines.extend(f"{p} {' '.join(owners)}" for p in patterns(Path(file), root))
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


def read_existing(path: Path, root: Path) -> str:
    """The CODEOWNERS text there is ("" when there is none), through fileio's guards: a
    FIFO, a device or a symlink out of the repository is refused, not read or written."""
    if not os.path.lexists(path):
        return ""
    try:
        raw = fileio.read_guarded(path, root=root, max_bytes=MAX_CODEOWNERS_BYTES)
        return raw.decode("utf-8")
    except FileReadError as exc:
        raise CodeownersError(f"{shown(str(path))}: {exc}; nothing was written") from exc
    except UnicodeDecodeError as exc:
        raise CodeownersError(
            f"{shown(str(path))}: not UTF-8 text ({exc.reason}); nothing was written"
        ) from exc


def compute(desired: DesiredState, state_dir: Path, file: Path | None = None) -> Codeowners:
    """What `.github/CODEOWNERS` (or `file`) should say for these state files."""
    root = repo_root(state_dir)
    path = file if file is not None else root / DEFAULT_FILE
    real = Path(os.path.realpath(path))
    if file is None and not real.is_relative_to(Path(os.path.realpath(root))):
        # `.github` a symlink out of the checkout: never read or write through it.
        raise CodeownersError(
            f"{DEFAULT_FILE} leads to {shown(str(real))}, outside the repository "
            f"({shown(str(root))}); nothing was written"
        )
    before = read_existing(path, root)
    lines, problems = rules(desired, root)
    # No owners anywhere and no block yet: nothing to write (not even a new file).
    after = merge(before, lines) if lines or MARK in before else before
    return Codeowners(path, before, after, tuple(lines), tuple(problems))
