"""E-mail through an SMTP server on loopback (aiosmtpd): standard MIME, once per Message-ID.

The story: a collector asks for an e-mail; the outbox renders it (text and HTML,
the opt-out notice in both, a List-Unsubscribe header) and hands it to the relay;
the relay's answers (accepted, deferred, refused, silent) decide what the ledger
records.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from outbox_helpers import EMAIL, LEASE, OPT_OUT_EMAIL, Mailbox, engine_for, events_of

from adapters.email import EmailAdapter, message_id_for
from adapters.outbox.base import Job
from ledger.clock import MovableClock
from ledger.domain.account import Account
from ledger.services import LedgerService


class Crash(BaseException):
    """Stands for the worker dying: nothing after it runs."""


def queue(svc: LedgerService, account_id: UUID) -> str:
    return svc.request_message(account_id, channel="email", template="reminder").message_id


def status(svc: LedgerService, account_id: UUID, message_id: str) -> str:
    return str(svc.get_account(account_id).messages[message_id]["status"])


def test_an_email_is_standard_mime_with_opt_out_and_unsubscribe_and_recorded_sent(
    svc: LedgerService,
    account_id: UUID,
    clock: MovableClock,
    mailbox: tuple[Mailbox, int],
    make_email: Callable[..., EmailAdapter],
) -> None:
    """multipart/alternative text + HTML, both with the opt-out; Message-ID from the key."""
    box, port = mailbox
    message_id = queue(svc, account_id)
    engine = engine_for(svc, make_email(port), clock=clock)
    assert engine.run().delivered["email"] == 1

    [mail] = box.messages
    [entry] = engine.store.entries()
    assert box.envelopes == [("notices@acme-recovery.example", [EMAIL])]
    assert mail["To"] == EMAIL and mail["From"] == "Acme Recovery <notices@acme-recovery.example>"
    assert mail["Subject"] == "Your Acme Bank N.A. account ACC-0001"
    assert mail["Message-ID"] == message_id_for(entry.key, "acme-recovery.example")
    assert mail["Message-ID"].startswith(f"<{entry.key.replace(':', '.')}@")
    assert mail["X-Arrears-Key"] == entry.key
    assert mail["List-Unsubscribe"] == (
        "<mailto:unsubscribe@acme-recovery.example?subject=unsubscribe>, "
        f"<https://acme-recovery.example/unsubscribe/{message_id}>"
    )
    assert mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and html is not None
    plain, markup = text.get_content(), html.get_content()
    for part in (plain, markup):
        assert OPT_OUT_EMAIL in part
        assert "This is a communication from a debt collector." in part
        assert "1200.00 USD" in part
    assert "Dear Jane Q. Debtor," in plain and "<p>Dear Jane Q. Debtor,</p>" in markup
    assert f'href="https://acme-recovery.example/unsubscribe/{message_id}"' in markup
    [sent] = events_of(svc, account_id, Account.MessageSent)
    assert sent.provider_id == mail["Message-ID"] == entry.partner_reference
    assert status(svc, account_id, message_id) == "sent"


def test_a_refused_recipient_fails_the_message_and_a_deferral_is_retried(
    svc: LedgerService,
    account_id: UUID,
    clock: MovableClock,
    mailbox: tuple[Mailbox, int],
    make_email: Callable[..., EmailAdapter],
) -> None:
    """451 at RCPT: retried and then accepted.  550: dead at once, MessageFailed with the code
    and not the relay's text, which quotes the address."""
    box, port = mailbox
    first = queue(svc, account_id)
    box.script.rcpt = ["451 4.7.1 greylisted, try later"]
    engine = engine_for(svc, make_email(port), clock=clock)
    assert engine.run().retries["email"] == 1
    assert engine.store.entries()[0].last_error == (
        "DeliveryError: the mail server deferred the recipient (SMTP 451)"
    )
    clock.advance(timedelta(seconds=1.1))
    assert engine.run().delivered["email"] == 1
    assert status(svc, account_id, first) == "sent"

    second = queue(svc, account_id)
    box.script.rcpt = [f"550 5.1.1 <{EMAIL}>: no such user"]
    assert engine.run().dead["email"] == 1
    [failed] = events_of(svc, account_id, Account.MessageFailed)
    assert failed.message_id == second
    assert (
        failed.reason == "PermanentDeliveryError: the mail server refused the recipient (SMTP 550)"
    )
    box.script.data = ["554 5.6.0 message refused"]
    third = queue(svc, account_id)
    engine.run()
    assert status(svc, account_id, third) == "failed"


def test_a_relay_that_is_down_or_silent_is_retried(
    svc: LedgerService,
    account_id: UUID,
    clock: MovableClock,
    mailbox: tuple[Mailbox, int],
    closed_port: int,
    make_email: Callable[..., EmailAdapter],
) -> None:
    """Connection refused and a relay slower than the timeout are both retried later."""
    box, port = mailbox
    queue(svc, account_id)
    down = engine_for(svc, make_email(closed_port), clock=clock)
    assert down.run().retries["email"] == 1
    assert down.store.entries()[0].last_error == (
        "DeliveryError: cannot reach the mail server (ConnectionRefusedError)"
    )
    box.script.delay = 1.0
    slow = engine_for(svc, make_email(port, timeout=0.3), clock=clock)
    clock.advance(timedelta(seconds=1.1))
    assert slow.run().retries["email"] == 1
    assert slow.store.entries()[0].last_error == (
        "DeliveryError: the mail server did not answer in time"
    )
    clock.advance(timedelta(seconds=4))
    assert slow.run().dead["email"] == 0
    assert len(box.messages) == 1


def test_starttls_not_offered_is_a_configuration_problem_retried(
    svc: LedgerService,
    account_id: UUID,
    clock: MovableClock,
    mailbox: tuple[Mailbox, int],
    make_email: Callable[..., EmailAdapter],
) -> None:
    """security = "starttls" against a relay without STARTTLS never sends in the clear."""
    box, port = mailbox
    queue(svc, account_id)
    engine = engine_for(svc, make_email(port, security="starttls"), clock=clock)
    assert engine.run().retries["email"] == 1
    assert "does not offer STARTTLS" in (engine.store.entries()[0].last_error or "")
    assert box.messages == []


def test_a_duplicate_and_a_redelivery_after_a_crash_carry_one_message_id(
    svc: LedgerService,
    account_id: UUID,
    clock: MovableClock,
    mailbox: tuple[Mailbox, int],
    make_email: Callable[..., EmailAdapter],
) -> None:
    """Killed after the relay took it: the restarted worker sends it again with the same
    Message-ID, so the receiver sees one message; MessageSent is recorded once."""
    box, port = mailbox
    message_id = queue(svc, account_id)
    adapter = make_email(port)

    class DiesAfterSend(EmailAdapter):
        def deliver(self, job: Job, service: LedgerService) -> str:
            super().deliver(job, service)
            raise Crash

    with pytest.raises(Crash):
        engine_for(svc, DiesAfterSend(adapter.settings, adapter.renderer), clock=clock).run()
    assert status(svc, account_id, message_id) == "queued"
    clock.advance(timedelta(seconds=LEASE))
    restarted = engine_for(svc, adapter, clock=clock)
    assert restarted.run().delivered["email"] == 1
    [entry] = restarted.store.entries()
    adapter.deliver(entry.job, svc)  # and once more, by hand: the ledger says sent already

    assert len(box.messages) == 2 and len(box.message_ids) == 1
    assert len(events_of(svc, account_id, Account.MessageSent)) == 1


def test_no_address_in_any_log_line(
    svc: LedgerService,
    account_id: UUID,
    clock: MovableClock,
    mailbox: tuple[Mailbox, int],
    make_email: Callable[..., EmailAdapter],
    captured_logs: list[dict[str, Any]],
) -> None:
    """Sent, and refused with the address quoted back: no log holds the address."""
    box, port = mailbox
    queue(svc, account_id)
    queue(svc, account_id)
    box.script.rcpt = ["", f"550 <{EMAIL}> unknown"]
    engine_for(svc, make_email(port), clock=clock).run()
    assert {e["event"] for e in captured_logs} >= {"outbox_delivered", "outbox_dead"}
    assert "jane.debtor" not in repr(captured_logs) and "Jane Q." not in repr(captured_logs)
