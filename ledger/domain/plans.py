"""Where a repayment plan stands on a given day.

Payments towards a plan fill its installments in due-date order, so the
installments covered are exactly those whose cumulative amount the payments
reach.  Shared by the read models (next installment, arrears), the worker
(installments missed) and, later, the API.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class PlanPosition:
    next_due_date: date | None
    next_amount: int
    arrears: int
    overdue: tuple[date, ...]  # due dates passed (before ``today``) and not yet covered
    remaining: int


def plan_position(installments: Sequence[tuple[date, int]], paid: int, today: date) -> PlanPosition:
    cumulative = 0
    next_due: date | None = None
    next_amount = 0
    due_so_far = 0
    overdue: list[date] = []
    for due, amount in installments:
        cumulative += amount
        if due < today:
            due_so_far = cumulative
            if paid < cumulative:
                overdue.append(due)
        if next_due is None and paid < cumulative:
            next_due = due
            next_amount = cumulative - paid if paid > cumulative - amount else amount
    return PlanPosition(
        next_due_date=next_due,
        next_amount=next_amount,
        arrears=max(0, due_so_far - paid),
        overdue=tuple(overdue),
        remaining=max(0, cumulative - paid),
    )


def grace_cutoff(today: date, grace_days: int) -> date:
    """The first due date still within its grace period on ``today``.

    Something due on ``d`` is late once ``today > d + grace_days``, that is once
    ``d < grace_cutoff(today, grace_days)``.
    """
    return today - timedelta(days=grace_days)


def newly_missed(
    installments: Sequence[tuple[date, int]],
    paid: int,
    today: date,
    grace_days: int,
    recorded: Sequence[date] | None,
    recorded_count: int,
) -> tuple[date, ...]:
    """Installments to record as missed on ``today``, in due-date order.

    An installment is missed once its due date plus ``grace_days`` has passed and
    the payments towards the plan do not cover it (``plan_position``).  Those
    already ``recorded`` are left out.  ``recorded=None`` means only the number of
    recorded misses is known (a plan restored from an old snapshot): misses were
    always recorded in due-date order, so the first ``recorded_count`` overdue
    installments count as recorded.
    """
    overdue = plan_position(installments, paid, grace_cutoff(today, grace_days)).overdue
    if recorded is None:
        return overdue[recorded_count:]
    known = set(recorded)
    return tuple(due for due in overdue if due not in known)
