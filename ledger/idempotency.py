"""Idempotency keys: a retried request returns the original response and appends nothing.

Each key is reserved by one request before it runs, in the ``idempotency_keys``
table (primary key ``(scope, key)``; the scope is the caller's token id, so two
clients never collide).  The database decides who reserved it, across threads
and processes: on SQLite the check and the insert run under the write lock
(``BEGIN IMMEDIATE``); on PostgreSQL ``INSERT ... ON CONFLICT DO NOTHING`` lets
exactly one insert win and the losers read the row under ``FOR UPDATE``.

The life of a key::

    begin -> proceed      the caller runs the request, then complete() (or release())
          -> replay       it ran before with the same request: the stored response
          -> conflict     it ran (or runs) with a different request: 409
          -> in_flight    another request holds it: wait() for its response

A reservation is a lease of ``lease_seconds``: a request that crashed without
``release`` holds its key only that long, then a retry takes it over.  The key
and the events a request appends commit in separate transactions, so a request
still running when its lease ends can be run twice: keep ``lease_seconds``
above the slowest request (and, for payments, pass an external reference,
which the ledger itself deduplicates).

These rows are operational state, not events: they are updated and may be
purged; the ledger's append-only rule is about events.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import structlog

from ledger import errors
from ledger.application import Ledger
from ledger.clock import Clock, ensure_utc
from ledger.readmodels.sqlstore import Tx, from_text, to_text
from ledger.store.operational import OperationalStore

log = structlog.get_logger("arrears.idempotency")

Outcome = Literal["proceed", "replay", "conflict", "in_flight"]

MAX_KEY_LENGTH = 255

_POLL_FIRST = 0.01  # seconds; doubled up to _POLL_MAX while waiting
_POLL_MAX = 0.2


@dataclass(frozen=True)
class Begin:
    """What to do with a request: run it (``proceed``), or answer ``status``/``body``
    (``replay``), or refuse it (``conflict``, ``in_flight``)."""

    outcome: Outcome
    status: int | None = None
    body: bytes | None = None


def request_hash(method: str, path: str, body: bytes) -> str:
    """A digest of the request: JSON bodies compare by content (key order and spacing
    do not matter), any other body byte for byte."""
    try:
        payload = json.dumps(
            json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
        kind = b"json"
    except (ValueError, UnicodeDecodeError):
        payload, kind = body, b"raw"
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), kind):
        digest.update(part + b"\n")
    digest.update(payload)
    return digest.hexdigest()


def _tables(postgres: bool) -> Sequence[str]:
    blob = "BYTEA" if postgres else "BLOB"
    return [
        "CREATE TABLE IF NOT EXISTS idempotency_keys ("
        "scope TEXT NOT NULL, key TEXT NOT NULL, request_hash TEXT NOT NULL, "
        "state TEXT NOT NULL, response_status INTEGER, "
        f"response_body {blob}, created_at TEXT NOT NULL, leased_at TEXT NOT NULL, "
        "completed_at TEXT, PRIMARY KEY (scope, key))"
    ]


class IdempotencyStore:
    """Reservations and recorded responses of idempotent requests."""

    request_hash = staticmethod(request_hash)

    def __init__(self, ledger: Ledger, clock: Clock, *, lease_seconds: float = 60) -> None:
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        self.clock = clock
        self.lease = timedelta(seconds=lease_seconds)
        self._db = OperationalStore(ledger, "idempotency_keys", _tables)

    def _now(self) -> str:
        return to_text(ensure_utc(self.clock.now()))

    def begin(self, scope: str, key: str, request_hash: str) -> Begin:
        """Reserve ``key`` for this request, or say why not (see ``Begin``)."""
        if not key or len(key) > MAX_KEY_LENGTH:
            raise errors.ValidationError(
                f"an idempotency key must have 1 to {MAX_KEY_LENGTH} characters",
                field="idempotency_key",
            )
        while True:
            with self._db.transaction() as tx:
                now = self._now()
                tx.execute(
                    "INSERT INTO idempotency_keys (scope, key, request_hash, state, "
                    "created_at, leased_at) VALUES (?, ?, ?, 'in_flight', ?, ?) "
                    "ON CONFLICT (scope, key) DO NOTHING",
                    (scope, key, request_hash, now, now),
                )
                if tx.cursor.rowcount == 1:
                    return Begin("proceed")
                lock = " FOR UPDATE" if self._db.postgres else ""
                rows = tx.query(
                    "SELECT request_hash, state, response_status, response_body, leased_at "
                    f"FROM idempotency_keys WHERE scope = ? AND key = ?{lock}",
                    (scope, key),
                )
                if rows:  # else released since the insert lost (PostgreSQL): insert again
                    return self._decide(tx, scope, key, request_hash, rows[0], now)

    def _decide(
        self, tx: Tx, scope: str, key: str, request_hash: str, row: Mapping[str, Any], now: str
    ) -> Begin:
        if row["request_hash"] != request_hash:
            return Begin("conflict")
        if row["state"] == "completed":
            return Begin("replay", int(row["response_status"]), bytes(row["response_body"]))
        if from_text(row["leased_at"]) + self.lease > from_text(now):
            return Begin("in_flight")
        tx.execute(
            "UPDATE idempotency_keys SET leased_at = ? WHERE scope = ? AND key = ?",
            (now, scope, key),
        )
        log.warning("idempotency_lease_taken_over", scope=scope, key=key)
        return Begin("proceed")

    def wait(self, scope: str, key: str, request_hash: str, timeout: float = 10.0) -> Begin:
        """``begin``, repeated while another request holds the key, for up to ``timeout``
        seconds.  ``proceed`` means the holder released it and this caller now holds it;
        ``in_flight`` means it was still held when the time ran out."""
        deadline = time.monotonic() + timeout
        pause = _POLL_FIRST
        while True:
            result = self.begin(scope, key, request_hash)
            remaining = deadline - time.monotonic()
            if result.outcome != "in_flight" or remaining <= 0:
                return result
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, _POLL_MAX)

    def reserve(self, scope: str, key: str, request_hash: str, *, timeout: float = 10.0) -> Begin:
        """``begin``, then ``wait`` if the key is in flight; a reused key is an
        ``idempotency_key_reused`` error.  Returns ``proceed``, ``replay`` or, if the
        holder outlasted ``timeout``, ``in_flight``."""
        result = self.begin(scope, key, request_hash)
        if result.outcome == "in_flight":
            result = self.wait(scope, key, request_hash, timeout)
        if result.outcome == "conflict":
            raise errors.IdempotencyKeyReused(
                f"idempotency key {key!r} was already used for a different request; "
                "use a new key for a new request",
                idempotency_key=key,
            )
        return result

    def complete(self, scope: str, key: str, status: int, body: bytes) -> None:
        """Record the response of the request holding ``key``; retries will get it."""
        with self._db.transaction() as tx:
            tx.execute(
                "UPDATE idempotency_keys SET state = 'completed', response_status = ?, "
                "response_body = ?, completed_at = ? "
                "WHERE scope = ? AND key = ? AND state = 'in_flight'",
                (status, bytes(body), self._now(), scope, key),
            )
            recorded = tx.cursor.rowcount == 1
        if not recorded:
            log.warning("idempotency_complete_ignored", scope=scope, key=key)

    def release(self, scope: str, key: str) -> None:
        """Give up a reservation (the request failed unexpectedly): a retry may proceed."""
        with self._db.transaction() as tx:
            tx.execute(
                "DELETE FROM idempotency_keys WHERE scope = ? AND key = ? AND state = 'in_flight'",
                (scope, key),
            )

    def close(self) -> None:
        """Close this thread's connection."""
        self._db.close()
