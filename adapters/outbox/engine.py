"""The outbox engine: adapters as projections over the event log that act outside.

Two steps, each safe to stop at any moment and to run in several workers at once:

**Collect.**  For each adapter, read the notification log from its durable
position, ask the adapter which events call for an outside action
(``Adapter.jobs``) and store those jobs in the ``outbox`` table, keyed by their
idempotency key.  The jobs and the new position commit in one transaction, so an
event's jobs are stored exactly once, however often it is read.

**Deliver.**  Take the due jobs one at a time (a lease, so two engines never
deliver the same job at once), call ``Adapter.deliver``, and:

* it returned: ``Adapter.succeeded`` records the outcome, then the job is marked
  ``delivered`` with the partner's reference.  Only then: a worker killed in
  between delivers the job again later with the same key, which the partner
  deduplicates (and the outcome events are recorded once by the ledger).
* it raised ``DeliveryError`` (or anything else): the job waits
  ``min(cap, base * 2 ** (attempt - 1))`` seconds, less up to ``jitter`` of that
  at random, and is tried again; after ``attempts`` tries, or at once for a
  ``PermanentDeliveryError``, ``Adapter.dead`` records the failure and the job
  is parked as ``dead`` until ``arrears outbox retry`` puts it back.

An attempt is counted when it starts, so a job that kills the worker every time
still ends dead.  Errors are stored and logged as the exception's class and a
short message scrubbed of personal data; payloads are never logged.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import uuid4

import structlog

from adapters.outbox.base import Adapter, DeliveryError, Job
from adapters.outbox.store import OutboxEntry, OutboxStore
from ledger.clock import Clock, ensure_utc
from ledger.observers import RetryPolicy, describe_error
from ledger.readmodels.sqlstore import to_text
from ledger.services import LedgerService

log = structlog.get_logger("arrears.outbox")

#: Events read per adapter per transaction while collecting.
DEFAULT_BATCH_SIZE = 200

#: Longest a delivery may take before another engine may take the job over; keep it
#: well above every adapter's timeouts.
DEFAULT_LEASE_SECONDS = 300.0

#: Outbox defaults: 8 attempts over about 10 minutes, then dead.
#: The longest ``Retry-After`` a partner can impose on one job.
RETRY_AFTER_LIMIT = 86_400.0
DEFAULT_POLICY = RetryPolicy(attempts=8, base_delay=5.0, max_delay=300.0, jitter=0.5)


def _never() -> bool:
    return False


@dataclass
class OutboxReport:
    """What one ``run`` did, per adapter name."""

    created: Counter[str] = field(default_factory=Counter)
    delivered: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    dead: Counter[str] = field(default_factory=Counter)
    stopped_early: bool = False

    @property
    def anything(self) -> bool:
        return bool(self.created or self.delivered or self.retries or self.dead)

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": dict(sorted(self.created.items())),
            "delivered": dict(sorted(self.delivered.items())),
            "retries": dict(sorted(self.retries.items())),
            "dead": dict(sorted(self.dead.items())),
            "stopped_early": self.stopped_early,
        }

    def describe(self) -> str:
        text = (
            f"outbox: {self.created.total()} jobs created, {self.delivered.total()} delivered, "
            f"{self.retries.total()} to retry, {self.dead.total()} dead"
        )
        if self.dead:
            text += " (" + ", ".join(f"{n} {c}" for n, c in sorted(self.dead.items())) + ")"
        return text


class OutboxEngine:
    """Collects and delivers the jobs of ``adapters`` for the ledger behind ``service``."""

    def __init__(
        self,
        service: LedgerService,
        adapters: Sequence[Adapter],
        *,
        store: OutboxStore | None = None,
        clock: Clock | None = None,
        policy: RetryPolicy | None = None,
        rand: Callable[[], float] = random.random,
        batch_size: int = DEFAULT_BATCH_SIZE,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
    ) -> None:
        names = [a.name for a in adapters]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"adapter names must be unique: {', '.join(duplicates)}")
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        self.service = service
        self.adapters: dict[str, Adapter] = {a.name: a for a in adapters}
        self._owns_store = store is None
        self.store = store or OutboxStore(service.ledger)
        self.clock: Clock = clock or service.clock
        self.policy = policy or DEFAULT_POLICY
        self._rand = rand
        self.batch_size = max(1, batch_size)
        self.lease = timedelta(seconds=lease_seconds)
        self.owner = uuid4().hex  # this engine's name on the leases it holds

    def close(self) -> None:
        if self._owns_store:
            self.store.close()

    def _now(self) -> str:
        return to_text(ensure_utc(self.clock.now()))

    def _later(self, seconds: float) -> str:
        return to_text(ensure_utc(self.clock.now()) + timedelta(seconds=seconds))

    # -------------------------------------------------------------- running

    def run(self, stop: Callable[[], bool] = _never) -> OutboxReport:
        """Collect every adapter's new jobs, then deliver every job that is due."""
        report = OutboxReport()
        self.collect(report, stop)
        if not stop():
            self.deliver_due(report, stop)
        if stop():
            report.stopped_early = True
        return report

    # -------------------------------------------------------------- collect

    def head(self) -> int:
        return int(self.service.ledger.recorder.max_notification_id() or 0)

    def _read(self, after: int) -> list[tuple[int, Any]]:
        ledger = self.service.ledger
        notifications = ledger.recorder.select_notifications(
            start=after, limit=self.batch_size, inclusive_of_start=False
        )
        to_event = ledger.mapper.to_domain_event
        return [(n.id, to_event(n)) for n in notifications]

    def collect(
        self, report: OutboxReport | None = None, stop: Callable[[], bool] = _never
    ) -> OutboxReport:
        """Turn the events each adapter has not seen into stored jobs."""
        report = report if report is not None else OutboxReport()
        if not self.adapters:
            return report
        head = self.head()
        stored = self.store.positions()
        positions = {n: stored.get(n, 0) for n in self.adapters if stored.get(n, 0) < head}
        while positions and not stop():
            batches: dict[int, list[tuple[int, Any]]] = {}  # one read per shared position
            for name, after in list(positions.items()):
                batch = batches.get(after)
                if batch is None:
                    batch = batches[after] = self._read(after)
                moved = self._collect_batch(self.adapters[name], batch, report) if batch else None
                if moved is None or moved >= head:
                    del positions[name]  # caught up, or stuck on an event (logged)
                else:
                    positions[name] = moved
        return report

    def _collect_batch(
        self, adapter: Adapter, batch: list[tuple[int, Any]], report: OutboxReport
    ) -> int | None:
        """Store the jobs of ``batch`` and move past it; None if the adapter failed on an
        event (the events before it are stored; it is tried again next run)."""
        jobs: list[Job] = []
        reached: int | None = None
        failed = False
        for position, event in batch:
            try:
                found = list(adapter.jobs(event, position))
            except Exception as e:
                log.error(
                    "outbox_collect_failed",
                    adapter=adapter.name,
                    position=position,
                    event_type=type(event).__name__,
                    error=type(e).__name__,
                    detail=describe_error(e),
                )
                failed = True
                break
            jobs.extend(found)
            reached = position
        if reached is None:
            return None
        now = self._now()
        with self.store.transaction() as tx:
            added = self.store.add_jobs(tx, jobs, now)
            self.store.move(tx, adapter.name, reached, now)
        if added:
            report.created[adapter.name] += added
            log.info("outbox_jobs_created", adapter=adapter.name, jobs=added, position=reached)
        return None if failed else reached

    # -------------------------------------------------------------- deliver

    def deliver_due(
        self, report: OutboxReport | None = None, stop: Callable[[], bool] = _never
    ) -> OutboxReport:
        """Attempt every due job once (those failing again are scheduled for later)."""
        report = report if report is not None else OutboxReport()
        seen: set[str] = set()
        while not stop():
            due = [
                e
                for e in self.store.due(list(self.adapters), self._now(), self.batch_size)
                if e.key not in seen
            ]
            if not due:
                break
            for entry in due:
                if stop():
                    report.stopped_early = True
                    return report
                seen.add(entry.key)
                self.attempt(entry, report)
        return report

    def attempt(self, entry: OutboxEntry, report: OutboxReport) -> str | None:
        """One attempt at ``entry``; returns the state it ended in (None: not claimed)."""
        adapter = self.adapters[entry.job.adapter]
        claimed = self.store.claim(entry.key, self.owner, self._now(), self._later_lease())
        if claimed is None:
            return None
        job = claimed.job
        if claimed.attempts > self.policy.attempts and claimed.partner_reference is None:
            # Every attempt was counted yet none finished: the worker died in each.
            error = claimed.last_error or "the worker stopped during every attempt"
            return self._bury(adapter, job, claimed.attempts - 1, error, report)
        reference = claimed.partner_reference
        if reference is None:  # a delivery that returned before needs no second call
            try:
                reference = adapter.deliver(job, self.service)
            except Exception as e:
                return self._failed(adapter, job, claimed.attempts, e, report)
            self.store.set_reference(job.key, self.owner, reference, self._now())
        try:
            adapter.succeeded(job, reference, self.service)
        except Exception as e:
            # The partner has it: never dead-letter, only record the outcome later.
            delay = self.policy.max_delay
            detail = describe_error(e)
            self.store.mark_failed(job.key, self.owner, detail, self._later(delay), self._now())
            report.retries[adapter.name] += 1
            log.error(
                "outbox_outcome_not_recorded",
                adapter=adapter.name,
                key=job.key,
                error=type(e).__name__,
                detail=detail,
                retry_in=delay,
            )
            return "pending"
        if not self.store.mark_delivered(job.key, self.owner, reference, self._now()):
            log.warning("outbox_lease_lost", adapter=adapter.name, key=job.key)
        report.delivered[adapter.name] += 1
        log.info(
            "outbox_delivered",
            adapter=adapter.name,
            key=job.key,
            attempt=claimed.attempts,
            partner_reference=reference,
        )
        return "delivered"

    def _later_lease(self) -> str:
        return to_text(ensure_utc(self.clock.now()) + self.lease)

    def _failed(
        self, adapter: Adapter, job: Job, attempts: int, error: Exception, report: OutboxReport
    ) -> str | None:
        detail = describe_error(error)
        retryable = not isinstance(error, DeliveryError) or error.retryable
        if not retryable or attempts >= self.policy.attempts:
            return self._bury(adapter, job, attempts, detail, report)
        delay = self.policy.delay(attempts, self._rand())
        retry_after = error.retry_after if isinstance(error, DeliveryError) else None
        if retry_after is not None:
            # The partner said when to come back: honour it even past our own backoff cap
            # (asking sooner only earns another 429), within a day as a sanity bound.
            delay = max(delay, min(retry_after, RETRY_AFTER_LIMIT))
        if not self.store.mark_failed(job.key, self.owner, detail, self._later(delay), self._now()):
            log.warning("outbox_lease_lost", adapter=adapter.name, key=job.key)
        report.retries[adapter.name] += 1
        log.warning(
            "outbox_delivery_failed",
            adapter=adapter.name,
            key=job.key,
            attempt=attempts,
            error=type(error).__name__,
            detail=detail,
            retry_in=round(delay, 3),
        )
        return "pending"

    def _bury(
        self, adapter: Adapter, job: Job, attempts: int, error: str, report: OutboxReport
    ) -> str | None:
        """Record the failure in the ledger, then park the job as dead."""
        try:
            adapter.dead(job, error, self.service)
        except Exception as e:  # the ledger could not take it: stay pending, try again later
            delay = self.policy.max_delay
            self.store.mark_failed(job.key, self.owner, error, self._later(delay), self._now())
            log.error(
                "outbox_dead_not_recorded",
                adapter=adapter.name,
                key=job.key,
                error=type(e).__name__,
                detail=describe_error(e),
                retry_in=delay,
            )
            return "pending"
        if not self.store.mark_dead(job.key, self.owner, error, self._now()):
            log.warning("outbox_lease_lost", adapter=adapter.name, key=job.key)
        report.dead[adapter.name] += 1
        log.error("outbox_dead", adapter=adapter.name, key=job.key, attempts=attempts, detail=error)
        return "dead"
