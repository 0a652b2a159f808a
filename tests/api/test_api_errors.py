"""Contract v1 errors: one shape, the right status, never a 500 for bad input."""

from __future__ import annotations

from typing import Any

import pytest
from api_helpers import *  # noqa: F403  (the API fixtures)
from api_helpers import Api, error_code, placement_body, token
from sanic_testing.testing import SanicASGITestClient

from api.config import ServerConfig
from ledger.services import LedgerService


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"creditor": ', "malformed_json"),
        (b"[1, 2]", "invalid_type"),
        (b'{"amount": NaN}', "malformed_json"),
        (b"\xff\xfe", "malformed_json"),
        (b'{"creditor": "a", "creditor": "b"}', "malformed_json"),
        (b"", "malformed_json"),
    ],
)
async def test_malformed_bodies_are_400(admin: Api, body: bytes, code: str) -> None:
    """Bodies that are not a JSON object are 400 with a code saying so."""
    response = await admin.post("/v1/accounts", content=body)
    assert response.status == 400
    assert error_code(response) == code


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"is_admin": True}, "unknown_field"),
        ({"principal": 1000}, "invalid_amount"),
        ({"principal": "1000.001"}, "invalid_amount"),
        ({"principal": "-5.00"}, "invalid_amount"),
        ({"principal": "1e3"}, "invalid_amount"),
        ({"itemization_date": "2025-02-30"}, "invalid_date"),
        ({"itemization_date": "yesterday"}, "invalid_date"),
        ({"itemization_kind": "whenever"}, "invalid_choice"),
        ({"creditor": 7}, "invalid_type"),
        ({"creditor": "acme\u0000bank"}, "invalid_value"),
        ({"currency": "usd"}, "invalid_value"),
        ({"currency": "XAU"}, "unknown_currency"),
        ({"debtor": {"name": "J", "ssn": "123"}}, "unknown_field"),
    ],
)
async def test_bad_fields_are_400(admin: Api, change: dict[str, Any], code: str) -> None:
    """Unknown fields, wrong types, bad money and bad dates are 400, never 500."""
    response = await admin.post("/v1/accounts", placement_body(**change))
    assert response.status == 400, response.text
    assert error_code(response) == code


async def test_a_debtor_id_that_is_not_a_uuid_is_400(admin: Api) -> None:
    """An existing debtor named by something that cannot be an id: 400, not a 500."""
    body = placement_body(debtor_id="not-a-uuid")
    del body["debtor"]
    response = await admin.post("/v1/accounts", body)
    assert response.status == 400, response.text
    assert error_code(response) == "invalid_value"
    assert response.json["error"]["details"]["field"] == "debtor_id"


async def test_a_debtor_that_cannot_be_is_400_and_one_not_on_file_is_named(admin: Api) -> None:
    """An unknown time zone is bad input; a well-formed debtor_id naming nobody says so."""
    body = placement_body()
    body["debtor"]["time_zone"] = "Mars/Olympus"
    zone = await admin.post("/v1/accounts", body)
    assert (zone.status, error_code(zone)) == (400, "invalid_time_zone")
    missing = placement_body(reference="ACC-0002", debtor_id="6f1d6f7e-8c43-4a59-9f3e-1d2b3c4d5e6f")
    del missing["debtor"]
    nobody = await admin.post("/v1/accounts", missing)
    assert (nobody.status, error_code(nobody)) == (422, "debtor_not_found")


async def test_a_charge_off_itemization_without_its_date_takes_the_itemization_date(
    admin: Api,
) -> None:
    """Itemized as of the charge-off, the charge-off date is that same day."""
    placed = await admin.post("/v1/accounts", placement_body("CO-1", charge_off_date=None))
    assert placed.status == 201, placed.text
    item = await admin.get(f"/v1/accounts/{placed.json['id']}/history")
    [event] = [e for e in item.json["events"] if e["type"] == "Placed"]
    assert event["data"]["charge_off_date"] == "2025-11-30"


async def test_an_empty_body_is_an_empty_object_only_where_nothing_is_required(
    admin: Api,
) -> None:
    """POST .../deceased needs nothing; POST .../payments with no body is malformed."""
    placed = await admin.post("/v1/accounts", placement_body())
    account = placed.json["id"]
    empty_payment = await admin.post(f"/v1/accounts/{account}/payments", content=b"")
    assert empty_payment.status == 400
    assert error_code(empty_payment) == "malformed_json"
    assert "amount" in empty_payment.json["error"]["message"]
    deceased = await admin.post(f"/v1/accounts/{account}/deceased", content=b"")
    assert deceased.status == 201, deceased.text


async def test_a_missing_field_is_named(admin: Api) -> None:
    """A missing required field is 400 missing_field, naming it."""
    body = placement_body()
    del body["reference"]
    response = await admin.post("/v1/accounts", body)
    assert response.status == 400
    assert error_code(response) == "missing_field"
    assert response.json["error"]["details"]["field"] == "reference"


async def test_query_parameters_are_checked_too(admin: Api, account: dict[str, Any]) -> None:
    """Unknown, repeated or ill-typed query parameters are 400."""
    for query in ("color=blue", "limit=abc", "limit=0", "limit=1&limit=2", "status=lost"):
        response = await admin.get(f"/v1/accounts?{query}")
        assert response.status == 400, query
    at = await admin.get(f"/v1/accounts/{account['id']}/contact-check?channel=phone&at=noon")
    assert at.status == 400
    assert error_code(at) == "invalid_date"


async def test_no_token_a_bad_token_and_a_revoked_token_are_401(
    client: SanicASGITestClient, api_service: LedgerService
) -> None:
    """Without a valid token every route but the public ones is 401 unauthorized."""
    principal, text = api_service.tokens().create("admin", label="soon revoked")
    assert (await Api(client, text).get("/v1/accounts")).status == 200
    api_service.tokens().revoke(principal.token_id)
    for who in (None, "arr_0000000000000000_" + "x" * 43, text, "garbage"):
        response = await Api(client, who).get("/v1/accounts")
        assert response.status == 401
        assert error_code(response) == "unauthorized"
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_a_role_without_the_permission_is_403(
    admin: Api, account: dict[str, Any], api_service: LedgerService
) -> None:
    """An auditor reads but writes nothing: 403 forbidden."""
    auditor = admin.as_(token(api_service, "auditor"))
    assert (await auditor.get(f"/v1/accounts/{account['id']}")).status == 200
    response = await auditor.post(f"/v1/accounts/{account['id']}/notes", {"text": "hi"})
    assert response.status == 403
    assert error_code(response) == "forbidden"
    placement = await auditor.post("/v1/accounts", placement_body("A-9"))
    assert placement.status == 403


async def test_an_account_outside_an_agency_scope_looks_missing(
    admin: Api, account: dict[str, Any], api_service: LedgerService
) -> None:
    """Another agency's account answers exactly like one that does not exist."""
    agency = admin.as_(token(api_service, "agency", agency="north"))
    hidden = await agency.get(f"/v1/accounts/{account['id']}")
    missing = await agency.get("/v1/accounts/0b6f6b1e-2d7e-4a3e-9b1e-6e4c5d2c1a00")
    assert hidden.status == missing.status == 404
    assert error_code(hidden) == error_code(missing) == "not_found"
    assert set(hidden.json["error"]["details"]) == set(missing.json["error"]["details"])
    write = await agency.post(
        f"/v1/accounts/{account['id']}/payments", {"amount": "1.00", "method": "cash"}
    )
    assert write.status == 404


async def test_a_domain_rule_is_422_with_its_stable_code(
    admin: Api, account: dict[str, Any]
) -> None:
    """A well-formed request the account's state forbids is 422 with the rule's code."""
    response = await admin.post(
        f"/v1/accounts/{account['id']}/promises", {"amount": "5000.00", "due_date": "2026-04-01"}
    )
    assert response.status == 422
    assert error_code(response) == "promise_exceeds_balance"
    error = response.json["error"]
    assert "5000.00 USD exceeds the balance of 1200.00 USD" in error["message"]
    assert (error["details"]["balance"], error["details"]["currency"]) == ("1200.00", "USD")
    plan = await admin.post(
        f"/v1/accounts/{account['id']}/plans",
        {"installments": [{"due_date": "2026-04-01", "amount": "100.00"}]},
    )
    assert error_code(plan) == "installments_mismatch"
    assert plan.json["error"]["details"]["balance"] == "1200.00"
    assert "1200.00 USD, not 100.00 USD" in plan.json["error"]["message"]


async def test_an_amount_in_another_currency_is_refused(
    admin: Api, account: dict[str, Any]
) -> None:
    """currency, when given, must be the account's: 422 currency_mismatch."""
    response = await admin.post(
        f"/v1/accounts/{account['id']}/payments",
        {"amount": "5.00", "method": "cash", "currency": "EUR"},
    )
    assert response.status == 422
    assert error_code(response) == "currency_mismatch"


@pytest.fixture
def server_config() -> ServerConfig:
    return ServerConfig(worker=False, max_body_size=2048)


async def test_a_body_over_the_limit_is_413(admin: Api) -> None:
    """A body over max_body_size is 413 payload_too_large."""
    response = await admin.post("/v1/accounts", placement_body(original_creditor="x" * 4000))
    assert response.status == 413
    assert error_code(response) == "payload_too_large"


async def test_unknown_routes_and_methods(client: SanicASGITestClient) -> None:
    """No such route is 404, a wrong method 405 with Allow, both in the error shape."""
    _, missing = await client.get("/v2/everything")
    assert missing.status == 404
    assert error_code(missing) == "not_found"
    _, wrong = await client.delete("/v1/accounts")
    assert wrong.status == 405
    assert error_code(wrong) == "method_not_allowed"
    assert "GET" in wrong.headers["allow"]
