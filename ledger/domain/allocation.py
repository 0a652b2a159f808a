"""Payment waterfall.

Creditors differ in what a payment settles first; the default (fees, then
interest, then principal) is the usual contractual order.  Overpayment becomes a
credit balance owed back to the debtor, never a negative component.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

COMPONENTS: tuple[str, ...] = ("principal", "interest", "fees")
DEFAULT_ORDER: tuple[str, ...] = ("fees", "interest", "principal")
CREDIT = "credit"


def check_order(order: Sequence[str]) -> tuple[str, ...]:
    """An order must name every component exactly once, or money would go unallocated."""
    if sorted(order) != sorted(COMPONENTS):
        raise ValueError(
            f"allocation order must name each of {', '.join(COMPONENTS)} once, got {list(order)}"
        )
    return tuple(order)


def allocate(amount: int, balance: Mapping[str, int], order: Sequence[str]) -> dict[str, int]:
    """Split ``amount`` over the components in ``order``; the rest goes to ``credit``."""
    remaining = amount
    allocation: dict[str, int] = {}
    for component in check_order(order):
        take = min(remaining, balance.get(component, 0))
        if take > 0:
            allocation[component] = take
            remaining -= take
    if remaining > 0:
        allocation[CREDIT] = remaining
    return allocation
