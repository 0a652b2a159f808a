"""Helpers of the adapter tests: partners on loopback, the debtor to reach, the engine.

Every server binds 127.0.0.1 on a free port and stops with its test.  The gateway
and the SMTP server play well-behaved partners: each remembers the idempotency
keys (or Message-IDs) it has seen, so a test can count what a receiver would act
on, and each can be scripted to fail, stall or refuse.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl
from uuid import UUID

from adapters.config import EmailSettings, SmsSettings
from adapters.outbox.base import Adapter
from adapters.outbox.engine import OutboxEngine
from adapters.render import Renderer
from ledger.clock import MovableClock
from ledger.money import Money
from ledger.observers import RetryPolicy
from ledger.services import DebtorDetails, LedgerService, Placement

#: 14:00 in Chicago: inside Reg F's convenient hours for JANE.
AFTERNOON = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)
PHONE = "+1 415 555 0134"
PHONE_E164 = "+14155550134"
EMAIL = "jane.debtor@example.com"
JANE = DebtorDetails(
    name="Jane Q. Debtor",
    phones=[PHONE],
    emails=[EMAIL],
    addresses=[{"line1": "12 Elm Street", "city": "Springfield", "postcode": "62701"}],
    time_zone="America/Chicago",
    jurisdiction="US-IL",
)
#: Three attempts, 1 s then 2 s apart, no jitter: tests move the clock, never sleep.
POLICY = RetryPolicy(attempts=3, base_delay=1.0, max_delay=4.0, jitter=0.0)
LEASE = 30.0
OPT_OUT_SMS = "Reply STOP to stop texts from us."
OPT_OUT_EMAIL = "To stop emails from us, use the unsubscribe link or reply STOP."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def usd(text: str) -> Money:
    return Money.parse(text, "USD")


def open_account(
    service: LedgerService, reference: str = "ACC-0001", debtor: DebtorDetails = JANE
) -> UUID:
    """Register ``debtor`` and place an account owed by them."""
    registered = service.register_debtor(debtor)
    account = service.place_account(
        Placement(
            creditor="acme-bank",
            reference=reference,
            currency="USD",
            principal=usd("1000.00"),
            interest=usd("150.00"),
            fees=usd("50.00"),
            itemization_date=date(2025, 11, 30),
            itemization_kind="charge_off",
            original_creditor="Acme Bank N.A.",
            charge_off_date=date(2025, 11, 30),
        ),
        debtor_id=registered.id,
    )
    return UUID(str(account.id))


def engine_for(
    service: LedgerService, *adapters: Adapter, clock: MovableClock, **options: Any
) -> OutboxEngine:
    settings: dict[str, Any] = {
        "clock": clock,
        "policy": POLICY,
        "rand": lambda: 0.0,
        "lease_seconds": LEASE,
    }
    settings.update(options)
    return OutboxEngine(service, list(adapters), **settings)


def make_renderer(pm: Any) -> Renderer:
    return Renderer(pm, variables={"company": "Acme Recovery", "phone": "+1 800 555 0100"})


def events_of(service: LedgerService, account_id: UUID, kind: type) -> list[Any]:
    return [e for e in service.ledger.events.get(account_id) if isinstance(e, kind)]


# ----------------------------------------------------------------- SMS gateway


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-able; None on a 2xx: {"id": <gateway id>, "sid": ...}
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode()))


class Gateway:
    """An SMS gateway on loopback: records every request, sends once per ``Idempotency-Key``."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.script: list[Reply] = []  # the next replies, in order; then 200s
        self.sent: dict[str, str] = {}  # idempotency key -> gateway id: what it acted on
        self.lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                received = Received(self.path, dict(self.headers.items()), self.rfile.read(length))
                with gateway.lock:
                    gateway.requests.append(received)
                    reply = gateway.script.pop(0) if gateway.script else Reply()
                if reply.delay:
                    time.sleep(reply.delay)
                body = reply.body
                if 200 <= reply.status < 300 and body is None:
                    key = received.headers.get("Idempotency-Key", f"none-{len(gateway.requests)}")
                    with gateway.lock:
                        gateway_id = gateway.sent.setdefault(key, f"gw-{len(gateway.sent) + 1}")
                    body = {"id": gateway_id, "sid": gateway_id}
                data = json.dumps(body if body is not None else {"code": "error"}).encode()
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (a timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"{self.base}/messages"

    @property
    def keys(self) -> Counter[str]:
        """Requests per idempotency key."""
        return Counter(r.headers.get("Idempotency-Key", "") for r in self.requests)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def sms_settings(url: str, **overrides: Any) -> SmsSettings:
    values: dict[str, Any] = {"url": url, "sender": "+14155550100", "timeout": 0.5}
    values.update(overrides)
    return SmsSettings(**values)


# ----------------------------------------------------------------- SMTP server


@dataclass
class SmtpScript:
    rcpt: list[str] = field(default_factory=list)  # next RCPT answers ("": accept); then 250
    data: list[str] = field(default_factory=list)  # next DATA answers; then 250
    delay: float = 0.0  # seconds before answering the next DATA


class Mailbox:
    """An aiosmtpd handler: what the SMTP server accepted, and how it is told to answer."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.script = SmtpScript()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        answer = self.script.rcpt.pop(0) if self.script.rcpt else ""
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.script.delay:
            delay, self.script.delay = self.script.delay, 0.0
            await asyncio.sleep(delay)
            return "451 too slow"
        if self.script.data:
            return self.script.data.pop(0)
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK queued"

    @property
    def message_ids(self) -> Counter[str]:
        return Counter(str(m["Message-ID"]) for m in self.messages)


def email_settings(port: int, **overrides: Any) -> EmailSettings:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "security": "plain",
        "sender": "Acme Recovery <notices@acme-recovery.example>",
        "timeout": 0.5,
        "list_unsubscribe": (
            "mailto:unsubscribe@acme-recovery.example?subject=unsubscribe",
            "https://acme-recovery.example/unsubscribe/{message_id}",
        ),
    }
    values.update(overrides)
    return EmailSettings(**values)
