"""Read a JSON file regops did not write (a saved plan, a snapshot, a candidates file,
a manifest): size-capped, regular files only, then parsed by core.jsonio's guards."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Any

from regops.core.jsonio import MAX_DEPTH, _decode, _Refused, _size
from regops.errors import JsonInputError, RegopsError


def _read_bounded(path: Path, max_bytes: int, what: str) -> bytes:
    """At most `max_bytes` of a regular file (or of stdin for `-`); _Refused when larger.

    The file's stat is checked before it is opened (a FIFO would block, a device never
    ends) and on the open descriptor (it may have been swapped); only `max_bytes + 1`
    bytes are read, whatever the size says (a /proc file says 0).
    """
    cap = f"larger than the {_size(max_bytes)} a {what} may be"
    if str(path) == "-":
        stream = getattr(sys.stdin, "buffer", None)
        data = stream.read(max_bytes + 1) if stream is not None else None
        if data is None:
            data = sys.stdin.read(max_bytes + 1).encode("utf-8", "surrogateescape")
    else:
        try:
            before = path.stat()
            if not stat.S_ISREG(before.st_mode):
                raise _Refused(f"not a regular file; a {what} is one")
            if before.st_size > max_bytes:
                raise _Refused(f"{_size(before.st_size)}: {cap}")
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
            with os.fdopen(fd, "rb") as fh:
                if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                    raise _Refused(f"not a regular file; a {what} is one")
                data = fh.read(max_bytes + 1)
        except OSError as exc:
            raise _Refused(f"cannot read it: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise _Refused(cap)
    return bytes(data)


def read_file(
    path: Path,
    *,
    what: str,
    max_bytes: int,
    top: type[dict[Any, Any]] | type[list[Any]],
    refusal: str | None = None,
    max_depth: int = MAX_DEPTH,
    error: type[RegopsError] = JsonInputError,
) -> Any:
    """The JSON value in `path` (`-`: stdin), read and parsed under the guards above.

    Every refusal is `error("PATH: not a WHAT (why)")` (or REFUSAL instead of
    "not a WHAT"); a missing file raises FileNotFoundError, for the caller to say what
    should have made it.
    """
    if str(path) != "-" and not path.exists() and not path.is_symlink():
        raise FileNotFoundError(path)
    source = "stdin" if str(path) == "-" else str(path)
    try:
        return _decode(_read_bounded(path, max_bytes, what), max_depth, top)
    except _Refused as exc:
        raise error(f"{source}: {refusal or f'not a {what}'} ({exc})") from None
