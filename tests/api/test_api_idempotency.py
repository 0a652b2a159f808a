"""Idempotency-Key: a retry returns the original response and records nothing twice."""

from __future__ import annotations

import asyncio
from typing import Any

from api_helpers import *  # noqa: F403  (the API fixtures)
from api_helpers import Api, error_code, placement_body

from ledger.services import LedgerService


async def _versions(admin: Api, account: dict[str, Any]) -> int:
    return int((await admin.get(f"/v1/accounts/{account['id']}")).json["version"])


async def test_a_retry_replays_the_original_response(admin: Api, account: dict[str, Any]) -> None:
    """The same key and body: the same status and body, Idempotent-Replayed, one event."""
    headers = {"Idempotency-Key": "pay-42"}
    body = {"amount": "100.00", "method": "card"}
    url = f"/v1/accounts/{account['id']}/payments"
    first = await admin.post(url, body, headers=headers)
    assert first.status == 201, first.text
    version = await _versions(admin, account)
    again = await admin.post(url, {"method": "card", "amount": "100.00"}, headers=headers)
    assert again.status == 201
    assert again.json == first.json
    assert again.headers["idempotent-replayed"] == "true"
    assert await _versions(admin, account) == version


async def test_the_same_key_with_another_body_is_409(admin: Api, account: dict[str, Any]) -> None:
    """Reusing a key for a different request is 409 idempotency_key_reused."""
    headers = {"Idempotency-Key": "note-1"}
    url = f"/v1/accounts/{account['id']}/notes"
    assert (await admin.post(url, {"text": "first"}, headers=headers)).status == 201
    response = await admin.post(url, {"text": "second"}, headers=headers)
    assert response.status == 409
    assert error_code(response) == "idempotency_key_reused"


async def test_a_domain_error_is_replayed_too(admin: Api, account: dict[str, Any]) -> None:
    """A refused request replays its refusal: the key meant that request."""
    headers = {"Idempotency-Key": "promise-too-big"}
    url = f"/v1/accounts/{account['id']}/promises"
    body = {"amount": "9999.00", "due_date": "2026-04-01"}
    first = await admin.post(url, body, headers=headers)
    assert first.status == 422
    again = await admin.post(url, body, headers=headers)
    assert (again.status, again.json) == (422, first.json)
    assert again.headers["idempotent-replayed"] == "true"


async def test_concurrent_duplicates_post_once(
    admin: Api, account: dict[str, Any], api_service: LedgerService
) -> None:
    """Five copies of one request at once: one payment, five identical answers."""
    url = f"/v1/accounts/{account['id']}/payments"
    headers = {"Idempotency-Key": "burst"}
    responses = await asyncio.gather(
        *(admin.post(url, {"amount": "10.00", "method": "ach"}, headers=headers) for _ in range(5))
    )
    assert {r.status for r in responses} == {201}
    assert len({r.json["payment_id"] for r in responses}) == 1
    account_now = api_service.get_account(api_service.resolve_account(account["id"]))
    assert len(account_now.payments) == 1


async def test_a_bad_key_is_400(admin: Api) -> None:
    """An Idempotency-Key longer than 255 characters is 400."""
    response = await admin.post(
        "/v1/accounts", placement_body(), headers={"Idempotency-Key": "k" * 300}
    )
    assert response.status == 400
    assert error_code(response) == "invalid_idempotency_key"


async def test_placement_retried_with_its_key_is_not_account_exists(admin: Api) -> None:
    """A placement retried with its key gets the original 201, not 409 account_exists."""
    headers = {"Idempotency-Key": "place-1"}
    first = await admin.post("/v1/accounts", placement_body(), headers=headers)
    again = await admin.post("/v1/accounts", placement_body(), headers=headers)
    assert first.status == again.status == 201
    assert again.json["id"] == first.json["id"]
