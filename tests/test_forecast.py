"""Cash forecast: installments and promises falling due, by ISO week, exact per currency.

The scenario is written out by hand (see ``EXPECTED``) and recorded through the
service with a movable clock; the forecast is read on Wednesday 2026-03-04, so
its first week is W10 (Monday 2 March to Sunday 8 March).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from uuid import UUID

import click
import pytest
from click.testing import CliRunner

import cli
import cli.worklist
from bootstrap import build_service
from ledger.application import open_ledger
from ledger.clock import MovableClock
from ledger.money import Money
from ledger.readmodels.forecast import CashForecast, expected_cash, unpaid_installments
from ledger.services import Installment, LedgerService
from tests.conftest import JANE, placement, usd

TODAY = datetime(2026, 3, 4, 10, tzinfo=UTC)


def gbp(text: str) -> Money:
    return Money.parse(text, "GBP")


def place(service: LedgerService, reference: str, amount: Money) -> UUID:
    zero = Money(0, amount.currency)
    fields = {"principal": amount, "interest": zero, "fees": zero, "currency": amount.currency}
    return service.place_account(placement(reference, **fields), debtor=JANE).id


def plan(service: LedgerService, aid: UUID, kind: str, *items: tuple[date, str]) -> None:
    installments = [Installment(due, usd(amount)) for due, amount in items]
    total = Money(sum(i.amount.minor for i in installments), "USD")
    service.agree_plan(aid, kind=kind, total=total, installments=installments)


def build_scenario(service: LedgerService, clock: MovableClock) -> None:
    """Accounts P (partly paid plan), Q (overdue plan, ceased), R (partly paid promise),
    S (GBP promise), T (plan and promise on one account), placed on Monday 2 March."""
    p = place(service, "P", usd("1000.00"))
    plan(
        service,
        p,
        "installment",
        (date(2026, 3, 3), "200.00"),
        (date(2026, 3, 8), "300.00"),  # Sunday: still week 10
        (date(2026, 3, 13), "300.00"),
        (date(2026, 4, 10), "200.00"),  # week 15: after the 4 weeks asked for
    )
    service.post_payment(p, usd("350.00"), method="card")  # 200 + 150 of the 8 March one
    q = place(service, "Q", usd("1000.00"))
    plan(service, q, "installment", (date(2026, 3, 3), "400.00"), (date(2026, 3, 20), "600.00"))
    service.receive_cease(q, "letter")  # must not be called, but may still pay
    r = place(service, "R", usd("1000.00"))
    service.make_promise(r, usd("250.00"), date(2026, 3, 9))  # Monday: week 11
    service.post_payment(r, usd("100.00"), method="ach")
    s = place(service, "S", gbp("500.00"))
    service.make_promise(s, gbp("80.00"), date(2026, 3, 25))
    t = place(service, "T", usd("1000.00"))
    plan(service, t, "settlement", (date(2026, 3, 16), "100.00"), (date(2026, 3, 23), "100.00"))
    service.make_promise(t, usd("150.00"), date(2026, 3, 12))  # pays ahead of the plan
    closed = place(service, "CLOSED", usd("1000.00"))
    service.make_promise(closed, usd("500.00"), date(2026, 3, 10))
    service.close(closed, "recalled")  # closing cancels the promise: nothing expected
    clock.set(TODAY)


#: (installments, promises, total) per bucket and currency, as decimal strings.
EXPECTED = {
    "overdue": {"USD": ("400.00", "0.00", "400.00")},  # Q, 3 March
    "2026-W10": {"USD": ("150.00", "0.00", "150.00")},  # P, 8 March, 150 of 300 unpaid
    "2026-W11": {"USD": ("300.00", "300.00", "600.00")},  # P 13 March; R 150 left; T 150
    "2026-W12": {"USD": ("600.00", "0.00", "600.00")},  # Q 20 March (T's 16 March: promised)
    "2026-W13": {
        "GBP": ("0.00", "80.00", "80.00"),  # S
        "USD": ("50.00", "0.00", "50.00"),  # T 23 March: 200 in all, 150 promised
    },
    "later": {"USD": ("200.00", "0.00", "200.00")},  # P, 10 April
}


def buckets(result: CashForecast) -> dict[str, dict[str, tuple[str, str, str]]]:
    data = result.as_dict()
    out = {"overdue": data["overdue"], "later": data["later"]}
    out.update({w["week"]: w["currencies"] for w in data["weeks"]})
    return {
        name: {c: (a["installments"], a["promises"], a["total"]) for c, a in cells.items()}
        for name, cells in out.items()
        if cells
    }


def test_forecast_matches_the_hand_computed_schedule(
    service: LedgerService, clock: MovableClock
) -> None:
    """Partly paid installment, partly paid promise, plan+promise overlap, GBP: exact per week."""
    build_scenario(service, clock)
    result = service.cash_forecast(weeks=4)
    assert result.today == date(2026, 3, 4)
    assert [(w.iso_week, w.start, w.end) for w in result.weeks] == [
        ("2026-W10", date(2026, 3, 2), date(2026, 3, 8)),
        ("2026-W11", date(2026, 3, 9), date(2026, 3, 15)),
        ("2026-W12", date(2026, 3, 16), date(2026, 3, 22)),
        ("2026-W13", date(2026, 3, 23), date(2026, 3, 29)),
    ]
    assert buckets(result) == EXPECTED
    assert result.currencies == ["GBP", "USD"]


def test_a_payment_moves_cash_out_of_the_forecast(
    service: LedgerService, clock: MovableClock
) -> None:
    """Paying 150.00 on P completes the 8 March installment: week 10 empties, nothing else moves."""
    build_scenario(service, clock)
    service.post_payment(service.resolve_account("P"), usd("150.00"), method="card")
    expected = {k: v for k, v in EXPECTED.items() if k != "2026-W10"}
    assert buckets(service.cash_forecast(weeks=4)) == expected


def test_unpaid_parts_follow_the_plan_waterfall() -> None:
    """Payments fill installments in due-date order; each keeps only its unpaid part."""
    schedule = [(date(2026, 3, 3), 20000), (date(2026, 3, 8), 30000), (date(2026, 3, 13), 30000)]
    assert unpaid_installments(schedule, 35000, date(2026, 3, 4)) == [
        (date(2026, 3, 3), 0),
        (date(2026, 3, 8), 15000),
        (date(2026, 3, 13), 30000),
    ]
    assert unpaid_installments(schedule, 99999, date(2026, 3, 4)) == [
        (date(2026, 3, 3), 0),
        (date(2026, 3, 8), 0),
        (date(2026, 3, 13), 0),
    ]


def test_a_promise_and_a_plan_are_not_counted_twice() -> None:
    """Cash expected by a day is the larger of promise and plan by then, installments first."""
    days = expected_cash(
        [(date(2026, 3, 16), 10000), (date(2026, 3, 23), 10000)], (date(2026, 3, 12), 15000)
    )
    assert [(d, a.installments, a.promises) for d, a in days] == [
        (date(2026, 3, 12), 0, 15000),
        (date(2026, 3, 23), 5000, 0),
    ]
    late_promise = expected_cash([(date(2026, 3, 10), 10000)], (date(2026, 3, 20), 25000))
    assert [(d, a.installments, a.promises) for d, a in late_promise] == [
        (date(2026, 3, 10), 10000, 0),
        (date(2026, 3, 20), 0, 15000),
    ]


def test_no_more_is_expected_than_is_owed() -> None:
    """After a waiver the schedule may ask for more than the balance: cash stops at it."""
    days = expected_cash([(date(2026, 3, 16), 10000), (date(2026, 3, 23), 10000)], None, owed=12000)
    assert [(d, a.installments, a.promises) for d, a in days] == [
        (date(2026, 3, 16), 10000, 0),
        (date(2026, 3, 23), 2000, 0),
    ]
    assert expected_cash([(date(2026, 3, 16), 10000)], (date(2026, 3, 12), 5000), owed=0) == []


# ---------------------------------------------------------------------- CLI


@pytest.fixture
def cli_store(
    sqlite_url: str, clock: MovableClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    app = open_ledger(sqlite_url)
    build_scenario(LedgerService(app, clock), clock)
    app.close()

    def open_at_clock(store: str | None) -> LedgerService:
        opened = build_service(store, clock=MovableClock(TODAY))
        click.get_current_context().call_on_close(opened.ledger.close)
        return opened

    monkeypatch.setattr(cli.worklist, "open_service", open_at_clock)
    yield sqlite_url


def run(*args: str) -> str:
    result = CliRunner().invoke(cli.main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_cli_forecast_json(cli_store: str) -> None:
    """--format json: decimal strings per currency, per ISO week, with overdue and later."""
    data = json.loads(run("forecast", "--weeks", "4", "--format", "json", "--store", cli_store))
    assert data["today"] == "2026-03-04"
    assert data["weeks"][1] == {
        "week": "2026-W11",
        "from": "2026-03-09",
        "to": "2026-03-15",
        "currencies": {"USD": {"installments": "300.00", "promises": "300.00", "total": "600.00"}},
    }
    assert data["overdue"] == {
        "USD": {"installments": "400.00", "promises": "0.00", "total": "400.00"}
    }


def test_cli_forecast_table(cli_store: str) -> None:
    """The table has one line per week and currency, an empty week shown as '-'."""
    lines = run("forecast", "--weeks", "5", "--store", cli_store).splitlines()
    assert lines[0] == "cash forecast from 2026-03-04 (amounts per currency)"
    rows = [line.split() for line in lines[2:]]
    assert rows == [
        ["overdue", "-", "2026-03-03", "USD", "400.00", "0.00", "400.00"],
        ["2026-W10", "2026-03-02", "2026-03-08", "USD", "150.00", "0.00", "150.00"],
        ["2026-W11", "2026-03-09", "2026-03-15", "USD", "300.00", "300.00", "600.00"],
        ["2026-W12", "2026-03-16", "2026-03-22", "USD", "600.00", "0.00", "600.00"],
        ["2026-W13", "2026-03-23", "2026-03-29", "GBP", "0.00", "80.00", "80.00"],
        ["2026-W13", "2026-03-23", "2026-03-29", "USD", "50.00", "0.00", "50.00"],
        ["2026-W14", "2026-03-30", "2026-04-05", "-"],
        ["later", "2026-04-06", "-", "USD", "200.00", "0.00", "200.00"],
    ]


def test_cli_forecast_refuses_zero_weeks(cli_store: str) -> None:
    """--weeks must be at least 1: a usage error, not a traceback."""
    result = CliRunner().invoke(cli.main, ["forecast", "--weeks", "0", "--store", cli_store])
    assert result.exit_code == 2 and "--weeks" in result.output
