"""Where a repayment plan stands on a given day.

Payments towards a plan fill its installments in due-date order, so the
installments covered are exactly those whose cumulative amount the payments
reach.  Shared by the read models (next installment, arrears), the worker
(installments missed) and, later, the API.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date


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
