"""The outbox engine on both backends: jobs made once from the log, delivered at least once.

A recording adapter stands for a partner: it asks for one job per queued letter
and fails when told to, so the engine's own rules are what is tested here:
one job per event however often the log is read, state and attempts kept
beside the events, backoff, dead letters, retry, and a lease between workers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from outbox_helpers import LEASE, engine_for, events_of, open_account

from adapters.outbox.base import Adapter, DeliveryError, Job, PermanentDeliveryError, event_key
from adapters.outbox.engine import OutboxEngine
from adapters.outbox.store import OutboxStore
from bootstrap import build_service
from ledger.clock import MovableClock
from ledger.domain.account import Account
from ledger.services import LedgerService
from plugins.manager import ArrearsPluginManager


@dataclass
class Letters:
    """Posts letters: one job per MessageQueued on channel "letter"."""

    name: str = "letters"
    fail: list[BaseException] = field(default_factory=list)  # raised by the next deliveries
    failing: dict[str, int] = field(default_factory=dict)  # message id -> failures to come
    delivered: list[str] = field(default_factory=list)
    dead_calls: list[tuple[str, str]] = field(default_factory=list)

    def jobs(self, event: Any, position: int) -> Sequence[Job]:
        if isinstance(event, Account.MessageQueued) and event.channel == "letter":
            payload = {"message_id": event.message_id}
            return [
                Job(event_key(event, self.name), self.name, event.originator_id, position, payload)
            ]
        return []

    def deliver(self, job: Job, service: LedgerService) -> str:
        if self.fail:
            raise self.fail.pop(0)
        message_id = job.payload["message_id"]
        if self.failing.get(message_id, 0) > 0:
            self.failing[message_id] -= 1
            raise DeliveryError("post office closed")
        self.delivered.append(job.key)
        return f"post-{len(self.delivered)}"

    def succeeded(self, job: Job, reference: str, service: LedgerService) -> None:
        service.record_message_outcome(job.account_id, job.payload["message_id"], "sent", reference)

    def dead(self, job: Job, error: str, service: LedgerService) -> None:
        self.dead_calls.append((job.key, error))
        service.record_message_outcome(job.account_id, job.payload["message_id"], "failed", error)


@pytest.fixture
def ledger_service(
    store_url: str, clock: MovableClock, pm: ArrearsPluginManager
) -> Iterator[LedgerService]:
    service = build_service(store_url, clock=clock, plugins=pm, config={})
    yield service
    service.ledger.close()


def letter(service: LedgerService, account_id: UUID) -> str:
    queued = service.request_message(
        account_id, channel="letter", template="reminder", purpose="remedy_notice"
    )
    return queued.message_id


def test_engine_makes_each_job_once_and_delivers_retries_buries_and_retries_by_hand(
    ledger_service: LedgerService, clock: MovableClock
) -> None:
    """On each backend: one job per event, backoff 1 s then 2 s, dead after three attempts,
    and a dead job put back by hand is delivered."""
    svc = ledger_service
    account_id = open_account(svc)
    first, second = letter(svc, account_id), letter(svc, account_id)
    svc.request_message(account_id, channel="sms", template="reminder")  # not a letter
    letters = Letters(failing={first: 5, second: 1})
    assert isinstance(letters, Adapter)
    engine = engine_for(svc, letters, clock=clock)

    report = engine.run()
    assert report.created["letters"] == 2 and report.retries["letters"] == 2
    again = engine_for(svc, Letters(), clock=clock)  # a second worker reads the log too
    assert again.collect().created.total() == 0
    assert engine.store.positions()["letters"] == engine.head()
    assert engine.run().anything is False  # nothing due before the backoff ends

    clock.advance(timedelta(seconds=1.1))
    report = engine.run()
    assert report.retries["letters"] == 1 and report.delivered["letters"] == 1
    clock.advance(timedelta(seconds=2.1))
    assert engine.run().dead["letters"] == 1

    entries = {e.job.payload["message_id"]: e for e in engine.store.entries()}
    assert entries[first].state == "dead" and entries[first].attempts == 3
    assert entries[first].last_error == "DeliveryError: post office closed"
    assert entries[second].state == "delivered" and entries[second].attempts == 2
    assert entries[second].partner_reference == "post-1"
    messages = svc.get_account(account_id).messages
    assert messages[first]["status"] == "failed" and messages[second]["status"] == "sent"
    assert engine.store.counts() == {"letters": {"dead": 1, "delivered": 1}}

    letters.failing[first] = 0
    assert engine.store.retry([entries[first].key], engine._now()) == [entries[first].key]
    assert engine.run().delivered["letters"] == 1
    assert engine.store.get(entries[first].key).state == "delivered"  # type: ignore[union-attr]
    # The history ends with what happened: failed, then sent after the retry.
    assert svc.get_account(account_id).messages[first]["status"] == "sent"


def test_a_permanent_failure_is_dead_at_once_and_retry_puts_it_back(
    ledger_service: LedgerService, clock: MovableClock
) -> None:
    """PermanentDeliveryError: dead after one attempt; `retry` makes it pending, due now."""
    svc = ledger_service
    account_id = open_account(svc)
    message_id = letter(svc, account_id)
    letters = Letters(fail=[PermanentDeliveryError("no such street")])
    engine = engine_for(svc, letters, clock=clock)
    assert engine.run().dead["letters"] == 1
    [entry] = engine.store.entries(state="dead")
    assert entry.attempts == 1 and entry.last_error == "PermanentDeliveryError: no such street"
    assert letters.dead_calls == [(entry.key, "PermanentDeliveryError: no such street")]
    [failed] = events_of(svc, account_id, Account.MessageFailed)
    assert failed.message_id == message_id

    now = engine._now()
    assert engine.store.retry(None, now) == [entry.key]
    pending = engine.store.get(entry.key)
    assert pending is not None and pending.state == "pending" and pending.attempts == 0
    assert engine.run().delivered["letters"] == 1
    assert engine.store.get(entry.key).state == "delivered"  # type: ignore[union-attr]
    assert engine.store.retry([entry.key], now) == []  # delivered stays delivered


def test_attempts_are_counted_when_they_start_so_a_job_that_kills_the_worker_ends_dead(
    ledger_service: LedgerService, clock: MovableClock
) -> None:
    """A delivery that crashes every worker is dead after max attempts, recorded once."""

    class Crash(BaseException):
        pass

    svc = ledger_service
    account_id = open_account(svc)
    letter(svc, account_id)
    letters = Letters(fail=[Crash()] * 3)
    for _ in range(3):
        with pytest.raises(Crash):
            engine_for(svc, letters, clock=clock).run()
        clock.advance(timedelta(seconds=LEASE + 1))
    engine = engine_for(svc, letters, clock=clock)
    assert engine.run().dead["letters"] == 1
    [entry] = engine.store.entries()
    assert entry.state == "dead" and "stopped during every attempt" in (entry.last_error or "")
    assert letters.delivered == []


def test_a_failure_recording_the_outcome_never_buries_a_delivered_job(
    ledger_service: LedgerService, clock: MovableClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The partner has it but the ledger write failed: the outcome is recorded later,
    without delivering again and without ever calling it dead."""
    svc = ledger_service
    account_id = open_account(svc)
    message_id = letter(svc, account_id)
    letters = Letters()
    engine = engine_for(svc, letters, clock=clock)
    calls = {"n": 0}
    original = Letters.succeeded

    def flaky(self: Letters, job: Job, reference: str, service: LedgerService) -> None:
        calls["n"] += 1
        if calls["n"] <= 3:
            raise RuntimeError("store unavailable")
        original(self, job, reference, service)

    monkeypatch.setattr(Letters, "succeeded", flaky)
    for _ in range(4):
        engine.run()
        clock.advance(timedelta(seconds=5))
    [entry] = engine.store.entries()
    assert entry.state == "delivered" and entry.partner_reference == "post-1"
    assert letters.delivered == [entry.key] and letters.dead_calls == []
    assert svc.get_account(account_id).messages[message_id]["status"] == "sent"


def test_names_must_be_unique_and_payloads_json(
    ledger_service: LedgerService, clock: MovableClock
) -> None:
    """Two adapters with one name would share a position; a payload must be storable."""
    with pytest.raises(ValueError, match="unique"):
        OutboxEngine(ledger_service, [Letters(), Letters()])
    with pytest.raises(TypeError, match="not JSON"):
        store = OutboxStore(ledger_service.ledger)
        with store.transaction() as tx:
            store.add_jobs(tx, [Job("k", "x", UUID(int=1), 1, {"when": object()})], "now")
