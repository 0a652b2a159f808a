"""Observers: side effects of committed events, run by the worker, outside the write path.

An observer is a name and a callable ``notify(event, position)``.  The
dispatcher reads the notification log in order, decodes each event with the
application's mapper, and calls every observer for every event.  Commands never
call observers, so an observer can neither block nor roll back a ledger write.

Delivery is **at-least-once, in ledger order, per observer**:

* Each observer has its own durable position (``observer_state``, in the events
  database on both backends).  The position moves past an event only after the
  call returned, or after the event was parked; a crash in between delivers the
  event again.  Observers must therefore be idempotent, keyed by the event's
  identity (``event.originator_id`` and ``event.originator_version``).
* A call that raises is retried with exponential backoff and jitter
  (``RetryPolicy``).  When every attempt failed, the event is *parked* for that
  observer (``observer_parked``) and the observer moves on: nothing is lost,
  nothing waits behind it, and the other observers are not affected.  A parked
  delivery is retried on demand (``retry_parked``, ``arrears observers retry``);
  it then arrives after later events, the one exception to the order.
* One dispatcher at a time delivers to a given observer: it holds a lease on
  the observer's state row, renewed with every event, so several workers can
  run at once without interleaving an observer's events.  A worker that dies
  keeps its lease until it expires (``lease_seconds`` by the injected clock).

Both tables are operational state derived from the ledger, not the ledger: rows
are updated in place (a parked delivery that succeeds on retry keeps its row,
stamped ``resolved_at``, as a record of the incident) and may be pruned.

Observers are called one at a time in the caller's thread; each gets at most
``batch_size`` events per turn, so one observer's backlog never starves the
others.  A call that hangs does hold its worker: give observers their own
timeouts.  Error details are logged and stored as the exception's class name
and a truncated message scrubbed of personal data.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import uuid4

import structlog

from ledger.application import Ledger
from ledger.clock import Clock, SystemClock, ensure_utc
from ledger.errors import StoreError
from ledger.logs import scrub_text
from ledger.readmodels.sqlstore import ReadStore, Tx, to_text

log = structlog.get_logger("arrears.observers")

STATE_TABLE = "observer_state"
PARKED_TABLE = "observer_parked"

#: Events one observer gets per turn before the next observer's turn.
DEFAULT_BATCH_SIZE = 100

#: How long a dispatcher's claim on an observer lasts without renewal.
DEFAULT_LEASE_SECONDS = 60.0

#: Longest error message kept (after the class name), in logs and parked rows.
ERROR_TEXT_LIMIT = 200


@dataclass(frozen=True)
class Observer:
    """One consumer of committed events: ``name`` keys its durable position."""

    name: str
    notify: Callable[[Any, int], None]


@dataclass(frozen=True)
class RetryPolicy:
    """How often, and how patiently, a failing call is retried before it is parked.

    ``attempts`` counts every call, the first included.  Retry ``n`` waits
    ``min(max_delay, base_delay * 2 ** (n - 1))`` seconds, less up to ``jitter``
    of that at random, so failing observers of many workers do not retry in step.
    """

    attempts: int = 4
    base_delay: float = 0.25
    max_delay: float = 5.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("a delivery needs at least one attempt")
        if self.base_delay < 0 or self.max_delay < 0 or not 0 <= self.jitter <= 1:
            raise ValueError("delays must be non-negative and jitter between 0 and 1")

    def delay(self, retry: int, rand: float) -> float:
        """Seconds to wait before retry number ``retry`` (1 is the first), ``rand`` in [0, 1)."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (retry - 1))
        return ceiling * (1 - self.jitter * rand)


@dataclass
class DispatchReport:
    """What one ``dispatch`` pass did, per observer name."""

    delivered: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    parked: Counter[str] = field(default_factory=Counter)
    busy: list[str] = field(default_factory=list)  # held by another dispatcher
    stopped_early: bool = False

    @property
    def anything(self) -> bool:
        return bool(self.delivered or self.parked or self.retries)

    def as_dict(self) -> dict[str, Any]:
        return {
            "delivered": dict(sorted(self.delivered.items())),
            "retries": dict(sorted(self.retries.items())),
            "parked": dict(sorted(self.parked.items())),
            "busy": sorted(self.busy),
            "stopped_early": self.stopped_early,
        }

    def describe(self) -> str:
        text = (
            f"observers: {self.delivered.total()} delivered, {self.retries.total()} retries, "
            f"{self.parked.total()} parked"
        )
        if self.parked:
            text += " (" + ", ".join(f"{n} {c}" for n, c in sorted(self.parked.items())) + ")"
        return text


@dataclass(frozen=True)
class ObserverStatus:
    name: str
    position: int
    head: int
    parked: int
    updated_at: str | None
    loaded: bool  # False: state kept for an observer this process does not have

    @property
    def lag(self) -> int:
        return max(0, self.head - self.position)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "position": self.position,
            "head": self.head,
            "lag": self.lag,
            "parked": self.parked,
            "updated_at": self.updated_at,
            "loaded": self.loaded,
        }


@dataclass(frozen=True)
class ParkedDelivery:
    name: str
    position: int
    event_type: str
    attempts: int
    last_error: str
    first_failed_at: str
    last_failed_at: str
    resolved_at: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "position": self.position,
            "event_type": self.event_type,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "first_failed_at": self.first_failed_at,
            "last_failed_at": self.last_failed_at,
            "resolved_at": self.resolved_at,
        }


@dataclass
class RetryReport:
    """What ``retry_parked`` did: deliveries resolved, still failing, and skipped."""

    resolved: list[ParkedDelivery] = field(default_factory=list)
    failed: list[ParkedDelivery] = field(default_factory=list)
    skipped: list[ParkedDelivery] = field(default_factory=list)  # observer not loaded


def describe_error(error: BaseException) -> str:
    """``ClassName: message``, first line only, truncated and scrubbed of personal data."""
    text = str(error).strip()
    first = scrub_text(text.splitlines()[0]) if text else ""
    if len(first) > ERROR_TEXT_LIMIT:
        first = first[: ERROR_TEXT_LIMIT - 3] + "..."
    return f"{type(error).__name__}{': ' + first if first else ''}"


def _never() -> bool:
    return False


class ObserverDispatcher:
    """Delivers the ledger's events to ``observers``, each from its own durable position."""

    def __init__(
        self,
        ledger: Ledger,
        observers: Sequence[Observer],
        *,
        store: ReadStore | None = None,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        batch_size: int = DEFAULT_BATCH_SIZE,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
    ) -> None:
        names = [o.name for o in observers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"observer names must be unique: {', '.join(duplicates)}")
        self._owns_store = store is None
        if store is None:
            if ledger.store_config is None:
                raise StoreError("observers need a ledger opened with open_ledger()")
            store = ReadStore(ledger.store_config)
        self.ledger = ledger
        self.observers = {o.name: o for o in observers}
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rand = rand
        self.batch_size = max(1, batch_size)
        self.lease = timedelta(seconds=lease_seconds)
        self.owner = uuid4().hex  # this dispatcher's name on the leases it holds
        self.ensure_tables()

    # ------------------------------------------------------------ tables

    def ensure_tables(self) -> None:
        with self.store.transaction() as tx:
            if self.store.postgres:  # concurrent CREATE IF NOT EXISTS can clash in the catalog
                key = f"arrears-observers:{self.store.schema}"
                tx.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (key,))
            tx.execute(
                f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} ("
                "name TEXT PRIMARY KEY, position BIGINT NOT NULL, delivered BIGINT NOT NULL, "
                "parked BIGINT NOT NULL, lease_owner TEXT, lease_until TEXT, updated_at TEXT)"
            )
            tx.execute(
                f"CREATE TABLE IF NOT EXISTS {PARKED_TABLE} ("
                "name TEXT NOT NULL, position BIGINT NOT NULL, event_type TEXT NOT NULL, "
                "attempts BIGINT NOT NULL, last_error TEXT NOT NULL, "
                "first_failed_at TEXT NOT NULL, last_failed_at TEXT NOT NULL, resolved_at TEXT, "
                "PRIMARY KEY (name, position))"
            )

    def close(self) -> None:
        if self._owns_store:
            self.store.close()

    # ----------------------------------------------------------- reading

    def head(self) -> int:
        return int(self.ledger.recorder.max_notification_id() or 0)

    def _read(self, after: int, limit: int) -> list[tuple[int, Any]]:
        """Up to ``limit`` (position, domain event) after position ``after``, in order."""
        notifications = self.ledger.recorder.select_notifications(
            start=after, limit=limit, inclusive_of_start=False
        )
        to_event = self.ledger.mapper.to_domain_event
        return [(n.id, to_event(n)) for n in notifications]

    def _event_at(self, position: int) -> Any | None:
        found = self._read(position - 1, 1)
        return found[0][1] if found and found[0][0] == position else None

    def _now(self) -> str:
        return to_text(ensure_utc(self.clock.now()))

    def _lease_until(self) -> str:
        return to_text(ensure_utc(self.clock.now()) + self.lease)

    # ---------------------------------------------------------- dispatch

    def dispatch(self, *, stop: Callable[[], bool] = _never) -> DispatchReport:
        """Deliver every event each observer has not had yet; ``stop()`` ends it between events.

        Observers already at the head are skipped without a write; the others are
        claimed (one dispatcher per observer) and served in turns of
        ``batch_size`` events until all are caught up.
        """
        report = DispatchReport()
        head = self.head()
        stored = self._positions()
        positions: dict[str, int] = {}
        for name in self.observers:
            if stored.get(name, 0) >= head:
                continue
            claimed = self._claim(name)
            if claimed is None:
                report.busy.append(name)
            else:
                positions[name] = claimed
        held = list(positions)
        try:
            while positions:
                if stop():
                    report.stopped_early = True
                    break
                batches: dict[int, list[tuple[int, Any]]] = {}  # one read per shared position
                for name in list(positions):
                    after = positions[name]
                    batch = batches.get(after)
                    if batch is None:
                        batch = batches[after] = self._read(after, self.batch_size)
                    if not batch:
                        del positions[name]  # caught up
                        continue
                    for position, event in batch:
                        if not self._deliver(self.observers[name], position, event, report, stop):
                            del positions[name]
                            break
                        positions[name] = position
                if stop() and positions:
                    report.stopped_early = True
                    break
        finally:
            for name in held:
                self._release(name)
        return report

    def _deliver(
        self,
        observer: Observer,
        position: int,
        event: Any,
        report: DispatchReport,
        stop: Callable[[], bool],
    ) -> bool:
        """Call, retry, park if need be, then move the position; False: leave this observer."""
        if stop():
            report.stopped_early = True
            return False
        failures, error = self._call(observer, position, event, stop, report)
        if error is None:
            moved = self._advance(observer.name, position)
            if moved:
                report.delivered[observer.name] += 1
            return moved
        if failures < self.retry.attempts:  # stopping between retries: the next run redelivers
            report.stopped_early = True
            return False
        moved = self._park(observer.name, position, event, failures, describe_error(error))
        if moved:
            report.parked[observer.name] += 1
            log.error(
                "observer_delivery_parked",
                observer=observer.name,
                position=position,
                event_type=type(event).__name__,
                attempts=failures,
                error=type(error).__name__,
                detail=describe_error(error),
            )
        return moved

    def _call(
        self,
        observer: Observer,
        position: int,
        event: Any,
        stop: Callable[[], bool],
        report: DispatchReport | None = None,
    ) -> tuple[int, Exception | None]:
        """Up to ``retry.attempts`` calls: (calls that failed, the last error or None)."""
        failures = 0
        while True:
            try:
                observer.notify(event, position)
            except Exception as e:  # anything else (a signal, exit) is not the observer's fault
                failures += 1
                if failures >= self.retry.attempts or stop():
                    return failures, e
                delay = self.retry.delay(failures, self._rand())
                log.warning(
                    "observer_call_failed",
                    observer=observer.name,
                    position=position,
                    event_type=type(event).__name__,
                    attempt=failures,
                    error=type(e).__name__,
                    detail=describe_error(e),
                    retry_in=round(delay, 3),
                )
                if report is not None:
                    report.retries[observer.name] += 1
                self._sleep(delay)
                if stop():
                    return failures, e
            else:
                return failures, None

    # ------------------------------------------------------------ state

    def _positions(self) -> dict[str, int]:
        rows = self.store.query(f"SELECT name, position FROM {STATE_TABLE}")
        return {r["name"]: int(r["position"]) for r in rows}

    def _claim(self, name: str) -> int | None:
        """Take (or renew) the lease on ``name``: its position, or None if another holds it."""
        now = self._now()
        with self.store.transaction() as tx:
            tx.execute(
                f"INSERT INTO {STATE_TABLE} (name, position, delivered, parked, updated_at) "
                "VALUES (?, 0, 0, 0, ?) ON CONFLICT (name) DO NOTHING",
                (name, now),
            )
            sql = f"SELECT position, lease_owner, lease_until FROM {STATE_TABLE} WHERE name = ?"
            (row,) = tx.query(sql + (" FOR UPDATE" if self.store.postgres else ""), (name,))
            owner, until = row["lease_owner"], row["lease_until"]
            if owner not in (None, self.owner) and until is not None and until > now:
                return None
            tx.execute(
                f"UPDATE {STATE_TABLE} SET lease_owner = ?, lease_until = ? WHERE name = ?",
                (self.owner, self._lease_until(), name),
            )
            return int(row["position"])

    def _release(self, name: str) -> None:
        with self.store.transaction() as tx:
            tx.execute(
                f"UPDATE {STATE_TABLE} SET lease_owner = NULL, lease_until = NULL "
                "WHERE name = ? AND lease_owner = ?",
                (name, self.owner),
            )

    def _move(self, tx: Tx, name: str, position: int, *, delivered: int, parked: int) -> bool:
        """Move ``name`` to ``position`` if this dispatcher still holds its lease."""
        until, now = self._lease_until(), self._now()
        tx.execute(
            f"UPDATE {STATE_TABLE} SET position = ?, delivered = delivered + ?, "
            "parked = parked + ?, lease_until = ?, updated_at = ? "
            "WHERE name = ? AND lease_owner = ? AND position < ?",
            (position, delivered, parked, until, now, name, self.owner, position),
        )
        if tx.cursor.rowcount == 1:
            return True
        log.warning("observer_lease_lost", observer=name, position=position)
        return False

    def _advance(self, name: str, position: int) -> bool:
        with self.store.transaction() as tx:
            return self._move(tx, name, position, delivered=1, parked=0)

    def _park(self, name: str, position: int, event: Any, attempts: int, error: str) -> bool:
        """Record the failed delivery and move past it, together (or neither)."""
        now = self._now()
        with self.store.transaction() as tx:
            if not self._move(tx, name, position, delivered=0, parked=1):
                return False
            tx.execute(
                f"INSERT INTO {PARKED_TABLE} (name, position, event_type, attempts, last_error, "
                "first_failed_at, last_failed_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (name, position) DO UPDATE SET "
                f"attempts = {PARKED_TABLE}.attempts + excluded.attempts, "
                "last_error = excluded.last_error, last_failed_at = excluded.last_failed_at, "
                "resolved_at = NULL",
                (name, position, type(event).__name__, attempts, error, now, now),
            )
        return True

    # ------------------------------------------------- status and parking

    def status(self) -> list[ObserverStatus]:
        """Every observer loaded or with stored state: position, lag and parked deliveries."""
        head = self.head()
        rows = {r["name"]: r for r in self.store.query(f"SELECT * FROM {STATE_TABLE}")}
        counts = {
            r["name"]: int(r["n"])
            for r in self.store.query(
                f"SELECT name, count(*) AS n FROM {PARKED_TABLE} "
                "WHERE resolved_at IS NULL GROUP BY name"
            )
        }
        out = []
        for name in sorted(set(self.observers) | set(rows) | set(counts)):
            row = rows.get(name)
            out.append(
                ObserverStatus(
                    name=name,
                    position=int(row["position"]) if row else 0,
                    head=head,
                    parked=counts.get(name, 0),
                    updated_at=row["updated_at"] if row else None,
                    loaded=name in self.observers,
                )
            )
        return out

    def parked(
        self,
        name: str | None = None,
        position: int | None = None,
        *,
        include_resolved: bool = False,
    ) -> list[ParkedDelivery]:
        """Parked deliveries, oldest first per observer; resolved ones only if asked."""
        sql = f"SELECT * FROM {PARKED_TABLE} WHERE 1 = 1"
        params: list[Any] = []
        if name is not None:
            sql += " AND name = ?"
            params.append(name)
        if position is not None:
            sql += " AND position = ?"
            params.append(position)
        if not include_resolved:
            sql += " AND resolved_at IS NULL"
        rows = self.store.query(sql + " ORDER BY name, position", params)
        return [
            ParkedDelivery(
                name=r["name"],
                position=int(r["position"]),
                event_type=r["event_type"],
                attempts=int(r["attempts"]),
                last_error=r["last_error"],
                first_failed_at=r["first_failed_at"],
                last_failed_at=r["last_failed_at"],
                resolved_at=r["resolved_at"],
            )
            for r in rows
        ]

    def retry_parked(self, name: str | None = None, position: int | None = None) -> RetryReport:
        """Deliver parked events again (with the retry policy); a success is marked resolved.

        The observer's position is not touched: a retried event arrives after
        later ones.  Deliveries to observers not loaded here are skipped.
        """
        report = RetryReport()
        for parked in self.parked(name, position):
            observer = self.observers.get(parked.name)
            event = self._event_at(parked.position) if observer is not None else None
            if observer is None or event is None:
                report.skipped.append(parked)
                continue
            failures, error = self._call(observer, parked.position, event, _never)
            now = self._now()
            with self.store.transaction() as tx:
                if error is None:
                    tx.execute(
                        f"UPDATE {PARKED_TABLE} SET attempts = attempts + ?, resolved_at = ? "
                        "WHERE name = ? AND position = ?",
                        (failures + 1, now, parked.name, parked.position),
                    )
                else:
                    tx.execute(
                        f"UPDATE {PARKED_TABLE} SET attempts = attempts + ?, last_error = ?, "
                        "last_failed_at = ? WHERE name = ? AND position = ?",
                        (failures, describe_error(error), now, parked.name, parked.position),
                    )
            if error is None:
                report.resolved.append(parked)
                log.info("observer_parked_resolved", observer=parked.name, position=parked.position)
            else:
                report.failed.append(parked)
                log.warning(
                    "observer_parked_retry_failed",
                    observer=parked.name,
                    position=parked.position,
                    event_type=parked.event_type,
                    error=type(error).__name__,
                    detail=describe_error(error),
                )
        return report
