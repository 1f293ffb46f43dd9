"""Files: reading a repository's files safely, and writing atomically, all or nothing.

Every file regops writes (state-file edits, `plan --out`, `export --output`) goes
through here: a write lands whole (temp file + fsync + rename) or not at all, and a
filesystem error (read-only directory, missing directory, a name too long for the
filesystem) becomes a FileWriteError naming the path: exit 1, never a traceback.

Every repository file regops reads as input (state files, `regops.yaml`, CODEOWNERS)
is read by `read_guarded`: a fork's pull request writes these files, so one of them
may be a symlink to /proc/self/environ or to a file outside the checkout, a FIFO
(opening it for reading would wait forever), a device, or gigabytes long. Each is
refused with a FileReadError saying why, before more than `max_bytes` + 1 bytes are
read. A symlink that stays inside the repository (`repository_root`) is followed.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

from regops.core.state import shown
from regops.errors import FileReadError, FileWriteError


def _under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _git_root(start: Path) -> Path | None:
    for d in (start, *start.parents):
        if (d / ".git").exists():
            return d
    return None


def repository_root(path: Path) -> Path:
    """The directory that a repository file at `path` (or a directory) may not leave.

    The git work tree holding the current directory, when `path` lies in it; else the
    current directory, when `path` lies in it; else (a path given explicitly, elsewhere)
    the git work tree holding `path`, or its directory. Found from the path as written:
    a symlink is never followed to find the boundary it is then checked against.
    """
    lexical = Path(os.path.normpath(path.absolute()))  # `..` folded, symlinks not followed
    cwd = Path.cwd()
    here = _git_root(cwd)
    if here is not None and _under(lexical, here):
        return here
    if _under(lexical, cwd):
        return cwd
    start = lexical if lexical.is_dir() and not lexical.is_symlink() else lexical.parent
    return _git_root(start) or start


def symlink_problem(path: Path, root: Path) -> str | None:
    """Why `path` may not be followed: it is a symlink whose target leaves `root`."""
    if not path.is_symlink():
        return None
    target = Path(os.path.realpath(path))
    if _under(target, Path(os.path.realpath(root))):
        return None
    return f"it is a symlink to {shown(str(target))}, outside the repository ({shown(str(root))})"


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def read_guarded(path: Path, *, root: Path, max_bytes: int) -> bytes:
    """The bytes of a repository file, or FileReadError saying why it is refused.

    Refused: a symlink leaving `root`; anything but a regular file (checked with stat
    before opening, and again on the open descriptor: opening a FIFO does not block,
    O_NONBLOCK); more than `max_bytes` (by its size, and by reading at most one byte
    more: a /proc file says 0 and never ends).
    """
    why = symlink_problem(path, root)
    if why:
        raise FileReadError(why)
    try:
        st = path.stat()
    except FileNotFoundError as exc:
        dangling = " (a symlink to a missing file)" if path.is_symlink() else ""
        raise FileReadError(f"no such file{dangling}") from exc
    except OSError as exc:
        raise FileReadError(f"cannot read the file: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise FileReadError(f"it is {_kind(st.st_mode)}, not a regular file")
    if st.st_size > max_bytes:
        raise FileReadError(f"file is larger than {max_bytes} bytes")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise FileReadError(f"cannot read the file: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped since the stat above
            raise FileReadError("it is not a regular file")
        try:
            raw = fh.read(max_bytes + 1)
        except OSError as exc:
            raise FileReadError(f"cannot read the file: {exc.strerror or exc}") from exc
    if len(raw) > max_bytes:
        raise FileReadError(f"file is larger than {max_bytes} bytes")
    return raw


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
    if path.exists() and not path.is_file():
        # A device, FIFO or socket: the atomic rename would replace it with a plain file
        # (as root, `--out /dev/null` would leave /dev/null a regular file).
        return "it is not a regular file (a device, FIFO or socket)"
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
