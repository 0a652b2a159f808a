"""The ``import_rows`` table: which rows of which agency were claimed, posted, refused.

Primary key ``(agency, row_key)``; ``row_hash`` is the digest of the row's
content, so the same key sent again with other content is told apart.  States:

* ``pending``: claimed; its ledger write may or may not have happened.
  ``leased_at`` + the lease says until when its claimer may still be at work.
* ``posted``: the ledger write happened (``result`` names what was recorded).
* ``rejected``: the ledger refused the row and recorded nothing (``error``).

The database decides who holds a row, across threads and processes: on SQLite
the check and the insert run under the write lock, on PostgreSQL the loser of
``INSERT ... ON CONFLICT DO NOTHING`` reads the row ``FOR UPDATE``.  These rows
are operational state, not events: they are updated in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import structlog

from ledger.clock import Clock, ensure_utc
from ledger.readmodels.sqlstore import from_text, to_text
from ledger.services import LedgerService
from ledger.store.operational import OperationalStore

log = structlog.get_logger("arrears.adapters.agency")

Claim = Literal["new", "recover", "posted", "reused", "in_flight"]
_RELEASED = to_text(datetime(1970, 1, 1, tzinfo=UTC))


def _tables(postgres: bool) -> Sequence[str]:
    return [
        "CREATE TABLE IF NOT EXISTS import_rows ("
        "agency TEXT NOT NULL, row_key TEXT NOT NULL, row_hash TEXT NOT NULL, "
        "state TEXT NOT NULL, result TEXT, error TEXT, file TEXT NOT NULL, "
        "created_at TEXT NOT NULL, leased_at TEXT NOT NULL, updated_at TEXT NOT NULL, "
        "PRIMARY KEY (agency, row_key))"
    ]


@dataclass(frozen=True)
class StoredRow:
    row_hash: str
    state: str  # pending | posted | rejected


class ImportRows:
    """Claims on activity rows, for one ledger (see the module doc)."""

    def __init__(self, service: LedgerService, *, lease_seconds: float = 60.0) -> None:
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        self.clock: Clock = service.clock
        self.lease = timedelta(seconds=lease_seconds)
        self._db = OperationalStore(service.ledger, "import_rows", _tables)

    def _now(self) -> str:
        return to_text(ensure_utc(self.clock.now()))

    def states(self, agency: str, keys: Sequence[str]) -> dict[str, StoredRow]:
        found: dict[str, StoredRow] = {}
        unique = sorted(set(keys))
        with self._db.transaction(write=False) as tx:
            for start in range(0, len(unique), 500):
                chunk = unique[start : start + 500]
                marks = ", ".join("?" for _ in chunk)
                for row in tx.query(
                    "SELECT row_key, row_hash, state FROM import_rows "
                    f"WHERE agency = ? AND row_key IN ({marks})",
                    (agency, *chunk),
                ):
                    found[row["row_key"]] = StoredRow(row["row_hash"], row["state"])
        return found

    def claim(self, agency: str, key: str, digest: str, source: str) -> Claim:
        """Take the row for posting (``new``, or ``recover`` a crashed claim), or say why not."""
        with self._db.transaction() as tx:
            now = self._now()
            tx.execute(
                "INSERT INTO import_rows (agency, row_key, row_hash, state, file, created_at, "
                "leased_at, updated_at) VALUES (?, ?, ?, 'pending', ?, ?, ?, ?) "
                "ON CONFLICT (agency, row_key) DO NOTHING",
                (agency, key, digest, source, now, now, now),
            )
            if tx.cursor.rowcount == 1:
                return "new"
            lock = " FOR UPDATE" if self._db.postgres else ""
            stored = tx.query(
                "SELECT row_hash, state, leased_at FROM import_rows "
                f"WHERE agency = ? AND row_key = ?{lock}",
                (agency, key),
            )[0]
            if stored["state"] == "rejected":
                # The ledger refused it and recorded nothing: the agency may send it again.
                tx.execute(
                    "UPDATE import_rows SET row_hash = ?, state = 'pending', result = NULL, "
                    "error = NULL, file = ?, leased_at = ?, updated_at = ? "
                    "WHERE agency = ? AND row_key = ?",
                    (digest, source, now, now, agency, key),
                )
                return "new"
            if stored["row_hash"] != digest:
                return "reused"
            if stored["state"] == "posted":
                return "posted"
            if from_text(stored["leased_at"]) + self.lease > from_text(now):
                return "in_flight"
            tx.execute(
                "UPDATE import_rows SET file = ?, leased_at = ?, updated_at = ? "
                "WHERE agency = ? AND row_key = ?",
                (source, now, now, agency, key),
            )
            log.warning("import_row_recovering", agency=agency, row_key=key)
            return "recover"

    def finish(
        self,
        agency: str,
        key: str,
        digest: str,
        state: Literal["posted", "rejected"],
        *,
        result: str = "",
        error: str = "",
    ) -> None:
        with self._db.transaction() as tx:
            tx.execute(
                "UPDATE import_rows SET state = ?, result = ?, error = ?, updated_at = ? "
                "WHERE agency = ? AND row_key = ? AND row_hash = ? AND state = 'pending'",
                (state, result or None, error or None, self._now(), agency, key, digest),
            )

    def release(self, agency: str, key: str, digest: str) -> None:
        """End the lease of a claim whose outcome is unknown: the next import recovers it."""
        with self._db.transaction() as tx:
            tx.execute(
                "UPDATE import_rows SET leased_at = ? "
                "WHERE agency = ? AND row_key = ? AND row_hash = ? AND state = 'pending'",
                (_RELEASED, agency, key, digest),
            )

    def close(self) -> None:
        self._db.close()
