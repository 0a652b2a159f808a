"""The portfolio report (issue 3): by creditor and by agency, as of any recorded date.

The read model is checked against an independent fold of the stored events on the
demo portfolio (both backends), rebuilt from zero against its incrementally
maintained self row for row, and on a small hand-built scenario with exact figures
(attribution after a recall, aging buckets, rates, agent productivity).  The CLI is
driven in-process: json, csv, table, and the aging chart as SVG and PNG.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from click.testing import CliRunner

import cli
from ledger.application import open_ledger
from ledger.clock import MovableClock
from ledger.money import Money
from ledger.readmodels import ReadModels
from ledger.readmodels.portfolio import (
    ALL_BUCKETS,
    PortfolioProjection,
    bucket_of,
    end_of_day,
    rate_text,
)
from ledger.readmodels.portfolio_reference import reference_portfolio_report
from ledger.services import Installment, LedgerService
from tests.conftest import DEMO_ACCOUNTS, JANE, placement, usd

DEMO_DATES = (
    date(2026, 1, 12),
    date(2026, 2, 1),
    date(2026, 3, 15),
    date(2026, 5, 20),
    date(2026, 12, 31),
)


def gbp(text: str) -> Money:
    return Money.parse(text, "GBP")


def table_rows(models: ReadModels) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every portfolio table of the active generation, sorted."""
    names = models.engine.tables("portfolio")
    out = {}
    with models.store.transaction(write=False) as tx:
        for logical, physical in names.items():
            rows = [tuple(r.values()) for r in tx.query(f"SELECT * FROM {physical}")]
            out[logical] = sorted(rows, key=lambda r: tuple((v is None, str(v)) for v in r))
    return out


# ------------------------------------------------------------------ demo


def test_demo_report_as_of_past_dates_equals_fold_of_events(demo_copy: str) -> None:
    """As of five past dates (and filtered by creditor / agency) the read model's report
    equals the one folded from the events recorded by then."""
    app = open_ledger(demo_copy)
    try:
        service = LedgerService(app)
        reports = {}
        for day in DEMO_DATES:
            report = service.portfolio_report(end_of_day(day)).as_dict()
            expected = reference_portfolio_report(app, as_of=end_of_day(day)).as_dict()
            assert report == expected, day
            reports[day] = report
        for creditor, agency in (
            ("northwind-bank", None),
            (None, "Apex Recovery"),
            ("thames-energy", "Harbor Receivables"),
        ):
            as_of = end_of_day(date(2026, 3, 15))
            got = service.portfolio_report(as_of, creditor=creditor, agency=agency).as_dict()
            want = reference_portfolio_report(
                app, as_of=as_of, creditor=creditor, agency=agency
            ).as_dict()
            assert got == want, (creditor, agency)
            assert got["by_agency"] or creditor is not None, agency
    finally:
        app.close()
    # Non-trivial figures: every account is placed by February, money moves, agents work.
    assert reports[date(2026, 1, 12)]["totals"]
    march = reports[date(2026, 3, 15)]
    assert sum(t["accounts_placed"] for t in march["totals"]) == DEMO_ACCOUNTS
    assert {t["currency"] for t in march["totals"]} == {"USD", "GBP", "CNY"}
    assert all(int(t["collected"].replace(".", "")) > 0 for t in march["totals"])
    assert len(march["by_creditor"]) == 5
    assert march["agents"] and all(a["contacts"] > 0 for a in march["agents"])
    assert reports[date(2026, 1, 12)] != march


def test_rebuild_from_zero_equals_incremental_row_for_row(demo_copy: str) -> None:
    """Small incremental batches interleaved with new events, then a rebuild from zero:
    every table holds exactly the same rows."""
    app = open_ledger(demo_copy)
    try:
        models = ReadModels(app, [PortfolioProjection()], batch_size=251)
        models.engine.catch_up(max_batches=25)
        clock = MovableClock(datetime(2027, 2, 1, 9, 0, tzinfo=UTC), tick=timedelta(seconds=1))
        service = LedgerService(app, clock)
        account = service.place_account(placement("LATE-1"), debtor=JANE).id
        service.place_with_agency(account, agency="Apex Recovery", commission_basis_points=2000)
        service.record_contact(
            account,
            channel="phone",
            direction="outbound",
            outcome="right_party_contact",
            agent="agent-99",
        )
        paid = service.post_payment(account, usd("300.00"), method="check").payment_id
        models.engine.catch_up()
        service.reverse_payment(account, paid, kind="nsf", reason="returned")
        service.recall_from_agency(account, "placement period ended")
        models.engine.catch_up()
        incremental = table_rows(models)
        (before,) = [s for s in models.engine.status() if s.name == "portfolio"]
        models.engine.rebuild("portfolio")
        rebuilt = table_rows(models)
        (after,) = [s for s in models.engine.status() if s.name == "portfolio"]
        assert after.generation == before.generation + 1
        assert after.position == before.position == models.engine.head()
        models.close()
    finally:
        app.close()
    assert rebuilt.keys() == incremental.keys()
    for logical in incremental:
        assert rebuilt[logical] == incremental[logical], logical
    assert len(incremental["accounts"]) == DEMO_ACCOUNTS + 1
    assert len(incremental["money"]) > DEMO_ACCOUNTS
    assert incremental["placements"] and incremental["cases"] and incremental["plans"]


# -------------------------------------------------------------- scenario


def build_scenario(service: LedgerService, clock: MovableClock) -> dict[str, Any]:
    """Four accounts of two creditors, a recall and a re-placement, worked through March.

    Returns the report as of 2026-03-07 computed on the evening of that day."""

    def at(day: int, hour: int = 9) -> None:
        clock.set(datetime(2026, 3, 2, hour, tzinfo=UTC) + timedelta(days=day))

    at(0)
    a1 = service.place_account(placement("ACC-0001"), debtor=JANE).id  # 1200.00, c/o 2025-11-30
    debtor = service.get_account(a1).debtor_id
    assert debtor is not None
    a2 = service.place_account(
        placement(
            "ACC-0002",
            principal=usd("500.00"),
            interest=usd("0"),
            fees=usd("0"),
            charge_off_date=date(2026, 2, 20),
        ),
        debtor_id=debtor,
    ).id
    a3 = service.place_account(
        placement(
            "TW-1",
            creditor="thames-water",
            currency="GBP",
            principal=gbp("300.00"),
            interest=gbp("0"),
            fees=gbp("0"),
            charge_off_date=None,
        ),
        debtor_id=debtor,
    ).id
    a4 = service.place_account(
        placement(
            "ACC-0004",
            principal=usd("100.00"),
            interest=usd("0"),
            fees=usd("0"),
            charge_off_date=date(2025, 3, 1),
        ),
        debtor_id=debtor,
    ).id

    def contact(account: UUID, outcome: str, agent: str) -> None:
        service.record_contact(
            account, channel="phone", direction="outbound", outcome=outcome, agent=agent
        )

    at(1)
    service.place_with_agency(a1, agency="Apex Recovery", commission_basis_points=2500)
    at(2)
    contact(a1, "no_answer", "agent-01")
    contact(a1, "right_party_contact", "agent-01")
    service.make_promise(a1, usd("200.00"), date(2026, 3, 11), agent="agent-01")
    at(3)
    contact(a2, "right_party_contact", "agent-02")
    service.make_promise(a2, usd("100.00"), date(2026, 3, 10), agent="agent-02")
    contact(a3, "no_answer", "agent-02")
    contact(a4, "no_answer", "agent-03")
    at(5)
    service.post_payment(a1, usd("200.00"), method="card")  # Apex; agent-01 by the promise
    service.keep_promise(a1)
    at(5, 20)
    printed = service.portfolio_report(end_of_day(date(2026, 3, 7))).as_dict()

    at(8)
    service.break_promise(a2)
    at(9)
    service.recall_from_agency(a1, "placement period ended")
    service.post_payment(a1, usd("100.00"), method="ach")  # no agency; agent-01 by the RPC
    at(10)
    service.place_with_agency(a1, agency="Blue Ridge Collections", commission_basis_points=3000)
    service.post_payment(a1, usd("50.00"), method="ach")  # Blue Ridge; agent-01 by the RPC
    nsf = service.post_payment(a2, usd("80.00"), method="check").payment_id  # agent-02
    service.post_payment(a4, usd("100.00"), method="card")  # nobody to credit
    service.close(a4, "paid")
    at(11)
    service.reverse_payment(a2, nsf, kind="nsf", reason="returned by bank")
    service.agree_plan(
        a2,
        kind="installment",
        total=usd("500.00"),
        installments=[
            Installment(date(2026, 3, 20), usd("250.00")),
            Installment(date(2026, 4, 19), usd("250.00")),
        ],
    )
    at(19)
    service.miss_installment(a2, date(2026, 3, 20))
    at(20)
    service.default_plan(a2)
    service.raise_dispute(a2, "not my debt", within_validation_period=True)
    _, complaint = service.receive_complaint(a2, channel="email", category="too many calls")
    at(21)
    service.resolve_complaint(a2, complaint, "apology")
    return printed


def bucket(row: dict[str, Any], label: str) -> tuple[int, str]:
    cell = row["aging"][label]
    return cell["accounts"], cell["balance"]


def only(rows: list[dict[str, Any]], **match: str) -> dict[str, Any]:
    found = [r for r in rows if all(r[k] == v for k, v in match.items())]
    assert len(found) == 1, (match, rows)
    return found[0]


def test_scenario_exact_figures(service: LedgerService, clock: MovableClock) -> None:
    """Placed, collected, aging, rates, agent figures and by-agency attribution after a
    recall are exactly as worked out by hand; the report printed on 7 March is
    reproduced unchanged at the end of the month."""
    printed = build_scenario(service, clock)
    clock.set(datetime(2026, 4, 2, 12, tzinfo=UTC))
    report = service.portfolio_report(end_of_day(date(2026, 3, 31))).as_dict()

    acme = only(report["by_creditor"], creditor="acme-bank")
    assert acme["currency"] == "USD"
    assert (acme["accounts_placed"], acme["placed"]) == (3, "1800.00")
    assert acme["collected"] == "450.00"  # 200 + 100 + 50 + 100 (+80 -80 reversed)
    assert acme["accounts_collected"] == 2  # ACC-0002's only payment was reversed
    assert acme["liquidation_rate"] == "0.2500"
    assert (acme["accounts_outstanding"], acme["outstanding"]) == (2, "1350.00")
    assert bucket(acme, "91-180") == (1, "850.00")  # ACC-0001, 121 days
    assert bucket(acme, "31-60") == (1, "500.00")  # ACC-0002, 39 days
    assert bucket(acme, "over 365") == (0, "0.00")  # ACC-0004 was paid and closed
    assert (acme["accounts_contacted"], acme["accounts_right_party_contact"]) == (3, 2)
    assert acme["right_party_contact_rate"] == "0.6667"
    assert (acme["promises_made"], acme["promises_kept"], acme["promises_broken"]) == (2, 1, 1)
    assert acme["promise_kept_rate"] == "0.5000"
    assert (acme["plans_agreed"], acme["plans_defaulted"], acme["plan_default_rate"]) == (
        1,
        1,
        "1.0000",
    )
    assert (acme["open_disputes"], acme["open_complaints"]) == (1, 0)

    thames = only(report["by_creditor"], creditor="thames-water")
    assert (thames["currency"], thames["placed"], thames["collected"]) == ("GBP", "300.00", "0.00")
    assert bucket(thames, "unknown") == (1, "300.00")
    assert thames["right_party_contact_rate"] == "0.0000"
    assert thames["promise_kept_rate"] is None and thames["plan_default_rate"] is None
    assert [t["currency"] for t in report["totals"]] == ["GBP", "USD"]  # never added up

    apex = only(report["by_agency"], agency="Apex Recovery")
    assert (apex["accounts_placed"], apex["placed"], apex["collected"]) == (1, "1200.00", "200.00")
    assert apex["liquidation_rate"] == "0.1667"
    assert apex["accounts_collected"] == 1
    assert apex["accounts_outstanding"] == 0  # recalled: Blue Ridge holds it now
    assert (apex["accounts_contacted"], apex["right_party_contact_rate"]) == (1, "1.0000")
    assert (apex["promises_made"], apex["promise_kept_rate"]) == (1, "1.0000")
    blue = only(report["by_agency"], agency="Blue Ridge Collections")
    assert (blue["accounts_placed"], blue["placed"], blue["collected"]) == (1, "900.00", "50.00")
    assert blue["liquidation_rate"] == "0.0556"
    assert bucket(blue, "91-180") == (1, "850.00")
    assert blue["accounts_contacted"] == 0 and blue["right_party_contact_rate"] is None
    assert len(report["by_agency"]) == 2

    agents = {a["agent"]: a for a in report["agents"]}
    assert agents["agent-01"] == {
        "agent": "agent-01",
        "contacts": 2,
        "right_party_contacts": 1,
        "promises": 1,
        "collected": {"USD": "350.00"},
    }
    assert agents["agent-02"] == {
        "agent": "agent-02",
        "contacts": 2,
        "right_party_contacts": 1,
        "promises": 1,
        "collected": {"USD": "0.00"},
    }
    assert agents["agent-03"] == {
        "agent": "agent-03",
        "contacts": 1,
        "right_party_contacts": 0,
        "promises": 0,
        "collected": {},
    }

    # As of 7 March: three acme accounts outstanding in three buckets, Apex holds one.
    early = only(printed["by_creditor"], creditor="acme-bank")
    assert (early["collected"], early["liquidation_rate"]) == ("200.00", "0.1111")
    assert bucket(early, "91-180") == (1, "1000.00")  # 97 days
    assert bucket(early, "0-30") == (1, "500.00")  # 15 days
    assert bucket(early, "over 365") == (1, "100.00")  # 371 days
    assert bucket(only(printed["by_agency"], agency="Apex Recovery"), "91-180") == (1, "1000.00")
    # The auditor's view: the same report for that date today, and from the events alone.
    assert service.portfolio_report(end_of_day(date(2026, 3, 7))).as_dict() == printed
    for day in (date(2026, 3, 7), date(2026, 3, 31)):
        assert (
            reference_portfolio_report(service.ledger, as_of=end_of_day(day)).as_dict()
            == service.portfolio_report(end_of_day(day)).as_dict()
        )

    # Only Apex's book: its collections before the recall, its agent, nothing else.
    apex_only = service.portfolio_report(
        end_of_day(date(2026, 3, 31)), agency="Apex Recovery"
    ).as_dict()
    book = only(apex_only["by_creditor"], creditor="acme-bank")
    assert (book["accounts_placed"], book["placed"], book["collected"]) == (1, "1200.00", "200.00")
    assert [a["agent"] for a in apex_only["agents"]] == ["agent-01"]
    assert apex_only["agents"][0]["collected"] == {"USD": "200.00"}
    assert [r["agency"] for r in apex_only["by_agency"]] == ["Apex Recovery"]


def test_as_of_is_recorded_time_up_to_the_end_of_the_day(
    service: LedgerService, clock: MovableClock
) -> None:
    """An event recorded in the last microsecond of a day counts for that day, one a
    microsecond later only for the next; a timestamp as_of cuts inside the day."""
    clock.set(datetime(2026, 3, 2, 23, 59, 59, 999999, tzinfo=UTC))
    clock.tick = timedelta(0)
    account = service.place_account(placement(), debtor=JANE).id
    clock.set(datetime(2026, 3, 3, 0, 0, tzinfo=UTC))
    service.post_payment(account, usd("10.00"), method="card")
    day1 = service.portfolio_report(end_of_day(date(2026, 3, 2))).as_dict()
    assert only(day1["by_creditor"], creditor="acme-bank")["collected"] == "0.00"
    day2 = service.portfolio_report(end_of_day(date(2026, 3, 3))).as_dict()
    assert only(day2["by_creditor"], creditor="acme-bank")["collected"] == "10.00"
    before = service.portfolio_report(datetime(2026, 3, 2, 12, tzinfo=UTC)).as_dict()
    assert before["by_creditor"] == [] and before["totals"] == []


def test_buckets_and_rate_rendering() -> None:
    """Bucket edges fall where the labels say; rates round half up to 4 decimals."""
    assert [bucket_of(d) for d in (0, 30, 31, 60, 61, 90, 91, 180, 181, 365, 366)] == [
        "0-30",
        "0-30",
        "31-60",
        "31-60",
        "61-90",
        "61-90",
        "91-180",
        "91-180",
        "181-365",
        "181-365",
        "over 365",
    ]
    from fractions import Fraction

    assert rate_text(Fraction(1, 18)) == "0.0556"
    assert rate_text(Fraction(2, 3)) == "0.6667"
    assert rate_text(Fraction(1, 20000)) == "0.0001"  # exactly half: up
    assert rate_text(Fraction(1, 1)) == "1.0000"
    assert rate_text(None) is None
    assert ALL_BUCKETS[-1] == "unknown"


# ------------------------------------------------------------------- CLI


@pytest.fixture
def scenario_store(service: LedgerService, clock: MovableClock, store_url: str) -> str:
    build_scenario(service, clock)
    return store_url


def run_cli(*args: str) -> Any:
    result = CliRunner().invoke(cli.main, list(args), catch_exceptions=False)
    return result


def test_cli_json_csv_and_table(scenario_store: str, service: LedgerService) -> None:
    """json is the report's as_dict; csv has one figure per line; the table names every
    section, creditor, agency and agent."""
    base = ["report", "portfolio", "--as-of", "2026-03-31", "--store", scenario_store]
    expected = service.portfolio_report(end_of_day(date(2026, 3, 31))).as_dict()

    result = run_cli(*base, "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == expected
    assert expected["as_of"] == "2026-03-31T23:59:59.999999Z"

    result = run_cli(*base, "--format", "csv", "--creditor", "acme-bank")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    figures = {(r["section"], r["name"], r["currency"], r["metric"]): r["value"] for r in rows}
    assert figures[("creditor", "acme-bank", "USD", "collected")] == "450.00"
    assert figures[("creditor", "acme-bank", "USD", "liquidation_rate")] == "0.2500"
    assert figures[("creditor", "acme-bank", "USD", "aging 91-180 balance")] == "850.00"
    assert figures[("total", "", "USD", "accounts_outstanding")] == "2"
    assert figures[("agency", "Blue Ridge Collections", "USD", "collected")] == "50.00"
    assert figures[("agent", "agent-01", "USD", "collected")] == "350.00"
    assert figures[("creditor", "acme-bank", "USD", "promise_kept_rate")] == "0.5000"
    assert not any(r["name"] == "thames-water" for r in rows)
    assert {r["as_of"] for r in rows} == {"2026-03-31T23:59:59.999999Z"}

    result = run_cli(*base)
    assert result.exit_code == 0, result.output
    text = result.stdout
    for needle in (
        "Portfolio as of 2026-03-31T23:59:59.999999Z",
        "By creditor",
        "By agency",
        "Aging",
        "acme-bank",
        "thames-water",
        "Apex Recovery",
        "Blue Ridge Collections",
        "agent-01",
        "25.00%",
        "1 / 850.00",
        "unknown",
    ):
        assert needle in text, needle


def test_cli_chart_svg_and_png(scenario_store: str, tmp_path: Path) -> None:
    """--chart writes an SVG holding the bucket labels as text, or a real PNG; any other
    extension is refused before anything is computed."""
    base = ["report", "portfolio", "--as-of", "2026-03-31", "--store", scenario_store]
    svg = tmp_path / "aging.svg"
    result = run_cli(*base, "--chart", str(svg))
    assert result.exit_code == 0, result.output
    assert f"aging chart written to {svg}" in result.stdout
    content = svg.read_text()
    assert content.lstrip().startswith("<?xml") and "<svg" in content
    for label in ("0-30", "31-60", "61-90", "91-180", "181-365", "over 365", "unknown"):
        assert label in content, label

    png = tmp_path / "aging.png"
    result = run_cli(*base, "--format", "json", "--chart", str(png))
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)  # the note about the chart went to stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    result = run_cli(*base, "--chart", str(tmp_path / "aging.pdf"))
    assert result.exit_code == 2
    assert not (tmp_path / "aging.pdf").exists()
