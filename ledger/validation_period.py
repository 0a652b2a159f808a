"""The Regulation F validation period (12 CFR 1006.34(b)(5)).

It ends 30 days after the consumer receives the validation notice; receipt may
be assumed five days after the notice is provided, not counting Saturdays,
Sundays and the legal public holidays of 5 U.S.C. 6103(a).  A dispute received
in writing within it pauses collection until verification is sent (1006.38).
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache

VALIDATION_DAYS = 30
RECEIPT_BUSINESS_DAYS = 5


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> date:
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: date) -> date:
    """A holiday on a Saturday is observed on the Friday before, on a Sunday the Monday after."""
    if day.weekday() == 5:
        return day - timedelta(days=1)
    if day.weekday() == 6:
        return day + timedelta(days=1)
    return day


@cache
def federal_holidays(year: int) -> frozenset[date]:
    """The legal public holidays of 5 U.S.C. 6103(a) in ``year``, as observed."""
    monday, thursday = 0, 3
    fixed = [date(year, 1, 1), date(year, 7, 4), date(year, 11, 11), date(year, 12, 25)]
    if year >= 2021:
        fixed.append(date(year, 6, 19))  # Juneteenth
    moving = [
        _nth_weekday(year, 1, monday, 3),  # Martin Luther King Jr.'s Birthday
        _nth_weekday(year, 2, monday, 3),  # Washington's Birthday
        _last_weekday(year, 5, monday),  # Memorial Day
        _nth_weekday(year, 9, monday, 1),  # Labor Day
        _nth_weekday(year, 10, monday, 2),  # Columbus Day
        _nth_weekday(year, 11, thursday, 4),  # Thanksgiving Day
    ]
    return frozenset([*(_observed(d) for d in fixed), *moving])


def is_business_day(day: date) -> bool:
    return day.weekday() < 5 and day not in federal_holidays(day.year)


def assumed_receipt(provided_on: date) -> date:
    """Five days after ``provided_on``, not counting weekends and federal holidays."""
    day, counted = provided_on, 0
    while counted < RECEIPT_BUSINESS_DAYS:
        day += timedelta(days=1)
        if is_business_day(day):
            counted += 1
    return day


def validation_period_end(provided_on: date) -> date:
    """The last day of the validation period of a notice provided on ``provided_on``."""
    return assumed_receipt(provided_on) + timedelta(days=VALIDATION_DAYS)


def within_validation_period(provided_on: date, received_on: date, *, written: bool) -> bool:
    """Whether a dispute pauses collection: written, and received by the period's end."""
    return written and received_on <= validation_period_end(provided_on)
