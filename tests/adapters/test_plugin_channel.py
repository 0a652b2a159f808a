"""Messages on a channel a plugin provides (``arrears_channels``) go out through the
outbox like the built-in ones: rendered, to the debtor's contact point, once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from outbox_helpers import POLICY, events_of

from adapters.outbox.wiring import build_outbox
from ledger.clock import MovableClock
from ledger.domain.account import Account
from ledger.services import LedgerService
from plugins import hookimpl
from plugins.manager import build_plugin_manager
from plugins.types import Delivery, OutboundMessage


class PrintShop:
    """A print-and-mail vendor as a plugin channel: it takes letters."""

    name = "letter"

    def __init__(self, answers: list[Any] | None = None) -> None:
        self.sent: list[OutboundMessage] = []
        self.answers = answers or []

    def send(self, message: OutboundMessage) -> Delivery:
        answer = self.answers.pop(0) if self.answers else "sent"
        if isinstance(answer, Exception):
            raise answer
        self.sent.append(message)
        return Delivery(
            message.message_id, answer, detail="bad address" if answer == "failed" else ""
        )

    def delivery(self, message_id: str) -> Delivery:
        return Delivery(message_id, "sent")


class ShopPlugin:
    def __init__(self, shop: PrintShop) -> None:
        self.shop = shop

    @hookimpl
    def arrears_channels(self) -> list[Any]:
        return [self.shop]


def outbox_with(
    svc: LedgerService, shop: PrintShop, clock: MovableClock, config: dict[str, Any] | None = None
) -> Any:
    pm = build_plugin_manager(entry_points=False, extra=[("print-shop", ShopPlugin(shop))])
    return build_outbox(svc, config or {}, pm, clock=clock, policy=POLICY, rand=lambda: 0.0)


def test_a_letter_goes_out_through_the_plugin_channel_once(
    svc: LedgerService, account_id: UUID, clock: MovableClock
) -> None:
    shop = PrintShop()
    engine = outbox_with(svc, shop, clock)
    assert "channel:letter" in engine.adapters
    queued = svc.request_message(account_id, channel="letter", template="reminder")
    assert engine.run().delivered["channel:letter"] == 1
    engine.run()
    [letter] = shop.sent
    assert letter.message_id == queued.message_id and letter.channel == "letter"
    assert letter.to == "12 Elm Street, Springfield, 62701"
    assert "1200.00 USD" in letter.body
    [sent] = events_of(svc, account_id, Account.MessageSent)
    assert sent.message_id == queued.message_id


def test_a_refusal_is_final_and_a_crash_is_retried(
    svc: LedgerService, account_id: UUID, clock: MovableClock
) -> None:
    shop = PrintShop(answers=[RuntimeError("printer jammed"), "failed"])
    engine = outbox_with(svc, shop, clock)
    queued = svc.request_message(account_id, channel="letter", template="reminder")
    assert engine.run().retries["channel:letter"] == 1
    assert "printer jammed" not in (engine.store.entries()[0].last_error or "")
    clock.advance(timedelta(seconds=5))
    assert engine.run().dead["channel:letter"] == 1
    [failed] = events_of(svc, account_id, Account.MessageFailed)
    assert failed.message_id == queued.message_id and "bad address" in failed.reason


def test_a_configured_built_in_adapter_wins_over_a_plugin_channel(
    svc: LedgerService, clock: MovableClock
) -> None:
    class SmsShop(PrintShop):
        name = "sms"

    config = {"adapters": {"sms": {"url": "http://127.0.0.1:9/send", "sender": "+14155550100"}}}
    engine = outbox_with(svc, SmsShop(), clock, config)
    assert engine.adapters["sms"].__class__.__name__ == "SmsAdapter"
    assert "channel:sms" not in engine.adapters
