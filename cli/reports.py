"""``arrears report portfolio``: the portfolio by creditor and by agency, as of any date.

Figures and rates are defined in ``ledger/readmodels/portfolio.py``; the same
report can be recomputed from the events alone with
``ledger.readmodels.portfolio_reference.reference_portfolio_report``.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from cli.core import friendly_errors, main, open_service, parse_moment, store_option
from ledger import errors
from ledger.readmodels.portfolio import ALL_BUCKETS, BUCKETS, UNKNOWN, PortfolioReport

CHART_SUFFIXES = (".svg", ".png")


@main.group()
def report() -> None:
    """Reports over the ledger's read models."""


# ``forecast`` (cli.worklist) joins this group whichever module is imported first.
_forecast = main.commands.get("forecast")
if _forecast is not None and "forecast" not in report.commands:
    report.add_command(_forecast)


@report.command("portfolio")
@click.option(
    "--as-of",
    "as_of",
    default=None,
    metavar="DATE",
    help="As recorded by the end of DATE (UTC), or by a timestamp; default now.",
)
@click.option("--creditor", default=None, metavar="C", help="Only creditor C's accounts.")
@click.option(
    "--agency",
    default=None,
    metavar="A",
    help="Only what agency A held; the by-creditor rows then show A's book.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--chart",
    default=None,
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write an aging chart to FILE (.svg or .png).",
)
@store_option
@friendly_errors
def portfolio(
    as_of: str | None,
    creditor: str | None,
    agency: str | None,
    fmt: str,
    chart: Path | None,
    store: str | None,
) -> None:
    """Accounts and balances placed, collected and outstanding; aging by days since
    charge-off; contact, promise, liquidation and plan default rates; open disputes
    and complaints; agent productivity.  By creditor and by agency, as of a date."""
    if chart is not None and chart.suffix.lower() not in CHART_SUFFIXES:
        raise click.BadParameter("the chart file must end in .svg or .png", param_hint="--chart")
    if chart is not None and not chart.parent.is_dir():
        raise errors.ValidationError(
            f"cannot write {chart}: there is no directory {chart.parent}", field="chart"
        )
    moment = parse_moment(as_of) if as_of else None
    service = open_service(store)
    result = service.portfolio_report(moment, creditor=creditor, agency=agency)
    if fmt == "json":
        click.echo(json.dumps(result.as_dict(), indent=2))
    elif fmt == "csv":
        write_csv(result)
    else:
        print_portfolio(result)
    if chart is not None:
        write_aging_chart(result, chart)
        click.echo(f"aging chart written to {chart}", err=fmt != "table")


# ------------------------------------------------------------------- csv


CSV_COLUMNS = ("as_of", "section", "name", "currency", "metric", "value")


def csv_rows(result: PortfolioReport) -> Iterator[tuple[Any, ...]]:
    """One figure per line: ``as_of, section, name, currency, metric, value``."""
    data = result.as_dict()
    as_of = data["as_of"]
    sections = (
        ("total", "", data["totals"]),
        ("creditor", "creditor", data["by_creditor"]),
        ("agency", "agency", data["by_agency"]),
    )
    for section, key, rows in sections:
        for row in rows:
            name = row[key] if key else ""
            for metric, value in row.items():
                if metric in (key, "currency"):
                    continue
                if metric == "aging":
                    for bucket, cell in value.items():
                        for part, amount in cell.items():
                            metric_name = f"aging {bucket} {part}"
                            yield (as_of, section, name, row["currency"], metric_name, amount)
                else:
                    yield (as_of, section, name, row["currency"], metric, value)
    for agent in data["agents"]:
        for metric in ("contacts", "right_party_contacts", "promises"):
            yield (as_of, "agent", agent["agent"], "", metric, agent[metric])
        for currency, amount in agent["collected"].items():
            yield (as_of, "agent", agent["agent"], currency, "collected", amount)


def write_csv(result: PortfolioReport) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in csv_rows(result):
        writer.writerow(["" if v is None else v for v in row])


# ----------------------------------------------------------------- table


def percent(rate: str | None) -> str:
    """A 4-decimal rate as a percentage with 2 decimals (the same digits), '-' if undefined."""
    if rate is None:
        return "-"
    return f"{Decimal(rate) * 100:.2f}%"


def _table(headers: list[str], rows: list[list[str]], left: int = 2) -> None:
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            str(c).ljust(w) if i < left else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    click.echo(line(headers))
    for row in rows:
        click.echo(line(row))


def _money_rows(rows: list[dict[str, Any]], key: str | None) -> list[list[str]]:
    return [
        [
            r[key] if key else "all",
            r["currency"],
            str(r["accounts_placed"]),
            r["placed"],
            str(r["accounts_collected"]),
            r["collected"],
            percent(r["liquidation_rate"]),
            str(r["accounts_outstanding"]),
            r["outstanding"],
        ]
        for r in rows
    ]


def _activity_rows(rows: list[dict[str, Any]], key: str | None) -> list[list[str]]:
    return [
        [
            r[key] if key else "all",
            r["currency"],
            str(r["accounts_contacted"]),
            str(r["accounts_right_party_contact"]),
            percent(r["right_party_contact_rate"]),
            str(r["promises_made"]),
            str(r["promises_kept"]),
            str(r["promises_broken"]),
            percent(r["promise_kept_rate"]),
            str(r["plans_agreed"]),
            str(r["plans_defaulted"]),
            percent(r["plan_default_rate"]),
            str(r["open_disputes"]),
            str(r["open_complaints"]),
        ]
        for r in rows
    ]


def _shown_buckets(data: dict[str, Any]) -> list[str]:
    rows = data["totals"] + data["by_agency"]
    unknown = any(r["aging"][UNKNOWN]["accounts"] for r in rows)
    return [*BUCKETS, UNKNOWN] if unknown else list(BUCKETS)


def print_portfolio(result: PortfolioReport) -> None:
    data = result.as_dict()
    scope = f"creditor {data['creditor'] or 'all'}, agency {data['agency'] or 'all'}"
    click.echo(f"Portfolio as of {data['as_of']} (recorded time); {scope}")
    if data["agency"]:
        click.echo(f"(by creditor: what agency {data['agency']} held, by creditor)")
    views = [
        ("Totals by currency", None, data["totals"]),
        ("By creditor", "creditor", data["by_creditor"]),
        ("By agency", "agency", data["by_agency"]),
    ]
    money_headers = [
        "",
        "cur",
        "placed #",
        "placed",
        "paying #",
        "collected",
        "liq.",
        "outst. #",
        "outstanding",
    ]
    activity_headers = [
        "",
        "cur",
        "contacted",
        "RPC",
        "RPC rate",
        "promises",
        "kept",
        "broken",
        "kept rate",
        "plans",
        "defaulted",
        "dflt rate",
        "disputes",
        "complaints",
    ]
    for title, key, rows in views:
        click.echo(f"\n{title}")
        if not rows:
            click.echo("  (nothing)")
            continue
        _table([key or "", *money_headers[1:]], _money_rows(rows, key))
        click.echo("")
        _table([key or "", *activity_headers[1:]], _activity_rows(rows, key))
    buckets = _shown_buckets(data)
    aging_rows: list[list[str]] = []
    for section, key, rows in views:
        for r in rows:
            name = r[key] if key else "total"
            label = f"{section.split()[-1] if key else ''} {name}".strip()
            aging_rows.append(
                [
                    label,
                    r["currency"],
                    *(f"{r['aging'][b]['accounts']} / {r['aging'][b]['balance']}" for b in buckets),
                ]
            )
    click.echo(
        "\nAging: open accounts with a balance, by days since charge-off (accounts / balance)"
    )
    if aging_rows:
        _table(["", "cur", *buckets], aging_rows)
    else:
        click.echo("  (nothing)")
    click.echo("\nAgents")
    if not data["agents"]:
        click.echo("  (nothing)")
        return
    _table(
        ["agent", "contacts", "RPC", "promises", "collected"],
        [
            [
                a["agent"],
                str(a["contacts"]),
                str(a["right_party_contacts"]),
                str(a["promises"]),
                ", ".join(f"{v} {c}" for c, v in a["collected"].items()) or "-",
            ]
            for a in data["agents"]
        ],
        left=1,
    )


# ----------------------------------------------------------------- chart


def write_aging_chart(result: PortfolioReport, path: Path) -> None:
    """Aging of the report's totals: accounts per bucket (all currencies, stacked), and
    the outstanding balance per bucket, one panel per currency (never added up)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import StrMethodFormatter

    totals = result.totals
    has_unknown = any(t.aging_accounts[UNKNOWN] for t in totals)
    buckets = list(ALL_BUCKETS if has_unknown else BUCKETS)
    panels = 1 + len(totals)
    columns = min(panels, 2)
    rows = -(-panels // columns)
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "arrears"}):
        fig, axes = plt.subplots(
            rows,
            columns,
            figsize=(6.0 * columns, 4.2 * rows),
            squeeze=False,
            layout="constrained",
        )
        flat = [panel for row in axes for panel in row]
        for spare in flat[panels:]:
            spare.set_visible(False)
        ax = flat[0]
        bottom = [0] * len(buckets)
        for total in totals:
            counts = [total.aging_accounts[b] for b in buckets]
            ax.bar(buckets, counts, bottom=bottom, label=total.currency)
            bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
        if not totals:
            ax.bar(buckets, bottom)
        ax.set_title("Outstanding accounts")
        ax.set_ylabel("accounts")
        if totals:
            ax.legend()
        for i, total in enumerate(totals, start=1):
            panel = flat[i]
            view = total.as_dict("total")["aging"]
            # Display only: bar heights may be floats, the figures printed stay exact.
            balances = [float(Decimal(view[b]["balance"])) for b in buckets]
            panel.bar(buckets, balances, color=f"C{i - 1}")
            panel.set_title(f"Outstanding balance, {total.currency}")
            panel.set_ylabel(total.currency)
            panel.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
        for panel in flat[:panels]:
            panel.set_xlabel("days since charge-off")
            panel.tick_params(axis="x", labelrotation=30)
        scope = ", ".join(
            part
            for part in (
                f"creditor {result.creditor}" if result.creditor else "",
                f"agency {result.agency}" if result.agency else "",
            )
            if part
        )
        title = f"Aging as of {result.as_of.isoformat()}" + (f" ({scope})" if scope else "")
        fig.suptitle(title)
        try:
            fig.savefig(path, format=path.suffix.lower().lstrip("."), metadata={"Date": None})
        except OSError as e:
            raise errors.ValidationError(
                f"cannot write {path}: {e.strerror or e}", field="chart"
            ) from None
        finally:
            plt.close(fig)
