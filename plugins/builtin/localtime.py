"""Local time for the rule packs: where the debtor may be, and which hours they agreed to.

The packs judge the debtor's wall clock, not UTC.  These helpers are shared so
that every pack reads the views (``docs/contact-views.md``) the same way: the
same candidate zones, the same half-open windows that may cross midnight.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def zone(name: str) -> ZoneInfo:
    """``ZoneInfo(name)``, with an error a configuration reader understands."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. 'Europe/London')") from e


def check_local_time(name: str, value: object, example: str) -> None:
    """A pack parameter must be a naive ``datetime.time`` (a wall-clock time)."""
    if not isinstance(value, time) or value.tzinfo is not None:
        raise ValueError(f"{name} must be a local datetime.time such as {example}, not {value!r}")


def candidate_zones(debtor: Mapping[str, Any], default: str) -> tuple[list[ZoneInfo], bool]:
    """The zones the debtor may be in, and whether they were all known.

    An unknown or invalid zone is replaced by ``default``, next to the valid ones.
    """
    names = [str(n) for n in debtor.get("time_zones") or ()]
    if debtor.get("time_zone"):
        names.append(str(debtor["time_zone"]))
    zones: dict[str, ZoneInfo] = {}
    known = bool(names)
    for name in names:
        try:
            zones.setdefault(name, ZoneInfo(name))
        except (ZoneInfoNotFoundError, ValueError):
            known = False
    if not known:
        zones.setdefault(default, ZoneInfo(default))
    return list(zones.values()), known


def within(moment: time, start: time, end: time) -> bool:
    """Whether ``moment`` is in ``[start, end)``; crosses midnight when start > end."""
    if start <= end:
        return start <= moment < end
    return moment >= start or moment < end


def window_ends(account: Mapping[str, Any]) -> tuple[time | None, time | None]:
    """The debtor's agreed window as given (either end may be missing)."""
    prefs: Mapping[str, Any] = account.get("contact_preferences") or {}
    start, end = prefs.get("window_start"), prefs.get("window_end")
    return (
        start.replace(tzinfo=None) if isinstance(start, time) else None,
        end.replace(tzinfo=None) if isinstance(end, time) else None,
    )


def agreed_window(account: Mapping[str, Any]) -> tuple[time, time] | None:
    """The local hours the debtor agreed to be contacted in, when both ends are set."""
    start, end = window_ends(account)
    if start is None or end is None:
        return None
    return start, end
