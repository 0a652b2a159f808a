"""Partners calling in over HTTP: law firms' signed status callbacks, SMS delivery reports,
agency activity files.

The firm's table and secret reach the server as they would in production: a
config file named by ``ARREARS_CONFIG`` and the secret in the variable it names.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from api_helpers import *  # noqa: F403  (the fixtures)
from api_helpers import Api, error_code, placement_body, token

from adapters import signing
from adapters.lawfirm.callbacks import CallbackLog
from adapters.sms import twilio_signature
from api.routes.callbacks import import_input
from ledger.clock import MovableClock
from ledger.services import LedgerService

FIRM = "smith-legal"
SECRET = "whsec_smith_current_0123456789abcdef"
SECRET_ENV = "TEST_API_LAWFIRM_SECRET"
AGENCY = "northwind"
TWILIO_TOKEN = "twilio-auth-token-0123456789"
STATUS_URL = "https://arrears.example/v1/callbacks/sms"


@pytest.fixture
def partners(
    api_service: LedgerService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """The config file with the firm's table (and a generic SMS gateway), its secret set."""
    config = tmp_path / "arrears.toml"
    config.write_text(
        f'[adapters.lawfirm.{FIRM}]\nurl = "https://intake.example/v1"\n'
        f'secret_env = "{SECRET_ENV}"\n\n'
        '[adapters.sms]\nurl = "https://sms.example/send"\nsender = "+14155550100"\n'
    )
    monkeypatch.setenv("ARREARS_CONFIG", str(config))
    monkeypatch.setenv(SECRET_ENV, SECRET)
    yield config


@pytest.fixture
async def referred(admin: Api, account: dict[str, Any], partners: Path) -> str:
    """The account, referred to the firm."""
    response = await admin.post(f"/v1/accounts/{account['id']}/legal-referral", {"firm": FIRM})
    assert response.status == 201, response.text
    return str(account["id"])


def update(account_id: str, delivery_id: str = "d-1", **fields: Any) -> bytes:
    body = {
        "delivery_id": delivery_id,
        "account_id": account_id,
        "status": "suit_filed",
        "effective_on": "2026-03-01",
        **fields,
    }
    return json.dumps(body).encode()


def signature(service: LedgerService, body: bytes, secret: str = SECRET, skew: int = 0) -> str:
    """Signed now by the service's clock (the server checks against the same clock)."""
    clock = service.clock
    assert isinstance(clock, MovableClock)
    return signing.sign(body, secret, int(clock.current.timestamp()) + skew)


async def post_callback(admin: Api, body: bytes, header: str | None, firm: str = FIRM) -> Any:
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers[signing.HEADER] = header
    return await admin.as_(None).post(
        f"/v1/callbacks/lawfirm/{firm}", content=body, headers=headers
    )


async def legal_events(admin: Api, account_id: str) -> list[dict[str, Any]]:
    response = await admin.get(f"/v1/accounts/{account_id}/history")
    assert response.status == 200, response.text
    return [e for e in response.json["events"] if e["type"] == "LegalStatusChanged"]


# ------------------------------------------------------------------ law firms


async def test_a_signed_callback_is_recorded_and_shows_in_the_history(
    admin: Api, api_service: LedgerService, referred: str
) -> None:
    """A good signature, no token: the status becomes LegalStatusChanged in the history."""
    body = update(referred, court_reference="2026-CV-0042")
    response = await post_callback(admin, body, signature(api_service, body))
    assert response.status == 200, response.text
    assert response.json["recorded"] is True
    assert response.json["legal_status"] == "suit_filed"
    (event,) = await legal_events(admin, referred)
    assert event["data"]["legal_status"] == "suit_filed"
    assert event["data"]["court_reference"] == "2026-CV-0042"
    assert event["version"] == response.json["version"]


async def test_forged_stale_and_replayed_callbacks_are_refused_and_record_nothing(
    admin: Api, api_service: LedgerService, referred: str
) -> None:
    """Forged 401 invalid_signature, stale or future 401 stale_signature, replayed 409."""
    body = update(referred)
    forged = await post_callback(admin, body, signature(api_service, body, secret="guess"))
    assert (forged.status, error_code(forged)) == (401, "invalid_signature")
    unsigned = await post_callback(admin, body, None)
    assert (unsigned.status, error_code(unsigned)) == (401, "invalid_signature")
    for skew in (-400, 400):
        stale = await post_callback(admin, body, signature(api_service, body, skew=skew))
        assert (stale.status, error_code(stale)) == (401, "stale_signature")
    assert await legal_events(admin, referred) == []
    assert CallbackLog(api_service.ledger).entries() == []

    good = await post_callback(admin, body, signature(api_service, body))
    assert good.status == 200, good.text
    replayed = await post_callback(admin, body, signature(api_service, body))
    assert (replayed.status, error_code(replayed)) == (409, "replayed_delivery")
    assert len(await legal_events(admin, referred)) == 1


async def test_an_unknown_firm_or_an_account_not_referred_to_it_is_not_found(
    admin: Api, api_service: LedgerService, account: dict[str, Any], partners: Path
) -> None:
    """A firm with no table, or an account the firm does not hold: 404, nothing recorded."""
    body = update(str(account["id"]))
    unknown = await post_callback(admin, body, signature(api_service, body), firm="nobody-llp")
    assert unknown.status == 404
    not_referred = await post_callback(admin, body, signature(api_service, body))
    assert not_referred.status == 404
    assert await legal_events(admin, str(account["id"])) == []


async def test_a_bad_update_is_refused_after_the_signature(
    admin: Api, api_service: LedgerService, referred: str
) -> None:
    """A judgment without its amount is bad input (400); the delivery id stays unused."""
    body = update(referred, status="judgment")
    response = await post_callback(admin, body, signature(api_service, body))
    assert response.status == 400, response.text
    assert CallbackLog(api_service.ledger).entries() == []


# ------------------------------------------------------------------------ SMS


async def test_a_generic_sms_report_needs_an_admin_token(
    admin: Api,
    api_service: LedgerService,
    account: dict[str, Any],
    partners: Path,
    clock: MovableClock,
) -> None:
    """Without a signing secret the report needs an admin token; then it is recorded."""
    clock.set(datetime(2026, 3, 2, 20, 0, tzinfo=UTC))  # 14:00 in Chicago
    queued = await admin.post(
        f"/v1/accounts/{account['id']}/messages", {"channel": "sms", "template": "reminder"}
    )
    assert queued.status == 202, queued.text
    report = {"id": queued.json["message_id"], "status": "failed", "account_id": account["id"]}
    anonymous = await admin.as_(None).post("/v1/callbacks/sms", report)
    assert anonymous.status == 401
    collector = await admin.as_(token(api_service, "collector")).post("/v1/callbacks/sms", report)
    assert collector.status == 403
    recorded = await admin.post("/v1/callbacks/sms", report)
    assert (recorded.status, recorded.json) == (200, {"recorded": True})
    again = await admin.post("/v1/callbacks/sms", report)
    assert (again.status, again.json) == (200, {"recorded": False})


@pytest.fixture
def twilio(partners: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    partners.write_text(
        '[adapters.sms]\nprofile = "twilio"\nsender = "+14155550100"\n'
        'account_sid_env = "TEST_TWILIO_SID"\nauth_token_env = "TEST_TWILIO_TOKEN"\n'
        f'status_callback_url = "{STATUS_URL}"\n'
    )
    monkeypatch.setenv("TEST_TWILIO_SID", "AC0123")
    monkeypatch.setenv("TEST_TWILIO_TOKEN", TWILIO_TOKEN)


async def test_a_twilio_report_is_checked_by_its_signature(admin: Api, twilio: None) -> None:
    """With the twilio profile, X-Twilio-Signature replaces the token; a bad one is 401."""
    params = {"MessageSid": "SM0001", "MessageStatus": "sending"}  # a step, not an outcome
    anonymous = admin.as_(None)
    good = twilio_signature(STATUS_URL, params, TWILIO_TOKEN)
    response = await anonymous.post(
        "/v1/callbacks/sms", params, headers={"X-Twilio-Signature": good}
    )
    assert (response.status, response.json) == (200, {"recorded": False})
    bad = twilio_signature(STATUS_URL, params, "not-the-token")
    forged = await anonymous.post("/v1/callbacks/sms", params, headers={"X-Twilio-Signature": bad})
    assert (forged.status, error_code(forged)) == (401, "invalid_signature")


# -------------------------------------------------------------------- imports

HEADER = "row_key,account_id,kind,amount,currency,received_at,method,status"


def activity(*rows: str) -> str:
    return "\r\n".join([HEADER, *rows]) + "\r\n"


@pytest.fixture
async def placed(admin: Api) -> tuple[str, str]:
    """(an account placed with Northwind, an account worked in house)."""
    ids = []
    for reference in ("NW-1", "HOME-1"):
        response = await admin.post("/v1/accounts", placement_body(reference))
        assert response.status == 201, response.text
        ids.append(str(response.json["id"]))
    placement = await admin.post(
        f"/v1/accounts/{ids[0]}/placement", {"agency": AGENCY, "commission_rate": "0.25"}
    )
    assert placement.status == 201, placement.text
    return ids[0], ids[1]


async def test_an_agency_imports_its_activity_and_sees_rejected_rows(
    admin: Api, api_service: LedgerService, placed: tuple[str, str]
) -> None:
    """207 with the rejected rows' numbers and reasons; the valid rows are posted once."""
    ours, house = placed
    agency = admin.as_(token(api_service, "agency", agency=AGENCY))
    csv_text = activity(
        f"s-1,{ours},status,,,,,unable_to_locate",
        f"pay-1,{ours},payment,25.00,USD,2026-03-01T10:00:00Z,card,",
        f"pay-2,{ours},payment,12.345,USD,2026-03-01T10:00:00Z,card,",
        f"s-2,{house},status,,,,,unable_to_locate",
    )
    first = await agency.post("/v1/imports", {"csv": csv_text, "source": "nw-0302.csv"})
    assert first.status == 207, first.text
    report = first.json
    assert (report["agency"], report["source"]) == (AGENCY, "nw-0302.csv")
    assert (report["posted"], report["already_posted"], report["rejected"]) == (2, 0, 2)
    rejected = {r["row"]: r["code"] for r in report["rows"] if r["outcome"] == "rejected"}
    assert rejected == {3: "invalid_amount", 4: "not_placed_with_agency"}
    again = await agency.post("/v1/imports", {"csv": csv_text, "source": "nw-0302.csv"})
    assert (again.json["posted"], again.json["already_posted"]) == (0, 2)
    summary = await admin.get(f"/v1/accounts/{ours}")
    assert summary.json["balance"]["total"] == "1175.00"
    clean = await agency.post(
        "/v1/imports", {"csv": activity(f"s-3,{ours},status,,,,,unable_to_locate")}
    )
    assert (clean.status, clean.json["posted"], clean.json["source"]) == (200, 1, "api")


async def test_who_may_import_for_which_agency(
    admin: Api, api_service: LedgerService, placed: tuple[str, str]
) -> None:
    """An agency imports only its own; an admin names the agency; a collector may not."""
    csv_text = activity(f"s-1,{placed[0]},status,,,,,unable_to_locate")
    agency = admin.as_(token(api_service, "agency", agency=AGENCY))
    other = await agency.post("/v1/imports", {"csv": csv_text, "agency": "southgate"})
    assert other.status == 403
    collector = admin.as_(token(api_service, "collector"))
    assert (await collector.post("/v1/imports", {"csv": csv_text})).status == 403
    unnamed = await admin.post("/v1/imports", {"csv": csv_text})
    assert unnamed.status == 400  # which agency is missing: bad input
    named = await admin.post("/v1/imports", {"csv": csv_text, "agency": AGENCY})
    assert (named.status, named.json["posted"]) == (200, 1)


def test_a_csv_body_is_read_as_the_file_itself() -> None:
    """text/csv: the body is the file and the agency comes from the query."""
    raw = "\ufeffrow_key,kind\r\n".encode()
    assert import_input("text/csv", raw, {}, "northwind") == (
        "northwind",
        "row_key,kind\r\n",
        "api",
    )
    assert import_input("application/json", b"", {"csv": "x"}, None) == (None, "x", "api")
