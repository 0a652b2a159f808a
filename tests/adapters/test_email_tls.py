"""E-mail over TLS to a real SMTP server on loopback: STARTTLS and implicit TLS (SSL),
with the relay's certificate verified against a CA made for the test (trustme)."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import trustme
from aiosmtpd.controller import Controller
from outbox_helpers import EMAIL, OPT_OUT_EMAIL, Mailbox, engine_for, free_port

from adapters.email import EmailAdapter
from ledger.clock import MovableClock
from ledger.services import LedgerService


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "relay-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def relay(ca: trustme.CA, *, implicit: bool) -> Iterator[tuple[Mailbox, int]]:
    box, port = Mailbox(), free_port()
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)
    tls: dict[str, Any] = (
        {"ssl_context": server_context(ca)}
        if implicit
        else {"tls_context": server_context(ca), "require_starttls": True}
    )
    controller = Controller(box, hostname="127.0.0.1", port=port, ready_timeout=5, **tls)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture
def starttls_relay(ca: trustme.CA) -> Iterator[tuple[Mailbox, int]]:
    yield from relay(ca, implicit=False)


@pytest.fixture
def ssl_relay(ca: trustme.CA) -> Iterator[tuple[Mailbox, int]]:
    yield from relay(ca, implicit=True)


def queue(svc: LedgerService, account_id: UUID) -> str:
    return svc.request_message(account_id, channel="email", template="reminder").message_id


@pytest.mark.parametrize(
    ("fixture", "security"), [("starttls_relay", "starttls"), ("ssl_relay", "ssl")]
)
def test_email_goes_out_encrypted_to_a_verified_relay(
    request: pytest.FixtureRequest,
    fixture: str,
    security: str,
    ca_file: str,
    svc: LedgerService,
    account_id: UUID,
    clock: MovableClock,
    make_email: Callable[..., EmailAdapter],
) -> None:
    box, port = request.getfixturevalue(fixture)
    queue(svc, account_id)
    adapter = make_email(port, security=security, ca_file=ca_file, timeout=5.0)
    assert engine_for(svc, adapter, clock=clock).run().delivered["email"] == 1
    [mail] = box.messages
    assert mail["To"] == EMAIL
    body = mail.get_body(("plain",))
    assert body is not None and OPT_OUT_EMAIL in body.get_content()


def test_a_relay_whose_certificate_cannot_be_verified_gets_nothing(
    starttls_relay: tuple[Mailbox, int],
    svc: LedgerService,
    account_id: UUID,
    clock: MovableClock,
    make_email: Callable[..., EmailAdapter],
) -> None:
    """Without the relay's CA the handshake fails: retried later, never sent in the clear."""
    box, port = starttls_relay
    queue(svc, account_id)
    engine = engine_for(svc, make_email(port, security="starttls", timeout=5.0), clock=clock)
    assert engine.run().retries["email"] == 1
    assert box.messages == []
    assert "SSL" in (engine.store.entries()[0].last_error or "")
