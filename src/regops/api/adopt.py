"""`regops init`: a git repository scaffolded for regops, adopting its live registry."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from regops.adapters import gitio
from regops.adapters.mlflow.registry import MlflowRegistry
from regops.errors import FileWriteError, RegopsError, UsageError
from regops.files import export as exporting
from regops.files import fileio, scaffold
from regops.files.edit import SCHEMA_HINT
from regops.settings import Settings


@dataclass(frozen=True)
class InitResult:
    """What `regops init` did (or, refused, would have done): paths relative to `root`."""

    root: Path
    created: tuple[str, ...]
    overwritten: tuple[str, ...]
    unchanged: tuple[str, ...]
    kept_state: tuple[str, ...]  # state directories that already held state files
    adopted: dict[str, int]  # state directory -> models exported from its live registry
    notes: tuple[str, ...]
    next_steps: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return bool(self.created or self.overwritten)


def _adopt(uri: str, state_dir: str, *, aliases: bool) -> tuple[dict[str, str], int, list[str]]:
    """One state file per model of the live registry at `uri` (or one empty file when it
    has none or cannot be read), keyed by its path under `state_dir`."""
    notes: list[str] = []
    try:
        live = MlflowRegistry(uri).snapshot(None)
    except RegopsError as exc:
        notes.append(f"{state_dir}: the registry could not be read ({exc}); starting empty")
        live = None
    if live is None or not live.models:
        return (
            {f"{state_dir}/{scaffold.EMPTY_STATE_NAME}": scaffold.empty_state(aliases=aliases)},
            0,
            notes,
        )
    chosen = exporting.plan_export(live)
    notes += chosen.warnings()
    has_stages = live.has_stages and not aliases
    texts = {}
    for m in chosen.models:
        text = exporting.export_yaml([m], has_stages=has_stages)
        # export's editor hint points at this repository's schemas/, which an adopting
        # repository has not: a dangling schema reference there, so init leaves it out.
        text = "".join(
            line for line in text.splitlines(keepends=True) if not line.startswith(SCHEMA_HINT)
        )
        texts[f"{state_dir}/{m.name}.yaml"] = scaffold.alias_only_policy(text) if aliases else text
    if not texts:
        texts[f"{state_dir}/{scaffold.EMPTY_STATE_NAME}"] = scaffold.empty_state(aliases=aliases)
    return texts, len(chosen.models), notes


def init(
    cwd: Path,
    settings: Settings,
    *,
    envs: Sequence[str] = (),
    aliases: bool = False,
    force: bool = False,
    owners: Sequence[str] = (),
    action: str | None = None,
    branch: str = "main",
) -> InitResult:
    """Scaffold the git repository holding `cwd` for regops (`regops init`).

    The state directory adopts the live registry (`export`) when one can be read and
    holds no state files yet; a sqlite registry that does not exist reads as empty and
    is not created. A file that exists with other content is refused (InitError naming
    them all, nothing written) unless `force`. Running it twice changes nothing.
    """
    from regops import __version__
    from regops.errors import InitError

    root = gitio.toplevel(cwd)
    if root is None:
        raise InitError(f"{cwd}: not inside a git repository (run `git init` first)")
    bad = [e for e in envs if not scaffold.ENV_NAME.fullmatch(e)]
    bad += [o for o in owners if not scaffold.OWNER.fullmatch(o)]
    if bad:
        raise UsageError(
            "not an environment name or a GitHub @user / @org/team: " + ", ".join(map(repr, bad))
        )
    envs = list(dict.fromkeys(envs))
    texts: dict[str, str] = {}
    adopted: dict[str, int] = {}
    kept: list[str] = []
    notes: list[str] = []
    # (state directory, tracking URI or None, the variable that would have named it)
    targets: list[tuple[str, str | None, str]] = []
    if envs:
        for e in envs:
            var = scaffold.env_variable(e)
            targets.append((scaffold.state_dir_of(e), os.environ.get(var), var))
        texts[str(scaffold.CONFIG_FILE)] = scaffold.config_text(envs)
    else:
        state = settings.state_dir if settings.state_dir.is_absolute() else cwd / settings.state_dir
        try:
            rel = state.resolve().relative_to(root.resolve()).as_posix()
        except ValueError as exc:
            raise UsageError(f"--state-dir {state}: not inside the repository {root}") from exc
        targets.append((rel, settings.tracking_uri, "MLFLOW_TRACKING_URI"))
    for state_dir, uri, var in targets:
        if scaffold.has_state(root / state_dir):
            kept.append(state_dir)
            continue
        if uri is None:
            notes.append(f"{state_dir}: no registry ({var} is not set); starting empty")
            empty = scaffold.empty_state(aliases=aliases)
            files, count = {f"{state_dir}/{scaffold.EMPTY_STATE_NAME}": empty}, 0
        else:
            files, count, more = _adopt(uri, state_dir, aliases=aliases)
            notes += more
        texts.update(files)
        adopted[state_dir] = count
    pin_version = action is None  # the default Action's tag is this version
    action = action or f"{scaffold.ACTION_REPO}@v{__version__}"
    state_dirs = [d for d, _, _ in targets]
    for name in scaffold.WORKFLOWS:
        texts[f".github/workflows/{name}"] = scaffold.workflow_text(
            name,
            state_dir=state_dirs[0],
            envs=envs,
            version=__version__,
            action=action,
            branch=branch,
            pin_version=pin_version,
        )
    texts[str(scaffold.PRECOMMIT_FILE)] = scaffold.precommit_text(__version__, envs=envs)
    codeowners = root / scaffold.CODEOWNERS_FILE
    before = None
    if codeowners.is_file():
        from regops.files.codeowners import MAX_CODEOWNERS_BYTES

        try:
            raw = fileio.read_guarded(codeowners, root=root, max_bytes=MAX_CODEOWNERS_BYTES)
            before = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InitError(f"{scaffold.CODEOWNERS_FILE}: not UTF-8 text ({exc.reason})") from exc
        except RegopsError as exc:
            raise InitError(f"{scaffold.CODEOWNERS_FILE}: {exc}") from exc
    block = scaffold.codeowners_block(state_dirs, owners)
    texts[scaffold.CODEOWNERS_FILE.as_posix()], _ = scaffold.codeowners_text(before, block)

    by_dir: dict[Path, list[str]] = {}  # model names become file names: check them first
    for rel in texts:
        by_dir.setdefault((root / rel).parent, []).append((root / rel).name)
    for directory, names in by_dir.items():
        fileio.check_names(directory, names)
    comparison = scaffold.compare(root, {Path(k): v for k, v in texts.items()})
    if comparison.conflicts and not force:
        names = [p.as_posix() for p in comparison.conflicts]
        they = "it exists" if len(names) == 1 else "they exist"
        raise InitError(
            f"refusing to overwrite {', '.join(names)} ({they} with other content; --force "
            "overwrites them); nothing was written"
        )
    writes = {root / p: texts[p.as_posix()] for p in comparison.create + comparison.conflicts}
    for path in writes:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FileWriteError(f"cannot create {path.parent}: {exc.strerror or exc}") from exc
    fileio.write_all(writes)
    steps = _next_steps(envs, state_dirs, owners, changed=bool(writes))
    return InitResult(
        root=root,
        created=tuple(p.as_posix() for p in comparison.create),
        overwritten=tuple(p.as_posix() for p in comparison.conflicts),
        unchanged=tuple(p.as_posix() for p in comparison.unchanged),
        kept_state=tuple(kept),
        adopted=adopted,
        notes=tuple(notes),
        next_steps=steps,
    )


def _next_steps(
    envs: Sequence[str], state_dirs: Sequence[str], owners: Sequence[str], *, changed: bool
) -> tuple[str, ...]:
    secrets = [scaffold.env_variable(e) for e in envs] or ["MLFLOW_TRACKING_URI"]
    steps = [
        f"regops validate{' --all-envs' if envs else ''}  # the state files, offline",
        "git add -A && git commit -m 'Manage the model registry with regops'",
        "add the repository secrets "
        + ", ".join(secrets)
        + " (and MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN,"
        " if the server needs a login)",
        "pre-commit install  # the regops-validate and regops-codeowners hooks",
        "open a pull request that edits "
        + state_dirs[0]
        + "/: the plan is commented on it; merging applies it",
    ]
    if not owners:
        where = scaffold.CODEOWNERS_FILE.as_posix()
        steps.insert(2, f"name the approvers in {where} (or rerun with --owner @org/team --force)")
    return tuple(steps if changed else steps[:1])
