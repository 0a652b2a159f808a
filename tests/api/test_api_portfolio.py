"""Contract v1 across accounts: the feed, the portfolio report, the worklist, the plugins."""

from __future__ import annotations

from typing import Any

from api_helpers import *  # noqa: F403  (the API fixtures)
from api_helpers import Api, placement_body, token

from ledger.services import LedgerService


async def test_feed_pages_through_account_events_in_order(admin: Api) -> None:
    """The feed lists account events in global order; next leads on; no debtor events."""
    for n in range(3):
        await admin.post("/v1/accounts", placement_body(f"FEED-{n}"))
    first = await admin.get("/v1/feed?limit=2")
    assert first.status == 200, first.text
    events = first.json["events"]
    assert len(events) == 2 and all(e["type"] == "Placed" for e in events)
    rest = await admin.get(f"/v1/feed?after={first.json['next']}")
    positions = [e["position"] for e in events + rest.json["events"]]
    assert positions == sorted(positions) and len(positions) == 3
    end = await admin.get(f"/v1/feed?after={rest.json['next']}")
    assert end.json == {"events": [], "next": rest.json["next"]}


async def test_an_agency_feed_holds_only_its_accounts(
    admin: Api, api_service: LedgerService
) -> None:
    """An agency follows the accounts placed with it and nothing else."""
    mine = (await admin.post("/v1/accounts", placement_body("A-1"))).json
    await admin.post("/v1/accounts", placement_body("B-1"))
    await admin.post(
        f"/v1/accounts/{mine['id']}/placement", {"agency": "north", "commission_rate": "0.2"}
    )
    agency = admin.as_(token(api_service, "agency", agency="north"))
    feed = await agency.get("/v1/feed")
    assert feed.status == 200
    assert {e["account_id"] for e in feed.json["events"]} == {mine["id"]}
    assert [e["type"] for e in feed.json["events"]] == ["Placed", "PlacedWithAgency"]


async def test_portfolio_report(
    admin: Api, account: dict[str, Any], api_service: LedgerService
) -> None:
    """The report is for admins and auditors; collectors get 403."""
    response = await admin.get("/v1/reports/portfolio?as_of=2026-03-31&creditor=acme-bank")
    assert response.status == 200, response.text
    assert response.json["by_creditor"][0]["creditor"] == "acme-bank"
    assert response.json["by_creditor"][0]["placed"] == "1200.00"
    collector = admin.as_(token(api_service, "collector"))
    assert (await collector.get("/v1/reports/portfolio")).status == 403


async def test_worklist(admin: Api, account: dict[str, Any], api_service: LedgerService) -> None:
    """The worklist ranks accounts to work; an agency sees none of another's."""
    response = await admin.get("/v1/worklist?limit=10")
    assert response.status == 200, response.text
    assert {"items", "left_out", "total"} <= set(response.json)
    ids = [i["account_id"] for i in response.json["items"]] + [
        e["account_id"] for e in response.json["left_out"]
    ]
    assert account["id"] in ids
    agency = admin.as_(token(api_service, "agency", agency="north"))
    theirs = await agency.get("/v1/worklist")
    assert theirs.status == 200 and theirs.json["items"] == []


async def test_plugins(admin: Api) -> None:
    """GET /v1/plugins lists the built-in plugins and their hooks."""
    response = await admin.get("/v1/plugins")
    assert response.status == 200
    names = {p["name"] for p in response.json["plugins"]}
    assert "builtin.us_reg_f" in names
