"""A sold account delivered to its buyer through the outbox, against a real HTTP server on
loopback (the law-firm test's ``Firm`` plays the buyer's intake endpoint)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any
from uuid import UUID

import pytest
from conftest import JANE, placement, usd
from test_lawfirm import LEASE, POLICY, SECRET, Answer, Firm, Killed

from adapters.config import AdapterConfigError, BuyerSettings, parse_adapters
from adapters.debt_sale.delivery import SaleDeliveryAdapter, buyer_adapters
from adapters.debt_sale.verify import Report, check_bundle, render_json
from adapters.outbox.engine import OutboxEngine
from bootstrap import build_service
from ledger.clock import MovableClock
from ledger.domain.account import Account
from ledger.services import LedgerService
from plugins.manager import build_plugin_manager

BUYER = "northwind-receivables"
LEGAL_NAME = "Northwind Receivables LLC"
ENVIRON = {"TEST_BUYER_SECRET": SECRET}


@pytest.fixture
def svc(sqlite_url: str, clock: MovableClock) -> Iterator[LedgerService]:
    pm = build_plugin_manager(entry_points=False, disabled=())
    service = build_service(sqlite_url, clock=clock, plugins=pm, config={})
    yield service
    service.ledger.close()


@pytest.fixture
def buyer(clock: MovableClock) -> Iterator[Firm]:
    endpoint = Firm(clock)
    yield endpoint
    endpoint.stop()


def adapter_for(url: str) -> SaleDeliveryAdapter:
    settings = BuyerSettings(
        BUYER, legal_name=LEGAL_NAME, url=url, secret_env="TEST_BUYER_SECRET", timeout=0.5
    )
    return SaleDeliveryAdapter({BUYER: settings}, environ=ENVIRON)


def engine(svc: LedgerService, adapter: SaleDeliveryAdapter, clock: MovableClock) -> OutboxEngine:
    return OutboxEngine(
        svc, [adapter], clock=clock, policy=POLICY, rand=lambda: 0.0, lease_seconds=LEASE
    )


def sold(svc: LedgerService, reference: str = "ACC-0001", to: str = LEGAL_NAME) -> UUID:
    account_id = UUID(str(svc.place_account(placement(reference), debtor=JANE).id))
    svc.post_payment(account_id, usd("200.00"), external_reference=f"pay-{reference}", method="ach")
    svc.sell(
        account_id,
        buyer=to,
        price=usd("96.00"),
        portfolio_reference="SALE-2026-11",
        sale_date=date(2026, 3, 2),
    )
    return account_id


def acks(svc: LedgerService, account_id: UUID) -> list[Any]:
    return [
        e for e in svc.ledger.events.get(account_id) if isinstance(e, Account.PartnerAcknowledged)
    ]


def test_a_sold_account_reaches_its_buyer_signed_once_with_a_bundle_that_verifies(
    svc: LedgerService, buyer: Firm, clock: MovableClock
) -> None:
    adapter = adapter_for(buyer.url)
    try:
        account_id = sold(svc)
        outbox = engine(svc, adapter, clock)
        outbox.run()
        clock.advance(timedelta(minutes=10))
        outbox.run()  # nothing new: the buyer hears of the sale once
    finally:
        adapter.close()
    assert [r.signature_ok for r in buyer.requests] == [True]
    body = buyer.requests[0].package()
    assert (body["event"], body["buyer"], body["sale_id"]) == ("sale", LEGAL_NAME, "SALE-2026-11")
    assert (body["price"], body["currency"], body["sale_date"]) == ("96.00", "USD", "2026-03-02")
    row = body["account"]
    assert row["account_reference"] == "ACC-0001"
    assert row["original_creditor"] == "Acme Bank N.A."
    assert row["debtor_name"] == JANE.name  # the buyer is entitled to who owes
    assert (row["total"], row["last_payment_amount"], row["sale_price"]) == (
        "1000.00",
        "200.00",
        "96.00",
    )
    assert row["account_status"] == "sold"
    report = Report()
    head = check_bundle("bundle", render_json(body["bundle"]), report)
    assert report.ok, [p.describe() for p in report.problems]
    assert head is not None and head.account_id == str(account_id)
    assert head.version == row_version(svc, account_id) - 1  # all but the acknowledgement
    assert [(a.partner_kind, a.partner) for a in acks(svc, account_id)] == [("buyer", BUYER)]
    assert acks(svc, account_id)[0].partner_reference == "CASE-1"


def row_version(svc: LedgerService, account_id: UUID) -> int:
    return int(svc.get_account(account_id).version)


def test_an_altered_byte_in_the_delivered_bundle_is_caught(
    svc: LedgerService, buyer: Firm, clock: MovableClock
) -> None:
    adapter = adapter_for(buyer.url)
    try:
        sold(svc)
        engine(svc, adapter, clock).run()
    finally:
        adapter.close()
    bundle = buyer.requests[0].package()["bundle"]
    event = bundle["events"][1]
    state = bytearray(event["state"].encode())
    state[10] = ord("A") if state[10] != ord("A") else ord("B")
    event["state"] = state.decode()
    report = Report()
    check_bundle("bundle", render_json(bundle), report)
    assert not report.ok


def test_buyer_down_is_retried_with_the_same_key_then_acknowledged_once(
    svc: LedgerService, buyer: Firm, clock: MovableClock
) -> None:
    buyer.script = [Answer(503), Answer(500)]
    adapter = adapter_for(buyer.url)
    try:
        account_id = sold(svc)
        outbox = engine(svc, adapter, clock)
        for _ in range(3):
            outbox.run()
            clock.advance(timedelta(seconds=5))
    finally:
        adapter.close()
    assert len(buyer.requests) == 3 and len(buyer.keys) == 1
    assert len(acks(svc, account_id)) == 1


def test_a_slow_buyer_times_out_and_the_retry_reaches_it_with_the_same_key(
    svc: LedgerService, buyer: Firm, clock: MovableClock
) -> None:
    buyer.script = [Answer(201, delay=1.5)]
    adapter = adapter_for(buyer.url)
    try:
        account_id = sold(svc)
        outbox = engine(svc, adapter, clock)
        outbox.run()
        assert acks(svc, account_id) == []
        clock.advance(timedelta(seconds=5))
        outbox.run()
    finally:
        adapter.close()
    assert len(buyer.keys) == 1 and len(buyer.requests) == 2
    assert len(acks(svc, account_id)) == 1


def test_a_refusing_buyer_is_dead_lettered_and_the_sale_stands(
    svc: LedgerService, buyer: Firm, clock: MovableClock
) -> None:
    buyer.script = [Answer(422, body={"error": "unknown portfolio"})]
    adapter = adapter_for(buyer.url)
    try:
        account_id = sold(svc)
        outbox = engine(svc, adapter, clock)
        outbox.run()
        entries = outbox.store.entries()
    finally:
        adapter.close()
    assert [e.state for e in entries] == ["dead"]
    assert "422" in (entries[0].last_error or "")
    assert svc.get_account(account_id).status == "sold" and acks(svc, account_id) == []


def test_only_sales_to_a_configured_buyer_become_deliveries(
    svc: LedgerService, clock: MovableClock
) -> None:
    adapter = adapter_for("http://127.0.0.1:9/intake")
    try:
        sold(svc, "ACC-0002", to="Someone Else Capital")
        outbox = engine(svc, adapter, clock)
        outbox.run()
        assert outbox.store.entries() == []
    finally:
        adapter.close()


def test_the_buyer_may_be_named_by_its_table_name_too(
    svc: LedgerService, buyer: Firm, clock: MovableClock
) -> None:
    adapter = adapter_for(buyer.url)
    try:
        sold(svc, "ACC-0003", to=BUYER)
        engine(svc, adapter, clock).run()
    finally:
        adapter.close()
    assert [json.loads(r.body)["buyer"] for r in buyer.requests] == [BUYER]


def test_config_rules_for_buyer_delivery() -> None:
    assert buyer_adapters({"adapters": {"buyer": {BUYER: {"legal_name": LEGAL_NAME}}}}) == []
    with pytest.raises(AdapterConfigError, match="secret_env"):
        parse_adapters({"adapters": {"buyer": {BUYER: {"url": "https://buyer.example/in"}}}})
    with pytest.raises(AdapterConfigError, match="https"):
        adapter_for("http://buyer.example/intake")
    with pytest.raises(AdapterConfigError, match="TEST_BUYER_SECRET"):
        SaleDeliveryAdapter(
            {
                BUYER: BuyerSettings(
                    BUYER, url="https://buyer.example/in", secret_env="TEST_BUYER_SECRET"
                )
            },
            environ={},
        )
    settings = parse_adapters(
        {
            "adapters": {
                "buyer": {
                    BUYER: {
                        "legal_name": LEGAL_NAME,
                        "url": "https://buyer.example/in",
                        "secret_env": "TEST_BUYER_SECRET",
                        "timeout": 20,
                    }
                }
            }
        }
    ).buyers[BUYER]
    assert (settings.url, settings.secret_env, settings.timeout) == (
        "https://buyer.example/in",
        "TEST_BUYER_SECRET",
        20.0,
    )


def test_worker_killed_after_the_buyer_took_the_account_delivers_it_again_with_the_same_key(
    svc: LedgerService, buyer: Firm, clock: MovableClock
) -> None:
    """The buyer sees one key twice (it deduplicates by it); the ledger records one ack."""
    adapter = adapter_for(buyer.url)
    real_deliver = adapter.deliver

    def deliver_then_die(job: Any, service: LedgerService) -> str:
        real_deliver(job, service)
        raise Killed

    try:
        account_id = sold(svc)
        adapter.deliver = deliver_then_die  # type: ignore[method-assign]
        with pytest.raises(Killed):
            engine(svc, adapter, clock).run()
        del adapter.deliver
        clock.advance(timedelta(seconds=LEASE + 1))
        assert engine(svc, adapter, clock).run().delivered["buyer_sale"] == 1
    finally:
        adapter.close()
    assert list(buyer.keys.values()) == [2] and len(buyer.cases) == 1
    (ack,) = acks(svc, account_id)
    assert ack.partner_reference == "CASE-1"
