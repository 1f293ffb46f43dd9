"""Commands CI calls, one per workflow step: the plan report, snapshots, candidates, proposals.

- `regops plan --report FILE [--live SNAPSHOT]` (options on `plan`, run here): the whole
  pull-request report, also when the run could not plan, and the exit code the job needs.
- `regops snapshot --out FILE`: the live registry as a file for offline plans.
- `regops candidates`: which versions of the last training run passed their gates.
- `regops propose`: add those versions to the state files and write the PR body.

The registry appears in every report by its name (`--registry-name`, env
REGOPS_REGISTRY_NAME), never by its URI; reports are redacted of credentials too.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import click

from regops import api
from regops.adapters.tracking import mask_values, report_secrets, resolve_tracking_uri
from regops.cli.options import (
    REGISTRY_NAME_ENV,
    common_options,
    registry_name_option,
    settings,
)
from regops.core import audit, jsonio
from regops.core.plan import Plan
from regops.core.state import STAGES
from regops.errors import RegistryError, RegopsError, SnapshotError, StateError, UsageError
from regops.files import fileio, jsonfile
from regops.files.credentials import CREDENTIAL_ENV
from regops.files.snapshot import SnapshotSource, load_snapshot, snapshot_doc
from regops.render import (
    render_candidates_file,
    render_candidates_json,
    render_file_json,
    reports,
)
from regops.render.reports import Candidate, PlanReport, SnapshotNotice
from regops.settings import Settings

# The history page CI publishes after each apply (`make history-page`): linked from the
# plan comment when set (e.g. to the apply workflow's runs, whose artifact holds it).
HISTORY_URL_ENV = "REGOPS_HISTORY_URL"
DEFAULT_MANIFEST = Path("data/metrics/last_training.json")
MAX_NAME_CHARS = 256  # MLflow stores a registered model name in 256 characters
DEFAULT_EVIDENCE = ("validation_status=passed", "smoke_test_status=passed")


def registry_name(s: Settings) -> str | None:
    """The name reports show for the registry: the flag, $REGOPS_REGISTRY_NAME, or --env's."""
    return s.registry_name or os.environ.get(REGISTRY_NAME_ENV) or s.env_name or None


def _secrets(s: Settings) -> list[str]:
    env = [os.environ.get(k) for k in CREDENTIAL_ENV]
    uris = [resolve_tracking_uri(s.tracking_uri_flag).uri, *env]
    if s.environment is not None:
        # An unset ${VAR}: nothing of that URI can appear in a report either.
        with contextlib.suppress(RegopsError):
            uris.append(s.environment.tracking_uri)
    return report_secrets(uris, env)


def _footer() -> tuple[str, ...]:
    """The commit and run behind a report, from the Actions environment when there is one."""
    out = []
    sha = os.environ.get("REGOPS_REPORT_COMMIT") or os.environ.get("GITHUB_SHA")
    if sha:
        out.append(f"commit {sha[:12]}")
    server, repo, run = (
        os.environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    )
    if server and repo and run:
        out.append(f"[workflow run]({server}/{repo}/actions/runs/{run})")
    return tuple(out)


def _now() -> datetime:
    return datetime.now(timezone.utc)  # noqa: UP017 (3.10)


def run_plan_command(
    s: Settings,
    models: Sequence[str],
    *,
    out: Path | None,
    report: Path | None,
    live_file: Path | None,
) -> Plan:
    """Plan (against the registry or a snapshot), writing the report whatever happens.

    Raises the error that stopped it after the report is written, so the exit code
    stays the CLI's (1); the report says what failed and why.
    """
    name = registry_name(s)
    notice: SnapshotNotice | None = None
    validation: str | None = None

    def write(**fields: object) -> None:
        if report is None:
            return
        doc = PlanReport(
            registry=name,
            validation=validation,
            snapshot=notice,
            footer=_footer(),
            history_url=os.environ.get(HISTORY_URL_ENV),
            **fields,  # type: ignore[arg-type]
        )
        secrets = _secrets(s)

        def summary(full: str) -> str:  # when the report is too long for one comment
            return mask_values(reports.render_plan_report(doc, full), secrets)

        reports.write_report(report, mask_values(reports.render_plan_report(doc), secrets), summary)

    try:
        source: SnapshotSource | None = None
        if live_file is not None:
            snap = load_snapshot(live_file)
            source = SnapshotSource(snap)
            notice = SnapshotNotice(snap.created_at, snap.age_seconds(_now()))
            if not (s.registry_name or os.environ.get(REGISTRY_NAME_ENV)):
                name = snap.registry
        # The registry is read while the state files load: the server's answer and the
        # parsing overlap (a state error is still reported first: see prefetched_registry).
        registry = source or api.prefetched_registry(s, models)
        desired = api.load_desired(s, has_stages=source.has_stages if source else None)
        n_versions = sum(len(m.versions) for m in desired.models.values())
        validation = (
            f"{len(desired.files)} file(s) valid: {len(desired.models)} model(s), "
            f"{n_versions} version(s)"
        )
        p = api.run_plan(s, models, desired=desired, registry=registry, registry_name=name)
    except StateError as exc:
        write(failure_kind=reports.INVALID, diagnostics=tuple(str(d) for d in exc.diagnostics))
        raise
    except SnapshotError as exc:
        write(failure_kind=reports.SNAPSHOT, failure=str(exc))
        raise
    except RegistryError as exc:
        write(failure_kind=reports.REGISTRY, failure=str(exc))
        raise
    except RegopsError as exc:
        write(failure_kind=reports.ERROR, failure=str(exc))
        raise
    except Exception as exc:
        write(failure_kind=reports.ERROR, failure=f"unexpected error: {type(exc).__name__}: {exc}")
        raise
    doc = p.to_dict()
    if out is not None:
        from regops.render import render_json

        fileio.write_atomic(out, mask_values(render_json(doc), _secrets(s)) + "\n")
    write(plan=doc)
    return p


@click.command()
@common_options
@registry_name_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Write the snapshot (JSON, schemas/snapshot.schema.json) here.",
)
@click.option("--model", "models", multiple=True, metavar="NAME", help="Only this model.")
@click.pass_context
def snapshot(ctx: click.Context, out: Path, models: tuple[str, ...]) -> int:
    """Write the live registry to a file that `regops plan --live FILE` plans against offline.

    Holds no tracking URI, no credentials and no artifact locations: it is meant to be
    published for pull requests from forks.
    """
    s = settings(ctx)
    live = api.open_registry(s).snapshot(list(models) or None)
    doc = snapshot_doc(live, registry=registry_name(s) or "registry", created_at=audit.now())
    fileio.write_atomic(out, mask_values(render_file_json(doc), _secrets(s)))
    click.echo(
        f"wrote {out}: {len(live.models)} model(s), fingerprint {doc['live_fingerprint'][:12]}"
    )
    return 0


def _required(tags: Sequence[str]) -> list[tuple[str, str]]:
    out = []
    for t in tags:
        key, sep, value = t.partition("=")
        if not sep or not key:
            raise UsageError(f"--require-tag {t!r}: give KEY=VALUE")
        out.append((key, value))
    return out


def _version_of(value: object) -> str | None:
    """A version number as a manifest or candidates file may write it ("3" or 3)."""
    if isinstance(value, bool):
        return None
    text = str(value) if isinstance(value, int) else value
    if isinstance(text, str) and text.isascii() and text.isdigit() and len(text) <= 19:
        return text
    return None


def _pairs(source: str, rows: object, model_key: str, where: str) -> list[tuple[str, str]]:
    """(model, version) per `{model_key: NAME, "version": N}`; RegopsError naming the field."""
    if not isinstance(rows, list):
        raise RegopsError(f"{source}: {where or '(top level)'}: a JSON array is expected")
    out = []
    for i, row in enumerate(rows):
        at = f"{where}[{i}]"
        if not isinstance(row, dict):
            raise RegopsError(f"{source}: {at}: an object is expected")
        name, version = row.get(model_key), _version_of(row.get("version"))
        if not (isinstance(name, str) and name.strip() and len(name) <= MAX_NAME_CHARS):
            raise RegopsError(f"{source}: {at}.{model_key}: a model name is expected")
        if version is None:
            raise RegopsError(f"{source}: {at}.version: a version number is expected")
        out.append((name, version))
    return out


def _read_manifest(path: Path) -> list[tuple[str, str]]:
    try:
        doc = jsonfile.read_file(
            path, what="training manifest", max_bytes=jsonio.MANIFEST_MAX_BYTES, top=dict
        )
    except FileNotFoundError:
        raise RegopsError(f"{path}: no training manifest; run the training first") from None
    if "models" not in doc:
        raise RegopsError(f"{path}: models: missing (not a training manifest)")
    return _pairs(str(path), doc["models"], "registered_model", "models")


def find_candidates(
    s: Settings, manifest: Path, required: Sequence[tuple[str, str]]
) -> list[Candidate]:
    trained = _read_manifest(manifest)
    live = api.open_registry(s).snapshot(sorted({n for n, _ in trained}))
    rows = []
    for name, version in trained:
        model = live.models.get(name)
        found = model.versions.get(version) if model else None
        if found is None:
            rows.append(Candidate(name, version, False, "not in the registry"))
            continue
        missing = [
            f"{k}={found.tags.get(k, 'absent')}" for k, v in required if found.tags.get(k) != v
        ]
        why = (
            f"left out ({', '.join(missing)})"
            if missing
            else "passed " + ", ".join(f"{k}={v}" for k, v in required)
        )
        rows.append(Candidate(name, version, not missing, why or "passed"))
    return rows


@click.command()
@common_options
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_MANIFEST,
    show_default=True,
    help='The training run\'s manifest: {"models": [{"registered_model", "version"}]}.',
)
@click.option(
    "--require-tag",
    "require_tags",
    multiple=True,
    metavar="KEY=VALUE",
    help="Evidence a candidate must carry (repeatable). Default: " + " and ".join(DEFAULT_EVIDENCE),
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help='Write the passing versions as one line of JSON ([{"model", "version"}]).',
)
@click.pass_context
def candidates(
    ctx: click.Context, manifest: Path, require_tags: tuple[str, ...], out: Path | None
) -> int:
    """List the versions of the last training run that passed their gates.

    Exit 0 whether or not any passed (a failed gate is a verdict, not an error);
    1 when the registry or the manifest cannot be read.
    """
    s = settings(ctx)
    rows = find_candidates(s, manifest, _required(require_tags or DEFAULT_EVIDENCE))
    if out is not None:
        fileio.write_atomic(out, render_candidates_file(rows))
    if s.fmt == "json":
        click.echo(render_candidates_json(rows))
    else:
        click.echo(reports.render_candidates(rows, s.fmt))
    return 0


def _read_candidates(path: Path) -> list[Candidate]:
    """The file `regops candidates --out` wrote: `[{"model": NAME, "version": "N"}, ...]`."""
    source = "stdin" if str(path) == "-" else str(path)
    try:
        doc = jsonfile.read_file(
            path, what="candidates file", max_bytes=jsonio.CANDIDATES_MAX_BYTES, top=list
        )
    except FileNotFoundError:
        raise RegopsError(
            f"{path}: no candidates file; `regops candidates --out` writes one"
        ) from None
    return [Candidate(m, v, True, "passed") for m, v in _pairs(source, doc, "model", "")]


@click.command()
@common_options
@click.option(
    "--candidates",
    "candidates_file",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The file `regops candidates --out` wrote (`-`: read it from stdin).",
)
@click.option(
    "--stage",
    default=None,
    type=click.Choice(STAGES),
    help="Stage to propose them for. Default: Staging; with an alias-only state "
    "(policy.use_stages: false) the alias challenger instead.",
)
@click.option("--alias", "alias_name", help="Propose them as this alias (e.g. challenger).")
@click.option(
    "--body",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Write the proposal pull request's body (markdown) here.",
)
@click.pass_context
def propose(
    ctx: click.Context, candidates_file: Path, stage: str | None, alias_name: str | None, body: Path
) -> int:
    """Add the passing candidates to the state files at --stage (or --alias), and write
    the PR body.

    Edits files only (the pull request is the review); validates every edit first.
    """
    from regops.adapters.tracking import stages_supported
    from regops.files.edit import prepare_edit, write_edit
    from regops.files.loader import display_path, read_state_texts
    from regops.files.stage_mode import stages_in_use

    s = settings(ctx)
    if stage is not None and alias_name is not None:
        raise click.UsageError("give --stage or --alias, not both")
    supported = stages_supported(s.tracking_uri)
    if stage is None and alias_name is None:
        if stages_in_use(s.state_dir, stages_supported=supported):
            stage = "Staging"
        else:
            alias_name = "challenger"
    role = stage if stage is not None else f"alias {alias_name}"
    rows = _read_candidates(candidates_file)
    # Edits are validated one by one against the files as the previous one left them;
    # if any is refused, the files are put back as they were: nothing half-proposed.
    # Read through the loader's guards (no FIFO, symlink out of the repository, bomb).
    originals = {p: t.encode("utf-8") for p, t in read_state_texts(s.state_dir).items()}
    changed: list[str] = []
    try:
        for c in rows:
            edit = prepare_edit(
                s.state_dir, c.model, c.version, stage=stage, alias=alias_name,
                stages_supported=supported,
            )  # fmt: skip
            write_edit(edit)
            if edit.changed and display_path(edit.path) not in changed:
                changed.append(display_path(edit.path))
    except BaseException:
        for path in sorted(s.state_dir.glob("*.y*ml")):
            if path not in originals:
                path.unlink()
        for path, data in originals.items():
            path.write_bytes(data)
        raise
    for c in rows:
        click.echo(f"{c.model} v{c.version} -> {role}")
    fileio.write_atomic(body, reports.render_proposal(rows, role, changed))
    return 0


def register(cli: click.Group) -> None:
    for command in (snapshot, candidates, propose):
        cli.add_command(command)
