"""`regops relay` (MLflow webhooks to GitHub repository_dispatch) and
`regops webhooks install|list` (the registry side of it)."""

from __future__ import annotations

import os

import click

from regops.cli.options import common_options, settings

WEBHOOK_SECRET_ENV = "REGOPS_WEBHOOK_SECRET"  # noqa: S105 - a variable name


@click.command()
@click.option(
    "--listen",
    default="127.0.0.1:8080",
    show_default=True,
    metavar="HOST:PORT",
    help="Where to serve POST /mlflow and GET /healthz (put TLS in front in production).",
)
@click.option(
    "--coalesce-seconds",
    type=click.FloatRange(min=0),
    default=2.0,
    show_default=True,
    help="Events for one model and event type within this window become one dispatch "
    "(the first goes out at once).",
)
@click.option(
    "--tolerance",
    type=click.IntRange(min=1),
    default=300,
    show_default=True,
    help="Refuse deliveries whose X-MLflow-Timestamp is further than this from now (s).",
)
def relay(listen: str, coalesce_seconds: float, tolerance: int) -> int:
    """Receive MLflow webhooks and send GitHub repository_dispatch events.

    \b
    Environment: REGOPS_WEBHOOK_SECRET (the webhook's secret), GITHUB_TOKEN,
    GITHUB_REPOSITORY (OWNER/NAME), GITHUB_API_URL (default https://api.github.com).
    Needs the `relay` extra (pip install 'regops[relay]'). Stops cleanly on SIGTERM.
    """
    from regops import api

    return api.run_relay(os.environ, listen, window=coalesce_seconds, tolerance=tolerance)


@click.group()
def webhooks() -> None:
    """The registry's webhooks (MLflow 3.3+, SQL-backed registry store)."""


@webhooks.command("install")
@common_options
@click.option("--url", required=True, help="The relay's public URL, ending in /mlflow.")
@click.option("--name", default="regops-relay", show_default=True, help="The webhook's name.")
@click.pass_context
def install(ctx: click.Context, url: str, name: str) -> int:
    """Register (or bring up to date) the webhook the relay needs; idempotent.

    The secret comes from $REGOPS_WEBHOOK_SECRET (the same the relay verifies with).
    """
    from regops import api
    from regops.render.webhooks import render_install

    s = settings(ctx)
    action, hook = api.install_webhook(s, url, os.environ.get(WEBHOOK_SECRET_ENV, ""), name)
    click.echo(render_install(action, hook, s.fmt))
    return 0


@webhooks.command("list")
@common_options
@click.pass_context
def list_(ctx: click.Context) -> int:
    """Show the registry's webhooks (never their secrets)."""
    from regops import api
    from regops.render.webhooks import render_webhooks

    s = settings(ctx)
    if s.fmt not in ("text", "json"):
        raise click.UsageError("webhooks list: --format text or json")
    click.echo(render_webhooks(api.list_webhooks(s), s.fmt))
    return 0


def register(group: click.Group) -> None:
    group.add_command(relay)
    group.add_command(webhooks)
