"""Auditor replay: ``service.history(account_id, as_of)`` and ``arrears history``.

One account's story is played with the movable clock -- placement, a kept
promise, an interest accrual, an installment plan, a payment that bounces, a
fee, a missed installment and a defaulted plan, payment in full with an
overpayment, closure, and a payment that arrives after closure -- and the
replay is checked at several moments, to the cent, on both backends.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from click.testing import CliRunner
from conftest import JANE, placement, usd

import cli
import cli.core
from ledger import errors
from ledger.application import open_ledger
from ledger.clock import MovableClock
from ledger.services import Installment, LedgerService

ARREARS = str(Path(sys.executable).with_name("arrears"))


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@dataclass(frozen=True)
class Story:
    account_id: UUID
    promise_id: str
    plan_id: str
    bounced_payment_id: str


def play_story(service: LedgerService, clock: MovableClock) -> Story:
    def at(*parts: int) -> None:
        clock.set(utc(*parts))

    at(2026, 3, 2, 14, 0)
    aid = service.place_account(placement("ACC-0001"), debtor=JANE).id  # v1 (1200.00)
    at(2026, 3, 3, 10, 0)
    service.record_contact(
        aid, channel="phone", direction="outbound", outcome="right_party_contact", agent="agent-07"
    )  # v2
    at(2026, 3, 3, 10, 5)
    promised = service.make_promise(aid, usd("200.00"), date(2026, 3, 10), agent="agent-07")  # v3
    assert promised.open_promise is not None
    promise_id = promised.open_promise["id"]  # the returned account is live: read it now
    at(2026, 3, 9, 9, 0)
    service.post_payment(aid, usd("200.00"), method="card", external_reference="pay-1")  # v4
    at(2026, 3, 10, 9, 0)
    service.keep_promise(aid)  # v5
    at(2026, 3, 12, 0, 0)
    service.accrue_interest(aid, usd("12.50"), rate_basis_points=1200)  # v6
    at(2026, 3, 13, 11, 0)
    planned = service.agree_plan(
        aid,
        kind="installment",
        total=usd("1012.50"),
        installments=[
            Installment(date(2026, 4, 1), usd("500.00")),
            Installment(date(2026, 5, 1), usd("512.50")),
        ],
    )  # v7
    assert planned.plan is not None
    plan_id = planned.plan["id"]
    at(2026, 4, 1, 9, 30)
    bounced = service.post_payment(
        aid, usd("500.00"), method="ach", external_reference="pay-2"
    )  # v8
    at(2026, 4, 6, 8, 0)
    service.reverse_payment(aid, bounced.payment_id, kind="nsf", reason="returned by bank")  # v9
    at(2026, 4, 7, 8, 0)
    service.assess_fee(aid, usd("35.00"), "returned_payment")  # v10
    at(2026, 4, 8, 8, 0)
    service.miss_installment(aid, date(2026, 4, 1))  # v11
    at(2026, 4, 9, 8, 0)
    service.default_plan(aid)  # v12
    at(2026, 5, 1, 16, 0)
    service.post_payment(aid, usd("1050.00"), method="card", external_reference="pay-3")  # v13
    at(2026, 5, 2, 9, 0)
    service.close(aid, "paid")  # v14
    at(2026, 5, 5, 12, 0)
    service.post_payment(aid, usd("20.00"), method="check", external_reference="pay-4")  # v15
    return Story(aid, promise_id, plan_id, bounced.payment_id)


@pytest.fixture
def story(service: LedgerService, clock: MovableClock) -> Story:
    return play_story(service, clock)


def balance(
    principal: str, interest: str, fees: str, total: str, credit: str = "0.00"
) -> dict[str, str]:
    return {
        "principal": principal,
        "interest": interest,
        "fees": fees,
        "total": total,
        "credit": credit,
    }


EXPECTED_EVENTS = [
    (1, "Placed", utc(2026, 3, 2, 14, 0, 1), balance("1000.00", "150.00", "50.00", "1200.00")),
    (
        2,
        "ContactRecorded",
        utc(2026, 3, 3, 10, 0),
        balance("1000.00", "150.00", "50.00", "1200.00"),
    ),
    (3, "PromiseMade", utc(2026, 3, 3, 10, 5), balance("1000.00", "150.00", "50.00", "1200.00")),
    (4, "PaymentReceived", utc(2026, 3, 9, 9, 0), balance("1000.00", "0.00", "0.00", "1000.00")),
    (5, "PromiseKept", utc(2026, 3, 10, 9, 0), balance("1000.00", "0.00", "0.00", "1000.00")),
    (6, "InterestAccrued", utc(2026, 3, 12), balance("1000.00", "12.50", "0.00", "1012.50")),
    (7, "PlanAgreed", utc(2026, 3, 13, 11, 0), balance("1000.00", "12.50", "0.00", "1012.50")),
    (8, "PaymentReceived", utc(2026, 4, 1, 9, 30), balance("512.50", "0.00", "0.00", "512.50")),
    (9, "PaymentReversed", utc(2026, 4, 6, 8, 0), balance("1000.00", "12.50", "0.00", "1012.50")),
    (10, "FeeAssessed", utc(2026, 4, 7, 8, 0), balance("1000.00", "12.50", "35.00", "1047.50")),
    (
        11,
        "InstallmentMissed",
        utc(2026, 4, 8, 8, 0),
        balance("1000.00", "12.50", "35.00", "1047.50"),
    ),
    (12, "PlanDefaulted", utc(2026, 4, 9, 8, 0), balance("1000.00", "12.50", "35.00", "1047.50")),
    (
        13,
        "PaymentReceived",
        utc(2026, 5, 1, 16, 0),
        balance("0.00", "0.00", "0.00", "0.00", "2.50"),
    ),
    (14, "Closed", utc(2026, 5, 2, 9, 0), balance("0.00", "0.00", "0.00", "0.00", "2.50")),
    (
        15,
        "PaymentForwarded",
        utc(2026, 5, 5, 12, 0),
        balance("0.00", "0.00", "0.00", "0.00", "2.50"),
    ),
]


# ---------------------------------------------------------------- service


def test_full_history_lists_every_event_with_balance_after(
    service: LedgerService, story: Story
) -> None:
    """Without as_of, every event is listed in version order with its time, type and balance after it."""
    history = service.history(story.account_id)
    got = [(e.version, e.type, e.recorded_at, e.balance) for e in history.entries]
    assert got == EXPECTED_EVENTS
    assert history.as_of is None
    assert all(e.hash is not None and len(e.hash) == 64 for e in history.entries)


def test_history_key_fields_are_exact_decimal_strings(service: LedgerService, story: Story) -> None:
    """Money fields of events are decimal strings in the account's currency, never floats or cents."""
    entries = {e.version: e.fields for e in service.history(story.account_id).entries}
    placed = entries[1]
    assert (placed["creditor"], placed["reference"], placed["currency"]) == (
        "acme-bank",
        "ACC-0001",
        "USD",
    )
    assert (placed["principal"], placed["interest"], placed["fees"]) == (
        "1000.00",
        "150.00",
        "50.00",
    )
    assert placed["itemization_date"] == "2025-11-30"
    assert entries[3] == {
        "promise_id": story.promise_id,
        "amount": "200.00",
        "due_date": "2026-03-10",
        "agent": "agent-07",
    }
    assert entries[4]["allocation"] == {"fees": "50.00", "interest": "150.00"}
    assert entries[4]["amount"] == "200.00" and entries[4]["external_reference"] == "pay-1"
    assert entries[7]["installments"] == [
        {"due_date": "2026-04-01", "amount": "500.00"},
        {"due_date": "2026-05-01", "amount": "512.50"},
    ]
    assert entries[7]["total"] == "1012.50"
    assert entries[8]["allocation"] == {"interest": "12.50", "principal": "487.50"}
    assert entries[9] == {
        "payment_id": story.bounced_payment_id,
        "kind": "nsf",
        "reason": "returned by bank",
    }
    assert entries[11]["amount"] == "500.00" and entries[11]["due_date"] == "2026-04-01"
    assert entries[13]["allocation"] == {
        "fees": "35.00",
        "interest": "12.50",
        "principal": "1000.00",
        "credit": "2.50",
    }
    assert entries[15]["amount"] == "20.00" and entries[15]["forward_to"] == "acme-bank"


def test_as_of_with_promise_open_after_first_payment(service: LedgerService, story: Story) -> None:
    """At the end of 9 March the promise is still open, partly paid, and fees and interest are cleared."""
    history = service.history(story.account_id, utc(2026, 3, 9, 23, 59, 59))
    assert [e.version for e in history.entries] == [1, 2, 3, 4]
    state = history.state
    assert state is not None
    assert state["status"] == "active"
    assert state["balance"] == balance("1000.00", "0.00", "0.00", "1000.00")
    assert state["paid_total"] == "200.00"
    assert state["open_promise"] == {
        "id": story.promise_id,
        "amount": "200.00",
        "due_date": "2026-03-10",
    }
    assert state["plan"] is None
    assert state["version"] == 4


def test_as_of_includes_an_event_at_exactly_that_moment(
    service: LedgerService, story: Story
) -> None:
    """An event recorded exactly at as_of is included; one microsecond earlier it is not."""
    agreed = utc(2026, 3, 13, 11, 0)
    at = service.history(story.account_id, agreed)
    assert at.entries[-1].type == "PlanAgreed"
    assert at.state is not None and at.state["plan"] is not None
    before = service.history(story.account_id, agreed - timedelta(microseconds=1))
    assert before.entries[-1].type == "InterestAccrued"
    assert before.state is not None and before.state["plan"] is None
    assert before.state["open_promise"] is None  # kept on 10 March


def test_as_of_with_active_plan_partly_paid(service: LedgerService, story: Story) -> None:
    """At noon on 1 April the plan is active with 500.00 paid and principal down to 512.50."""
    history = service.history(story.account_id, utc(2026, 4, 1, 12, 0))
    state = history.state
    assert state is not None
    assert state["balance"] == balance("512.50", "0.00", "0.00", "512.50")
    assert state["paid_total"] == "700.00"
    assert state["open_promise"] is None
    assert state["plan"] == {
        "id": story.plan_id,
        "kind": "installment",
        "total": "1012.50",
        "paid": "500.00",
        "installments": [
            {"due_date": "2026-04-01", "amount": "500.00"},
            {"due_date": "2026-05-01", "amount": "512.50"},
        ],
    }


def test_as_of_after_reversal_restores_the_balance(service: LedgerService, story: Story) -> None:
    """After the bounced payment is reversed the balance and the plan's paid amount go back."""
    state = service.history(story.account_id, utc(2026, 4, 6, 8, 0)).state
    assert state is not None
    assert state["balance"] == balance("1000.00", "12.50", "0.00", "1012.50")
    assert state["paid_total"] == "200.00"
    assert state["plan"] is not None and state["plan"]["paid"] == "0.00"


def test_as_of_after_default_has_no_plan(service: LedgerService, story: Story) -> None:
    """Once the plan defaulted the account has no active plan, and the fee is on the balance."""
    state = service.history(story.account_id, utc(2026, 4, 30)).state
    assert state is not None
    assert state["status"] == "active"
    assert state["plan"] is None
    assert state["balance"] == balance("1000.00", "12.50", "35.00", "1047.50")


def test_now_the_account_is_closed_with_a_credit(service: LedgerService, story: Story) -> None:
    """Today the account is closed as paid, owes nothing and holds a 2.50 credit for the debtor."""
    history = service.history(story.account_id)
    state = history.state
    assert state is not None
    assert state["status"] == "closed"
    assert state["balance"] == balance("0.00", "0.00", "0.00", "0.00", "2.50")
    assert state["paid_total"] == "1250.00"  # 200 + 1050; the bounced 500 was reversed
    assert state["version"] == 15
    assert state == service.history(story.account_id, utc(2027, 1, 1)).state


def test_as_of_before_placement_has_no_account(service: LedgerService, story: Story) -> None:
    """Before the account was placed its history is empty and there is no state."""
    history = service.history(story.account_id, utc(2026, 3, 2, 14, 0))  # placed at 14:00:01
    assert history.entries == [] and history.state is None


def test_as_of_must_carry_a_time_zone(service: LedgerService, story: Story) -> None:
    """A naive as_of moment is refused rather than guessed."""
    with pytest.raises(ValueError, match="no time zone"):
        service.history(story.account_id, datetime(2026, 4, 1, 12, 0))


def test_history_of_unknown_account(service: LedgerService) -> None:
    """The history of an account that was never placed is account_not_found."""
    with pytest.raises(errors.AccountNotFound):
        service.history(UUID("00000000-0000-4000-8000-000000000002"))


# ---------------------------------------------------------------- CLI


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch, store_url: str) -> Callable[..., Ran]:
    """``arrears ARGS --store URL`` in this process, without configuring this process's logging."""
    monkeypatch.setattr(
        cli.core, "build_service", lambda store=None, **_: LedgerService(open_ledger(store))
    )

    def run(*args: str) -> Ran:
        result = CliRunner().invoke(cli.main, [*args, "--store", store_url], catch_exceptions=False)
        return Ran(result.exit_code, result.stdout, result.stderr)

    return run


def history_json(run_cli: Callable[..., Ran], *args: str) -> dict[str, Any]:
    result = run_cli("history", *args, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


def test_cli_json_has_events_balance_after_and_state(
    story: Story, run_cli: Callable[..., Ran]
) -> None:
    """`history --json` parses, lists events[].balance_after and ends with the state."""
    data = history_json(run_cli, str(story.account_id))
    assert data["account_id"] == str(story.account_id) and data["as_of"] is None
    assert [(e["version"], e["type"], e["balance_after"]) for e in data["events"]] == [
        (v, t, b) for v, t, _, b in EXPECTED_EVENTS
    ]
    assert data["events"][0]["recorded_at"] == "2026-03-02T14:00:01Z"
    assert data["state"]["status"] == "closed"
    assert data["state"]["balance"]["credit"] == "2.50"


def test_cli_accepts_id_reference_and_creditor_reference(
    story: Story, run_cli: Callable[..., Ran]
) -> None:
    """ACCOUNT may be the account id, the creditor's reference, or CREDITOR/REFERENCE."""
    by_id = history_json(run_cli, str(story.account_id))
    assert history_json(run_cli, "ACC-0001") == by_id
    assert history_json(run_cli, "acme-bank/ACC-0001") == by_id


def test_cli_as_of_forms(story: Story, run_cli: Callable[..., Ran]) -> None:
    """--as-of takes Z, an offset, or a bare date meaning the end of that day (UTC)."""
    noon = history_json(run_cli, "ACC-0001", "--as-of", "2026-04-01T12:00:00Z")
    assert noon["as_of"] == "2026-04-01T12:00:00Z"
    assert noon["state"]["balance"] == balance("512.50", "0.00", "0.00", "512.50")
    assert noon["state"]["plan"]["paid"] == "500.00"
    assert [e["version"] for e in noon["events"]] == list(range(1, 9))
    offset = history_json(run_cli, "ACC-0001", "--as-of", "2026-04-01T14:00:00+02:00")
    assert offset["state"] == noon["state"] and offset["as_of"] == noon["as_of"]
    day = history_json(run_cli, "ACC-0001", "--as-of", "2026-03-09")
    assert day["as_of"] == "2026-03-09T23:59:59.999999Z"
    assert day["state"]["open_promise"]["amount"] == "200.00"
    assert day["events"][-1]["balance_after"]["total"] == "1000.00"


def test_cli_as_of_before_placement_says_so(story: Story, run_cli: Callable[..., Ran]) -> None:
    """An as-of before the placement prints that the account did not exist yet (JSON: no state)."""
    text = run_cli("history", "ACC-0001", "--as-of", "2026-03-01")
    assert text.returncode == 0
    assert "the account did not exist yet at that moment" in text.stdout
    data = history_json(run_cli, "ACC-0001", "--as-of", "2026-03-01")
    assert data["events"] == [] and data["state"] is None


def test_cli_text_shows_state_at_as_of(story: Story, run_cli: Callable[..., Ran]) -> None:
    """The text form prints one line per event and the status, balances, promise and plan as of then."""
    result = run_cli("history", "ACC-0001", "--as-of", "2026-04-01T12:00:00Z")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "ver",
        "recorded",
        "at",
        "(UTC)",
        "event",
        "principal",
        "interest",
        "fees",
        "total",
        "details",
    ]
    rows = [line.split() for line in lines[1:9]]
    assert [r[0] for r in rows] == [str(v) for v in range(1, 9)]
    assert rows[7][:8] == [
        "8",
        "2026-04-01",
        "09:30:00",
        "PaymentReceived",
        "512.50",
        "0.00",
        "0.00",
        "512.50",
    ]
    assert (
        "as of 2026-04-01T12:00:00+00:00: status active, balance 512.50 USD "
        "(principal 512.50, interest 0.00, fees 0.00), paid 700.00"
    ) in result.stdout
    assert "open promise: none" in lines
    assert "active plan: installment 1012.50, paid 500.00" in lines
    assert "flags: none; holder: creditor acme-bank" in lines


def test_cli_history_errors_are_one_line(story: Story, run_cli: Callable[..., Ran]) -> None:
    """Unknown accounts and unreadable moments are `error [code]: message` with exit code 2."""
    missing = run_cli("history", "NOPE-1")
    assert missing.returncode == 2
    assert missing.stderr == "error [account_not_found]: no account with id or reference 'NOPE-1'\n"
    bad = run_cli("history", "ACC-0001", "--as-of", "last tuesday")
    assert bad.returncode == 2
    assert bad.stderr.startswith("error [invalid_date]: 'last tuesday' is not a timestamp")


def test_cli_reference_shared_by_two_creditors_is_ambiguous(
    service: LedgerService, story: Story, run_cli: Callable[..., Ran]
) -> None:
    """A reference used by two creditors must be given as CREDITOR/REFERENCE or by id."""
    other = service.place_account(placement("ACC-0001", creditor="globex-retail"), debtor=JANE)
    result = run_cli("history", "ACC-0001")
    assert result.returncode == 2
    assert result.stderr.startswith(
        "error [invalid_input]: reference 'ACC-0001' is used by 2 creditors"
    )
    data = history_json(run_cli, "globex-retail/ACC-0001")
    assert data["account_id"] == str(other.id) and len(data["events"]) == 1


def test_installed_cli_prints_history(story: Story, store_url: str) -> None:
    """The installed `arrears history` entry point prints the same replay, exit 0."""
    env = {**os.environ, "ARREARS_LOG_LEVEL": "WARNING"}
    result = subprocess.run(
        [
            ARREARS,
            "history",
            "acme-bank/ACC-0001",
            "--as-of",
            "2026-04-06T08:00:00Z",
            "--json",
            "--store",
            store_url,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["events"][-1]["type"] == "PaymentReversed"
    assert data["state"]["balance"] == balance("1000.00", "12.50", "0.00", "1012.50")
