"""`regops`: thin commands over load -> snapshot -> plan -> render | apply.

Exit codes: 0 success / in sync; 1 error (nothing, or a reported part, applied);
2 changes pending from git and 3 drift (both with --detailed-exitcode);
64 usage error; 130 interrupted; 70 unexpected internal error.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

import click

from regops.errors import RegopsError, StateError
from regops.options import common_options, settings

EXIT_USAGE = 64
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


class RegopsGroup(click.Group):
    """Maps every outcome to the documented exit codes, for the console script and CliRunner alike."""

    def main(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs["standalone_mode"] = False
        try:
            rv = super().main(*args, **kwargs)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            exc.show()
            sys.exit(EXIT_USAGE)
        except click.ClickException as exc:
            exc.show()
            sys.exit(1)
        except (click.Abort, KeyboardInterrupt):
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except StateError as exc:
            for d in exc.diagnostics:
                click.echo(str(d), err=True)
            n = len(exc.diagnostics)
            click.echo(f"error: {n} problem(s) in the state files; nothing was changed", err=True)
            sys.exit(exc.exit_code)
        except RegopsError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except Exception:
            click.echo(traceback.format_exc(), err=True)
            click.echo(
                "error: unexpected internal error (a bug in regops): please report it "
                "with the traceback above",
                err=True,
            )
            sys.exit(EXIT_INTERNAL)
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=RegopsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@common_options
@click.version_option(package_name="regops")
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
    """Check the state files (schema and semantics). No network."""
    from regops.loader import load_state
    from regops.registry_uri import stages_supported

    s = settings(ctx)
    state = load_state(s.state_dir, stages_supported=stages_supported(s.tracking_uri))
    n_versions = sum(len(m.versions) for m in state.models.values())
    click.echo(
        f"{len(state.files)} file(s) valid: {len(state.models)} model(s), {n_versions} version(s)"
    )
    return 0


# --- further command modules register themselves below ---


def main() -> None:
    """Console-script entry point."""
    cli()
