"""``arrears serve``: the HTTP API, and by default the worker in the same process."""

from __future__ import annotations

import click

from api.config import ConfigError
from cli.core import friendly_errors, main, store_option


@main.command("serve")
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Default 8000.")
@click.option(
    "--config",
    "config_path",
    envvar="ARREARS_CONFIG",
    default=None,
    metavar="FILE",
    help="TOML config; its [server] table sets limits and timeouts (or ARREARS_CONFIG).",
)
@click.option(
    "--demo",
    is_flag=True,
    help="Load the demo portfolio into an empty store and print an admin token.",
)
@click.option("--demo-accounts", default=300, show_default=True, help="Accounts in the demo.")
@click.option(
    "--no-worker",
    is_flag=True,
    help="Do not run the read models and time "
    "processes here ('arrears worker' runs them elsewhere).",
)
@store_option
@friendly_errors
def serve_command(
    host: str | None,
    port: int | None,
    config_path: str | None,
    demo: bool,
    demo_accounts: int,
    no_worker: bool,
    store: str | None,
) -> None:
    """Serve the HTTP API (contract v1; /docs and /openapi.json describe it).

    By default the same process keeps the read models current and runs the time
    processes; with --no-worker run 'arrears worker' beside it.
    """
    from bootstrap import load_config
    from server import serve, server_config

    settings = load_config(config_path)
    try:
        config = server_config(settings=settings).with_overrides(host=host, port=port)
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    serve(
        store=store,
        config=config,
        settings=settings,
        demo=demo,
        demo_accounts=demo_accounts,
        worker=not no_worker,
        echo=click.echo,
    )
