"""Contract v1 for auditors: history as of a moment, verification, the Reg F itemization."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from api_helpers import *  # noqa: F403  (the API fixtures)
from api_helpers import Api, token

from ledger.clock import MovableClock
from ledger.services import LedgerService


def path(account: dict[str, Any], tail: str) -> str:
    return f"/v1/accounts/{account['id']}/{tail}"


async def test_history_lists_events_with_positions_hashes_and_balances(
    admin: Api, account: dict[str, Any]
) -> None:
    """Every event with position, version, type, at, data, hash, prev_hash, balance_after."""
    await admin.post(path(account, "payments"), {"amount": "100.00", "method": "cash"})
    response = await admin.get(path(account, "history"))
    assert response.status == 200, response.text
    events = response.json["events"]
    assert [e["type"] for e in events] == ["Placed", "PaymentReceived"]
    for event in events:
        assert {
            "position",
            "version",
            "type",
            "at",
            "data",
            "hash",
            "prev_hash",
            "balance_after",
        } <= set(event)
    assert events[1]["prev_hash"] == events[0]["hash"]
    assert events[1]["balance_after"]["total"] == "1100.00"
    assert events[1]["data"]["amount"] == "100.00"
    assert response.json["account"]["balance"]["total"] == "1100.00"


async def test_history_as_of_a_moment_replays_the_account_then(
    admin: Api, account: dict[str, Any], clock: MovableClock
) -> None:
    """as_of shows the account exactly as it stood at that moment."""
    clock.advance(timedelta(days=2))
    await admin.post(path(account, "payments"), {"amount": "200.00", "method": "cash"})
    then = await admin.get(path(account, "history?as_of=2026-03-03"))
    assert [e["type"] for e in then.json["events"]] == ["Placed"]
    assert then.json["account"]["balance"]["total"] == "1200.00"
    assert then.json["as_of"].startswith("2026-03-03T23:59:59")


async def test_verification_reports_an_intact_chain(admin: Api, account: dict[str, Any]) -> None:
    """verification: ok, events checked, the chain's head hash, no problems."""
    response = await admin.get(path(account, "verification"))
    assert response.status == 200, response.text
    body = response.json
    assert body["ok"] is True and body["problems"] == [] and body["events"] == 1
    history = await admin.get(path(account, "history"))
    assert body["head"] == history.json["events"][-1]["hash"]


async def test_itemization_adds_up_to_the_current_amount(
    admin: Api, account: dict[str, Any], clock: MovableClock
) -> None:
    """Amount at itemization + interest + fees - payments and credits = current amount."""
    await admin.post(
        path(account, "charges"), {"component": "interest", "amount": "12.34", "reason": "March"}
    )
    await admin.post(
        path(account, "charges"), {"component": "fees", "amount": "20.00", "reason": "late"}
    )
    paid = await admin.post(path(account, "payments"), {"amount": "300.00", "method": "card"})
    await admin.post(
        path(account, "waivers"),
        {"component": "principal", "amount": "10.00", "reason": "goodwill"},
    )
    bounced = await admin.post(path(account, "payments"), {"amount": "50.00", "method": "check"})
    await admin.post(
        path(account, f"payments/{bounced.json['payment_id']}/reversal"), {"reason": "nsf"}
    )
    response = await admin.get(path(account, "itemization"))
    assert response.status == 200, response.text
    item = response.json
    assert item["itemization_date"] == "2025-11-30"
    assert item["amount_at_itemization"] == "1200.00"
    assert item["interest_since"] == "12.34"
    assert item["fees_since"] == "20.00"
    assert item["payments_credits_since"] == "310.00"
    assert item["current_amount"] == "922.34"
    summary = await admin.get(f"/v1/accounts/{account['id']}")
    assert summary.json["balance"]["total"] == item["current_amount"]
    assert paid.status == 201


async def test_history_is_for_auditors_and_collectors_not_agencies(
    admin: Api, account: dict[str, Any], api_service: LedgerService
) -> None:
    """An agency holding the account may read it but not its history (403)."""
    await admin.post(path(account, "placement"), {"agency": "north", "commission_rate": "0.2"})
    agency = admin.as_(token(api_service, "agency", agency="north"))
    assert (await agency.get(f"/v1/accounts/{account['id']}")).status == 200
    assert (await agency.get(path(account, "history"))).status == 403
    auditor = admin.as_(token(api_service, "auditor"))
    assert (await auditor.get(path(account, "history"))).status == 200
