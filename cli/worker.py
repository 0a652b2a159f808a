"""``arrears worker``: keep the read models current and run the time processes."""

from __future__ import annotations

import json
import sys

import click

from cli.core import friendly_errors, main, open_service, store_option
from ledger.processes import TickReport, TimePolicy
from ledger.worker import Worker, WorkerStopping


@main.command("worker")
@click.option(
    "--once",
    is_flag=True,
    help="Catch the read models up, run one tick, catch up again, and exit.",
)
@click.option(
    "--tick",
    "tick",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="Seconds between runs of the time processes.",
)
@click.option(
    "--grace-days",
    type=click.IntRange(min=0),
    envvar="ARREARS_GRACE_DAYS",
    default=3,
    show_default=True,
    help="Days past a due date before a promise is broken or an installment missed "
    "(or ARREARS_GRACE_DAYS).",
)
@click.option(
    "--default-after",
    type=click.IntRange(min=1),
    envvar="ARREARS_DEFAULT_AFTER",
    default=2,
    show_default=True,
    help="Missed installments that default a plan (or ARREARS_DEFAULT_AFTER).",
)
@click.option("--json", "as_json", is_flag=True, help="Print each tick's report as JSON.")
@store_option
@friendly_errors
def worker_command(
    once: bool,
    tick: float,
    grace_days: int,
    default_after: int,
    as_json: bool,
    store: str | None,
) -> None:
    """Follow the ledger: keep every read model current and, every tick, record what the
    passage of time says (promises kept or broken, installments missed, plans defaulted or
    completed, settlements completed), exactly once even with several workers.

    Stops cleanly on SIGTERM or SIGINT (Ctrl-C).
    """
    policy = TimePolicy(grace_days=grace_days, default_after=default_after)

    def show(report: TickReport) -> None:
        line = json.dumps(report.as_dict()) if as_json else f"worker: {report.describe()}"
        click.echo(line)
        sys.stdout.flush()

    service = open_service(store)
    runner = Worker(service, policy, tick_seconds=tick, on_tick=show)
    click.get_current_context().call_on_close(runner.close)
    runner.install_signal_handlers()
    if once:
        try:
            runner.run_once()
        except WorkerStopping:
            click.echo(f"worker: stopped by {runner.stopped_by}", err=True)
        return
    config = service.ledger.store_config
    click.echo(
        f"worker: following {config.display if config else 'the ledger'} (tick {tick:g}s, "
        f"grace {grace_days} days, default after {default_after} missed); "
        "SIGTERM or Ctrl-C stops",
        err=True,
    )
    runner.run()
    click.echo(
        f"worker: stopped by {runner.stopped_by or 'request'} after {runner.ticks} ticks", err=True
    )
