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

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ProcessRecorder, StoredEvent
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteCursor,
    SQLiteFactory,
    SQLiteTrackingRecorder,
    SQLiteTransaction,
)

from ledger.tamper.chain import GENESIS, event_hash

APPEND_ONLY_MESSAGE = "arrears: events are append-only; record a correction event instead"


class DurableSQLiteConnectionPool(SQLiteConnectionPool):
    def _create_connection(self) -> SQLiteConnection:
        connection = super()._create_connection()
        cursor = connection.cursor()
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        return connection


class _ImmediateTransaction(SQLiteTransaction):
    def __enter__(self) -> SQLiteCursor:
        cursor = self.connection.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        return cursor


class ChainedSQLiteApplicationRecorder(SQLiteApplicationRecorder):
    """Application recorder whose rows carry ``prev_hash`` and ``hash``."""

    def __init__(self, datastore: Any, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name)
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
            "originator_id TEXT, "
            "originator_version INTEGER, "
            "topic TEXT, "
            "state BLOB, "
            "prev_hash BLOB, "
            "hash BLOB, "
            "PRIMARY KEY (originator_id, originator_version))",
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END",
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END",
        ]

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        with (
            self.datastore.get_connection(commit=True) as connection,
            _ImmediateTransaction(connection, commit=True) as cursor,
        ):
            return self._insert_events(cursor, stored_events, **kwargs)

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **_: Any
    ) -> Sequence[int] | None:
        heads: dict[str, tuple[int, bytes]] = {}
        returning = []
        for s in stored_events:
            oid = s.originator_id.hex if isinstance(s.originator_id, UUID) else s.originator_id
            head = heads.get(oid)
            if head is not None and head[0] < s.originator_version:
                prev = head[1]
            else:
                c.execute(self.select_prev_hash_statement, (oid, s.originator_version))
                row = c.fetchone()
                prev = row[0] if row is not None and row[0] is not None else GENESIS
            digest = event_hash(s.originator_id, s.originator_version, s.topic, s.state, prev)
            heads[oid] = (s.originator_version, digest)
            c.execute(
                self.insert_events_statement,
                (oid, s.originator_version, s.topic, s.state, prev, digest),
            )
            returning.append(c.lastrowid)
        return returning


class ChainedSQLiteProcessRecorder(
    SQLiteTrackingRecorder, ChainedSQLiteApplicationRecorder, ProcessRecorder
):
    """Events and the tracking position they were derived from, in one transaction."""

    def __init__(self, datastore: Any, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        returning = super()._insert_events(c, stored_events, **kwargs)
        tracking = kwargs.get("tracking")
        if tracking is not None:
            self._insert_tracking(c, tracking)
        return returning


class ArrearsSQLiteFactory(SQLiteFactory):
    application_recorder_class = ChainedSQLiteApplicationRecorder
    process_recorder_class = ChainedSQLiteProcessRecorder

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        old = self.datastore.pool
        self.datastore.pool = DurableSQLiteConnectionPool(
            db_name=old.db_name, lock_timeout=old.lock_timeout
        )
        old.close()


