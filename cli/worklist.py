"""``arrears worklist`` and ``arrears forecast``: what to work now, and the cash falling due.

``forecast`` is a top-level command; if a ``report`` group is already
registered when this module is imported, it is also reachable as
``arrears report forecast``.
"""

from __future__ import annotations

import json
from datetime import timedelta

import click

from cli.core import friendly_errors, main, open_service, store_option
from ledger.readmodels.forecast import Amounts, CashForecast
from ledger.readmodels.worklist import Worklist

format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)


@main.command()
@click.option(
    "--agent",
    default=None,
    metavar="AGENT",
    help="Only accounts assigned to AGENT (last contact or promise) or to nobody yet.",
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=None, metavar="N", help="At most N accounts."
)
@format_option
@store_option
@friendly_errors
def worklist(agent: str | None, limit: int | None, fmt: str, store: str | None) -> None:
    """Accounts that need action now, ranked: broken promise, missed installment,
    never contacted, callback due.  Accounts that must not be contacted are left out
    and counted by reason."""
    result = open_service(store).worklist(agent=agent, limit=limit)
    if fmt == "json":
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        print_worklist(result)


def print_worklist(result: Worklist) -> None:
    if not result.items:
        click.echo("worklist: nothing needs action now")
    else:
        click.echo(
            f"{'#':>4}  {'reason':<18} {'reference':<14} {'creditor':<18} {'balance':>14} "
            f"{'cur':<4} {'agent':<10} {'since':<11} {'open channels':<24} detail"
        )
        for item in result.items:
            click.echo(
                f"{item.position:>4}  {item.reason:<18} {item.reference:<14} "
                f"{item.creditor:<18} {item.balance:>14} {item.currency:<4} "
                f"{item.agent or '-':<10} {item.since.date().isoformat():<11} "
                f"{','.join(item.open_channels or ()) or '-':<24} {item.detail}"
            )
    shown = len(result.items)
    line = f"{shown} of {result.total} accounts" if shown < result.total else f"{shown} accounts"
    if result.agent is not None:
        line += f" for {result.agent} (or unassigned)"
    counts = result.left_out_counts()
    if counts:
        detail = ", ".join(f"{reason} {n}" for reason, n in counts.items())
        line += f"; left out, must not be contacted: {len(result.left_out)} ({detail})"
    click.echo(line)


@main.command()
@click.option(
    "--weeks",
    type=click.IntRange(min=1, max=520),
    default=8,
    show_default=True,
    help="How many ISO weeks, starting with this one.",
)
@format_option
@store_option
@friendly_errors
def forecast(weeks: int, fmt: str, store: str | None) -> None:
    """Cash forecast: plan installments and open promises falling due, by ISO week."""
    result = open_service(store).cash_forecast(weeks=weeks)
    if fmt == "json":
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        print_forecast(result)


def _row(label: str, start: str, end: str, currency: str, amounts: Amounts) -> str:
    view = amounts.as_dict(currency)
    return (
        f"{label:<9} {start:<11} {end:<11} {currency:<4} {view['installments']:>15} "
        f"{view['promises']:>15} {view['total']:>15}"
    )


def print_forecast(result: CashForecast) -> None:
    click.echo(f"cash forecast from {result.today.isoformat()} (amounts per currency)")
    click.echo(
        f"{'week':<9} {'from':<11} {'to':<11} {'cur':<4} {'installments':>15} "
        f"{'promises':>15} {'total':>15}"
    )
    for currency, amounts in sorted(result.overdue.items()):
        yesterday = (result.today - timedelta(days=1)).isoformat()
        click.echo(_row("overdue", "-", yesterday, currency, amounts))
    for week in result.weeks:
        start, end = week.start.isoformat(), week.end.isoformat()
        if not week.amounts:
            click.echo(f"{week.iso_week:<9} {start:<11} {end:<11} -")
        for currency, amounts in sorted(week.amounts.items()):
            click.echo(_row(week.iso_week, start, end, currency, amounts))
    for currency, amounts in sorted(result.later.items()):
        after = (result.weeks[-1].end + timedelta(days=1)).isoformat()
        click.echo(_row("later", after, "-", currency, amounts))


_report = main.commands.get("report")
if isinstance(_report, click.Group) and "forecast" not in _report.commands:
    _report.add_command(forecast)
