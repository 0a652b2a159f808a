"""The projection engine: read models built from the global event sequence.

Each projection owns tables (named per *generation*, so a rebuild can fill new
tables while the old ones keep serving) and one row in ``projection_state``
holding its active generation and position.  A batch of events and the new
position are committed in one transaction, and the position is read inside that
same transaction (under the state row's lock), so a crash can neither
double-count nor skip an event, and two workers on the same projection simply
take turns.

Speed: a batch is read and decoded once, *before* any lock is taken, and handed
to every projection that needs it; only folding it into the rows happens inside
the write transaction.  The events are immutable, so reading them early is safe:
inside the transaction the engine re-reads the position and applies exactly the
events after it (if another worker got further meanwhile, fewer or none; if the
position is somehow behind what was read, it reads again inside).
"""

from __future__ import annotations

import bisect
import gc
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import UUID

import structlog
from eventsourcing.utils import resolve_topic

from ledger.application import Ledger
from ledger.errors import LedgerError, ValidationError
from ledger.readmodels.sqlstore import ReadStore, Tx, fast_decoder, to_text

log = structlog.get_logger("arrears.projections")

STATE_TABLE = "projection_state"

#: Events per batch.  Bigger batches amortise each commit and each row's save
#: over more events; on SQLite the write lock is held while a read model folds a
#: batch (a few tens of milliseconds per 1,000 events), and ledger commands wait.
DEFAULT_BATCH_SIZE = 5000

#: Weight of the newest batch in the smoothed rate shown by ``status``.
RATE_SMOOTHING = 0.3


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

    A projection may keep in-process caches (keyed by ``tx.names``, which differ
    per generation); ``reset`` must drop them.  The engine calls it whenever a
    batch fails, since the failed batch may have changed cached objects that the
    database never saw.
    """

    name: ClassVar[str]
    version: ClassVar[int] = 1
    tables: ClassVar[dict[str, str]]
    indexes: ClassVar[dict[str, list[str]]] = {}

    def handle(self, tx: ProjectionTx, events: Sequence[EventRecord]) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget in-process state; the next batch reads what it needs from its tables."""


class ProjectionTx:
    """A ``Tx`` that also knows the physical table names of one generation."""

    def __init__(self, tx: Tx, names: dict[str, str], ledger: Ledger) -> None:
        self.tx = tx
        self.names = names
        self.ledger = ledger
        self._formatted: dict[str, str] = {}

    def t(self, logical: str) -> str:
        return self.names[logical]

    def _format(self, sql: str) -> str:
        text = self._formatted.get(sql)
        if text is None:
            text = self._formatted[sql] = sql.format(**self.names)
        return text

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.tx.execute(self._format(sql), params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.tx.executemany(self._format(sql), rows)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return self.tx.query(self._format(sql), params)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.tx.rows(self._format(sql), params)

    def upsert(
        self,
        logical: str,
        columns: Sequence[str],
        key: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        update: bool = True,
    ) -> None:
        """Bulk insert-or-replace into a table of this generation (see ``Tx.upsert``)."""
        self.tx.upsert(self.names[logical], columns, key, rows, update=update)


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
    version: int = 1
    code_version: int = 1

    @property
    def lag(self) -> int:
        return max(0, self.head - self.position)

    @property
    def stale(self) -> bool:
        """Built by an older version of the projection's code: rebuild it."""
        return self.version != self.code_version

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
            "version": self.version,
            "stale": self.stale,
        }


class EventDecoder:
    """Stored notifications to domain events, exactly as the mapper does, minus its overhead."""

    def __init__(self, ledger: Ledger) -> None:
        mapper: Any = ledger.mapper
        transcoder = mapper.transcoder
        self.decode = fast_decoder(transcoder)
        self.cipher = getattr(mapper, "cipher", None)
        self.compressor = getattr(mapper, "compressor", None)
        self.classes: dict[str, tuple[type[Any], int]] = {}
        self._ids: dict[Any, UUID] = {}

    def _class(self, topic: str) -> tuple[type[Any], int]:
        found = self.classes.get(topic)
        if found is None:
            cls = resolve_topic(topic)
            found = self.classes[topic] = (cls, getattr(cls, "class_version", 1))
        return found

    def _uuid(self, originator_id: Any) -> UUID:
        oid = self._ids.get(originator_id)
        if oid is None:
            if len(self._ids) >= 20_000:
                self._ids.clear()
            is_uuid = isinstance(originator_id, UUID)
            oid = originator_id if is_uuid else UUID(str(originator_id))
            self._ids[originator_id] = oid
        return oid

    def __call__(
        self, position: int, originator_id: Any, version: int, topic: str, state: bytes
    ) -> EventRecord:
        cls, class_version = self._class(topic)
        oid = self._uuid(originator_id)
        if self.cipher is not None:
            state = self.cipher.decrypt(state)
        if self.compressor is not None:
            state = self.compressor.decompress(state)
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

    def rows(self, rows: Sequence[Sequence[Any]]) -> list[EventRecord]:
        """Rows of (position, originator id, version, topic, state), in order.

        The same steps as ``__call__``, inlined: this loop runs for every event
        of every catch-up.
        """
        if self.cipher is not None or self.compressor is not None:
            return [self(r[0], r[1], r[2], r[3], bytes(r[4])) for r in rows]
        classes, ids, decode = self.classes, self._ids, self.decode
        new, set_dict = object.__new__, object.__setattr__
        out: list[EventRecord] = []
        append = out.append
        for position, originator_id, version, topic, state in rows:
            found = classes.get(topic) or self._class(topic)
            cls, class_version = found
            oid = ids.get(originator_id) or self._uuid(originator_id)
            event_state = decode(state)
            event_state["originator_id"] = oid
            event_state["originator_version"] = version
            from_version = event_state.pop("class_version", 1)
            while from_version < class_version:
                getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(event_state)
                from_version += 1
            event = new(cls)
            set_dict(event, "__dict__", event_state)
            append(EventRecord(position, oid, version, topic, event))
        return out


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
        except Exception as e:  # the follower falls back to its timeout, then re-subscribes
            log.warning("subscription_stopped", error=type(e).__name__)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def wait(self, timeout: float, stop: Callable[[], bool]) -> None:
        """Until a notification, ``timeout`` seconds, or ``stop()`` (checked every 0.1 s)."""
        deadline = time.monotonic() + timeout
        while not stop():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._event.wait(min(remaining, 0.1)):
                break
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
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self.ledger = ledger
        self.store = store
        self.projections = {p.name: p for p in projections}
        self.batch_size = max(1, batch_size)
        self.decoder = EventDecoder(ledger)
        self._ensured: set[tuple[str, int]] = set()
        self._readable: set[str] = set()
        self._checked_versions: set[str] = set()
        # Wakes ``wait_for`` callers in this process as soon as a batch commits.
        self._progress = threading.Condition()
        recorder: Any = ledger.recorder
        table = recorder.events_table_name
        if store.postgres:
            schema = recorder.datastore.schema
            qualified, column = f'"{schema}"."{table}"', "notification_id"
        else:
            qualified, column = table, "rowid"
        self._select_events = (
            f"SELECT {column}, originator_id, originator_version, topic, state "
            f"FROM {qualified} WHERE {column} > ? ORDER BY {column} LIMIT ?"
        )
        self.ensure_state_table()

    # ------------------------------------------------------------ tables

    def _ddl_lock(self, tx: Tx) -> None:
        """On PostgreSQL, one process at a time creates or drops read-model tables.

        Concurrent ``CREATE TABLE IF NOT EXISTS`` of the same table can fail on the
        catalog's unique index; SQLite's write lock already serialises them.
        """
        if self.store.postgres:
            key = f"arrears-readmodels:{self.store.schema}"
            tx.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (key,))

    def ensure_state_table(self) -> None:
        with self.store.transaction() as tx:
            self._ddl_lock(tx)
            tx.execute(
                f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} ("
                "name TEXT NOT NULL, slot TEXT NOT NULL, generation BIGINT NOT NULL, "
                "position BIGINT NOT NULL, events BIGINT NOT NULL, version BIGINT NOT NULL, "
                "rate DOUBLE PRECISION, started_at TEXT, updated_at TEXT, PRIMARY KEY (name, slot))"
            )

    def _create_tables(self, tx: Tx, projection: Projection, generation: int) -> dict[str, str]:
        names = physical_names(projection, generation)
        if (projection.name, generation) not in self._ensured:
            self._ddl_lock(tx)
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
        self._ddl_lock(tx)
        for name in physical_names(projection, generation).values():
            tx.execute(f"DROP TABLE IF EXISTS {name}")
        self._ensured.discard((projection.name, generation))

    def _state(self, tx: Tx, name: str, slot: str, *, lock: bool) -> dict[str, Any] | None:
        sql = (
            f"SELECT generation, position, events, version, rate FROM {STATE_TABLE} "
            "WHERE name = ? AND slot = ?"
        )
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

    def _positions(self, slot: str) -> dict[str, int]:
        """Positions of every projection in ``slot`` as last committed (no lock)."""
        rows = self.store.query(f"SELECT name, position FROM {STATE_TABLE} WHERE slot = ?", (slot,))
        return {r["name"]: int(r["position"]) for r in rows}

    # ---------------------------------------------------------- reading

    def head(self) -> int:
        return int(self.ledger.recorder.max_notification_id() or 0)

    def _read(self, after: int, limit: int, tx: Tx | None = None) -> list[EventRecord]:
        """Up to ``limit`` events after position ``after``, decoded."""
        if tx is not None:
            return self.decoder.rows(tx.rows(self._select_events, (after, limit)))
        with self.store.transaction(write=False) as read:
            rows = read.rows(self._select_events, (after, limit))
        return self.decoder.rows(rows)

    # ------------------------------------------------------- processing

    def _apply(
        self,
        projection: Projection,
        slot: str,
        events: list[EventRecord],
        after: int,
        read_seconds: float,
    ) -> tuple[int, int]:
        """Apply one batch to ``slot``: (events applied, position now); position -1 if no slot.

        ``events`` are every event after position ``after`` (read before the lock);
        the slot's position, read under the lock, picks the ones still to apply.
        """
        started = time.perf_counter()
        try:
            with self.store.transaction() as tx:
                if slot == "active":
                    state = self._active(tx, projection)
                else:
                    found = self._state(tx, projection.name, slot, lock=True)
                    if found is None:
                        return 0, -1
                    state = found
                position = int(state["position"])
                if position >= after:
                    batch = events[bisect.bisect_right(events, position, key=_position) :]
                else:  # behind what was read (its state row was re-created): read its own
                    batch = self._read(position, self.batch_size, tx)
                if not batch:
                    return 0, position
                names = self._create_tables(tx, projection, int(state["generation"]))
                projection.handle(ProjectionTx(tx, names, self.ledger), batch)
                seconds = time.perf_counter() - started + read_seconds
                rate = len(batch) / max(1e-9, seconds)
                if state.get("rate") is not None:
                    rate = RATE_SMOOTHING * rate + (1 - RATE_SMOOTHING) * float(state["rate"])
                new_position = batch[-1].position
                tx.execute(
                    f"UPDATE {STATE_TABLE} SET position = ?, events = events + ?, rate = ?, "
                    "updated_at = ? WHERE name = ? AND slot = ?",
                    (
                        new_position,
                        len(batch),
                        rate,
                        to_text(datetime.now(UTC)),
                        projection.name,
                        slot,
                    ),
                )
        except BaseException:
            projection.reset()
            raise
        with self._progress:
            self._progress.notify_all()
        return len(batch), new_position

    def _advance(
        self,
        projections: Sequence[Projection],
        slot: str,
        *,
        max_batches: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Bring ``slot`` of each projection up to the head, one shared read per batch."""
        known = self._positions(slot)
        positions = {p.name: known.get(p.name, 0) for p in projections}
        batches = dict.fromkeys(positions, 0)
        pending = list(projections)
        applied = 0
        while pending:
            after = min(positions[p.name] for p in pending)
            counts: list[int] = []
            with _gc_paused():
                started = time.perf_counter()
                events = self._read(after, self.batch_size)
                if not events:
                    break
                read_seconds = time.perf_counter() - started
                last = events[-1].position
                for projection in list(pending):
                    if positions[projection.name] >= last:
                        continue  # ahead of the slowest: waits for the next read
                    count, position = self._apply(projection, slot, events, after, read_seconds)
                    if position < 0:  # the slot is gone (a rebuild finished elsewhere)
                        pending.remove(projection)
                        continue
                    positions[projection.name] = position
                    counts.append(count)
                    batches[projection.name] += 1
                    if max_batches is not None and batches[projection.name] >= max_batches:
                        pending.remove(projection)
                del events
            applied += sum(counts)
            if progress is not None:
                for count in counts:
                    if count:
                        progress(count)
        return applied

    def catch_up(
        self, names: Sequence[str] | None = None, *, max_batches: int | None = None
    ) -> int:
        """Apply every stored event the named projections have not seen yet.

        Returns the number of events applied, summed over the projections.  With
        ``max_batches`` each projection applies at most that many batches.
        """
        selected = self._select(names)
        self._rebuild_stale(selected)
        return self._advance(selected, "active", max_batches=max_batches)

    def _rebuild_stale(self, projections: Sequence[Projection]) -> None:
        """A read model built by older projection code is rebuilt before it is extended.

        Its tables may lack columns the new code writes, and its rows were derived
        by the old rules; the rebuild fills a new generation while the old one
        keeps serving, exactly as ``arrears projections rebuild`` does.
        """
        if self._checked_versions >= {p.name for p in projections}:
            return
        stale = {s.name for s in self.status(include_head=False) if s.stale}
        for projection in projections:
            if projection.name in stale:
                log.info("projection_stale_rebuilding", projection=projection.name)
                self.rebuild(projection.name)
            self._checked_versions.add(projection.name)

    def _select(self, names: Sequence[str] | None) -> list[Projection]:
        if not names:
            return list(self.projections.values())
        unknown = [n for n in names if n not in self.projections]
        if unknown:
            known = ", ".join(sorted(self.projections))
            raise ValidationError(f"unknown read model {', '.join(unknown)}; known: {known}")
        return [self.projections[n] for n in names]

    def follow(
        self,
        *,
        stop: Callable[[], bool] = lambda: False,
        poll_interval: float = 0.5,
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        """Catch up, then keep following new events until ``stop()`` says so.

        PostgreSQL wakes up on the library's LISTEN/NOTIFY subscription (and
        re-subscribes if it drops; ``poll_interval`` is then only a safety net);
        SQLite, which has no notifications, polls every ``poll_interval``
        seconds.  ``on_idle`` runs after every catch-up (the worker's clock tick
        hangs off it).  ``stop()`` is checked at least every 0.1 s while waiting.
        """
        waker: _SubscriptionWaker | None = None
        try:
            while not stop():
                if self.store.postgres and (waker is None or not waker.alive):
                    if waker is not None:
                        waker.close()
                    # Subscribed before catching up, so nothing written meanwhile is missed.
                    waker = _SubscriptionWaker(self.ledger, self.head())
                self.catch_up()
                if on_idle is not None:
                    on_idle()
                if stop():
                    return
                if waker is not None:
                    waker.wait(poll_interval, stop)
                else:
                    deadline = time.monotonic() + poll_interval
                    while not stop() and (remaining := deadline - time.monotonic()) > 0:
                        time.sleep(min(remaining, 0.1))
        finally:
            if waker is not None:
                waker.close()

    def wait_for(
        self, position: int, names: Sequence[str] | None = None, timeout: float = 10.0
    ) -> bool:
        """Read-your-writes: block until the read models have reached ``position``.

        Someone must be following (``follow`` in this or another process, or a
        ``catch_up`` call); otherwise this returns False after ``timeout`` seconds.
        A follower in this process wakes the wait as soon as it commits; progress
        made by other processes is polled (every 5 ms, backing off to 50 ms).
        """
        deadline = time.monotonic() + timeout
        wanted = [p.name for p in self._select(names)]
        delay = 0.005
        while True:
            positions = self._positions("active")
            if all(positions.get(name, 0) >= position for name in wanted):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._progress:
                self._progress.wait(min(delay, remaining))
            delay = min(delay * 2, 0.05)

    # ------------------------------------------------------------ status

    def status(self, *, include_head: bool = True) -> list[ProjectionStatus]:
        """Position, lag, smoothed rate (events/s while processing) and rebuild progress."""
        head = self.head() if include_head else 0
        rows = self.store.query(f"SELECT * FROM {STATE_TABLE}")
        by_slot = {(r["name"], r["slot"]): r for r in rows}
        out = []
        for name, projection in self.projections.items():
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
                    version=int(active["version"]) if active else projection.version,
                    code_version=projection.version,
                )
            )
        return out

    # ----------------------------------------------------------- rebuild

    def rebuild(self, name: str, *, progress: Callable[[int], None] | None = None) -> int:
        """Fill a fresh generation from zero while the active one keeps serving, then switch.

        An interrupted rebuild resumes where it stopped.  Returns the number of
        events this call applied to the new generation.
        """
        (projection,) = self._select([name])
        with self.store.transaction() as tx:
            active = self._active(tx, projection)
            generation = int(active["generation"]) + 1
            existing = self._state(tx, name, "building", lock=True)
            if existing is not None:
                generation = int(existing["generation"])
            else:
                self._drop_tables(tx, projection, generation)  # leftovers of an abandoned build
                now = to_text(datetime.now(UTC))
                tx.execute(
                    f"INSERT INTO {STATE_TABLE} (name, slot, generation, position, events, "
                    "version, started_at, updated_at) VALUES (?, 'building', ?, 0, 0, ?, ?, ?)",
                    (name, generation, projection.version, now, now),
                )
            self._create_tables(tx, projection, generation)
        total = 0
        while True:
            total += self._advance([projection], "building", progress=progress)
            if self._switch(projection, generation):
                return total

    def _switch(self, projection: Projection, generation: int) -> bool:
        """Make the rebuilt generation active, if it has caught up with the ledger."""
        with self.store.transaction() as tx:
            if self.store.postgres:  # waits for readers inside ``reading`` to finish
                key = self._switch_key(projection.name)
                tx.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (key,))
            active = self._active(tx, projection)
            building = self._state(tx, projection.name, "building", lock=True)
            if building is None:
                if int(active["generation"]) >= generation:
                    return True  # another process finished this rebuild and switched
                raise LedgerError(f"rebuild of {projection.name} was abandoned by another process")
            if int(building["position"]) < self.head():
                return False  # new events arrived: one more round
            old = int(active["generation"])
            tx.execute(
                f"UPDATE {STATE_TABLE} SET generation = ?, position = ?, events = ?, version = ?, "
                "rate = ?, updated_at = ? WHERE name = ? AND slot = 'active'",
                (
                    generation,
                    building["position"],
                    building["events"],
                    projection.version,
                    building["rate"],
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

    @contextmanager
    def reading(self, name: str, *, snapshot: bool = False) -> Iterator[tuple[Tx, dict[str, str]]]:
        """A read transaction and the active generation's table names, together.

        ``tables`` then a separate transaction can lose a race with a rebuild's
        switch, which drops the old tables.  Here the generation is read inside
        the transaction: SQLite's snapshot keeps the tables it names; on
        PostgreSQL the reader holds a shared advisory lock that the switch takes
        exclusively, so a switch waits for its readers (and a reader for a switch
        in progress), while catching up and rebuilding go on undisturbed.
        ``snapshot`` makes every query of the transaction see one snapshot on
        PostgreSQL too (reports whose sections must agree).
        """
        (projection,) = self._select([name])
        if name not in self._readable:
            self.tables(name)  # on first use, tables to read from (empty) before any catch-up
            self._readable.add(name)
        sql = f"SELECT generation FROM {STATE_TABLE} WHERE name = ? AND slot = 'active'"
        with self.store.transaction(write=False) as tx:
            if self.store.postgres:
                if snapshot:
                    tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                key = self._switch_key(name)
                tx.execute("SELECT pg_advisory_xact_lock_shared(hashtext(?))", (key,))
            found = tx.scalar(sql, (name,))
            yield tx, physical_names(projection, int(found) if found is not None else 1)

    def _switch_key(self, name: str) -> str:
        return f"arrears-readmodels-switch:{self.store.schema}:{name}"

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


def _position(record: EventRecord) -> int:
    return record.position


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while one batch is decoded and folded.

    A batch allocates tens of thousands of short-lived, acyclic objects (event
    dicts, datetimes, rows); each burst would otherwise set off collections
    that walk every live object, caches included: a quarter of the catch-up
    time.  Reference counting still frees them as usual, and any cycles a
    projection makes are collected as soon as the batch ends.  If collection
    was already off (another thread's batch, or the application's choice), it
    is left as it was.
    """
    enabled = gc.isenabled()
    if enabled:
        gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
