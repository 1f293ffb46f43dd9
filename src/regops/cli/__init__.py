"""`regops`: thin commands over load -> snapshot -> plan -> render | apply.

Exit codes: 0 success / in sync; 1 error (nothing, or a reported part, applied);
2 changes pending from git and 3 drift (both with --detailed-exitcode);
64 usage error; 130 interrupted (SIGINT), 143 terminated (SIGTERM); 70 unexpected
internal error.
"""

from __future__ import annotations

import importlib
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from regops import __version__, render
from regops.cli.options import (
    common_options,
    override_options,
    registry_name_option,
    settings,
    store_overrides,
)
from regops.core.plan import DEFAULT_PARALLEL
from regops.core.state import STAGES
from regops.errors import (
    EXIT_ERROR,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SIGNAL,
    EXIT_TERMINATED,
    EXIT_USAGE,
    FileWriteError,
    RegopsError,
    StateError,
    UsageError,
)
from regops.files import fileio


class Terminated(BaseException):
    """SIGTERM outside a reconcile's writes (which stop after the write in flight, see
    api.stop_on_signals): stop where we are, as Ctrl-C does."""


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """While a command runs, SIGTERM raises Terminated (Python's default would end the
    process without a word)."""

    def handler(_signum: int, _frame: object) -> None:
        raise Terminated

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may handle signals
        return
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# Commands defined in other modules, imported when one of them runs (or for --help): a
# command loads only what it uses, so `regops validate` starts in ~0.2 s. Each module's
# `register(group)` adds its commands; tests check this table against what they add.
LAZY_COMMANDS = {
    "regops.cli.edit": ("transition", "promote", "archive", "alias"),
    "regops.cli.history": ("history",),
    "regops.cli.environments": ("environments",),
    "regops.cli.ci": ("snapshot", "candidates", "propose"),
    "regops.cli.aliases": ("migrate-to-aliases", "codeowners"),
    "regops.cli.init": ("init",),
    "regops.cli.relay": ("relay", "webhooks"),
}
_MODULE_OF = {name: module for module, names in LAZY_COMMANDS.items() for name in names}


def limit_message(exc: BaseException) -> str:
    """What a RecursionError, OverflowError or MemoryError means to the user."""
    if isinstance(exc, RecursionError):
        return "the input is nested too deeply to read (RecursionError)"
    if isinstance(exc, OverflowError):
        return f"a number or a date in the input is out of range (OverflowError: {exc})"
    return "out of memory: the input is too large to read (MemoryError)"


class RegopsGroup(click.Group):
    """Maps every outcome to the documented exit codes (console script and CliRunner),
    and loads the commands of LAZY_COMMANDS on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_MODULE_OF})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = _MODULE_OF.get(cmd_name)
        if module is not None and cmd_name not in self.commands:
            importlib.import_module(module).register(self)
        return super().get_command(ctx, cmd_name)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            with sigterm_raises():
                rv = super().main(*args, **kwargs)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            exc.show()
            sys.exit(EXIT_USAGE)
        except click.ClickException as exc:
            exc.show()
            sys.exit(EXIT_ERROR)
        except (click.Abort, KeyboardInterrupt):
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except Terminated:
            click.echo(
                "interrupted by SIGTERM (no registry write was in flight); "
                "`regops plan` shows what is left to apply",
                err=True,
            )
            sys.exit(EXIT_TERMINATED)
        # What the handler prints quotes files and servers: shown, never obeyed (render.safe).
        except StateError as exc:
            for d in exc.diagnostics:
                click.echo(render.safe(d), err=True)
            n = len(exc.diagnostics)
            click.echo(f"error: {n} problem(s) in the state files; nothing was changed", err=True)
            sys.exit(exc.exit_code)
        except RegopsError as exc:
            click.echo(render.safe(f"error: {exc}"), err=True)
            sys.exit(exc.exit_code)
        except (RecursionError, OverflowError, MemoryError) as exc:
            # The last line of defence: input past a limit where no check caught it first.
            click.echo(f"error: {limit_message(exc)}; nothing was changed by this step", err=True)
            sys.exit(EXIT_ERROR)
        except Exception:
            click.echo(render.safe(traceback.format_exc()), err=True)
            click.echo(
                "error: unexpected internal error (a bug in regops): please report it "
                "with the traceback above",
                err=True,
            )
            sys.exit(EXIT_INTERNAL)
        sys.exit(rv if isinstance(rv, int) else EXIT_OK)


@click.group(cls=RegopsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@common_options
@click.version_option(version=__version__, package_name="regops")  # one place: regops/__init__
def cli() -> None:
    """GitOps for the MLflow Model Registry.

    Desired stages and aliases live in registry-state/*.yaml (git is the source of
    truth); `regops plan` shows the diff against the live registry and
    `regops reconcile` applies it.

    \b
    Exit codes: 0 ok / in sync; 1 error or blocked gate; 2 changes pending
    (--detailed-exitcode); 3 drift: live changed outside git (--detailed-exitcode);
    64 usage error.
    """


@cli.command()
@common_options
@click.pass_context
def validate(ctx: click.Context) -> int:
    """Check the state files (schema and semantics). No network.

    With environments declared (regops.yaml) and no --env: every environment's.
    """
    from regops.adapters.tracking import stages_supported
    from regops.files.loader import load_state

    s = settings(ctx, pick_env=False)
    uri = s.tracking_uri
    if s.config is not None:  # environments (the service layer is not loaded without them)
        from regops.api import validate_environments

        if s.environment is None and not s.state_dir_given:
            for line in validate_environments(s.config):
                click.echo(line)
            return 0
        if s.environment is not None:
            validate_environments(s.config, only=s.environment.name)  # copy keys too
            uri = s.environment.tracking_uri_template  # validate reads no registry: no ${VAR}
    try:
        state = load_state(s.state_dir, stages_supported=stages_supported(uri))
    except StateError as exc:
        if s.fmt == "text":
            raise  # the handler prints FILE:LINE lines on stderr
        files = sorted({d.file for d in exc.diagnostics})
        click.echo(render.render_validate(render.validate_doc(files, 0, 0, exc.diagnostics), s.fmt))
        return 1
    n_versions = sum(len(m.versions) for m in state.models.values())
    doc = render.validate_doc(list(state.files), len(state.models), n_versions, [])
    click.echo(render.render_validate(doc, s.fmt))
    return 0


@cli.command()
@common_options
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also save the plan as JSON, for `reconcile --plan FILE`.",
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 2 when changes are pending from git, 3 when live drifted outside git.",
)
@click.option("--model", "models", multiple=True, metavar="NAME", help="Only this model.")
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the pull-request report (markdown): validation, plan, gate verdicts, "
    "and what failed and why when the run could not plan.",
)
@click.option(
    "--live",
    "live_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Plan against this snapshot (`regops snapshot --out`) instead of the live "
    "registry: offline, no credentials.",
)
@registry_name_option
@click.option(
    "--all-envs",
    is_flag=True,
    help="Plan every environment of regops.yaml: one report, one section each.",
)
@click.option(
    "--notify-drift",
    is_flag=True,
    help="The drift check: on drift, send `drift` to the notify: receivers of regops.yaml "
    "(without this flag plan sends nothing: it runs where no secret may be).",
)
@override_options
@click.pass_context
def plan(
    ctx: click.Context,
    out: Path | None,
    detailed_exitcode: bool,
    models: tuple[str, ...],
    report: Path | None,
    live_file: Path | None,
    all_envs: bool,
    notify_drift: bool,
    overrides: tuple[str, ...],
    reasons: tuple[str, ...],
) -> int:
    """Show what reconcile would change, with each gate's verdict."""
    from regops import api

    # Where the plan goes must be writable before the registry is read: fail fast, write whole.
    from regops.cli import ci as commands_ci

    fileio.check([p for p in (out, report) if p is not None])
    if all_envs:
        s = settings(ctx, pick_env=False)
        if s.config is None or s.env_name is not None or models:
            raise UsageError(
                "--all-envs needs environments in regops.yaml, and no --env or --model"
            )
        if live_file is not None:
            raise UsageError(
                "--live plans one environment from its snapshot: give --env NAME, not --all-envs"
            )
        store_overrides(s, overrides, reasons)
        plans = api.plan_environments(s)
        docs = api.plan_docs(plans)
        if out is not None:
            fileio.write_atomic(out, render.render_json(render.environments_doc(docs)) + "\n")
        if report is not None:  # the PR comment: every environment's plan, one section each
            from regops.render.reports import write_report

            config = s.config
            text = api.environments_report(config, docs)
            write_report(report, text, lambda full: api.environments_report(config, docs, full))
        click.echo(render.render_environments(docs, s.fmt))
        if notify_drift:  # each environment's drift, named as such
            config = s.config
            for name, env_plan in plans.items():
                if not isinstance(env_plan, str):
                    _notified(api.notify_drift(api.scoped(s, config.get(name)), env_plan))
        return render.environments_exit_code(docs, detailed_exitcode)
    s = settings(ctx)
    store_overrides(s, overrides, reasons)
    p = commands_ci.run_plan_command(s, models, out=out, report=report, live_file=live_file)
    warn(p.warnings)
    click.echo(render.render(p.to_dict(), s.fmt))
    if notify_drift:  # the drift check only: a plan on its own never sends anything
        _notified(api.notify_drift(s, p))
    return p.exit_code(detailed_exitcode)


@cli.command()
@common_options
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Apply this saved plan (refused if the registry moved since).",
)
@click.option("--dry-run", is_flag=True, help="Show the plan; write nothing.")
@click.option("--model", "models", multiple=True, metavar="NAME", help="Only this model.")
@click.option(
    "--parallel",
    type=click.IntRange(min=1),
    default=DEFAULT_PARALLEL,
    show_default=True,
    metavar="N",
    help="Write up to N models at once (1: one writer). Each model's changes keep their "
    "order and the report lists them in plan order. Writes mostly wait on the registry's "
    f"round trip, so {DEFAULT_PARALLEL} hide most of a remote registry's latency without "
    "crowding a small server or a sqlite file.",
)
@registry_name_option
@override_options
@click.pass_context
def reconcile(
    ctx: click.Context,
    plan_file: Path | None,
    dry_run: bool,
    models: tuple[str, ...],
    parallel: int,
    overrides: tuple[str, ...],
    reasons: tuple[str, ...],
) -> int:
    """Apply the desired state to the registry (refusing failed gates).

    After a failed change no new change starts: models being written finish the change
    in flight (and its stamp), everything else is reported skipped; run again to finish.
    """
    from regops import api

    s = settings(ctx)
    store_overrides(s, overrides, reasons)
    if plan_file is not None and models:
        raise UsageError("--model cannot be combined with --plan (a saved plan is applied whole)")
    if not dry_run:
        api.refuse_suspended(s)
    if plan_file is not None and overrides:
        raise UsageError(
            "--override cannot be combined with --plan: a saved plan was judged when it was "
            "made (give --override to `regops plan --out`)"
        )
    desired = None if plan_file else api.load_desired(s)
    p = api.load_plan_file(plan_file) if plan_file else api.run_plan(s, models, desired=desired)
    warn(p.warnings)
    doc = p.to_dict()
    if s.fmt != "json":
        click.echo(render.render(doc, s.fmt))
    if dry_run or not p.ok or not p.pending:
        # `blocked`, if a gate refused
        notified = _notified([] if dry_run else api.notify_reconcile(s, p, None))
        if s.fmt == "json":
            click.echo(render.render_json({"plan": doc, "result": None, **notified}))
        return 0 if p.ok else 1
    # A plan made here is re-made if the registry moves before the first write; a saved one is not.
    result = api.run_reconcile(
        s, models, plan=p, replan=plan_file is None, desired=desired, parallel=parallel
    )
    notified = _notified(api.notify_reconcile(s, p, result))  # reported, never fails the apply
    if s.fmt == "json":
        click.echo(render.render_json({"plan": doc, "result": result.to_dict(), **notified}))
    else:
        click.echo("")
        click.echo(render.render_result(result.to_dict(), s.fmt))
    if result.restamped:
        click.echo(
            render.safe(f"restored lost audit stamps: {', '.join(result.restamped)}"), err=True
        )
    if result.interrupted:
        click.echo(
            f"interrupted by {result.interrupted}: stopped after the write in flight and its "
            "stamp (report above); run `regops reconcile` again to finish",
            err=True,
        )
        return EXIT_SIGNAL.get(result.interrupted, EXIT_INTERRUPTED)
    return 0 if result.ok else 1


def _notified(sent: Sequence[Any]) -> dict[str, Any]:
    """Report each notification sent (`notify:` in regops.yaml) on stderr; for --format json,
    the `notifications` key (absent when none was due)."""
    for d in sent:
        if d.ok:
            click.echo(render.safe(f"notified {d.receiver} ({d.kind})"), err=True)
        else:
            click.echo(
                render.safe(f"warning: notification to {d.receiver} ({d.kind}) failed: {d.error}"),
                err=True,
            )
    return {"notifications": [d.to_dict() for d in sent]} if sent else {}


def warn(messages: Sequence[str]) -> None:
    """What was read but could not be used: one line each on stderr."""
    for m in messages:
        click.echo(render.safe(f"warning: {m}"), err=True)


@cli.command()
@common_options
@click.option("--model", "models", multiple=True, metavar="NAME", help="Only this model.")
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write one state file per model into DIR (default: print to stdout).",
)
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@click.pass_context
def export(ctx: click.Context, models: tuple[str, ...], output: Path | None, force: bool) -> int:
    """Write the live registry as state files (adopt an existing registry)."""
    from regops import api
    from regops.core import views
    from regops.files import export as exporting

    s = settings(ctx)
    registry = api.open_registry(s)
    live = registry.snapshot(list(models) or None)
    for name in models:
        views.require_model(live, name)
    plan = exporting.plan_export(live, models)
    if plan.skipped and (models or not plan.models):
        # Asked for by name, or nothing at all could be exported: an error, not a warning.
        warn(plan.warnings()[len(plan.skipped) :])
        raise RegopsError(
            "\n".join(plan.warnings()[: len(plan.skipped)]) + "\nnothing was exported"
        )
    warn(plan.warnings())
    skipped = [{"model": name, "reason": why} for name, why in plan.skipped]
    chosen = list(plan.models)
    if output is None:
        text = exporting.export_yaml(chosen, has_stages=live.has_stages)
        click.echo(render.render_export(text, [], s.fmt, skipped), nl=s.fmt != "text")
        return 0
    fileio.check_names(output, [f"{m.name}.yaml" for m in chosen])
    targets = {m.name: output / f"{m.name}.yaml" for m in chosen}
    clash = [str(p) for p in targets.values() if p.exists()]
    if clash and not force:
        raise RegopsError(f"refusing to overwrite {', '.join(clash)} (use --force)")
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileWriteError(
            f"cannot create {output}: {exc.strerror or exc}; nothing was written"
        ) from exc
    # All or nothing: every target is checked and staged before any file is replaced.
    fileio.write_all(
        {targets[m.name]: exporting.export_yaml([m], has_stages=live.has_stages) for m in chosen}
    )
    written = [
        {"file": str(targets[m.name]), "model": m.name, "versions": len(m.versions)} for m in chosen
    ]
    click.echo(render.render_export(None, written, s.fmt, skipped))
    return 0


@cli.command("list-models")
@common_options
@click.pass_context
def list_models(ctx: click.Context) -> int:
    """List registered models with their stages and aliases."""
    from regops import api
    from regops.core import views

    s = settings(ctx)
    rows = views.model_rows(api.open_registry(s).snapshot())
    cols = ["model", "versions", "latest", "stages", "aliases"]
    click.echo(render.render_rows(rows, cols, s.fmt, key="models"))
    return 0


@cli.command("list-versions")
@common_options
@click.option("--model-name", required=True, help="Registered model name.")
@click.pass_context
def list_versions(ctx: click.Context, model_name: str) -> int:
    """List the versions of one model: stage, aliases, evidence."""
    from regops import api
    from regops.core import views

    s = settings(ctx)
    m = views.require_model(api.open_registry(s).snapshot([model_name]), model_name)
    rows = [views.version_row(m, v) for v in m.versions.values()]
    cols = [
        "version",
        "stage",
        "aliases",
        "created",
        "validation_status",
        "smoke_test_status",
        "run_id",
    ]
    click.echo(render.render_rows(rows, cols, s.fmt, key="versions"))
    return 0


@cli.command("get-model")
@common_options
@click.option("--model-name", required=True, help="Registered model name.")
@click.option("--stage", type=click.Choice(STAGES))
@click.option("--alias", help="Alias, e.g. champion.")
@click.pass_context
def get_model(ctx: click.Context, model_name: str, stage: str | None, alias: str | None) -> int:
    """Show the version serving a stage (its latest) or an alias."""
    from regops import api
    from regops.core import views

    if (stage is None) == (alias is None):
        raise UsageError("give exactly one of --stage or --alias")
    s = settings(ctx)
    m = views.require_model(api.open_registry(s).snapshot([model_name]), model_name)
    row = views.version_row(m, views.find_version(m, stage=stage, alias=alias))
    row["uri"] = f"models:/{model_name}/{row['version']}"
    click.echo(render.render_record(row, s.fmt))
    return 0


def main() -> None:
    """Console-script entry point."""
    cli()
