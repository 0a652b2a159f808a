"""Operational tables beside the events: API tokens, idempotency keys.

They live in the ledger's database (the SQLite file, or the PostgreSQL schema)
so that one store URL still names everything, and they use the read models'
connections (``ReadStore``): one per thread, ``?`` placeholders on both
backends, a write transaction that takes SQLite's write lock up front.

Unlike a read model, these rows are not derived from the events and cannot be
rebuilt, so on SQLite each connection commits with ``synchronous=FULL`` (as the
ledger does): a revocation or a recorded response must survive a power cut.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from ledger.application import Ledger
from ledger.errors import StoreError
from ledger.readmodels.sqlstore import ReadStore, Tx


class OperationalStore:
    """Transactions on a few tables of operational state, created on first use.

    ``ddl(postgres)`` returns the ``CREATE ... IF NOT EXISTS`` statements for the
    backend in use.
    """

    def __init__(self, ledger: Ledger, name: str, ddl: Callable[[bool], Sequence[str]]) -> None:
        if ledger.store_config is None:
            raise StoreError(f"{name} needs a ledger opened with open_ledger()")
        self.name = name
        self.store: ReadStore = ledger.operational_store()
        self.postgres = self.store.postgres
        self._ddl = ddl
        self._ready = False
        self._ready_lock = threading.Lock()
        self._durable = threading.local()

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Tx]:
        """A transaction on the tables (created first if need be)."""
        if not self._ready:
            self._create_tables()
        with self._transaction(write=write) as tx:
            yield tx

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Tx]:
        if not self.postgres:
            conn = self.store.connection
            if getattr(self._durable, "conn", None) is not conn:
                conn.execute("PRAGMA synchronous=FULL")
                self._durable.conn = conn
        with self.store.transaction(write=write) as tx:
            yield tx

    def _create_tables(self) -> None:
        with self._ready_lock:
            if self._ready:
                return
            with self._transaction(write=True) as tx:
                if self.postgres:
                    # Concurrent CREATE TABLE IF NOT EXISTS can fail on the catalog's
                    # unique index; SQLite's write lock already serialises them.
                    key = f"arrears-operational:{self.store.schema}:{self.name}"
                    tx.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (key,))
                for statement in self._ddl(self.postgres):
                    tx.execute(statement)
            self._ready = True

    def close(self) -> None:
        """Close this thread's connection (each thread opens its own)."""
        self.store.close()
