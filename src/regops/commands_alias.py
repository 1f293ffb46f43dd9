"""Commands of the alias era: `migrate-to-aliases` and `codeowners`.

Both edit files of the repository (never the registry) and never import mlflow.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from regops.commands_edit import edit_doc
from regops.edit import EditError
from regops.loader import display_path, load_state
from regops.options import common_options, settings
from regops.registry_uri import stages_supported


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
    from regops.migrate import migrate_state, parse_map, write_migration

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
    if s.fmt == "json":
        doc = {
            "format_version": "1",
            "written": not dry_run,
            "map": mapping,
            "files": [edit_doc(r) for r in results],
        }
        click.echo(json.dumps(doc, indent=2))
        return 0
    for result in results:
        name = display_path(result.path)
        if not result.changed:
            click.echo(f"{name}: nothing to migrate")
        for what in result.summary:
            click.echo(f"{name}: {what}")
        for op, n, text in result.changed_lines():
            click.echo(f"  {n:>4} {op} {text}")
    if dry_run:
        click.echo("Dry run: nothing was written.")
    elif any(r.changed for r in results):
        click.echo(
            "Next: review the diff, commit and open a pull request; its plan moves aliases only."
        )
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
    from regops.codeowners import compute

    s = settings(ctx)
    desired = load_state(s.state_dir, stages_supported=stages_supported(s.tracking_uri))
    co = compute(desired, s.state_dir, file_)
    name = display_path(co.path)
    if s.fmt == "json":
        doc = {
            "format_version": "1",
            "file": name,
            "up_to_date": not co.changed,
            "written": co.changed and not check,
            "rules": list(co.lines),
            "problems": list(co.problems),
        }
        click.echo(json.dumps(doc, indent=2))
    for problem in co.problems:
        click.echo(f"warning: {problem}", err=True)
    if check:
        if co.changed:
            if s.fmt != "json":
                click.echo(f"{name} is out of date: run `regops codeowners` and commit it")
            return 1
        if s.fmt != "json":
            click.echo(f"{name} is up to date ({len(co.lines)} rule(s))")
        return 0
    if co.changed:
        co.path.parent.mkdir(parents=True, exist_ok=True)
        co.path.write_text(co.after, encoding="utf-8", newline="")
    if s.fmt != "json":
        state = "wrote" if co.changed else "already up to date:"
        click.echo(f"{state} {name} ({len(co.lines)} rule(s))")
        for line in co.lines:
            click.echo(f"  {line}")
    return 0


def register(group: click.Group) -> None:
    for command in (migrate_to_aliases, codeowners):
        group.add_command(command)
