"""Seals: a running hash over the global event sequence, recorded as an event.

A per-stream chain cannot show that a whole stream, or the newest events of a
stream, were deleted.  A seal can: it commits to every event up to a position
(the running digest) and to the head (version and hash) of every stream that
changed since the previous seal.  Its digest, printed as ``POSITION:HEX``, is
what an auditor keeps outside the system; ``arrears verify --digest`` checks
the ledger against it.  Seals are incremental: each continues the previous one.
"""

from __future__ import annotations

import hashlib
import struct
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from ledger import errors
from ledger.application import Ledger
from ledger.domain.ids import seal_log_id
from ledger.tamper.chain import GENESIS, event_hash

_SEAL_DOMAIN = b"arrears.seal.v1\x00"
_U64 = struct.Struct(">Q")


def advance(running: bytes, position: int, digest: bytes) -> bytes:
    return hashlib.sha256(_SEAL_DOMAIN + running + _U64.pack(position) + digest).digest()


def format_digest(position: int, running: bytes) -> str:
    return f"{position}:{running.hex()}"


def parse_digest(text: str) -> tuple[int | None, bytes]:
    """``POSITION:HEX`` (as printed by ``arrears seal``) or a bare hex digest."""
    position_text, sep, hex_text = text.strip().partition(":")
    if not sep:
        position_text, hex_text = "", position_text
    try:
        raw = bytes.fromhex(hex_text)
        position = int(position_text) if position_text else None
    except ValueError:
        raise errors.ValidationError(
            f"{text!r} is not a seal digest (expected POSITION:HEX as printed by 'arrears seal')"
        ) from None
    if len(raw) != 32:
        raise errors.ValidationError(f"{text!r} is not a SHA-256 seal digest")
    return position, raw


class SealLog(Aggregate):
    """The ledger's own stream of seals; it is hash-chained like every other stream."""

    class Event(Aggregate.Event):
        class_version: ClassVar[int] = 1

    class Opened(Aggregate.Created):
        class_version: ClassVar[int] = 1

    class Sealed(Event):
        position: int
        digest: str
        previous_position: int
        event_count: int
        heads: dict[str, list[Any]]

        def apply(self, log: SealLog) -> None:
            log.position = self.position
            log.digest = self.digest
            log.event_count = self.event_count
            log.seal_count += 1

    def __init__(self) -> None:
        self.position = 0
        self.digest = GENESIS.hex()
        self.event_count = 0
        self.seal_count = 0

    @classmethod
    def open(cls, at: datetime) -> SealLog:
        return cls._create(cls.Opened, id=seal_log_id(), timestamp=at)


@dataclass(frozen=True)
class SealResult:
    position: int
    digest: str
    event_count: int
    streams: int
    new: bool


def _load(ledger: Ledger, at: datetime) -> SealLog:
    """The seal log as stored now: never a cached copy, which another process may have
    outdated or a failed save may have left holding an unsaved seal."""
    cache = ledger.repository.cache
    if cache is not None:
        with suppress(KeyError):
            cache.get(seal_log_id(), evict=True)
    try:
        log: Any = ledger.repository.get(seal_log_id())
    except AggregateNotFoundError:
        return SealLog.open(at)
    assert isinstance(log, SealLog)
    return log


def record_seal(ledger: Ledger, at: datetime, attempts: int = 5) -> SealResult:
    for _ in range(attempts):
        log = _load(ledger, at)
        running = bytes.fromhex(log.digest)
        heads: dict[str, list[Any]] = {}
        count = log.event_count
        position = log.position
        news = False  # anything besides the seal log's own previous seal event?
        for row in ledger.rows().iter_rows("global", after=log.position):
            if (
                row.hash is None
                or row.prev_hash is None
                or row.hash
                != event_hash(row.originator_id, row.version, row.topic, row.state, row.prev_hash)
            ):
                raise errors.LedgerError(
                    f"refusing to seal: event {row.originator_id} version {row.version} does not "
                    "match its hash; run 'arrears verify'",
                )
            running = advance(running, row.position, row.hash)
            heads[str(row.originator_id)] = [row.version, row.hash.hex()]
            count += 1
            position = row.position
            news = news or _norm(row.originator_id) != seal_log_id()
        if log.seal_count and not news:
            # Only the previous seal's own event (or nothing) came after it: that seal
            # already covers every fact, and sealing again would only seal the seal.
            return SealResult(
                log.position,
                format_digest(log.position, bytes.fromhex(log.digest)),
                log.event_count,
                0,
                new=False,
            )
        log.trigger_event(
            SealLog.Sealed,
            timestamp=at,
            position=position,
            digest=running.hex(),
            previous_position=log.position,
            event_count=count,
            heads=heads,
        )
        try:
            ledger.save(log)
        except IntegrityError:
            continue
        return SealResult(position, format_digest(position, running), count, len(heads), new=True)
    raise errors.ConcurrencyConflict("another process kept sealing at the same time; try again")


def _norm(originator_id: UUID | str) -> UUID | str:
    try:
        return UUID(str(originator_id))
    except ValueError:
        return originator_id


def seal_events(ledger: Ledger) -> list[SealLog.Sealed]:
    """Every recorded seal, decoded from the stored rows (not from a cached aggregate)."""
    out = []
    for row in ledger.rows().stream(seal_log_id()):
        if row.topic.endswith("SealLog.Sealed"):
            state = ledger.mapper.transcoder.decode(row.state)
            event = SealLog.Sealed.__new__(SealLog.Sealed)
            object.__setattr__(
                event,
                "__dict__",
                {
                    **state,
                    "originator_id": UUID(str(row.originator_id)),
                    "originator_version": row.version,
                },
            )
            out.append(event)
    return out
