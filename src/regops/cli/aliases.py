"""Commands of the alias era: `migrate-to-aliases` and `codeowners`.

Both edit files of the repository (never the registry) and never import mlflow.
"""

from __future__ import annotations

from pathlib import Path

import click

from regops.adapters.tracking import stages_supported
from regops.cli.edit import edit_doc
from regops.cli.options import common_options, settings
from regops.core.plan import FORMAT_VERSION
from regops.errors import EditError, FileWriteError
from regops.files.fileio import write_atomic
from regops.files.loader import display_path, load_state
from regops.render import render_codeowners, render_migration, safe


@click.command("migrate-to-aliases")
@click.option(
    "--map",
    "pairs",
    multiple=True,
    metavar="STAGE=ALIAS",
    help="Which alias each stage becomes (repeatable). "
    "Default: --map Production=champion --map Staging=challenger.",
)
@click.option(
    "--keep-stages",
    is_flag=True,
    help="Keep the stage lines and stage policies (stages stay managed); add the aliases beside.",
)
@click.option("--dry-run", is_flag=True, help="Show the rewrite; write nothing.")
@common_options
@click.pass_context
def migrate_to_aliases(
    ctx: click.Context, pairs: tuple[str, ...], keep_stages: bool, dry_run: bool
) -> int:
    """Rewrite the state files from stages to aliases (comments and formatting kept).

    \b
    Each version's mapped stage becomes its alias, stage policies become alias
    policies (policy.aliases), and policy.use_stages: false makes the next plan
    move aliases only: live stages are left as they are. Review the diff, open a
    pull request; merging applies the aliases.
    """
    from regops.files.migrate import migrate_state, parse_map, write_migration

    s = settings(ctx)
    try:
        mapping = parse_map(pairs)
    except EditError as exc:
        raise click.UsageError(str(exc)) from exc
    results = migrate_state(
        s.state_dir,
        mapping,
        keep_stages=keep_stages,
        stages_supported=stages_supported(s.tracking_uri),
    )
    if not dry_run:
        write_migration(results)
    doc = {
        "format_version": FORMAT_VERSION,
        "written": not dry_run and any(r.changed for r in results),
        "dry_run": dry_run,
        "map": mapping,
        "files": [edit_doc(r) for r in results],
    }
    click.echo(render_migration(doc, s.fmt))
    return 0


@click.command()
@click.option("--check", is_flag=True, help="Write nothing; exit 1 when the file is out of date.")
@click.option(
    "--file",
    "file_",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CODEOWNERS file. Default: .github/CODEOWNERS at the root of the git repository.",
)
@common_options
@click.pass_context
def codeowners(ctx: click.Context, check: bool, file_: Path | None) -> int:
    """Write the CODEOWNERS lines mapping each state file to its models' owners.

    \b
    Only regops' own marked block is rewritten; every other line is kept.
    With branch protection's "require review from code owners", only a
    model's owners can then approve its promotion. A state file holding
    models with different owners is reported (one file per model is exact).
    """
    from regops.files.codeowners import compute

    s = settings(ctx)
    desired = load_state(s.state_dir, stages_supported=stages_supported(s.tracking_uri))
    co = compute(desired, s.state_dir, file_)
    written = co.changed and not check
    if written:
        try:
            co.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FileWriteError(
                f"cannot write {co.path}: {exc.strerror or exc}; nothing was written"
            ) from exc
        # Atomic: the file is replaced (a symlink or FIFO there is never written through).
        write_atomic(co.path, co.after)
    doc = {
        "format_version": FORMAT_VERSION,
        "file": display_path(co.path),
        "check": check,
        "up_to_date": not co.changed,
        "written": written,
        "rules": list(co.lines),
        "problems": list(co.problems),
    }
    for problem in co.problems:
        click.echo(f"warning: {safe(problem)}", err=True)
    click.echo(render_codeowners(doc, s.fmt))
    return 1 if check and co.changed else 0


def register(group: click.Group) -> None:
    for command in (migrate_to_aliases, codeowners):
        group.add_command(command)
