"""SMS through an HTTP gateway on loopback: the debtor gets each text once, with the opt-out.

The story: a collector asks for a text at 14:00 the debtor's time; the gate
allows it and it is queued; the worker's outbox turns it into a job and posts it
to the gateway with an idempotency key; the gateway's answer, a failure, a
stall or a crash of the worker decide what happens next, and the outcome comes
back into the ledger as MessageSent or MessageFailed.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from outbox_helpers import (
    LEASE,
    OPT_OUT_SMS,
    PHONE_E164,
    Gateway,
    Reply,
    engine_for,
    events_of,
    open_account,
)

from adapters.config import AdapterConfigError
from adapters.outbox.base import Job, PermanentDeliveryError
from adapters.sms import (
    SmsAdapter,
    handle_status_callback,
    to_e164,
    twilio_signature,
    verify_twilio_signature,
)
from ledger import errors
from ledger.clock import MovableClock
from ledger.domain.account import Account
from ledger.services import DebtorDetails, LedgerService


class Crash(BaseException):
    """Stands for the worker dying: nothing after it runs."""


def queue(svc: LedgerService, account_id: UUID, **kwargs: Any) -> str:
    kwargs.setdefault("channel", "sms")
    kwargs.setdefault("template", "reminder")
    return svc.request_message(account_id, **kwargs).message_id


def status(svc: LedgerService, account_id: UUID, message_id: str) -> str:
    return str(svc.get_account(account_id).messages[message_id]["status"])


def test_a_queued_text_is_posted_once_with_its_key_and_recorded_as_sent(
    svc: LedgerService,
    account_id: UUID,
    clock: MovableClock,
    gateway: Gateway,
    make_sms: Callable[..., SmsAdapter],
) -> None:
    """Generic profile: JSON {id,to,from,body} + Idempotency-Key; 2xx -> MessageSent."""
    message_id = queue(svc, account_id)
    engine = engine_for(svc, make_sms(gateway.url), clock=clock)

    report = engine.run()

    assert report.created["sms"] == 1 and report.delivered["sms"] == 1
    [request] = gateway.requests
    body = request.json()
    assert set(body) == {"id", "to", "from", "body"}
    assert body["id"] == message_id and body["to"] == PHONE_E164
    assert body["from"] == "+14155550100"
    assert OPT_OUT_SMS in body["body"] and "Acme Recovery" in body["body"]
    [entry] = engine.store.entries()
    assert request.headers["Idempotency-Key"] == entry.key
    assert entry.key.endswith(":sms") and entry.state == "delivered"
    assert entry.partner_reference == "gw-1" and entry.attempts == 1
    assert "to" in entry.job.payload and PHONE_E164 not in str(entry.as_dict())
    [sent] = events_of(svc, account_id, Account.MessageSent)
    assert sent.message_id == message_id and sent.provider_id == "gw-1"
    assert engine.run().anything is False  # nothing new, nothing due


def test_only_sms_messages_become_sms_jobs_and_each_event_once(
    svc: LedgerService,
    account_id: UUID,
    clock: MovableClock,
    gateway: Gateway,
    make_sms: Callable[..., SmsAdapter],
) -> None:
    """E-mails and letters are not texts; reading the log again makes no second job."""
    queue(svc, account_id, channel="email")
    queue(svc, account_id, channel="letter", purpose="remedy_notice")
    queue(svc, account_id)
    engine = engine_for(svc, make_sms(gateway.url), clock=clock)
    engine.collect()
    with engine.store.transaction() as tx:
        tx.execute("UPDATE outbox_positions SET position = 0")  # as if the move was lost
    engine.collect()
    assert len(engine.store.entries()) == 1


def test_twilio_profile_posts_the_form_with_basic_auth_and_takes_status_callbacks(
    svc: LedgerService,
    account_id: UUID,
    clock: MovableClock,
    gateway: Gateway,
    make_sms: Callable[..., SmsAdapter],
) -> None:
    """Twilio: To/From/Body form, basic auth from env, sid as reference; callbacks by sid."""
    message_id = queue(svc, account_id)
    environ = {"TW_SID": "ACtest", "TW_TOKEN": "s3cret"}
    adapter = make_sms(
        gateway.base + "/2010-04-01/Accounts/{account_sid}/Messages.json",
        profile="twilio",
        account_sid_env="TW_SID",
        auth_token_env="TW_TOKEN",
        status_callback_url="https://arrears.example/v1/callbacks/sms",
        environ=environ,
    )
    engine = engine_for(svc, adapter, clock=clock)
    engine.run()

    [request] = gateway.requests
    assert request.path == "/2010-04-01/Accounts/ACtest/Messages.json"
    assert (
        request.headers["Authorization"] == "Basic " + base64.b64encode(b"ACtest:s3cret").decode()
    )
    form = request.form()
    assert form["To"] == PHONE_E164 and form["From"] == "+14155550100"
    assert OPT_OUT_SMS in form["Body"]
    assert form["StatusCallback"] == "https://arrears.example/v1/callbacks/sms"
    assert status(svc, account_id, message_id) == "sent"

    sid = engine.store.entries()[0].partner_reference
    assert sid == "gw-1"
    callback = {"MessageSid": sid, "MessageStatus": "sending"}
    assert handle_status_callback(svc, callback, store=engine.store) is False
    callback["MessageStatus"] = "delivered"
    assert handle_status_callback(svc, callback, store=engine.store) is True
    assert handle_status_callback(svc, callback, store=engine.store) is False  # twice: once
    assert status(svc, account_id, message_id) == "delivered"
    with pytest.raises(errors.UnknownMessage):
        handle_status_callback(svc, {"MessageSid": "SMnope", "MessageStatus": "failed"})
    signature = twilio_signature("https://x.example/cb", {"b": "2", "a": "1"}, "s3cret")
    assert verify_twilio_signature(
        "https://x.example/cb", {"a": "1", "b": "2"}, signature, "s3cret"
    )
    assert not verify_twilio_signature("https://x.example/cb", {"a": "1"}, signature, "s3cret")


def test_generic_status_callback_records_delivery_once(
    svc: LedgerService,
    account_id: UUID,
    clock: MovableClock,
    gateway: Gateway,
    make_sms: Callable[..., SmsAdapter],
) -> None:
    """{"id", "status", "account_id"}: delivered once; a bad status is refused."""
    message_id = queue(svc, account_id)
    engine_for(svc, make_sms(gateway.url), clock=clock).run()
    report = {"id": message_id, "status": "delivered", "account_id": str(account_id)}
    assert handle_status_callback(svc, report) is True
    assert handle_status_callback(svc, report) is False
    assert [e.detail for e in events_of(svc, account_id, Account.MessageDelivered)] == [
        "gateway delivered"
    ]
    with pytest.raises(errors.InvalidChoice):
        handle_status_callback(svc, {**report, "status": "lost"})


def test_partner_down_is_retried_with_backoff_then_dead_and_recorded_failed(
    svc: LedgerService,
    account_id: UUID,
    clock: MovableClock,
    closed_port: int,
    make_sms: Callable[..., SmsAdapter],
) -> None:
    """Connection refused: retried after 1 s, then 2 s; the third failure: dead, MessageFailed."""
    message_id = queue(svc, account_id)
    engine = engine_for(svc, make_sms(f"http://127.0.0.1:{closed_port}/messages"), clock=clock)

    first = engine.run()
    [entry] = engine.store.entries()
    assert first.retries["sms"] == 1 and entry.state == "pending" and entry.attempts == 1
    assert entry.last_error == "DeliveryError: cannot reach the SMS gateway (ConnectError)"
    assert engine.run().anything is False  # not due yet
    clock.advance(timedelta(seconds=1.1))
    assert engine.run().retries["sms"] == 1
    clock.advance(timedelta(seconds=1.1))
    assert engine.run().anything is False  # the second wait is 2 s
    clock.advance(timedelta(seconds=1))
    assert engine.run().dead["sms"] == 1

    [entry] = engine.store.entries()
    assert entry.state == "dead" and entry.attempts == 3
    [failed] = events_of(svc, account_id, Account.MessageFailed)
    assert failed.message_id == message_id and "cannot reach the SMS gateway" in failed.reason
    assert status(svc, account_id, message_id) == "failed"


def test_a_slow_gateway_times_out_and_the_retry_carries_the_same_key(
    svc: LedgerService,
    account_id: UUID,
    clock: MovableClock,
    gateway: Gateway,
    make_sms: Callable[..., SmsAdapter],
) -> None:
    """A gateway slower than the timeout: retried; it sees the key twice and sends once."""
    message_id = queue(svc, account_id)
    gateway.script = [Reply(delay=0.6)]
    engine = engine_for(svc, make_sms(gateway.url, timeout=0.2), clock=clock)

    assert engine.run().retries["sms"] == 1
    assert engine.store.entries()[0].last_error == (
        "DeliveryError: the SMS gateway did not answer within 0.2s"
    )
    clock.advance(timedelta(seconds=1.1))
    assert engine.run().delivered["sms"] == 1

    assert len(gateway.requests) == 2 and len(gateway.keys) == 1
    assert len(gateway.sent) == 1  # acted on once
    assert status(svc, account_id, message_id) == "sent"


def test_server_errors_are_retried_and_client_errors_fail_the_message_at_once(
    svc: LedgerService,
    account_id: UUID,
    clock: MovableClock,
    gateway: Gateway,
    make_sms: Callable[..., SmsAdapter],
) -> None:
    """500 then 2xx: sent on the retry.  429 waits its Retry-After.  400: dead, MessageFailed."""
    first = queue(svc, account_id)
    gateway.script = [Reply(500), Reply(429, headers={"Retry-After": "3"})]
    engine = engine_for(svc, make_sms(gateway.url), clock=clock)
    engine.run()
    clock.advance(timedelta(seconds=1.1))
    engine.run()
    [entry] = engine.store.entries()
    assert entry.last_error == "DeliveryError: the SMS gateway answered HTTP 429 (code error)"
    clock.advance(timedelta(seconds=2.1))  # backoff says 2 s, the gateway said 3
    assert engine.run().anything is False
    clock.advance(timedelta(seconds=1))
    assert engine.run().delivered["sms"] == 1
    assert status(svc, account_id, first) == "sent"

    second = queue(svc, account_id)
    gateway.script = [Reply(400, body={"code": 21211, "message": f"bad To {PHONE_E164}"})]
    assert engine.run().dead["sms"] == 1
    [failed] = events_of(svc, account_id, Account.MessageFailed)
    assert failed.message_id == second
    assert failed.reason == (
        "PermanentDeliveryError: the SMS gateway answered HTTP 400 (code 21211): "
        "it refused the message"
    )

    third = queue(svc, account_id)  # Retry-After past the backoff cap (4 s) still holds
    gateway.script = [Reply(429, headers={"Retry-After": "10"})]
    engine.run()
    clock.advance(timedelta(seconds=9))
    assert engine.run().anything is False
    clock.advance(timedelta(seconds=1.1))
    assert engine.run().delivered["sms"] == 1
    assert status(svc, account_id, third) == "sent"


def test_an_invalid_number_fails_the_message_without_calling_the_gateway(
    svc: LedgerService,
    clock: MovableClock,
    gateway: Gateway,
    make_sms: Callable[..., SmsAdapter],
) -> None:
    """Numbers are checked as E.164 with phonenumbers before anything is sent."""
    debtor = DebtorDetails(
        name="Sam Nonumber",
        phones=["+1 123 456 7890"],  # digits enough, but no such US area code
        time_zone="America/Chicago",
        jurisdiction="US-IL",
    )
    account_id = open_account(svc, "ACC-0002", debtor)
    message_id = queue(svc, account_id)
    engine_for(svc, make_sms(gateway.url), clock=clock).run()
    assert gateway.requests == []
    [failed] = events_of(svc, account_id, Account.MessageFailed)
    assert failed.message_id == message_id and "E.164 number" in failed.reason
    assert to_e164("(415) 555-0134", "US") == PHONE_E164
    with pytest.raises(PermanentDeliveryError):
        to_e164("415 555 0134")  # no country, no default region


def test_the_recipient_label_picks_the_debtors_number_at_delivery_time(
    svc: LedgerService,
    clock: MovableClock,
    gateway: Gateway,
    make_sms: Callable[..., SmsAdapter],
) -> None:
    """``to="phone:1"`` is the second number; a number changed after queueing is used."""
    debtor = DebtorDetails(
        name="Pat Twophones",
        phones=["+1 312 555 0199", "+1 312 555 0123"],
        time_zone="America/Chicago",
        jurisdiction="US-IL",
    )
    account_id = open_account(svc, "ACC-0003", debtor)
    queue(svc, account_id, to="phone:1")
    debtor_id = svc.get_account(account_id).debtor_id
    assert debtor_id is not None
    svc.update_debtor_contact_details(debtor_id, phones=["+1 312 555 0199", "+1 312 555 0177"])
    engine_for(svc, make_sms(gateway.url), clock=clock).run()
    assert gateway.requests[0].json()["to"] == "+13125550177"


def test_a_cease_request_after_queueing_stops_the_text(
    svc: LedgerService,
    account_id: UUID,
    clock: MovableClock,
    gateway: Gateway,
    make_sms: Callable[..., SmsAdapter],
) -> None:
    """The gate is asked again at delivery: a cease recorded since then fails the message."""
    message_id = queue(svc, account_id)
    svc.receive_cease(account_id, received_via="letter")
    engine_for(svc, make_sms(gateway.url), clock=clock).run()
    assert gateway.requests == []
    [failed] = events_of(svc, account_id, Account.MessageFailed)
    assert failed.message_id == message_id
    assert "contact gate now blocks" in failed.reason and "cease_communication" in failed.reason


def test_a_duplicate_delivery_is_seen_once_by_the_gateway(
    svc: LedgerService,
    account_id: UUID,
    clock: MovableClock,
    gateway: Gateway,
    make_sms: Callable[..., SmsAdapter],
) -> None:
    """The same job delivered twice carries the same key; the gateway acts on it once."""
    queue(svc, account_id)
    adapter = make_sms(gateway.url)
    engine = engine_for(svc, adapter, clock=clock)
    engine.collect()
    [entry] = engine.store.entries()
    first = adapter.deliver(entry.job, svc)
    second = adapter.deliver(entry.job, svc)
    assert first == second == "gw-1"
    assert gateway.keys == {entry.key: 2} and len(gateway.sent) == 1


def test_a_worker_killed_after_the_post_redelivers_with_the_same_key_after_restart(
    svc: LedgerService,
    account_id: UUID,
    clock: MovableClock,
    gateway: Gateway,
    make_sms: Callable[..., SmsAdapter],
) -> None:
    """Killed between the gateway's 2xx and the outbox's record: a new worker sends again
    with the same key once the lease ends; the gateway acts once; MessageSent once."""
    message_id = queue(svc, account_id)

    class DiesAfterPost(SmsAdapter):
        def deliver(self, job: Job, service: LedgerService) -> str:
            super().deliver(job, service)
            raise Crash

    dying = DiesAfterPost(make_sms(gateway.url).settings, make_sms(gateway.url).renderer)
    try:
        with pytest.raises(Crash):
            engine_for(svc, dying, clock=clock).run()
    finally:
        dying.close()
    [entry] = engine_for(svc, clock=clock).store.entries()
    assert entry.state == "pending" and entry.attempts == 1 and entry.partner_reference is None
    assert status(svc, account_id, message_id) == "queued"

    restarted = engine_for(svc, make_sms(gateway.url), clock=clock)
    assert restarted.run().anything is False  # the dead worker's lease still holds it
    clock.advance(timedelta(seconds=LEASE))
    assert restarted.run().delivered["sms"] == 1

    assert gateway.keys == {entry.key: 2} and len(gateway.sent) == 1
    assert len(events_of(svc, account_id, Account.MessageSent)) == 1
    assert restarted.store.get(entry.key).attempts == 2  # type: ignore[union-attr]


def test_no_phone_number_in_any_log_line(
    svc: LedgerService,
    account_id: UUID,
    clock: MovableClock,
    gateway: Gateway,
    closed_port: int,
    make_sms: Callable[..., SmsAdapter],
    captured_logs: list[dict[str, Any]],
) -> None:
    """Sent, refused with the number quoted back, and unreachable: no log holds the number."""
    queue(svc, account_id)
    queue(svc, account_id)
    gateway.script = [Reply(200), Reply(400, body={"code": "bad", "message": PHONE_E164})]
    engine = engine_for(svc, make_sms(gateway.url), clock=clock)
    engine.run()
    queue(svc, account_id)
    down = engine_for(svc, make_sms(f"http://127.0.0.1:{closed_port}/"), clock=clock)
    down.run()
    handle_status_callback(svc, {"MessageSid": "gw-1", "MessageStatus": "delivered"})

    assert {e["event"] for e in captured_logs} >= {
        "outbox_jobs_created",
        "outbox_delivered",
        "outbox_dead",
        "outbox_delivery_failed",
        "sms_status_reported",
    }
    text = repr(captured_logs)
    for fragment in (PHONE_E164, "415 555 0134", "4155550134", "jane.debtor", "Jane Q."):
        assert fragment not in text


def test_a_national_number_is_read_in_the_debtors_country(
    svc: LedgerService,
    clock: MovableClock,
    gateway: Gateway,
    make_sms: Callable[..., SmsAdapter],
) -> None:
    """A UK mobile written 07911 123456 goes out as +447911123456, whatever default_region."""
    clock.set(clock.current.replace(hour=14, minute=0))  # 14:00 in London too
    debtor = DebtorDetails(
        name="Sam Brit", phones=["07911 123456"], time_zone="Europe/London", jurisdiction="GB"
    )
    account_id = open_account(svc, "GB-0001", debtor)
    queue(svc, account_id)
    engine_for(svc, make_sms(gateway.url), clock=clock).run()
    [request] = gateway.requests
    assert request.json()["to"] == "+447911123456"


def test_the_gateway_must_be_https_unless_on_loopback(make_sms: Callable[..., SmsAdapter]) -> None:
    """A text carries a number and a debt: never over plain HTTP to another host."""
    with pytest.raises(AdapterConfigError, match="https"):
        make_sms("http://sms.example.com/send")
