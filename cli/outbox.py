"""``arrears outbox list|show|retry|run``: deliveries to partners, and those parked as dead."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click

from adapters.outbox.engine import OutboxEngine, OutboxReport
from adapters.outbox.store import STATES, OutboxEntry, OutboxStore
from bootstrap import build_service, load_config
from cli.core import friendly_errors, main, store_option
from ledger import errors
from ledger.clock import ensure_utc
from ledger.readmodels.sqlstore import to_text
from ledger.services import LedgerService
from plugins.manager import build_plugin_manager

config_option = click.option(
    "--config",
    "config_path",
    envvar="ARREARS_CONFIG",
    default=None,
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="The TOML config file with the [adapters.*] tables (or ARREARS_CONFIG); "
    "see arrears.example.toml.",
)


def _service(store: str | None, config: dict[str, Any], pm: Any = None) -> LedgerService:
    service = build_service(store, plugins=pm, config=config)
    click.get_current_context().call_on_close(service.ledger.close)
    return service


def open_store(store: str | None, config_path: str | None) -> tuple[LedgerService, OutboxStore]:
    service = _service(store, load_config(config_path))
    outbox = OutboxStore(service.ledger)
    click.get_current_context().call_on_close(outbox.close)
    return service, outbox


def open_engine(store: str | None, config_path: str | None) -> OutboxEngine:
    """The engine with the adapters the config file enables."""
    from adapters.outbox.wiring import build_outbox

    config = load_config(config_path)
    pm = build_plugin_manager()  # once: the gate and the templates share it
    service = _service(store, config, pm)
    return _closing(build_outbox(service, config, pm))


def _closing(engine: OutboxEngine) -> OutboxEngine:
    """``engine``, closed with its adapters' clients when the command ends."""
    ctx = click.get_current_context()
    ctx.call_on_close(engine.close)
    for adapter in engine.adapters.values():
        close = getattr(adapter, "close", None)
        if callable(close):
            ctx.call_on_close(close)
    return engine


def outbox_passes(
    service: LedgerService, config: dict[str, Any], pm: Any
) -> list[Callable[[Callable[[], bool]], object]]:
    """The worker's delivery pass: the outbox over the configured adapters (none: no pass)."""
    from adapters.outbox.wiring import build_outbox

    engine = _closing(build_outbox(service, config, pm))
    if not engine.adapters:
        return []

    def deliver(stop: Callable[[], bool]) -> None:
        report = engine.run(stop)
        if report.anything:
            click.echo(f"worker: {report.describe()}", err=True)

    return [deliver]


def _line(e: OutboxEntry) -> str:
    when = {
        "pending": f"next {e.next_attempt_at}",
        "delivered": f"delivered {e.updated_at}",
        "dead": f"dead since {e.updated_at}",
    }.get(e.state, e.updated_at)
    text = f"{e.key}  {e.job.adapter}  {e.state}  {e.attempts} attempts  {when}"
    if e.partner_reference:
        text += f"  ref {e.partner_reference}"
    if e.last_error and e.state != "delivered":
        text += f"  last error: {e.last_error}"
    return text


@main.group()
def outbox() -> None:
    """Deliveries to partners (SMS, e-mail, law firms, agencies): pending, delivered, dead.

    The worker turns committed events into deliveries and makes each at least
    once, with the same idempotency key every time; one that keeps failing is
    parked as dead until retried here.
    """


@outbox.command("list")
@click.option("--state", type=click.Choice(STATES), default=None, help="Only this state.")
@click.option("--adapter", default=None, metavar="NAME", help="Only this adapter's.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@config_option
@store_option
@friendly_errors
def list_command(
    state: str | None,
    adapter: str | None,
    limit: int | None,
    as_json: bool,
    config_path: str | None,
    store: str | None,
) -> None:
    """Deliveries, oldest event first."""
    _, outbox_store = open_store(store, config_path)
    rows = outbox_store.entries(state=state, adapter=adapter, limit=limit)
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in rows], indent=2))
        return
    if not rows:
        click.echo("no deliveries" + (f" in state {state}" if state else ""))
        return
    for r in rows:
        click.echo(_line(r))
    click.echo(f"{len(rows)} deliveries")


@outbox.command("show")
@click.argument("key")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@config_option
@store_option
@friendly_errors
def show(key: str, as_json: bool, config_path: str | None, store: str | None) -> None:
    """One delivery: its job, state, attempts, last error and the partner's reference."""
    _, outbox_store = open_store(store, config_path)
    entry = outbox_store.get(key)
    if entry is None:
        raise errors.NotFound(f"no delivery {key}; see 'arrears outbox list'", key=key)
    data = entry.as_dict()
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for name, value in data.items():
        shown = json.dumps(value, sort_keys=True) if isinstance(value, dict) else value
        click.echo(f"{name + ':':<19}{'-' if value is None else shown}")


@outbox.command("retry")
@click.argument("key", required=False)
@click.option("--all-dead", is_flag=True, help="Every dead delivery.")
@click.option(
    "--now",
    is_flag=True,
    help="Deliver at once here (needs the adapters' config) instead of on the worker's next pass.",
)
@config_option
@store_option
@friendly_errors
def retry(
    key: str | None, all_dead: bool, now: bool, config_path: str | None, store: str | None
) -> None:
    """Put a dead delivery (or every one) back to pending, due now, attempts counted afresh.

    Fix what made it fail first (the partner's address, a credential).  A
    pending delivery named by KEY is made due now.
    """
    if (key is None) == (not all_dead):
        raise click.UsageError("name one delivery KEY or give --all-dead")
    service, outbox_store = open_store(store, config_path)
    engine = open_engine(store, config_path) if now else None
    if key is not None:
        entry = outbox_store.get(key)
        if entry is None:
            raise errors.NotFound(f"no delivery {key}; see 'arrears outbox list'", key=key)
        if entry.state == "delivered":
            raise errors.ValidationError(f"delivery {key} was already delivered", key=key)
        if engine is not None and entry.job.adapter not in engine.adapters:
            raise errors.ValidationError(
                f"--now needs the config that enables the {entry.job.adapter!r} adapter "
                "(--config FILE or ARREARS_CONFIG); nothing was changed",
                key=key,
            )
    moment = to_text(ensure_utc(service.clock.now()))
    changed = outbox_store.retry(None if all_dead else [key or ""], moment)
    if not changed:
        click.echo("nothing to retry")
        return
    for k in changed:
        click.echo(f"pending again: {k}")
    if not now:
        click.echo(f"{len(changed)} to deliver on the worker's next pass")
        return
    assert engine is not None
    report = OutboxReport()
    unserved = []
    for k in changed:
        entry = engine.store.get(k)
        if entry is not None and entry.job.adapter in engine.adapters:
            engine.attempt(entry, report)
        elif entry is not None:
            unserved.append(k)
    click.echo(report.describe())
    for k in unserved:
        click.echo(
            f"warning [adapter_not_configured]: {k} stays pending: this config enables no "
            "adapter for it (a worker with one will deliver it)",
            err=True,
        )
    sys.exit(1 if report.dead or report.retries or unserved else 0)


@outbox.command("run")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@config_option
@store_option
@friendly_errors
def run(as_json: bool, config_path: str | None, store: str | None) -> None:
    """One pass, as the worker makes it: turn new events into deliveries, make those due."""
    engine = open_engine(store, config_path)
    if not engine.adapters:
        click.echo("no adapters configured: add [adapters.sms] or [adapters.email]", err=True)
    report = engine.run()
    click.echo(json.dumps(report.as_dict()) if as_json else report.describe())
