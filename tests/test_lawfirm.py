"""Law-firm referrals: the signed package reaches the firm once, whatever fails on the way.

The firm is a real HTTP server on loopback (``Firm``): it checks every request's
signature with the shared secret against the test's clock, acts once per
``Idempotency-Key`` (the reference it answers is the same for a repeat), and can
be told to fail or to stall.  The outbox engine runs as the worker would, with
the clock moved instead of sleeping.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import structlog
from conftest import JANE, placement

import adapters.lawfirm.adapter
import adapters.lawfirm.callbacks
import adapters.outbox.engine
from adapters import signing
from adapters.config import AdapterConfigError, LawFirmSettings
from adapters.debt_sale.verify import Report, canonical_json, check_bundle
from adapters.lawfirm.adapter import LawFirmAdapter, lawfirm_adapters
from adapters.lawfirm.callbacks import CallbackLog, LawFirmCallbacks, ReplayedDelivery
from adapters.lawfirm.package import package_digest
from adapters.outbox.engine import OutboxEngine
from adapters.outbox.store import OutboxStore
from bootstrap import build_service
from ledger import errors
from ledger.clock import MovableClock
from ledger.domain.account import Account
from ledger.observers import RetryPolicy
from ledger.services import LedgerService
from plugins.manager import build_plugin_manager

FIRM = "smith-legal"
SECRET = "whsec_smith_current_0123456789abcdef"
OLD_SECRET = "whsec_smith_retired_fedcba9876543210"
SECRET_ENV = "TEST_LAWFIRM_SMITH_SECRET"
ENVIRON = {SECRET_ENV: SECRET}
#: Three attempts, 1 s then 2 s apart, no jitter: tests move the clock, never sleep.
POLICY = RetryPolicy(attempts=3, base_delay=1.0, max_delay=4.0, jitter=0.0)
LEASE = 30.0


# ------------------------------------------------------------------ the firm


@dataclass
class Answer:
    status: int = 201
    delay: float = 0.0
    body: Any = None  # None on a 2xx: {"reference": <the firm's case number>}


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    signature_ok: bool

    def package(self) -> dict[str, Any]:
        data = json.loads(self.body)
        assert isinstance(data, dict)
        return data


@dataclass
class Firm:
    """A law firm's intake endpoint on loopback."""

    clock: MovableClock
    secrets: tuple[str, ...] = (SECRET,)
    requests: list[Received] = field(default_factory=list)
    script: list[Answer] = field(default_factory=list)  # the next answers; then 201s
    cases: dict[str, str] = field(default_factory=dict)  # idempotency key -> case reference
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        firm = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    signing.verify(
                        self.headers.get(signing.HEADER),
                        body,
                        firm.secrets,
                        now=firm.clock.current.timestamp(),
                    )
                    signature_ok = True
                except errors.TokenInvalid:
                    signature_ok = False
                with firm.lock:
                    firm.requests.append(Received(dict(self.headers.items()), body, signature_ok))
                    answer = firm.script.pop(0) if firm.script else Answer()
                if answer.delay:
                    time.sleep(answer.delay)
                reply = answer.body
                if not signature_ok:
                    answer, reply = Answer(401), {"error": "bad signature"}
                elif 200 <= answer.status < 300 and reply is None:
                    key = self.headers.get("Idempotency-Key", "")
                    with firm.lock:  # a firm opens one case per key
                        reply = {
                            "reference": firm.cases.setdefault(key, f"CASE-{len(firm.cases) + 1}")
                        }
                data = json.dumps(reply if reply is not None else {"error": "x"}).encode()
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (the timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1/referrals"

    @property
    def keys(self) -> Counter[str]:
        return Counter(r.headers.get("Idempotency-Key", "") for r in self.requests)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Killed(BaseException):
    """The worker process dying: not an error any code catches."""


# ------------------------------------------------------------------ fixtures


@pytest.fixture
def svc(sqlite_url: str, clock: MovableClock) -> Iterator[LedgerService]:
    service = build_service(
        sqlite_url, clock=clock, plugins=build_plugin_manager(entry_points=False), config={}
    )
    yield service
    service.ledger.close()


@pytest.fixture
def firm(clock: MovableClock) -> Iterator[Firm]:
    f = Firm(clock)
    yield f
    f.stop()


def settings(url: str, **overrides: Any) -> LawFirmSettings:
    values: dict[str, Any] = {"name": FIRM, "url": url, "secret_env": SECRET_ENV, "timeout": 0.5}
    values.update(overrides)
    return LawFirmSettings(**values)


@pytest.fixture
def adapter(firm: Firm) -> Iterator[LawFirmAdapter]:
    made = LawFirmAdapter({FIRM: settings(firm.url)}, environ=ENVIRON)
    yield made
    made.close()


def engine_for(svc: LedgerService, adapter: LawFirmAdapter, clock: MovableClock) -> OutboxEngine:
    return OutboxEngine(
        svc, [adapter], clock=clock, policy=POLICY, rand=lambda: 0.0, lease_seconds=LEASE
    )


def referred(svc: LedgerService, firm: str = FIRM) -> UUID:
    debtor = svc.register_debtor(JANE)
    account_id = UUID(str(svc.place_account(placement(), debtor_id=debtor.id).id))
    svc.refer_to_law_firm(account_id, firm)
    return account_id


def events_of(svc: LedgerService, account_id: UUID, kind: type) -> list[Any]:
    return [e for e in svc.ledger.events.get(account_id) if isinstance(e, kind)]


def job_key(svc: LedgerService, account_id: UUID) -> str:
    (referral,) = events_of(svc, account_id, Account.ReferredToLawFirm)
    return f"{account_id}:{referral.originator_version}:lawfirm"


# ------------------------------------------------------------- delivering


def test_referral_reaches_the_firm_signed_and_is_acknowledged_once(
    svc: LedgerService, firm: Firm, adapter: LawFirmAdapter, clock: MovableClock
) -> None:
    """A referral is POSTed once, signed, keyed by its event, and acknowledged in the ledger."""
    account_id = referred(svc)
    engine = engine_for(svc, adapter, clock)
    assert engine.run().delivered["lawfirm"] == 1
    (request,) = firm.requests
    assert request.signature_ok
    assert request.headers["Idempotency-Key"] == job_key(svc, account_id)
    assert request.headers["Content-Type"] == "application/json"
    (ack,) = events_of(svc, account_id, Account.PartnerAcknowledged)
    assert (ack.partner_kind, ack.partner, ack.partner_reference) == ("law_firm", FIRM, "CASE-1")
    assert ack.delivery_key == job_key(svc, account_id)
    clock.advance(timedelta(minutes=5))
    assert engine.run().anything is False
    assert len(firm.requests) == 1
    assert len(events_of(svc, account_id, Account.PartnerAcknowledged)) == 1


def test_the_package_holds_what_the_firm_needs_and_proves_itself(
    svc: LedgerService, firm: Firm, adapter: LawFirmAdapter, clock: MovableClock
) -> None:
    """Account, itemization, balance, sealed history, debtor and referral; the digest holds."""
    account_id = referred(svc)
    engine_for(svc, adapter, clock).run()
    package = firm.requests[0].package()
    assert request_body_is_canonical(firm.requests[0].body, package)
    assert package["package_digest"] == package_digest(package)
    account = package["account"]
    assert account["account_id"] == str(account_id)
    assert (account["creditor"], account["original_creditor"]) == ("acme-bank", "Acme Bank N.A.")
    assert (account["reference"], account["currency"]) == ("ACC-0001", "USD")
    assert account["status"] == "with_law_firm"
    assert package["itemization"]["amount_at_itemization"] == "1200.00"
    assert package["itemization"]["current_amount"] == "1200.00"
    assert package["balance"] == {
        "principal": "1000.00",
        "interest": "150.00",
        "fees": "50.00",
        "total": "1200.00",
    }
    debtor = package["debtor"]
    assert debtor["name"] == JANE.name
    assert debtor["phones"] == list(JANE.phones) and debtor["emails"] == list(JANE.emails)
    assert debtor["addresses"] == [dict(a) for a in JANE.addresses]
    assert (debtor["time_zone"], debtor["jurisdiction"]) == ("America/Chicago", "US-IL")
    referral = package["referral"]
    assert referral["firm"] == FIRM and referral["delivery_key"] == job_key(svc, account_id)
    history = package["history"]
    versions = [e["version"] for e in history["events"]]
    assert referral["referral_version"] in versions  # the referral itself is covered
    assert history["seal"]["account_head"]["version"] == versions[-1]
    report = Report()
    assert check_bundle("history", canonical_json(history), report) is not None
    assert report.ok, [p.describe() for p in report.problems]


def request_body_is_canonical(body: bytes, package: dict[str, Any]) -> bool:
    return body == canonical_json(package)


def test_firm_down_is_retried_then_dead_and_noted_once(
    svc: LedgerService, clock: MovableClock, firm: Firm
) -> None:
    """Refused connections are retried with backoff; after the last attempt the referral is
    dead and the account says so in one note."""
    closed = firm.url
    firm.stop()
    made = LawFirmAdapter({FIRM: settings(closed)}, environ=ENVIRON)
    account_id = referred(svc)
    engine = engine_for(svc, made, clock)
    assert engine.run().retries["lawfirm"] == 1
    clock.advance(timedelta(seconds=1))
    assert engine.run().retries["lawfirm"] == 1
    clock.advance(timedelta(seconds=2))
    assert engine.run().dead["lawfirm"] == 1
    entry = OutboxStore(svc.ledger).get(job_key(svc, account_id))
    assert entry is not None and entry.state == "dead"
    assert entry.last_error is not None and f"cannot reach law firm {FIRM}" in entry.last_error
    (note,) = events_of(svc, account_id, Account.NoteAdded)
    assert f"referral to law firm {FIRM} could not be delivered" in note.text
    made.dead(entry.job, "again", svc)  # a second report of the same death
    assert len(events_of(svc, account_id, Account.NoteAdded)) == 1
    assert not events_of(svc, account_id, Account.PartnerAcknowledged)
    made.close()


def test_a_slow_firm_times_out_and_the_retry_reaches_it_with_the_same_key(
    svc: LedgerService, firm: Firm, adapter: LawFirmAdapter, clock: MovableClock
) -> None:
    """A firm slower than the timeout is retried; it sees one key twice and opens one case."""
    account_id = referred(svc)
    firm.script = [Answer(delay=1.2)]
    engine = engine_for(svc, adapter, clock)
    assert engine.run().retries["lawfirm"] == 1
    entry = OutboxStore(svc.ledger).get(job_key(svc, account_id))
    assert entry is not None and "did not answer within 0.5s" in (entry.last_error or "")
    clock.advance(timedelta(seconds=1))
    assert engine.run().delivered["lawfirm"] == 1
    assert firm.keys == Counter({job_key(svc, account_id): 2})
    assert len(firm.cases) == 1
    assert len(events_of(svc, account_id, Account.PartnerAcknowledged)) == 1


def test_a_server_error_is_retried_and_then_delivered(
    svc: LedgerService, firm: Firm, adapter: LawFirmAdapter, clock: MovableClock
) -> None:
    """HTTP 500 then 201: delivered on the second attempt, acknowledged once."""
    account_id = referred(svc)
    firm.script = [Answer(500)]
    engine = engine_for(svc, adapter, clock)
    assert engine.run().retries["lawfirm"] == 1
    clock.advance(timedelta(seconds=1))
    assert engine.run().delivered["lawfirm"] == 1
    assert [r.signature_ok for r in firm.requests] == [True, True]
    (ack,) = events_of(svc, account_id, Account.PartnerAcknowledged)
    assert ack.partner_reference == "CASE-1"


def test_a_refusal_by_the_firm_is_final(
    svc: LedgerService, firm: Firm, adapter: LawFirmAdapter, clock: MovableClock
) -> None:
    """A 4xx other than 408/429 dead-letters the referral at once."""
    account_id = referred(svc)
    firm.script = [Answer(422, body={"error": "missing documents"})]
    assert engine_for(svc, adapter, clock).run().dead["lawfirm"] == 1
    assert len(firm.requests) == 1
    (note,) = events_of(svc, account_id, Account.NoteAdded)
    assert "answered HTTP 422" in note.text


def test_a_firm_without_config_is_a_permanent_error_naming_it(
    svc: LedgerService, adapter: LawFirmAdapter, firm: Firm, clock: MovableClock
) -> None:
    """A referral to a firm with no [adapters.lawfirm.NAME] table is dead, and says which."""
    account_id = referred(svc, firm="jones-llp")
    assert engine_for(svc, adapter, clock).run().dead["lawfirm"] == 1
    entry = OutboxStore(svc.ledger).get(job_key(svc, account_id))
    assert entry is not None and "[adapters.lawfirm.jones-llp]" in (entry.last_error or "")
    assert firm.requests == []


def test_a_duplicate_delivery_is_seen_once_by_the_firm(
    svc: LedgerService, firm: Firm, adapter: LawFirmAdapter
) -> None:
    """Delivering the same job twice sends the same key; the firm opens one case."""
    account_id = referred(svc)
    (event,) = events_of(svc, account_id, Account.ReferredToLawFirm)
    (job,) = adapter.jobs(event, 1)
    assert adapter.deliver(job, svc) == adapter.deliver(job, svc) == "CASE-1"
    assert firm.keys == Counter({job.key: 2})
    assert list(firm.cases) == [job.key]


def test_worker_killed_after_the_post_redelivers_with_the_same_key(
    svc: LedgerService, firm: Firm, adapter: LawFirmAdapter, clock: MovableClock
) -> None:
    """The worker dies after the firm answered but before anything was marked: the next
    worker sends it again under the same key, and the ledger acknowledges it once."""
    account_id = referred(svc)
    real_deliver = adapter.deliver

    def deliver_then_die(job: Any, service: LedgerService) -> str:
        real_deliver(job, service)
        raise Killed

    adapter.deliver = deliver_then_die  # type: ignore[method-assign]
    with pytest.raises(Killed):
        engine_for(svc, adapter, clock).run()
    del adapter.deliver
    clock.advance(timedelta(seconds=LEASE + 1))
    assert engine_for(svc, adapter, clock).run().delivered["lawfirm"] == 1
    assert firm.keys == Counter({job_key(svc, account_id): 2})
    assert len(firm.cases) == 1
    assert len(events_of(svc, account_id, Account.PartnerAcknowledged)) == 1


def test_worker_killed_before_the_outcome_is_recorded_does_not_post_again(
    svc: LedgerService, firm: Firm, adapter: LawFirmAdapter, clock: MovableClock
) -> None:
    """Once the firm's answer is stored, a restart only records the acknowledgement."""
    account_id = referred(svc)
    real_succeeded = adapter.succeeded

    def die(job: Any, reference: str, service: LedgerService) -> None:
        raise Killed

    adapter.succeeded = die  # type: ignore[method-assign]
    with pytest.raises(Killed):
        engine_for(svc, adapter, clock).run()
    adapter.succeeded = real_succeeded  # type: ignore[method-assign]
    clock.advance(timedelta(seconds=LEASE + 1))
    assert engine_for(svc, adapter, clock).run().delivered["lawfirm"] == 1
    assert len(firm.requests) == 1
    (ack,) = events_of(svc, account_id, Account.PartnerAcknowledged)
    assert ack.partner_reference == "CASE-1"


def test_a_time_barred_debt_is_never_referred_or_delivered(
    svc: LedgerService, firm: Firm, adapter: LawFirmAdapter, clock: MovableClock
) -> None:
    """The rule packs refuse the referral of a time-barred debt: nothing reaches the firm."""
    debtor = svc.register_debtor(JANE)
    account_id = UUID(str(svc.place_account(placement(), debtor_id=debtor.id).id))
    svc.set_limitation_date(account_id, date(2026, 1, 1), "IL 5-year written contract")
    with pytest.raises(errors.ContactBlocked) as refused:
        svc.refer_to_law_firm(account_id, FIRM)
    assert "time_barred_suit" in str(refused.value.details)
    assert not events_of(svc, account_id, Account.ReferredToLawFirm)
    assert engine_for(svc, adapter, clock).run().anything is False
    assert firm.requests == []


def test_a_referral_withdrawn_before_delivery_is_not_sent(
    svc: LedgerService, firm: Firm, adapter: LawFirmAdapter, clock: MovableClock
) -> None:
    """Withdrawn before the worker ran: the firm never gets it, the job is dead with why."""
    account_id = referred(svc)
    svc.withdraw_referral(account_id, "paid in full")
    assert engine_for(svc, adapter, clock).run().dead["lawfirm"] == 1
    assert firm.requests == []


def test_personal_data_never_reaches_the_logs(
    svc: LedgerService,
    firm: Firm,
    adapter: LawFirmAdapter,
    clock: MovableClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Delivering (also failing) logs ids, digests and statuses, never the debtor."""
    captured = capture_logs(monkeypatch)
    try:
        account_id = referred(svc)
        firm.script = [Answer(503)]
        engine = engine_for(svc, adapter, clock)
        engine.run()
        clock.advance(timedelta(seconds=1))
        engine.run()
    finally:
        structlog.configure(**captured.saved)
    assert any(e["event"] == "lawfirm_referral_accepted" for e in captured.entries)
    text = json.dumps([dict(e) for e in captured.entries], default=str)
    assert str(account_id) in text
    # The whole number, not a fragment: "415" turns up in hex digests by chance.
    for value in (JANE.name, "Springfield", "415 555 0134", "4155550134", "jane.debtor"):
        assert value not in text


@dataclass
class Captured:
    entries: list[MutableMapping[str, Any]]
    saved: dict[str, Any]


def capture_logs(monkeypatch: pytest.MonkeyPatch) -> Captured:
    saved = structlog.get_config()
    capture = structlog.testing.LogCapture()
    structlog.configure(
        processors=[capture],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        cache_logger_on_first_use=False,
    )
    for module in (
        adapters.lawfirm.adapter,
        adapters.lawfirm.callbacks,
        adapters.outbox.engine,
    ):
        monkeypatch.setattr(module, "log", structlog.get_logger(module.__name__))
    return Captured(capture.entries, saved)


# --------------------------------------------------------------- configuration


def test_lawfirm_adapters_come_from_the_config_with_secrets_from_the_environment() -> None:
    """One adapter for every [adapters.lawfirm.*] table; none without; a missing secret
    and a plain-HTTP URL are refused at start-up, naming what to fix."""
    config = {
        "adapters": {
            "lawfirm": {FIRM: {"url": "https://intake.example/v1", "secret_env": SECRET_ENV}}
        }
    }
    (made,) = lawfirm_adapters(config, None, ENVIRON)
    assert isinstance(made, LawFirmAdapter) and made.name == "lawfirm"
    made.close()
    assert lawfirm_adapters({}) == []
    with pytest.raises(AdapterConfigError, match=SECRET_ENV):
        lawfirm_adapters(config, None, {})
    config["adapters"]["lawfirm"][FIRM]["url"] = "http://intake.example/v1"
    with pytest.raises(AdapterConfigError, match="https://"):
        lawfirm_adapters(config, None, ENVIRON)


# ------------------------------------------------------------------ signatures

BODY = b'{"delivery_id":"d-1","status":"served"}'
NOW = 1_772_460_000


def test_a_good_signature_verifies() -> None:
    """Signed with the shared secret, within the tolerance: accepted, timestamp returned."""
    header = signing.sign(BODY, SECRET, NOW)
    assert header.startswith(f"t={NOW},v1=")
    assert signing.verify(header, BODY, [SECRET], now=NOW + 299) == NOW


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "v1=abc",
        f"t={NOW}",
        f"t={NOW},v1={'0' * 64}",
        f"t={NOW},v1=" + signing.compute("wrong secret", NOW, BODY),
        f"t={NOW},v1=" + signing.compute(SECRET, NOW, BODY + b" "),
        f"t={NOW + 1},v1=" + signing.compute(SECRET, NOW, BODY),
        f"t={NOW},v1=é" + signing.compute(SECRET, NOW, BODY)[1:],
    ],
)
def test_a_forged_or_missing_signature_is_refused(header: str | None) -> None:
    """No header, a malformed one, another secret, an altered body or timestamp: refused."""
    with pytest.raises(signing.InvalidSignature) as refused:
        signing.verify(header, BODY, [SECRET], now=NOW)
    assert type(refused.value) is signing.InvalidSignature
    assert refused.value.code == "invalid_signature"


@pytest.mark.parametrize("offset", [-301, 301, -3600, 86_400])
def test_a_stale_or_future_signature_is_refused(offset: int) -> None:
    """A genuine signature more than 5 minutes old, or ahead, is stale_signature."""
    header = signing.sign(BODY, SECRET, NOW + offset)
    with pytest.raises(signing.StaleSignature) as refused:
        signing.verify(header, BODY, [SECRET], now=NOW)
    assert refused.value.code == "stale_signature"


def test_rotated_keys_verify_on_either_side_of_the_switch() -> None:
    """A sender holding both secrets sends two v1s; a receiver holding either accepts, and
    a receiver holding both accepts a sender that has only one."""
    both = signing.sign(BODY, [SECRET, OLD_SECRET], NOW)
    assert both.count("v1=") == 2
    assert signing.verify(both, BODY, [OLD_SECRET], now=NOW) == NOW
    assert signing.verify(both, BODY, [SECRET], now=NOW) == NOW
    assert signing.verify(signing.sign(BODY, OLD_SECRET, NOW), BODY, [SECRET, OLD_SECRET], now=NOW)
    with pytest.raises(signing.InvalidSignature):
        signing.verify(signing.sign(BODY, OLD_SECRET, NOW), BODY, [SECRET], now=NOW)


def test_the_adapter_signs_with_every_secret_while_rotating(
    svc: LedgerService, firm: Firm, clock: MovableClock
) -> None:
    """previous_secret_env adds a second v1: a firm still on the old secret accepts it."""
    firm.secrets = (OLD_SECRET,)
    rotating = settings(firm.url, options={"previous_secret_env": "TEST_OLD"})
    made = LawFirmAdapter({FIRM: rotating}, environ={**ENVIRON, "TEST_OLD": OLD_SECRET})
    referred(svc)
    assert engine_for(svc, made, clock).run().delivered["lawfirm"] == 1
    assert firm.requests[0].signature_ok
    assert firm.requests[0].headers[signing.HEADER].count("v1=") == 2
    made.close()


# ------------------------------------------------------------------- callbacks


def callback(account_id: UUID, delivery_id: str = "d-1", **fields: Any) -> bytes:
    body = {
        "delivery_id": delivery_id,
        "account_id": str(account_id),
        "status": "suit_filed",
        "effective_on": "2026-03-01",
        **fields,
    }
    return json.dumps(body).encode()


def signed(svc: LedgerService, body: bytes, secret: str = SECRET, skew: int = 0) -> str:
    return signing.sign(body, secret, int(svc.clock.now().timestamp()) + skew)


def receiver(svc: LedgerService, **options: Any) -> LawFirmCallbacks:
    return LawFirmCallbacks(svc, {FIRM: settings("https://x.example")}, environ=ENVIRON, **options)


def test_a_signed_callback_is_recorded_once_and_a_replay_is_refused(svc: LedgerService) -> None:
    """The firm's update becomes LegalStatusChanged; the same delivery id again is 409."""
    account_id = referred(svc)
    body = callback(account_id, court_reference="2026-CV-0042")
    result = receiver(svc).receive(FIRM, body, signed(svc, body))
    assert result.recorded and result.legal_status == "suit_filed"
    (change,) = events_of(svc, account_id, Account.LegalStatusChanged)
    assert (change.legal_status, change.effective_on) == ("suit_filed", date(2026, 3, 1))
    assert change.court_reference == "2026-CV-0042"
    with pytest.raises(ReplayedDelivery):
        receiver(svc).receive(FIRM, body, signed(svc, body))
    assert len(events_of(svc, account_id, Account.LegalStatusChanged)) == 1


def test_forged_and_stale_callbacks_record_nothing(svc: LedgerService) -> None:
    """A bad signature, a stale or future timestamp: refused, no event, no delivery id kept."""
    account_id = referred(svc)
    body = callback(account_id)
    for header, error in [
        (signed(svc, body, secret="not the secret"), signing.InvalidSignature),
        (signed(svc, body, skew=-600), signing.StaleSignature),
        (signed(svc, body, skew=+600), signing.StaleSignature),
        (None, signing.InvalidSignature),
    ]:
        with pytest.raises(error):
            receiver(svc).receive(FIRM, body, header)
    assert not events_of(svc, account_id, Account.LegalStatusChanged)
    assert CallbackLog(svc.ledger).entries() == []
    result = receiver(svc).receive(FIRM, body, signed(svc, body))  # the id is still usable
    assert result.recorded


def test_a_callback_for_another_firm_or_account_is_not_found(svc: LedgerService) -> None:
    """Unknown firm, or an account not referred to this firm: not found, nothing recorded."""
    account_id = referred(svc, firm="jones-llp")
    body = callback(account_id)
    with pytest.raises(errors.NotFound):
        receiver(svc).receive("nobody-llp", body, signed(svc, body))
    with pytest.raises(errors.AccountNotFound):
        receiver(svc).receive(FIRM, body, signed(svc, body))
    assert not events_of(svc, account_id, Account.LegalStatusChanged)


def test_a_crash_between_the_ledger_write_and_the_delivery_id_records_once(
    svc: LedgerService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The status was written but the id was not kept: the firm's retry finds the update in
    the account's history, records nothing new, and keeps the id."""
    account_id = referred(svc)
    store = CallbackLog(svc.ledger)

    def crash(*args: Any, **kwargs: Any) -> bool:
        raise Killed

    monkeypatch.setattr(store, "record", crash)
    body = callback(account_id, status="closed")
    with pytest.raises(Killed):
        receiver(svc, store=store).receive(FIRM, body, signed(svc, body))
    monkeypatch.undo()
    result = receiver(svc, store=store).receive(FIRM, body, signed(svc, body))
    assert result.recorded is False
    assert len(events_of(svc, account_id, Account.LegalStatusChanged)) == 1
    assert [e["outcome"] for e in store.entries(FIRM)] == ["already_in_ledger"]


def test_a_judgment_callback_carries_its_amount(svc: LedgerService) -> None:
    """A judgment's amount is a decimal string in the account's currency."""
    account_id = referred(svc)
    body = callback(
        account_id,
        status="judgment",
        judgment_amount="1250.75",
        judgment_date="2026-02-27",
    )
    receiver(svc).receive(FIRM, body, signed(svc, body))
    (change,) = events_of(svc, account_id, Account.LegalStatusChanged)
    assert (change.judgment_amount, change.judgment_date) == (125075, date(2026, 2, 27))
    assert svc.get_account(account_id).judgment == {"amount": 125075, "date": date(2026, 2, 27)}


# ------------------------------------------------------------------------ docs

DOC = Path(__file__).resolve().parents[1] / "docs" / "adapters.md"


def doc_samples() -> dict[str, Any]:
    """The Python samples of docs/adapters.md's "Law-firm referral" section, run."""
    section = DOC.read_text().split("## Law-firm referral\n", 1)[1].split("\n## ", 1)[0]
    namespace: dict[str, Any] = {}
    for block in re.findall(r"```python\n(.*?)```", section, re.S):
        exec(compile(block, str(DOC), "exec"), namespace)
    return namespace


def test_the_firm_side_check_in_the_docs_accepts_what_the_adapter_sends(
    svc: LedgerService, firm: Firm, adapter: LawFirmAdapter, clock: MovableClock
) -> None:
    """The documented standard-library check passes a real referral, and only that."""
    samples = doc_samples()
    verify, whole = samples["verify_arrears_signature"], samples["package_is_whole"]
    referred(svc)
    engine_for(svc, adapter, clock).run()
    (request,) = firm.requests
    header, body = request.headers[signing.HEADER], request.body
    now = clock.current.timestamp()
    assert verify(header, body, [SECRET], now=now) is True
    assert verify(header, body, [OLD_SECRET, SECRET], now=now) is True
    assert verify(header, body, [OLD_SECRET], now=now) is False
    assert verify(header, body + b" ", [SECRET], now=now) is False
    assert verify(header, body, [SECRET], now=now + 301) is False
    assert whole(body) is True
    assert whole(body.replace(b"1000.00", b"1001.00")) is False
