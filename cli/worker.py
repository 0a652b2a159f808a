"""``arrears worker``: keep the read models current, serve the observers, run the time processes."""

from __future__ import annotations

import json
import sys

import click

from bootstrap import build_service, load_config
from cli.core import friendly_errors, main, store_option
from cli.outbox import config_option, outbox_passes
from ledger.observers import DispatchReport
from ledger.processes import TickReport, TimePolicy
from ledger.worker import Worker, WorkerStopping
from plugins.manager import build_plugin_manager
from plugins.observers import observers_from


@main.command("worker")
@click.option(
    "--once",
    is_flag=True,
    help="Catch the read models up, run one tick, catch up again, deliver every event "
    "to the observers, and exit.",
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
@config_option
@store_option
@friendly_errors
def worker_command(
    once: bool,
    tick: float,
    grace_days: int,
    default_after: int,
    as_json: bool,
    config_path: str | None,
    store: str | None,
) -> None:
    """Follow the ledger: keep every read model current and, every tick, record what the
    passage of time says (promises kept or broken, installments missed, plans defaulted or
    completed, settlements completed), exactly once even with several workers.  Plugins
    observing committed events get each one at least once, in order (see 'arrears
    observers').

    Stops cleanly on SIGTERM or SIGINT (Ctrl-C).
    """
    policy = TimePolicy(grace_days=grace_days, default_after=default_after)

    def show(report: TickReport) -> None:
        line = json.dumps(report.as_dict()) if as_json else f"worker: {report.describe()}"
        click.echo(line)
        sys.stdout.flush()

    def delivered(report: DispatchReport) -> None:
        click.echo(f"worker: {report.describe()}", err=True)

    pm = build_plugin_manager()  # once: the service's hooks and the observers share it
    config = load_config(config_path)
    service = build_service(store, plugins=pm, config=config)
    click.get_current_context().call_on_close(service.ledger.close)
    runner = Worker(
        service,
        policy,
        tick_seconds=tick,
        on_tick=show,
        observers=observers_from(pm),
        on_dispatch=delivered,
        deliveries=outbox_passes(service, config, pm),
    )
    click.get_current_context().call_on_close(runner.close)
    runner.install_signal_handlers()
    if once:
        try:
            runner.run_once()
        except WorkerStopping:
            click.echo(f"worker: stopped by {runner.stopped_by}", err=True)
        return
    store_config = service.ledger.store_config
    click.echo(
        f"worker: following {store_config.display if store_config else 'the ledger'} "
        f"(tick {tick:g}s, "
        f"grace {grace_days} days, default after {default_after} missed); "
        "SIGTERM or Ctrl-C stops",
        err=True,
    )
    runner.run()
    click.echo(
        f"worker: stopped by {runner.stopped_by or 'request'} after {runner.ticks} ticks", err=True
    )
