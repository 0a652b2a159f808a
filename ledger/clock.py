"""Injectable time.

Every fact the ledger records is stamped by a clock that is handed in, so tests
and the demo can move time deterministically and nothing calls ``datetime.now``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current moment, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """A moment as every edge shows it: RFC 3339 in UTC with ``Z`` (never ``+00:00``)."""
    return ensure_utc(moment).isoformat().replace("+00:00", "Z")


def ensure_utc(moment: datetime) -> datetime:
    """Reject naive datetimes: an unzoned moment is ambiguous evidence."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()} has no time zone")
    return moment.astimezone(UTC)


@dataclass
class MovableClock:
    """A clock that only moves when told to (tests, demo, backfills).

    Each reading advances by ``tick`` so consecutive events keep a strict order.
    """

    current: datetime
    tick: timedelta = field(default=timedelta(0))

    def __post_init__(self) -> None:
        self.current = ensure_utc(self.current)

    def now(self) -> datetime:
        moment = self.current
        self.current = moment + self.tick
        return moment

    def advance(self, delta: timedelta) -> None:
        self.current += delta

    def set(self, moment: datetime) -> None:
        self.current = ensure_utc(moment)
