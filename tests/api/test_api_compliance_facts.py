"""Recording what the rule packs decide on through the API, and the gate answering on it.

The clock (tests/conftest.py) is 2026-03-02 14:00 UTC: 14:00 in London, 08:00 in Chicago.
"""

from __future__ import annotations

from typing import Any

from api_helpers import *  # noqa: F403  (the fixtures)
from api_helpers import Api, error_code, placement_body


def uk_body() -> dict[str, Any]:
    body = placement_body(reference="UK-1", creditor="thames-energy", currency="GBP")
    body["debtor"] = {**body["debtor"], "time_zone": "Europe/London", "jurisdiction": "GB"}
    return body


async def blocking_rules(admin: Api, account_id: str, channel: str) -> list[str]:
    response = await admin.get(f"/v1/accounts/{account_id}/contact-check?channel={channel}")
    assert response.status == 200, response.text
    return [v["rule"] for v in response.json["verdicts"] if v["outcome"] == "block"]


async def test_breathing_space_stops_contact_and_fees_until_cancelled(admin: Api) -> None:
    placed = await admin.post("/v1/accounts", uk_body())
    assert placed.status == 201, placed.text
    account_id = placed.json["id"]
    assert await blocking_rules(admin, account_id, "phone") == []

    space = {"kind": "standard", "started_on": "2026-03-02", "reference": "BS-0001"}
    started = await admin.post(f"/v1/accounts/{account_id}/breathing-space", space)
    assert started.status == 201, started.text
    assert await blocking_rules(admin, account_id, "phone") == ["uk_conc.breathing_space"]
    fee = {"component": "fees", "amount": "10.00", "reason": "late fee"}
    refused = await admin.post(f"/v1/accounts/{account_id}/charges", fee)
    assert (refused.status, error_code(refused)) == (422, "breathing_space_active")
    again = await admin.post(f"/v1/accounts/{account_id}/breathing-space", space)
    assert (again.status, error_code(again)) == (422, "breathing_space_active")

    cancelled = await admin.post(
        f"/v1/accounts/{account_id}/breathing-space/cancellation",
        {"ended_on": "2026-03-01", "reason": "entered by mistake"},
    )
    assert cancelled.status == 201, cancelled.text
    assert await blocking_rules(admin, account_id, "phone") == []


async def test_contact_preferences_are_honoured_by_the_uk_pack(admin: Api) -> None:
    account_id = (await admin.post("/v1/accounts", uk_body())).json["id"]
    prefs = {"refused_channels": ["sms"], "window_start": "18:00", "window_end": "20:00"}
    recorded = await admin.post(f"/v1/accounts/{account_id}/contact-preferences", prefs)
    assert recorded.status == 201, recorded.text
    assert "uk_conc.contact_preferences" in await blocking_rules(admin, account_id, "sms")
    assert "uk_conc.contact_preferences" in await blocking_rules(admin, account_id, "phone")
    bad = await admin.post(
        f"/v1/accounts/{account_id}/contact-preferences", {"window_start": "25:00"}
    )
    assert bad.status == 400


async def test_a_time_barred_debt_cannot_be_referred(admin: Api, account: dict[str, Any]) -> None:
    account_id = account["id"]
    limitation = {"expires_on": "2026-03-01", "basis": "IL 5-year written contract"}
    assert (await admin.post(f"/v1/accounts/{account_id}/limitation", limitation)).status == 201
    referral = await admin.post(f"/v1/accounts/{account_id}/legal-referral", {"firm": "Dewey & Co"})
    assert (referral.status, error_code(referral)) == (422, "contact_blocked")
    blocked = [v for v in referral.json["error"]["details"]["verdicts"] if v["outcome"] == "block"]
    assert [v["rule"] for v in blocked] == ["us_reg_f.time_barred_suit"]


async def test_call_consent_must_end_after_it_was_given(
    admin: Api, account: dict[str, Any]
) -> None:
    path = f"/v1/accounts/{account['id']}/call-consents"
    ok = await admin.post(path, {"given_at": "2026-03-02T13:00:00Z", "until": "2026-03-03"})
    assert ok.status == 201, ok.text
    backwards = await admin.post(
        path, {"given_at": "2026-03-02T13:00:00Z", "until": "2026-03-01T00:00:00Z"}
    )
    assert (backwards.status, error_code(backwards)) == (400, "invalid_date")
