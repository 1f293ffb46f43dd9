"""Writing files: atomically, all or nothing, and with errors that name the path.

Every file regops writes (state-file edits, `plan --out`, `export --output`) goes
through here: a write lands whole (temp file + fsync + rename) or not at all, and a
filesystem error (read-only directory, missing directory, a name too long for the
filesystem) becomes a FileWriteError naming the path: exit 1, never a traceback.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

from regops.errors import RegopsError


class FileWriteError(RegopsError):
    """A file could not be written; nothing (or what the message says) was written."""


def _name_max(directory: Path) -> int:
    try:
        return os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def problem(path: Path) -> str | None:
    """Why `path` cannot be written as a file, when that is knowable before writing."""
    parent = path.parent
    if not parent.exists():
        return f"directory {parent} does not exist"
    if not parent.is_dir():
        return f"{parent} is not a directory"
    if path.is_dir():
        return "it is a directory"
    limit = _name_max(parent)
    if len(path.name.encode("utf-8", "surrogateescape")) > limit:
        return f"the file name is longer than this filesystem allows ({limit} bytes)"
    return None


def check_names(directory: Path, names: list[str]) -> None:
    """Raise naming every name that cannot be a file in `directory` (which may not exist yet)."""
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    limit = _name_max(existing)
    problems = []
    for name in names:
        if "/" in name or "\0" in name or name in (".", "..") or not name:
            problems.append(f"cannot write {directory / name!s}: not a file name")
        elif len(name.encode("utf-8", "surrogateescape")) > limit:
            problems.append(
                f"cannot write {directory / name!s}: the file name is longer than this "
                f"filesystem allows ({limit} bytes)"
            )
    if problems:
        raise FileWriteError("\n".join(problems) + "\nnothing was written")


def check(paths: list[Path]) -> None:
    """Raise naming every path that cannot be written (before anything is)."""
    problems = [f"cannot write {p}: {why}" for p in paths if (why := problem(p))]
    if problems:
        raise FileWriteError("\n".join(problems) + "\nnothing was written")


def _stage(path: Path, text: str, mode: int) -> Path:
    """Write `text` to a temp file beside `path`; returns the temp file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:40]}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp).chmod(mode)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def write_all(files: Mapping[Path, str]) -> None:
    """Write several files, all or nothing: every one is staged before any is replaced."""
    check(list(files))
    staged: dict[Path, Path] = {}
    try:
        for path, text in files.items():
            try:
                mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644
                staged[path] = _stage(path, text, mode)
            except OSError as exc:
                raise FileWriteError(
                    f"cannot write {path}: {exc.strerror or exc}; nothing was written"
                ) from exc
        done: list[Path] = []
        for path, tmp in staged.items():
            try:
                tmp.replace(path)
            except OSError as exc:
                written = f"; written already: {', '.join(map(str, done))}" if done else ""
                raise FileWriteError(
                    f"cannot write {path}: {exc.strerror or exc}{written}"
                ) from exc
            done.append(path)
    finally:
        for tmp in staged.values():
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)


def write_atomic(path: Path, text: str) -> None:
    """Write one file atomically (temp file + rename), keeping its permissions."""
    write_all({path: text})
