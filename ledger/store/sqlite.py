"""SQLite recorders: the library's, plus the hash chain, append-only triggers and durability.

* ``synchronous=FULL`` in WAL mode: a command that returned success has been
  fsynced and survives a power cut.
* ``BEGIN IMMEDIATE`` for writes: we read the predecessor's hash and then
  insert in one transaction; a deferred transaction could be refused the write
  lock after reading (SQLITE_BUSY_SNAPSHOT) without waiting for it.
* Triggers refuse UPDATE and DELETE on the events table, so a correction can
  only ever be a new event.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.persistence import (
    ApplicationRecorder,
    OperationalError,
    PersistenceError,
    ProcessRecorder,
    StoredEvent,
)
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteCursor,
    SQLiteFactory,
    SQLiteProcessRecorder,
    SQLiteTransaction,
)
from eventsourcing.utils import resolve_topic

from ledger.store.heads import HeadCache
from ledger.store.writelock import sqlite_writer
from ledger.tamper.chain import GENESIS, event_hash

T = TypeVar("T")

APPEND_ONLY_MESSAGE = "arrears: events are append-only; record a correction event instead"


# How long a new connection keeps asking for the lock that switching a brand-new
# file to WAL needs.  SQLite answers that switch with "database is locked" at once,
# without consulting the busy timeout, while another process opens the same file.
WAL_SWITCH_PATIENCE_SECONDS = 30.0


class DurableSQLiteConnectionPool(SQLiteConnectionPool):
    def _create_connection(self) -> SQLiteConnection:
        connection = self._connect_waiting_for_wal_switch()
        cursor = connection.cursor()
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        return connection

    def _connect_waiting_for_wal_switch(self) -> SQLiteConnection:
        """Several processes opening one new store at once all get in, one after another."""
        return while_locked(super()._create_connection)


def while_locked(attempt: Callable[[], T]) -> T:
    """``attempt()`` again, with growing pauses, while SQLite says the file is locked.

    For the statements SQLite refuses at once instead of waiting out the busy
    timeout (switching a new file to WAL while another process opens it).
    """
    deadline = time.monotonic() + WAL_SWITCH_PATIENCE_SECONDS
    pause = 0.005
    while True:
        try:
            return attempt()
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.25)


class _ImmediateTransaction(SQLiteTransaction):
    def __enter__(self) -> SQLiteCursor:
        # ``__exit__`` (which maps sqlite3 errors to the library's) does not run
        # when ``__enter__`` fails, so a lock timeout here is mapped by hand.
        cursor = self.connection.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            raise OperationalError(e) from e
        except sqlite3.Error as e:
            raise PersistenceError(e) from e
        return cursor


class ChainedSQLiteApplicationRecorder(SQLiteApplicationRecorder):
    """Application recorder whose rows carry ``prev_hash`` and ``hash``."""

    def __init__(self, datastore: Any, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name)
        self.heads = HeadCache()
        self._batch = threading.local()
        table = self.events_table_name
        self.insert_events_statement = (
            f"INSERT INTO {table} (originator_id, originator_version, topic, state, "
            "prev_hash, hash) VALUES (?,?,?,?,?,?)"
        )
        self.select_prev_hash_statement = (
            f"SELECT hash FROM {table} WHERE originator_id=? AND originator_version<? "
            "ORDER BY originator_version DESC LIMIT 1"
        )

    def construct_create_table_statements(self) -> list[str]:
        table = self.events_table_name
        return [
            f"CREATE TABLE IF NOT EXISTS {table} ("
            # The library uses the rowid as the notification id.  Declared as an
            # explicit INTEGER PRIMARY KEY (keeping the name, which the library's
            # queries read back), VACUUM can never renumber it: seals and read-model
            # trackers depend on positions staying put.
            "rowid INTEGER PRIMARY KEY, "
            "originator_id TEXT, "
            "originator_version INTEGER, "
            "topic TEXT, "
            "state BLOB, "
            "prev_hash BLOB, "
            "hash BLOB, "
            "UNIQUE (originator_id, originator_version))",
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END",
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END",
        ]

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        self._batch.heads = []
        writer = sqlite_writer(self.datastore.pool.db_name) or contextlib.nullcontext()
        with (
            writer,
            self.datastore.get_connection(commit=True) as connection,
            _ImmediateTransaction(connection, commit=True) as cursor,
        ):
            ids = self._insert_events(cursor, stored_events, **kwargs)
        self.heads.committed(self._batch.heads)
        return ids

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **_: Any
    ) -> Sequence[int] | None:
        # Chain each stream in version order (whatever order the batch is in): an
        # event's predecessor is the stream's highest version below it, stored or
        # earlier in this batch.  Rows are then inserted in the order given, so
        # notification ids follow the caller's order as the library expects.
        digests: dict[tuple[str, int], tuple[bytes, bytes]] = {}
        heads: dict[str, bytes] = {}
        for s in sorted(stored_events, key=lambda e: e.originator_version):
            oid = self._oid_text(s.originator_id)
            prev = heads.get(oid) or self.heads.prev_hash(oid, s.originator_version)
            if prev is None:
                c.execute(self.select_prev_hash_statement, (oid, s.originator_version))
                row = c.fetchone()
                prev = row[0] if row is not None and row[0] is not None else GENESIS
            digest = event_hash(s.originator_id, s.originator_version, s.topic, s.state, prev)
            heads[oid] = digest
            digests[(oid, s.originator_version)] = (prev, digest)
        self._batch.heads = [(oid, v, d) for (oid, v), (_, d) in digests.items()]
        returning = []
        for s in stored_events:
            oid = self._oid_text(s.originator_id)
            prev, digest = digests[(oid, s.originator_version)]
            c.execute(
                self.insert_events_statement,
                (oid, s.originator_version, s.topic, s.state, prev, digest),
            )
            returning.append(c.lastrowid)
        return returning

    @staticmethod
    def _oid_text(originator_id: UUID | str) -> str:
        return originator_id.hex if isinstance(originator_id, UUID) else originator_id


class ChainedSQLiteProcessRecorder(SQLiteProcessRecorder, ChainedSQLiteApplicationRecorder):
    """Events and the tracking position they were derived from, in one transaction.

    A subclass of the library's ``SQLiteProcessRecorder`` (the factory insists on
    that when a recorder is chosen by topic); the MRO puts the chained
    ``insert_events``/``_insert_events`` under the library's tracking insert.
    """

    def __init__(self, datastore: Any, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)


class ArrearsSQLiteFactory(SQLiteFactory):
    """The library's factory with the durable pool and the chained recorders.

    A recorder named by topic in the environment must be one of the chained
    recorders (or a subclass): the library's unchained recorder would write rows
    without hashes.
    """

    application_recorder_class = ChainedSQLiteApplicationRecorder
    process_recorder_class = ChainedSQLiteProcessRecorder

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        old = self.datastore.pool
        self.datastore.pool = DurableSQLiteConnectionPool(
            db_name=old.db_name, lock_timeout=old.lock_timeout
        )
        old.close()

    def _check_chained(self, key: str, required: type[Any]) -> None:
        topic = self.env.get(key)
        if topic:
            cls = resolve_topic(topic)
            if not (isinstance(cls, type) and issubclass(cls, required)):
                msg = f"{key}={topic!r} is not a hash-chained recorder (a {required.__name__})"
                raise OSError(msg)

    def application_recorder(self) -> ApplicationRecorder:
        self._check_chained(self.APPLICATION_RECORDER_TOPIC, ChainedSQLiteApplicationRecorder)
        return super().application_recorder()

    def process_recorder(self) -> ProcessRecorder:
        self._check_chained(self.PROCESS_RECORDER_TOPIC, ChainedSQLiteProcessRecorder)
        return super().process_recorder()
