"""The one git adapter: every git command regops and the reference workload run goes here.

Errors from git become GitError (a RegopsError: exit 1 with a message, never a
traceback) at this boundary. Output is read as bytes and decoded with replacement,
so nothing git can hold (a commit message in Latin-1, control characters) raises.
"""

from __future__ import annotations

import getpass
import os
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from regops.core.timeline import Commit
from regops.errors import GitError

TIMEOUT_S = 60.0
# The field separator for `git log --format`: NUL cannot occur in a commit message or a
# name, unlike \x1f or \x1e (which a message may hold).
_FIELD = "%x00"


def run(
    args: Sequence[str],
    cwd: Path,
    *,
    input_bytes: bytes | None = None,
    ok: Iterable[int] = (0,),
    timeout: float = TIMEOUT_S,
) -> tuple[int, bytes]:
    """Run `git ARGS` in `cwd`; (exit code, stdout). Raises GitError unless the code is in `ok`."""
    cmd = ["git", "-c", "core.quotepath=off", "-c", "log.showSignature=false", *args]
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, input=input_bytes, capture_output=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise GitError("git is not installed (or not on PATH)") from exc
    except subprocess.TimeoutExpired as exc:
        raise GitError(f"git {' '.join(args[:2])} did not finish within {timeout:.0f} s") from exc
    except OSError as exc:
        raise GitError(f"cannot run git in {cwd}: {exc.strerror or exc}") from exc
    if proc.returncode not in tuple(ok):
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = err[-1] if err else f"exit {proc.returncode}"
        raise GitError(f"git {' '.join(args[:2])} failed: {detail}")
    return proc.returncode, proc.stdout


def text(args: Sequence[str], cwd: Path, **kwargs: object) -> str | None:
    """stdout of a git command as text, or None when it fails (not a repository...)."""
    try:
        code, out = run(args, cwd, ok=range(256), **kwargs)  # type: ignore[arg-type]
    except GitError:
        return None
    return out.decode("utf-8", "replace") if code == 0 else None


def toplevel(path: Path) -> Path | None:
    """The root of the work tree holding `path`, or None outside git."""
    out = text(["rev-parse", "--show-toplevel"], path)
    return Path(out.strip()) if out and out.strip() else None


def head(cwd: Path) -> str | None:
    out = text(["rev-parse", "HEAD"], cwd)
    return out.strip() if out and out.strip() else None


def shallow_boundary(root: Path) -> frozenset[str]:
    """The commits whose parents a shallow clone does not have (empty when not shallow)."""
    out = text(["rev-parse", "--is-shallow-repository"], root)
    if (out or "").strip() != "true":
        return frozenset()
    where = text(["rev-parse", "--git-path", "shallow"], root)
    if not where:
        return frozenset()
    path = Path(where.strip())
    path = path if path.is_absolute() else root / path
    try:
        return frozenset(path.read_text(encoding="ascii", errors="replace").split())
    except OSError:
        return frozenset()


def log(root: Path, pathspec: str, rev: str = "HEAD", *, first_parent: bool = True) -> list[Commit]:
    """Commits that touched `pathspec`, newest first; [] when there are none (or no HEAD).

    Fields are NUL-separated and each record ends with NUL NUL: nothing a commit can hold
    (a `\\x1f` in a message, a newline in a name) breaks the parse.
    """
    fields = ["%H", "%P", "%an", "%ae", "%aI", "%cI", "%s", "%b"]
    args = ["log", "-z", f"--format={_FIELD.join(fields)}{_FIELD}", rev, "--", pathspec]
    if first_parent:
        args.insert(1, "--first-parent")
    code, out = run(args, root, ok=range(256))
    if code != 0:
        return []
    # Each record: its fields, each followed by NUL, then the NUL that -z puts between
    # records. Fields cannot hold NUL, so grouping the tokens by count is exact.
    tokens = [t.decode("utf-8", "replace") for t in out.split(b"\0")]
    step = len(fields) + 1
    commits = []
    for i in range(0, len(tokens) - len(fields) + 1, step):
        sha, parents, author, email, authored, committed, subject, body = tokens[i : i + 8]
        if not sha.strip():
            continue
        commits.append(
            Commit(
                sha.strip(),
                tuple(parents.split()),
                author,
                email,
                authored,
                committed,
                subject,
                body,
            )
        )
    return commits


def authors_between(root: Path, base: str, tip: str, pathspec: str) -> list[tuple[str, str]]:
    """(sha, "name <email>") of commits in base..tip that touched `pathspec`."""
    code, out = run(
        ["log", "-z", "--format=%H%x00%an <%ae>", f"{base}..{tip}", "--", pathspec],
        root,
        ok=range(256),
    )
    if code != 0:
        return []
    parts = out.decode("utf-8", "replace").split("\0")
    return [(parts[i].strip(), parts[i + 1]) for i in range(0, len(parts) - 1, 2) if parts[i]]


def has_commit(root: Path, sha: str) -> bool:
    code, _ = run(["cat-file", "-e", f"{sha}^{{commit}}"], root, ok=range(256))
    return code == 0


def ls_tree(root: Path, commit: str, rel: str) -> dict[str, tuple[str, str]] | None:
    """name -> (kind, sha) of the entries of directory `rel` at `commit`.

    {} when the directory did not exist at that commit; None when the commit itself
    is not available (a shallow clone's boundary).
    """
    spec = f"{commit}:{rel}" if rel else f"{commit}:"
    code, out = run(["ls-tree", "-z", spec], root, ok=range(256))
    if code != 0:
        return {} if has_commit(root, commit) else None
    entries = {}
    for rec in out.decode("utf-8", "replace").split("\0"):
        if "\t" not in rec:
            continue
        meta, name = rec.split("\t", 1)
        fields = meta.split()
        if len(fields) == 3:
            entries[name] = (fields[1], fields[2])
    return entries


def blobs(root: Path, shas: Iterable[str], *, max_bytes: int) -> dict[str, bytes | None]:
    """Read many blobs with one `git cat-file --batch`; None for a missing or oversized one."""
    wanted = sorted(set(shas))
    if not wanted:
        return {}
    # --batch-check first: an oversized blob is never read into memory.
    _, sizes_out = run(
        ["cat-file", "--batch-check"], root, input_bytes=("\n".join(wanted) + "\n").encode()
    )
    sizes: dict[str, int] = {}
    for line in sizes_out.decode("utf-8", "replace").splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[2].isdigit():
            sizes[fields[0]] = int(fields[2])
    small = [s for s in wanted if 0 <= sizes.get(s, -1) <= max_bytes]
    found: dict[str, bytes | None] = {s: None for s in wanted}
    if not small:
        return found
    _, out = run(["cat-file", "--batch"], root, input_bytes=("\n".join(small) + "\n").encode())
    pos = 0
    for sha in small:
        nl = out.find(b"\n", pos)
        if nl < 0:
            break
        header = out[pos:nl].split()
        if len(header) < 3 or not header[2].isdigit():  # "<sha> missing"
            pos = nl + 1
            continue
        size = int(header[2])
        found[sha] = out[nl + 1 : nl + 1 + size]
        pos = nl + 1 + size + 1
    return found


def is_ancestor(root: Path, older: str, newer: str) -> bool | None:
    """Whether `older` is an ancestor of `newer`; None when git does not know one of them."""
    code, _ = run(["merge-base", "--is-ancestor", older, newer], root, ok=range(256))
    return {0: True, 1: False}.get(code)


# ---- what an audit stamp records: the commit applied and who applies it


def _git(args: list[str], cwd: Path) -> str | None:
    """stdout of a git command, stripped, or None."""
    out = text(args, cwd, timeout=10)
    return (out or "").strip() or None


def commit_of(state_file: Path) -> str:
    """The commit whose version of `state_file` is being applied.

    The last commit that touched the file, marked `+uncommitted` when the working
    copy differs from it; in CI without history, the workflow's commit.
    """
    cwd = state_file.parent if state_file.parent.is_dir() else Path.cwd()
    sha = _git(["log", "-1", "--format=%H", "--", state_file.name], cwd)
    if sha is None:
        return os.environ.get("GITHUB_SHA", "unknown")
    dirty = _git(["status", "--porcelain", "--", state_file.name], cwd)
    return f"{sha}+uncommitted" if dirty else sha


def actor() -> str:
    """Who is applying: the CI actor, else REGOPS_ACTOR, else the git user, else the OS user."""
    for var in ("REGOPS_ACTOR", "GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILD_REQUESTEDFOR"):
        if os.environ.get(var):
            return os.environ[var]
    name = _git(["config", "user.name"], Path.cwd())
    email = _git(["config", "user.email"], Path.cwd())
    if name and email:
        return f"{name} <{email}>"
    try:
        return name or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
