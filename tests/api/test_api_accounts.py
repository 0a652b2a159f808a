"""Contract v1: placing, reading and listing accounts."""

from __future__ import annotations

from typing import Any

from api_helpers import *  # noqa: F403  (the API fixtures)
from api_helpers import Api, error_code, placement_body, token

from ledger.services import LedgerService

SUMMARY_FIELDS = {
    "id",
    "reference",
    "creditor",
    "status",
    "currency",
    "balance",
    "paid_total",
    "open_promise",
    "plan",
    "flags",
    "holder",
    "version",
}


async def test_place_account_answers_201_with_the_summary(admin: Api) -> None:
    """A placement is 201 with the account summary, money as decimal strings."""
    response = await admin.post("/v1/accounts", placement_body())
    assert response.status == 201, response.text
    summary = response.json
    assert set(summary) >= SUMMARY_FIELDS
    assert summary["balance"] == {
        "principal": "1000.00",
        "interest": "150.00",
        "fees": "50.00",
        "total": "1200.00",
        "credit": "0.00",
    }
    assert summary["status"] == "active"
    assert summary["holder"] == {"kind": "creditor", "name": "acme-bank"}
    assert summary["open_promise"] is None and summary["plan"] is None
    assert response.headers["location"] == f"/v1/accounts/{summary['id']}"


async def test_placing_the_same_reference_again_is_409_with_the_existing_id(
    admin: Api, account: dict[str, Any]
) -> None:
    """The same creditor + reference placed twice is 409 account_exists naming the account."""
    response = await admin.post("/v1/accounts", placement_body())
    assert response.status == 409
    assert error_code(response) == "account_exists"
    assert response.json["error"]["details"]["account_id"] == account["id"]


async def test_placement_with_an_existing_debtor_id(admin: Api, account: dict[str, Any]) -> None:
    """A second debt of the same person is placed with debtor_id instead of debtor."""
    body = placement_body("ACC-0002")
    del body["debtor"]
    body["debtor_id"] = account["debtor_id"]
    response = await admin.post("/v1/accounts", body)
    assert response.status == 201, response.text
    assert response.json["debtor_id"] == account["debtor_id"]


async def test_placement_needs_exactly_one_of_debtor_and_debtor_id(admin: Api) -> None:
    """Neither debtor nor debtor_id is a 400, as is both."""
    body = placement_body()
    del body["debtor"]
    response = await admin.post("/v1/accounts", body)
    assert response.status == 400
    assert error_code(response) == "invalid_value"


async def test_jpy_amounts_have_no_decimals(admin: Api) -> None:
    """Money follows its currency: JPY has none, so "1200.5" is a bad amount."""
    body = placement_body(currency="JPY", principal="120000", interest="0", fees="0")
    response = await admin.post("/v1/accounts", body)
    assert response.status == 201, response.text
    assert response.json["balance"]["total"] == "120000"
    bad = await admin.post(
        "/v1/accounts", placement_body("X-2", currency="JPY", principal="1200.5")
    )
    assert bad.status == 400
    assert error_code(bad) == "invalid_amount"


async def test_get_account_returns_the_summary(admin: Api, account: dict[str, Any]) -> None:
    """GET /v1/accounts/{id} is the same summary the placement answered."""
    response = await admin.get(f"/v1/accounts/{account['id']}")
    assert response.status == 200
    assert response.json == account


async def test_unknown_or_malformed_account_ids_are_404(admin: Api) -> None:
    """An id that names no account, or is not an id at all, is 404 not_found."""
    for ref in ("0b6f6b1e-2d7e-4a3e-9b1e-6e4c5d2c1a00", "not-an-id"):
        response = await admin.get(f"/v1/accounts/{ref}")
        assert response.status == 404
        assert error_code(response) == "not_found"


async def test_list_pages_through_every_account_with_a_cursor(admin: Api) -> None:
    """Pages of ``limit`` accounts; ``next_cursor`` leads through all of them, then null."""
    ids = set()
    for n in range(5):
        response = await admin.post("/v1/accounts", placement_body(f"L-{n}"))
        ids.add(response.json["id"])
    seen: list[str] = []
    cursor = None
    while True:
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = await admin.get(f"/v1/accounts?{query}")
        assert page.status == 200, page.text
        assert len(page.json["items"]) <= 2
        seen += [item["id"] for item in page.json["items"]]
        cursor = page.json["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ids)


async def test_list_filters_by_creditor_and_status(admin: Api) -> None:
    """creditor= and status= narrow the list."""
    await admin.post("/v1/accounts", placement_body("F-1", creditor="first"))
    await admin.post("/v1/accounts", placement_body("F-2", creditor="second"))
    page = await admin.get("/v1/accounts?creditor=second&status=active")
    assert [item["creditor"] for item in page.json["items"]] == ["second"]
    none = await admin.get("/v1/accounts?status=closed")
    assert none.json == {"items": [], "next_cursor": None}


async def test_list_refuses_a_cursor_it_did_not_give_and_limits_over_the_maximum(
    admin: Api,
) -> None:
    """A forged cursor and a limit over 500 are 400s."""
    assert (await admin.get("/v1/accounts?cursor=abc")).status == 400
    response = await admin.get("/v1/accounts?limit=501")
    assert response.status == 400
    assert error_code(response) == "invalid_value"


async def test_an_agency_lists_only_what_is_placed_with_it(
    admin: Api, api_service: LedgerService
) -> None:
    """An agency's list holds the accounts placed with it, nothing else."""
    first = (await admin.post("/v1/accounts", placement_body("G-1"))).json
    await admin.post("/v1/accounts", placement_body("G-2"))
    placed = await admin.post(
        f"/v1/accounts/{first['id']}/placement", {"agency": "north", "commission_rate": "0.25"}
    )
    assert placed.status == 201, placed.text
    north = admin.as_(token(api_service, "agency", agency="north"))
    page = await north.get("/v1/accounts")
    assert [item["id"] for item in page.json["items"]] == [first["id"]]
    south = admin.as_(token(api_service, "agency", agency="south"))
    assert (await south.get("/v1/accounts")).json["items"] == []
