"""The projection engine: read models built from the global event sequence.

Each projection owns tables (named per *generation*, so a rebuild can fill new
tables while the old ones keep serving) and one row in ``projection_state``
holding its active generation and position.  A batch of events and the new
position are committed in one transaction, and the position is read inside that
same transaction, so a crash can neither double-count nor skip an event, and two
workers on the same projection simply take turns.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import UUID

import structlog
from eventsourcing.utils import resolve_topic

from ledger.application import Ledger
from ledger.errors import LedgerError, ValidationError
from ledger.readmodels.sqlstore import ReadStore, Tx, to_text

log = structlog.get_logger("arrears.projections")

STATE_TABLE = "projection_state"


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One stored event as a projection sees it: its global position and the domain event."""

    position: int
    originator_id: UUID
    version: int
    topic: str
    event: Any

    @property
    def type(self) -> str:
        return type(self.event).__name__

    @property
    def timestamp(self) -> datetime:
        ts: datetime = self.event.timestamp
        return ts


class Projection:
    """Base class: declare tables, then fold batches of events into them.

    ``tables`` maps a logical name to its DDL, written with ``{name}`` for the
    physical table name of the current generation.  ``handle`` must only touch
    the database through ``tx``, so that rows and position commit together.
    """

    name: ClassVar[str]
    version: ClassVar[int] = 1
    tables: ClassVar[dict[str, str]]
    indexes: ClassVar[dict[str, list[str]]] = {}

    def handle(self, tx: ProjectionTx, events: Sequence[EventRecord]) -> None:
        raise NotImplementedError


class ProjectionTx:
    """A ``Tx`` that also knows the physical table names of one generation."""

    def __init__(self, tx: Tx, names: dict[str, str], ledger: Ledger) -> None:
        self.tx = tx
        self.names = names
        self.ledger = ledger

    def t(self, logical: str) -> str:
        return self.names[logical]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.tx.execute(sql.format(**self.names), params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.tx.executemany(sql.format(**self.names), rows)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return self.tx.query(sql.format(**self.names), params)


def physical_names(projection: Projection, generation: int) -> dict[str, str]:
    return {
        logical: f"rm_{projection.name}_{logical}_g{generation}" for logical in projection.tables
    }


@dataclass
class ProjectionStatus:
    name: str
    generation: int
    position: int
    head: int
    events: int
    rate: float | None
    updated_at: str | None
    building: int | None

    @property
    def lag(self) -> int:
        return max(0, self.head - self.position)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "generation": self.generation,
            "position": self.position,
            "head": self.head,
            "lag": self.lag,
            "events": self.events,
            "rate": self.rate,
            "updated_at": self.updated_at,
            "rebuilding_position": self.building,
        }


class EventDecoder:
    """Stored notifications to domain events, exactly as the mapper does, minus its overhead."""

    def __init__(self, ledger: Ledger) -> None:
        self.decode = ledger.mapper.transcoder.decode
        self.classes: dict[str, tuple[type[Any], int]] = {}

    def __call__(
        self, position: int, originator_id: Any, version: int, topic: str, state: bytes
    ) -> EventRecord:
        found = self.classes.get(topic)
        if found is None:
            cls = resolve_topic(topic)
            found = self.classes[topic] = (cls, getattr(cls, "class_version", 1))
        cls, class_version = found
        oid = originator_id if isinstance(originator_id, UUID) else UUID(str(originator_id))
        event_state = self.decode(state)
        event_state["originator_id"] = oid
        event_state["originator_version"] = version
        from_version = event_state.pop("class_version", 1)
        while from_version < class_version:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(event_state)
            from_version += 1
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", event_state)
        return EventRecord(position, oid, version, topic, event)


class _SubscriptionWaker:
    """Turns the library's blocking subscription into a wake-up with a timeout."""

    def __init__(self, ledger: Ledger, after: int) -> None:
        self._event = threading.Event()
        self._subscription = ledger.recorder.subscribe(gt=after)
        self._thread = threading.Thread(target=self._run, name="arrears-listen", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with self._subscription as notifications:
                for _ in notifications:
                    self._event.set()
        except Exception as e:  # the follower falls back to its timeout
            log.warning("subscription_stopped", error=type(e).__name__)

    def wait(self, timeout: float) -> None:
        self._event.wait(timeout)
        self._event.clear()

    def close(self) -> None:
        self._subscription.stop()
        self._thread.join(timeout=5)


class ProjectionEngine:
    """Runs a set of projections against one ledger and its read store."""

    def __init__(
        self,
        ledger: Ledger,
        store: ReadStore,
        projections: Sequence[Projection],
        *,
        batch_size: int = 500,
    ) -> None:
        self.ledger = ledger
        self.store = store
        self.projections = {p.name: p for p in projections}
        self.batch_size = batch_size
        self.decoder = EventDecoder(ledger)
        self._ensured: set[tuple[str, int]] = set()
        self.ensure_state_table()

    # ------------------------------------------------------------ tables

    def ensure_state_table(self) -> None:
        with self.store.transaction() as tx:
            tx.execute(
                f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} ("
                "name TEXT NOT NULL, slot TEXT NOT NULL, generation BIGINT NOT NULL, "
                "position BIGINT NOT NULL, events BIGINT NOT NULL, version BIGINT NOT NULL, "
                "rate DOUBLE PRECISION, started_at TEXT, updated_at TEXT, PRIMARY KEY (name, slot))"
            )

    def _create_tables(self, tx: Tx, projection: Projection, generation: int) -> dict[str, str]:
        names = physical_names(projection, generation)
        if (projection.name, generation) not in self._ensured:
            for logical, ddl in projection.tables.items():
                tx.execute(ddl.format(name=names[logical], **names))
            for logical, columns in projection.indexes.items():
                for i, column_list in enumerate(columns):
                    index = f"{names[logical]}_i{i}"
                    tx.execute(
                        f"CREATE INDEX IF NOT EXISTS {index} ON {names[logical]} ({column_list})"
                    )
            self._ensured.add((projection.name, generation))
        return names

    def _drop_tables(self, tx: Tx, projection: Projection, generation: int) -> None:
        for name in physical_names(projection, generation).values():
            tx.execute(f"DROP TABLE IF EXISTS {name}")
        self._ensured.discard((projection.name, generation))

    def _state(self, tx: Tx, name: str, slot: str, *, lock: bool) -> dict[str, Any] | None:
        sql = f"SELECT generation, position, events, version FROM {STATE_TABLE} WHERE name = ? AND slot = ?"
        if lock and self.store.postgres:
            sql += " FOR UPDATE"
        rows = tx.query(sql, (name, slot))
        return rows[0] if rows else None

    def _active(self, tx: Tx, projection: Projection) -> dict[str, Any]:
        """The active slot, created (generation 1, position 0) on first use."""
        state = self._state(tx, projection.name, "active", lock=True)
        if state is None:
            now = to_text(datetime.now(UTC))
            tx.execute(
                f"INSERT INTO {STATE_TABLE} (name, slot, generation, position, events, version, "
                "started_at, updated_at) VALUES (?, 'active', 1, 0, 0, ?, ?, ?) "
                "ON CONFLICT (name, slot) DO NOTHING",
                (projection.name, projection.version, now, now),
            )
            state = self._state(tx, projection.name, "active", lock=True)
            assert state is not None
        return state

    # ---------------------------------------------------------- reading

    def head(self) -> int:
        return int(self.ledger.recorder.max_notification_id() or 0)

    def _read(self, after: int, limit: int) -> list[EventRecord]:
        notifications = self.ledger.recorder.select_notifications(
            start=after, limit=limit, inclusive_of_start=False
        )
        decode = self.decoder
        return [
            decode(n.id, n.originator_id, n.originator_version, n.topic, n.state)
            for n in notifications
        ]

    # ------------------------------------------------------- processing

    def _apply_batch(self, projection: Projection, slot: str) -> int:
        """Apply at most one batch to ``slot``; the number of events applied."""
        started = time.perf_counter()
        with self.store.transaction() as tx:
            if slot == "active":
                state = self._active(tx, projection)
            else:
                found = self._state(tx, projection.name, slot, lock=True)
                if found is None:
                    return 0
                state = found
            position = int(state["position"])
            events = self._read(position, self.batch_size)
            if not events:
                return 0
            names = self._create_tables(tx, projection, int(state["generation"]))
            projection.handle(ProjectionTx(tx, names, self.ledger), events)
            tx.execute(
                f"UPDATE {STATE_TABLE} SET position = ?, events = events + ?, rate = ?, "
                "updated_at = ? WHERE name = ? AND slot = ?",
                (
                    events[-1].position,
                    len(events),
                    len(events) / max(1e-9, time.perf_counter() - started),
                    to_text(datetime.now(UTC)),
                    projection.name,
                    slot,
                ),
            )
        return len(events)

    def catch_up(
        self, names: Sequence[str] | None = None, *, max_batches: int | None = None
    ) -> int:
        """Apply every stored event the named projections have not seen yet."""
        applied = 0
        for projection in self._select(names):
            batches = 0
            while max_batches is None or batches < max_batches:
                count = self._apply_batch(projection, "active")
                if not count:
                    break
                applied += count
                batches += 1
        return applied

    def _select(self, names: Sequence[str] | None) -> list[Projection]:
        if not names:
            return list(self.projections.values())
        unknown = [n for n in names if n not in self.projections]
        if unknown:
            raise ValidationError(
                f"unknown read model {', '.join(unknown)}; known: {', '.join(sorted(self.projections))}"
            )
        return [self.projections[n] for n in names]

    def follow(
        self,
        *,
        stop: Callable[[], bool] = lambda: False,
        poll_interval: float = 0.5,
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        """Catch up, then keep following new events until ``stop()`` says so.

        PostgreSQL wakes up on the library's LISTEN/NOTIFY subscription; SQLite,
        which has no notifications, polls.  ``on_idle`` runs after every catch-up
        (the worker's clock tick hangs off it).
        """
        waker = _SubscriptionWaker(self.ledger, self.head()) if self.store.postgres else None
        try:
            while not stop():
                self.catch_up()
                if on_idle is not None:
                    on_idle()
                if stop():
                    return
                if waker is not None:
                    waker.wait(poll_interval)
                else:
                    time.sleep(poll_interval)
        finally:
            if waker is not None:
                waker.close()

    def wait_for(
        self, position: int, names: Sequence[str] | None = None, timeout: float = 10.0
    ) -> bool:
        """Read-your-writes: block until the read models have reached ``position``."""
        deadline = time.monotonic() + timeout
        wanted = self._select(names)
        while True:
            states = {s.name: s.position for s in self.status(include_head=False)}
            if all(states.get(p.name, 0) >= position for p in wanted):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    # ------------------------------------------------------------ status

    def status(self, *, include_head: bool = True) -> list[ProjectionStatus]:
        head = self.head() if include_head else 0
        rows = self.store.query(f"SELECT * FROM {STATE_TABLE}")
        by_slot = {(r["name"], r["slot"]): r for r in rows}
        out = []
        for name in self.projections:
            active = by_slot.get((name, "active"))
            building = by_slot.get((name, "building"))
            rate = float(active["rate"]) if active and active.get("rate") is not None else None
            out.append(
                ProjectionStatus(
                    name=name,
                    generation=int(active["generation"]) if active else 1,
                    position=int(active["position"]) if active else 0,
                    head=head,
                    events=int(active["events"]) if active else 0,
                    rate=rate,
                    updated_at=active["updated_at"] if active else None,
                    building=int(building["position"]) if building else None,
                )
            )
        return out

    # ----------------------------------------------------------- rebuild

    def rebuild(self, name: str, *, progress: Callable[[int], None] | None = None) -> int:
        """Fill a fresh generation from zero while the active one keeps serving, then switch."""
        (projection,) = self._select([name])
        with self.store.transaction() as tx:
            active = self._active(tx, projection)
            generation = int(active["generation"]) + 1
            existing = self._state(tx, name, "building", lock=True)
            if existing is not None:
                generation = int(existing["generation"])
            else:
                self._drop_tables(tx, projection, generation)
                now = to_text(datetime.now(UTC))
                tx.execute(
                    f"INSERT INTO {STATE_TABLE} (name, slot, generation, position, events, version, "
                    "started_at, updated_at) VALUES (?, 'building', ?, 0, 0, ?, ?, ?)",
                    (name, generation, projection.version, now, now),
                )
            self._create_tables(tx, projection, generation)
        total = 0
        while True:
            count = self._apply_batch(projection, "building")
            total += count
            if progress is not None and count:
                progress(count)
            if count:
                continue
            if self._switch(projection, generation):
                return total

    def _switch(self, projection: Projection, generation: int) -> bool:
        """Make the rebuilt generation active, if it has caught up with the active one."""
        with self.store.transaction() as tx:
            active = self._active(tx, projection)
            building = self._state(tx, projection.name, "building", lock=True)
            if building is None:
                raise LedgerError(f"rebuild of {projection.name} was abandoned by another process")
            if int(building["position"]) < self.head():
                return False  # new events arrived: one more round
            old = int(active["generation"])
            tx.execute(
                f"UPDATE {STATE_TABLE} SET generation = ?, position = ?, events = ?, version = ?, "
                "updated_at = ? WHERE name = ? AND slot = 'active'",
                (
                    generation,
                    building["position"],
                    building["events"],
                    projection.version,
                    to_text(datetime.now(UTC)),
                    projection.name,
                ),
            )
            tx.execute(
                f"DELETE FROM {STATE_TABLE} WHERE name = ? AND slot = 'building'",
                (projection.name,),
            )
            self._drop_tables(tx, projection, old)
        log.info("projection_rebuilt", projection=projection.name, generation=generation)
        return True

    def tables(self, name: str) -> dict[str, str]:
        """Physical names of the active generation (for readers)."""
        (projection,) = self._select([name])
        rows = self.store.query(
            f"SELECT generation FROM {STATE_TABLE} WHERE name = ? AND slot = 'active'", (name,)
        )
        generation = int(rows[0]["generation"]) if rows else 1
        if not rows:
            with self.store.transaction() as tx:
                self._create_tables(tx, projection, generation)
        return physical_names(projection, generation)
