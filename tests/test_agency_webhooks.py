"""Signed placement and recall webhooks to an agency, through the outbox, against a real
HTTP server on loopback (the law-firm test's ``Firm`` plays the agency's endpoint)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from conftest import JANE, placement, usd
from test_lawfirm import LEASE, POLICY, SECRET, Answer, Firm

from adapters.agency.webhooks import AgencyWebhookAdapter, agency_adapters
from adapters.config import AdapterConfigError, AgencySettings
from adapters.outbox.engine import OutboxEngine
from bootstrap import build_service
from ledger.clock import MovableClock
from ledger.domain.account import Account
from ledger.services import LedgerService
from plugins.manager import build_plugin_manager

AGENCY = "northwind"
ENVIRON = {"TEST_AGENCY_SECRET": SECRET}


@pytest.fixture
def svc(sqlite_url: str, clock: MovableClock) -> Iterator[LedgerService]:
    pm = build_plugin_manager(entry_points=False, disabled=())
    service = build_service(sqlite_url, clock=clock, plugins=pm, config={})
    yield service
    service.ledger.close()


@pytest.fixture
def agency(clock: MovableClock) -> Iterator[Firm]:
    endpoint = Firm(clock)
    yield endpoint
    endpoint.stop()


def adapter_for(url: str) -> AgencyWebhookAdapter:
    settings = AgencySettings(AGENCY, webhook_url=url, secret_env="TEST_AGENCY_SECRET")
    return AgencyWebhookAdapter({AGENCY: settings}, environ=ENVIRON)


def engine(svc: LedgerService, adapter: AgencyWebhookAdapter, clock: MovableClock) -> OutboxEngine:
    return OutboxEngine(
        svc, [adapter], clock=clock, policy=POLICY, rand=lambda: 0.0, lease_seconds=LEASE
    )


def placed(svc: LedgerService, agency: str = AGENCY) -> UUID:
    account_id = UUID(str(svc.place_account(placement(), debtor=JANE).id))
    svc.place_with_agency(account_id, agency=agency, commission_basis_points=2500)
    return account_id


def acks(svc: LedgerService, account_id: UUID) -> list[Any]:
    return [
        e for e in svc.ledger.events.get(account_id) if isinstance(e, Account.PartnerAcknowledged)
    ]


def test_placement_and_recall_reach_the_agency_signed_once_each(
    svc: LedgerService, agency: Firm, clock: MovableClock
) -> None:
    adapter = adapter_for(agency.url)
    try:
        account_id = placed(svc)
        outbox = engine(svc, adapter, clock)
        svc.post_payment(account_id, usd("200.00"), method="ach")  # before the webhook goes
        outbox.run()
        svc.recall_from_agency(account_id, "creditor takes it back")
        outbox.run()
        clock.advance(timedelta(minutes=10))
        outbox.run()  # nothing new: nothing sent twice
    finally:
        adapter.close()
    assert [r.signature_ok for r in agency.requests] == [True, True]
    bodies = [json.loads(r.body) for r in agency.requests]
    assert [b["event"] for b in bodies] == ["placement", "recall"]
    assert bodies[0]["account"]["balance"]["total"] == "1200.00"  # as placed
    assert bodies[1]["account"]["balance"]["total"] == "1000.00"  # as recalled
    assert bodies[0]["commission_basis_points"] == 2500
    assert bodies[1]["reason"] == "creditor takes it back"
    assert "Jane" not in agency.requests[0].body.decode()  # no personal data in a webhook
    assert set(agency.keys.values()) == {1}
    assert [a.partner for a in acks(svc, account_id)] == [AGENCY, AGENCY]
    # The agency's own reference from its answer is kept, as for firms and buyers.
    assert [a.partner_reference for a in acks(svc, account_id)] == ["CASE-1", "CASE-2"]


def test_agency_down_is_retried_with_the_same_key(
    svc: LedgerService, agency: Firm, clock: MovableClock
) -> None:
    agency.script = [Answer(503), Answer(500)]
    adapter = adapter_for(agency.url)
    try:
        account_id = placed(svc)
        outbox = engine(svc, adapter, clock)
        for _ in range(3):
            outbox.run()
            clock.advance(timedelta(seconds=5))
    finally:
        adapter.close()
    assert len(agency.requests) == 3 and len(agency.keys) == 1
    assert len(acks(svc, account_id)) == 1


def test_only_agencies_with_a_webhook_get_jobs(svc: LedgerService, clock: MovableClock) -> None:
    adapter = adapter_for("http://127.0.0.1:9/hook")
    try:
        other = placed(svc, agency="blue-ridge")
        outbox = engine(svc, adapter, clock)
        outbox.run()
        assert outbox.store.entries() == [] and acks(svc, other) == []
    finally:
        adapter.close()


def test_config_rules_for_agency_webhooks() -> None:
    assert agency_adapters({"adapters": {"agency": {AGENCY: {}}}}) == []
    with pytest.raises(AdapterConfigError, match="https"):
        adapter_for("http://agency.example/hook")
    with pytest.raises(AdapterConfigError, match="TEST_AGENCY_SECRET"):
        AgencyWebhookAdapter(
            {
                AGENCY: AgencySettings(
                    AGENCY, webhook_url="https://a.example", secret_env="TEST_AGENCY_SECRET"
                )
            },
            environ={},
        )
