"""``holidays.public_holiday``: no contact on a public holiday where the debtor lives.

This is creditor **policy**, not law: no statute cited by Arrears forbids contact on a
public holiday (Regulation F only asks collectors to avoid times they know are
inconvenient).  Creditors adopt it to keep complaints down.  The citation says so.

What it judges
--------------
- Every channel except ``letter`` (the post delivers it on a working day anyway) and
  ``legal`` (a legal action, not a communication); every purpose and party.
- The calendar is the debtor's ``jurisdiction``: ``"US-IL"`` is country ``US``,
  subdivision ``IL``; ``"GB-SCT"`` is Scotland; ``"CN"`` is national only.  A country
  the holidays library does not know, or no jurisdiction, gets **no verdict**.  A
  subdivision it does not know falls back to the national calendar, and the
  reason says so.
- The day is the debtor's *local* date, from ``time_zone`` and ``time_zones`` with
  ``zoneinfo``: 23:30 in Chicago on 3 July is 3 July even though it is already 4 July
  in UTC.  With several zones the contact is blocked if it falls on a holiday in any
  of them.  With no valid zone the UTC date is used, and the reason says so.
- Observed days count: when a holiday falls on a weekend, the weekday it is observed
  on (e.g. Friday 3 July 2026 for Independence Day on Saturday 4 July) is blocked as
  well as the day itself.  Only the library's *public* category is used.

One verdict when it applies: ``block`` on a holiday, ``allow`` on any other day.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from functools import lru_cache
from importlib.metadata import version
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from plugins import Verdict

RULE_ID = "holidays.public_holiday"
RULE_VERSION = "1"
NOT_JUDGED = frozenset({"letter", "legal"})
CITATION = (
    "Creditor policy, not law: no contact on the debtor's public holidays; "
    f"holiday calendar: python-holidays {version('holidays')}"
)


def parse_jurisdiction(jurisdiction: object) -> tuple[str, str | None] | None:
    """``"US-IL"`` -> ``("US", "IL")``, ``"CN"`` -> ``("CN", None)``, blank -> ``None``."""
    text = str(jurisdiction or "").strip().upper()
    if not text:
        return None
    country, _, subdivision = text.partition("-")
    return country, subdivision or None


@lru_cache(maxsize=512)
def calendar(country: str, subdivision: str | None, year: int) -> Mapping[date, str] | None:
    """One year's public holidays (observed days included), or ``None`` if unknown."""
    try:
        found = holidays.country_holidays(country, subdiv=subdivision, years=year)
    except NotImplementedError:  # the library's answer for an unknown country or subdivision
        return None
    return MappingProxyType(dict(found))  # shared by every caller: read-only


def local_dates(debtor: Mapping[str, Any], at: datetime) -> tuple[dict[str, date], bool]:
    """The debtor's local date of ``at`` per zone name, and whether any zone was known."""
    names = [str(n) for n in debtor.get("time_zones") or ()]
    if debtor.get("time_zone"):
        names.append(str(debtor["time_zone"]))
    dates: dict[str, date] = {}
    for name in dict.fromkeys(names):
        try:
            dates[name] = at.astimezone(ZoneInfo(name)).date()
        except (ZoneInfoNotFoundError, ValueError):
            continue  # an invalid name tells us nothing; the others still do
    if not dates:
        return {"UTC": at.astimezone(ZoneInfo("UTC")).date()}, False
    return dates, True


def judge(debtor: Mapping[str, Any], channel: str, at: datetime) -> list[Verdict]:
    """The rule's verdict on one proposed contact (none when it does not apply)."""
    parsed = parse_jurisdiction(debtor.get("jurisdiction"))
    if channel in NOT_JUDGED or parsed is None:
        return []
    country, subdivision = parsed
    where = f"{country}-{subdivision}" if subdivision else country
    note = ""
    if subdivision and calendar(country, subdivision, at.year) is None:
        subdivision, note = None, f" (no calendar for {where}: national holidays of {country})"
    if calendar(country, subdivision, at.year) is None:
        return []  # a country the library does not know: the rule cannot judge
    dates, known = local_dates(debtor, at)
    if not known:
        note += " (debtor's time zone unknown: UTC date used)"
    for zone, day in dates.items():
        name = (calendar(country, subdivision, day.year) or {}).get(day)
        if name is not None:
            reason = f"{day.isoformat()} in {zone} is {name}, a public holiday in {where}{note}"
            return [Verdict("block", RULE_ID, RULE_VERSION, reason, CITATION)]
    days = ", ".join(f"{day.isoformat()} in {zone}" for zone, day in dates.items())
    reason = f"{days}: not a public holiday in {where}{note}"
    return [Verdict("allow", RULE_ID, RULE_VERSION, reason, CITATION)]
