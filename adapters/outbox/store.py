"""The outbox tables: jobs to deliver and each adapter's position in the event log.

They live beside the events (``ledger.store.operational``), so one store URL
names everything, and they are operational state: a delivered job's row is the
record that it was delivered (and of the partner's reference), which the events
alone cannot rebuild.  Rows are updated in place and may be pruned once old.

``outbox``
    One row per job, keyed by its idempotency key, so a job is created once
    however often its event is read.  ``state`` is ``pending`` (waiting for its
    ``next_attempt_at``), ``delivered`` or ``dead``.  ``lease_owner`` and
    ``lease_until`` mark a job one engine is delivering right now.
``outbox_positions``
    The notification position up to which each adapter has turned events into
    jobs; it moves in the same transaction that stores the jobs.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from adapters.outbox.base import Job
from ledger.application import Ledger
from ledger.readmodels.sqlstore import Tx
from ledger.store.operational import OperationalStore

OUTBOX_TABLE = "outbox"
POSITIONS_TABLE = "outbox_positions"

STATES = ("pending", "delivered", "dead")


def _tables(postgres: bool) -> Sequence[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS {OUTBOX_TABLE} ("
        "key TEXT PRIMARY KEY, adapter TEXT NOT NULL, account_id TEXT NOT NULL, "
        "position BIGINT NOT NULL, payload TEXT NOT NULL, state TEXT NOT NULL, "
        "attempts BIGINT NOT NULL, next_attempt_at TEXT NOT NULL, "
        "lease_owner TEXT, lease_until TEXT, last_error TEXT, partner_reference TEXT, "
        "created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
        f"CREATE INDEX IF NOT EXISTS outbox_due ON {OUTBOX_TABLE} (state, next_attempt_at)",
        f"CREATE INDEX IF NOT EXISTS outbox_reference ON {OUTBOX_TABLE} "
        "(adapter, partner_reference)",
        f"CREATE TABLE IF NOT EXISTS {POSITIONS_TABLE} ("
        "adapter TEXT PRIMARY KEY, position BIGINT NOT NULL, updated_at TEXT NOT NULL)",
    ]


@dataclass(frozen=True)
class OutboxEntry:
    """A stored job and where its delivery stands."""

    job: Job
    state: str
    attempts: int
    next_attempt_at: str
    last_error: str | None
    partner_reference: str | None
    created_at: str
    updated_at: str
    lease_until: str | None = None

    @property
    def key(self) -> str:
        return self.job.key

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.job.key,
            "adapter": self.job.adapter,
            "account_id": str(self.job.account_id),
            "position": self.job.position,
            "payload": dict(self.job.payload),
            "state": self.state,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at,
            "last_error": self.last_error,
            "partner_reference": self.partner_reference,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> OutboxEntry:
        job = Job(
            key=row["key"],
            adapter=row["adapter"],
            account_id=UUID(row["account_id"]),
            position=int(row["position"]),
            payload=json.loads(row["payload"]),
        )
        return cls(
            job=job,
            state=row["state"],
            attempts=int(row["attempts"]),
            next_attempt_at=row["next_attempt_at"],
            last_error=row["last_error"],
            partner_reference=row["partner_reference"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            lease_until=row["lease_until"],
        )


def encode_payload(job: Job) -> str:
    try:
        return json.dumps(dict(job.payload), sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"adapter {job.adapter!r} made job {job.key} with a payload that is not JSON: {e}"
        ) from e


class OutboxStore:
    """Reads and writes of the outbox tables; the engine and the CLI share it."""

    def __init__(self, ledger: Ledger) -> None:
        self.db = OperationalStore(ledger, "outbox", _tables)

    def transaction(self, *, write: bool = True) -> AbstractContextManager[Tx]:
        return self.db.transaction(write=write)

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------ positions

    def positions(self) -> dict[str, int]:
        with self.db.transaction(write=False) as tx:
            rows = tx.query(f"SELECT adapter, position FROM {POSITIONS_TABLE}")
        return {r["adapter"]: int(r["position"]) for r in rows}

    @staticmethod
    def add_jobs(tx: Tx, jobs: Iterable[Job], now: str) -> int:
        """Insert jobs not stored yet; returns how many were new."""
        added = 0
        for job in jobs:
            tx.execute(
                f"INSERT INTO {OUTBOX_TABLE} (key, adapter, account_id, position, payload, "
                "state, attempts, next_attempt_at, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
                (
                    job.key,
                    job.adapter,
                    str(job.account_id),
                    job.position,
                    encode_payload(job),
                    now,
                    now,
                    now,
                ),
            )
            added += max(0, tx.cursor.rowcount)
        return added

    @staticmethod
    def move(tx: Tx, adapter: str, position: int, now: str) -> None:
        """Move ``adapter``'s position forward to ``position`` (never back)."""
        tx.execute(
            f"INSERT INTO {POSITIONS_TABLE} (adapter, position, updated_at) VALUES (?, 0, ?) "
            "ON CONFLICT (adapter) DO NOTHING",
            (adapter, now),
        )
        tx.execute(
            f"UPDATE {POSITIONS_TABLE} SET position = ?, updated_at = ? "
            "WHERE adapter = ? AND position < ?",
            (position, now, adapter, position),
        )

    # ----------------------------------------------------------------- jobs

    def get(self, key: str) -> OutboxEntry | None:
        with self.db.transaction(write=False) as tx:
            rows = tx.query(f"SELECT * FROM {OUTBOX_TABLE} WHERE key = ?", (key,))
        return OutboxEntry.from_row(rows[0]) if rows else None

    def entries(
        self,
        *,
        state: str | None = None,
        adapter: str | None = None,
        limit: int | None = None,
    ) -> list[OutboxEntry]:
        """Jobs, oldest first (by event position, then key)."""
        sql = f"SELECT * FROM {OUTBOX_TABLE} WHERE 1 = 1"
        params: list[Any] = []
        if state is not None:
            sql += " AND state = ?"
            params.append(state)
        if adapter is not None:
            sql += " AND adapter = ?"
            params.append(adapter)
        sql += " ORDER BY position, key"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self.db.transaction(write=False) as tx:
            rows = tx.query(sql, params)
        return [OutboxEntry.from_row(r) for r in rows]

    def counts(self) -> dict[str, dict[str, int]]:
        """Jobs per adapter and state."""
        with self.db.transaction(write=False) as tx:
            rows = tx.query(
                f"SELECT adapter, state, count(*) AS n FROM {OUTBOX_TABLE} GROUP BY adapter, state"
            )
        out: dict[str, dict[str, int]] = {}
        for r in rows:
            out.setdefault(r["adapter"], {})[r["state"]] = int(r["n"])
        return out

    def by_reference(self, adapter: str, reference: str) -> OutboxEntry | None:
        """The job ``adapter`` delivered under the partner's ``reference``."""
        with self.db.transaction(write=False) as tx:
            rows = tx.query(
                f"SELECT * FROM {OUTBOX_TABLE} WHERE adapter = ? AND partner_reference = ? "
                "ORDER BY created_at LIMIT 1",
                (adapter, reference),
            )
        return OutboxEntry.from_row(rows[0]) if rows else None

    def due(self, adapters: Sequence[str], now: str, limit: int) -> list[OutboxEntry]:
        """Pending jobs of ``adapters`` whose time has come and that nobody holds."""
        if not adapters:
            return []
        marks = ", ".join("?" for _ in adapters)
        with self.db.transaction(write=False) as tx:
            rows = tx.query(
                f"SELECT * FROM {OUTBOX_TABLE} WHERE state = 'pending' AND next_attempt_at <= ? "
                f"AND (lease_until IS NULL OR lease_until <= ?) AND adapter IN ({marks}) "
                f"ORDER BY next_attempt_at, position, key LIMIT {int(limit)}",
                (now, now, *adapters),
            )
        return [OutboxEntry.from_row(r) for r in rows]

    def claim(self, key: str, owner: str, now: str, until: str) -> OutboxEntry | None:
        """Take ``key`` for one attempt (counted now, so an attempt that kills the worker
        still counts); None if another engine holds it or it is no longer pending."""
        with self.db.transaction() as tx:
            tx.execute(
                f"UPDATE {OUTBOX_TABLE} SET attempts = attempts + 1, lease_owner = ?, "
                "lease_until = ?, updated_at = ? WHERE key = ? AND state = 'pending' "
                "AND (lease_until IS NULL OR lease_until <= ?)",
                (owner, until, now, key, now),
            )
            if tx.cursor.rowcount != 1:
                return None
            rows = tx.query(f"SELECT * FROM {OUTBOX_TABLE} WHERE key = ?", (key,))
        return OutboxEntry.from_row(rows[0])

    def _held(self, sql: str, params: Sequence[Any], key: str, owner: str) -> bool:
        with self.db.transaction() as tx:
            tx.execute(sql + " WHERE key = ? AND lease_owner = ?", (*params, key, owner))
            return bool(tx.cursor.rowcount == 1)

    def set_reference(self, key: str, owner: str, reference: str, now: str) -> bool:
        return self._held(
            f"UPDATE {OUTBOX_TABLE} SET partner_reference = ?, updated_at = ?",
            (reference, now),
            key,
            owner,
        )

    def mark_delivered(self, key: str, owner: str, reference: str, now: str) -> bool:
        return self._held(
            f"UPDATE {OUTBOX_TABLE} SET state = 'delivered', partner_reference = ?, "
            "lease_owner = NULL, lease_until = NULL, updated_at = ?",
            (reference, now),
            key,
            owner,
        )

    def mark_failed(self, key: str, owner: str, error: str, next_at: str, now: str) -> bool:
        """Back to pending, to be tried again at ``next_at``."""
        return self._held(
            f"UPDATE {OUTBOX_TABLE} SET last_error = ?, next_attempt_at = ?, "
            "lease_owner = NULL, lease_until = NULL, updated_at = ?",
            (error, next_at, now),
            key,
            owner,
        )

    def mark_dead(self, key: str, owner: str, error: str, now: str) -> bool:
        return self._held(
            f"UPDATE {OUTBOX_TABLE} SET state = 'dead', last_error = ?, "
            "lease_owner = NULL, lease_until = NULL, updated_at = ?",
            (error, now),
            key,
            owner,
        )

    def retry(self, keys: Sequence[str] | None, now: str) -> list[str]:
        """Dead jobs (all when ``keys`` is None) back to pending, due now, attempts from 0;
        a pending job named in ``keys`` becomes due now.  Returns the keys changed."""
        changed: list[str] = []
        with self.db.transaction() as tx:
            if keys is None:
                rows = tx.query(f"SELECT key FROM {OUTBOX_TABLE} WHERE state = 'dead'")
                keys = [r["key"] for r in rows]
            for key in keys:
                tx.execute(
                    f"UPDATE {OUTBOX_TABLE} SET state = 'pending', attempts = CASE WHEN "
                    "state = 'dead' THEN 0 ELSE attempts END, next_attempt_at = ?, "
                    "updated_at = ? WHERE key = ? AND state IN ('dead', 'pending')",
                    (now, now, key),
                )
                if tx.cursor.rowcount == 1:
                    changed.append(key)
        return changed


_SHARED: weakref.WeakKeyDictionary[Ledger, OutboxStore] = weakref.WeakKeyDictionary()
_SHARED_LOCK = threading.Lock()


def outbox_store(ledger: Ledger) -> OutboxStore:
    """One ``OutboxStore`` per ledger, for callers that have only the service
    (delivery-status callbacks); it lives as long as the ledger."""
    with _SHARED_LOCK:
        store = _SHARED.get(ledger)
        if store is None:
            store = _SHARED[ledger] = OutboxStore(ledger)
        return store
