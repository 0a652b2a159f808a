"""The event feed: account events in global order, filtered by who may see them.

Partners follow it with a cursor (the last position they were given).  Only
account events are in it: debtor events hold personal data, and seals are the
auditors' business (``arrears verify``).  Which accounts a caller sees is decided
on each account's current summary (``visible``): an agency follows the accounts
placed with it now.  A page reads at most ``scan_limit`` stored events, so a
caller who sees few accounts still gets an answer quickly; ``next`` then moves
past everything read, shown or not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from ledger.history import event_fields
from ledger.readmodels import ReadModels
from ledger.readmodels.account_summary import _in_list
from ledger.readmodels.engine import EventDecoder
from ledger.store.rows import ChainRow, RowReader

Visible = Callable[[Mapping[str, Any]], bool]

_ACCOUNT_TOPIC = ":Account."
_ROW_COLUMNS = "account_id, currency, creditor, status, holder_kind, holder_name, agency, law_firm"


@dataclass(frozen=True)
class FeedEvent:
    position: int
    account_id: UUID
    version: int
    type: str
    at: datetime
    data: dict[str, Any]
    hash: str | None
    prev_hash: str | None


@dataclass(frozen=True)
class FeedPage:
    events: list[FeedEvent]
    next: int  # the position to pass as ``after`` for the next page


def read_feed(
    models: ReadModels,
    *,
    after: int,
    upto: int,
    limit: int,
    visible: Visible | None = None,
    scan_limit: int = 5000,
) -> FeedPage:
    """Up to ``limit`` visible account events after position ``after``, up to ``upto``.

    The account summary must have caught up to ``upto`` first (the caller's job),
    so that every account an event belongs to has its row.
    """
    reader = RowReader(models.ledger.recorder, batch_size=max(1, min(scan_limit, 1000)))
    decode = models.engine.decoder
    rows = []
    last = after
    for row in reader.iter_rows("global", after=after, upto=upto):
        last = row.position
        if _ACCOUNT_TOPIC in row.topic:
            rows.append(row)
        if (visible is None and len(rows) >= limit) or last - after >= scan_limit:
            break
    accounts = _accounts(models, {str(r.originator_id) for r in rows})
    events: list[FeedEvent] = []
    for row in rows:
        account = accounts.get(str(row.originator_id))
        if account is None or (visible is not None and not visible(account)):
            continue
        events.append(feed_event(decode, row, str(account["currency"])))
        if len(events) == limit:
            return FeedPage(events, row.position)
    return FeedPage(events, last)


def feed_event(decode: EventDecoder, row: ChainRow, currency: str) -> FeedEvent:
    """One stored row as the feed shows it: decoded, money as decimal strings."""
    record = decode(row.position, row.originator_id, row.version, row.topic, row.state)
    return FeedEvent(
        position=row.position,
        account_id=record.originator_id,
        version=row.version,
        type=type(record.event).__name__,
        at=record.event.timestamp,
        data=event_fields(record.event, currency),
        hash=row.hash.hex() if row.hash else None,
        prev_hash=row.prev_hash.hex() if row.prev_hash else None,
    )


def stream_events(
    models: ReadModels, account_id: UUID, currency: str, *, after_version: int = 0
) -> list[FeedEvent]:
    """One account's events after ``after_version``, as the feed shows them."""
    rows = RowReader(models.ledger.recorder).stream(account_id)
    decode = models.engine.decoder
    return [feed_event(decode, row, currency) for row in rows if row.version > after_version]


def _accounts(models: ReadModels, ids: set[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    wanted = sorted(ids)
    with models.engine.reading("account_summary") as (tx, names):
        for start in range(0, len(wanted), 512):
            chunk, marks = _in_list(wanted[start : start + 512])
            for row in tx.query(
                f"SELECT {_ROW_COLUMNS} FROM {names['accounts']} WHERE account_id IN ({marks})",
                chunk,
            ):
                found[row["account_id"]] = row
    return found
