"""Cash forecast: plan installments and open promises falling due, by ISO week.

Read from the account summary read model.  For every account the ledger still
works, the cash it is expected to bring in is:

- each installment of its active plan, for the part the payments towards the
  plan do not yet cover (payments fill installments in due-date order,
  ``ledger.domain.plans``): a partly paid installment counts only its unpaid part;
- its open promise, for the part not yet paid.

A payment counts towards both the open promise and the plan (that is how the
ledger applies it), so an account with both is not counted twice: the cash
expected from it by any day is the larger of what the promise and what the plan
call for by then, and each day's increase is attributed to the installments
falling due that day first, the rest to the promise.

Amounts are exact integer minor units, per currency (never added across
currencies).  Weeks are ISO weeks (Monday to Sunday); the first is the week of
``today``.  What fell due before ``today`` and is still unpaid is ``overdue``;
what falls due after the last week is ``later``: overdue + weeks + later is all
that is outstanding on plans and promises.

Accounts flagged as not to be contacted are still counted: a debtor who has
asked us to stop calling can still pay their plan.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from ledger.domain.lifecycle import OPEN_STATUSES
from ledger.domain.plans import plan_position
from ledger.money import format_minor


@dataclass
class Amounts:
    """Minor units expected, split by source."""

    installments: int = 0
    promises: int = 0

    @property
    def total(self) -> int:
        return self.installments + self.promises

    def as_dict(self, currency: str) -> dict[str, str]:
        return {
            "installments": format_minor(self.installments, currency),
            "promises": format_minor(self.promises, currency),
            "total": format_minor(self.total, currency),
        }


@dataclass
class ForecastWeek:
    start: date  # Monday
    amounts: dict[str, Amounts] = field(default_factory=dict)  # by currency

    @property
    def end(self) -> date:
        return self.start + timedelta(days=6)

    @property
    def iso_week(self) -> str:
        year, week, _ = self.start.isocalendar()
        return f"{year}-W{week:02d}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "week": self.iso_week,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "currencies": {c: a.as_dict(c) for c, a in sorted(self.amounts.items())},
        }


@dataclass
class CashForecast:
    today: date
    weeks: list[ForecastWeek]
    overdue: dict[str, Amounts]
    later: dict[str, Amounts]

    @property
    def currencies(self) -> list[str]:
        found = set(self.overdue) | set(self.later)
        for week in self.weeks:
            found |= set(week.amounts)
        return sorted(found)

    def as_dict(self) -> dict[str, Any]:
        return {
            "today": self.today.isoformat(),
            "currencies": self.currencies,
            "overdue": {c: a.as_dict(c) for c, a in sorted(self.overdue.items())},
            "weeks": [w.as_dict() for w in self.weeks],
            "later": {c: a.as_dict(c) for c, a in sorted(self.later.items())},
        }


def unpaid_installments(
    installments: Sequence[tuple[date, int]], paid: int, today: date
) -> list[tuple[date, int]]:
    """Each installment with the part of it ``paid`` does not cover, in schedule order.

    What ``plan_position`` leaves remaining of the schedule up to an installment,
    less what it leaves of the schedule before it, is that installment's unpaid part.
    """
    out: list[tuple[date, int]] = []
    before = 0
    for i, (due, _) in enumerate(installments):
        upto = plan_position(installments[: i + 1], paid, today).remaining
        out.append((due, upto - before))
        before = upto
    return out


def expected_cash(
    installments: Sequence[tuple[date, int]],
    promise: tuple[date, int] | None,
    owed: int | None = None,
) -> list[tuple[date, Amounts]]:
    """One account's expected cash by day, given unpaid installments and promise.

    The cumulative cash expected by day d is max(promise due by d, installments due
    by d), never more than the balance ``owed`` (a waiver can leave the schedule
    asking for more than is owed); each day's increase goes to that day's
    installments first.
    """
    by_day: dict[date, int] = defaultdict(int)
    for due, amount in installments:
        by_day[due] += amount
    days = set(by_day)
    if promise is not None:
        days.add(promise[0])
    out: list[tuple[date, Amounts]] = []
    cumulative_installments = expected = 0
    for day in sorted(days):
        cumulative_installments += by_day.get(day, 0)
        promised = promise[1] if promise is not None and promise[0] <= day else 0
        now_expected = max(promised, cumulative_installments)
        if owed is not None:
            now_expected = min(now_expected, max(owed, 0))
        increase = now_expected - expected
        expected = now_expected
        if increase:
            from_installments = min(increase, by_day.get(day, 0))
            out.append((day, Amounts(from_installments, increase - from_installments)))
    return out


def cash_forecast(tx: Any, names: dict[str, str], *, today: date, weeks: int) -> CashForecast:
    """Installments and promises falling due in the ``weeks`` ISO weeks from ``today``'s."""
    first = today - timedelta(days=today.weekday())
    buckets = [ForecastWeek(first + timedelta(weeks=i)) for i in range(max(0, weeks))]
    overdue: dict[str, Amounts] = {}
    later: dict[str, Amounts] = {}
    statuses = sorted(str(s) for s in OPEN_STATUSES)
    marks = ", ".join("?" for _ in statuses)
    rows = tx.query(
        f"SELECT account_id, currency, open_promise_id, promise_due, promise_amount, "
        f"promise_paid, plan_id, plan_paid, principal + interest + fees AS owed "
        f"FROM {names['accounts']} "
        f"WHERE status IN ({marks}) AND (open_promise_id IS NOT NULL OR plan_id IS NOT NULL)",
        statuses,
    )
    schedules: dict[str, list[tuple[date, int]]] = defaultdict(list)
    for r in tx.query(
        f"SELECT account_id, due_date, amount FROM {names['installments']} ORDER BY account_id, seq"
    ):
        schedules[r["account_id"]].append((date.fromisoformat(r["due_date"]), int(r["amount"])))
    for row in rows:
        currency = row["currency"]
        installments = (
            unpaid_installments(schedules[row["account_id"]], int(row["plan_paid"] or 0), today)
            if row["plan_id"]
            else []
        )
        promise = None
        if row["open_promise_id"] and row["promise_due"]:
            unpaid = int(row["promise_amount"] or 0) - int(row["promise_paid"] or 0)
            if unpaid > 0:
                promise = (date.fromisoformat(row["promise_due"]), unpaid)
        owed = None if row["owed"] is None else int(row["owed"])
        for day, amounts in expected_cash(installments, promise, owed):
            if day < today:
                target = overdue
            else:
                index = (day - first).days // 7
                target = buckets[index].amounts if index < len(buckets) else later
            cell = target.setdefault(currency, Amounts())
            cell.installments += amounts.installments
            cell.promises += amounts.promises
    return CashForecast(today=today, weeks=buckets, overdue=overdue, later=later)
