"""``arrears observers status|parked|retry``: plugins that observe committed events."""

from __future__ import annotations

import json
import sys

import click

from bootstrap import build_service
from cli.core import friendly_errors, main, store_option
from ledger.errors import ValidationError
from ledger.observers import ObserverDispatcher, ParkedDelivery
from plugins.manager import build_plugin_manager
from plugins.observers import observers_from


def open_dispatcher(store: str | None) -> ObserverDispatcher:
    """The dispatcher over this store's ledger, with the loaded plugins' observers."""
    pm = build_plugin_manager()
    service = build_service(store, plugins=pm)
    ctx = click.get_current_context()
    ctx.call_on_close(service.ledger.close)
    dispatcher = ObserverDispatcher(service.ledger, observers_from(pm), clock=service.clock)
    ctx.call_on_close(dispatcher.close)
    return dispatcher


@main.group()
def observers() -> None:
    """Plugins observing committed events: delivery positions, parked deliveries, retries.

    The worker delivers every event to each observer at least once, in order; a
    delivery that keeps failing is parked and the observer moves on.
    """


@observers.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@store_option
@friendly_errors
def status(as_json: bool, store: str | None) -> None:
    """Each observer's position, lag behind the ledger and parked deliveries."""
    rows = open_dispatcher(store).status()
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in rows], indent=2))
        return
    if not rows:
        click.echo("no observers: no plugin implements arrears_event_committed")
        return
    width = max([len(r.name) for r in rows] + [8])
    click.echo(
        f"{'observer':<{width}} {'position':>10} {'head':>10} {'lag':>8} {'parked':>7}  updated"
    )
    for r in rows:
        note = "" if r.loaded else "  (plugin not loaded)"
        click.echo(
            f"{r.name:<{width}} {r.position:>10} {r.head:>10} {r.lag:>8} {r.parked:>7}  "
            f"{r.updated_at or 'never'}{note}"
        )


@observers.command("parked")
@click.option("--observer", "name", default=None, metavar="NAME", help="Only this observer's.")
@click.option("--all", "include_resolved", is_flag=True, help="Resolved deliveries too.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@store_option
@friendly_errors
def parked(name: str | None, include_resolved: bool, as_json: bool, store: str | None) -> None:
    """Deliveries that failed every attempt, oldest first per observer."""
    rows = open_dispatcher(store).parked(name, include_resolved=include_resolved)
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in rows], indent=2))
        return
    if not rows:
        click.echo("nothing parked")
        return
    for r in rows:
        state = f"resolved {r.resolved_at}" if r.resolved_at else f"last failed {r.last_failed_at}"
        click.echo(
            f"{r.name} @ {r.position} {r.event_type}: {r.attempts} attempts, first failed "
            f"{r.first_failed_at}, {state}: {r.last_error}"
        )


@observers.command("retry")
@click.option("--observer", "name", default=None, metavar="NAME", help="Only this observer's.")
@click.option("--position", type=click.IntRange(min=1), default=None, help="Only this event.")
@store_option
@friendly_errors
def retry(name: str | None, position: int | None, store: str | None) -> None:
    """Deliver parked events again; exit 1 if any still fails.

    A delivery that succeeds is marked resolved.  Fix what made the observer
    fail first (its configuration, the service it calls).
    """
    dispatcher = open_dispatcher(store)
    if name is not None and name not in dispatcher.observers:
        loaded = ", ".join(sorted(dispatcher.observers)) or "none"
        raise ValidationError(
            f"no observer {name!r} is loaded (loaded: {loaded}); check 'arrears plugins' "
            "and ARREARS_DISABLE_PLUGINS",
            observer=name,
        )
    report = dispatcher.retry_parked(name, position)
    if not (report.resolved or report.failed or report.skipped):
        click.echo("nothing parked")
        return

    def show(word: str, rows: list[ParkedDelivery]) -> None:
        for r in rows:
            click.echo(f"{word}: {r.name} @ {r.position} {r.event_type}")

    show("resolved", report.resolved)
    show("still failing", report.failed)
    show("skipped (observer not loaded)", report.skipped)
    total = len(report.resolved) + len(report.failed) + len(report.skipped)
    click.echo(
        f"retried {total} parked: {len(report.resolved)} resolved, {len(report.failed)} still "
        f"failing, {len(report.skipped)} skipped"
    )
    sys.exit(1 if report.failed else 0)
