"""The Regulation F validation-notice itemization of a debt (12 CFR 1006.34(c)(2)).

From the itemization date (one of five reference dates, 1006.34(b)(3)) the notice
shows the amount then, the interest, fees and payments or credits since, and
the current amount.  All of it is folded from the account's events, as of any
moment, so a notice can be reproduced exactly as it was sent:

    current_amount = amount_at_itemization + interest_since + fees_since
                     - payments_credits_since

Payments count for what they took off the debt (an overpayment held as a credit
balance does not make the amount owed negative); a reversal takes its payment's
share back; waivers and credit adjustments are credits; a debit adjustment of
interest or fees counts as interest or fees, one of principal as a negative credit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from ledger import errors
from ledger.clock import rfc3339
from ledger.domain.account import Account
from ledger.domain.allocation import CREDIT
from ledger.money import format_minor


@dataclass(frozen=True)
class Itemization:
    account_id: UUID
    currency: str
    itemization_date: date
    itemization_kind: str
    as_of: datetime | None
    amount_at_itemization: int
    interest_since: int
    fees_since: int
    payments_credits_since: int
    current_amount: int

    def as_dict(self) -> dict[str, Any]:
        def money(minor: int) -> str:
            return format_minor(minor, self.currency)

        return {
            "account_id": str(self.account_id),
            "currency": self.currency,
            "itemization_date": self.itemization_date.isoformat(),
            "itemization_kind": self.itemization_kind,
            "as_of": rfc3339(self.as_of) if self.as_of else None,
            "amount_at_itemization": money(self.amount_at_itemization),
            "interest_since": money(self.interest_since),
            "fees_since": money(self.fees_since),
            "payments_credits_since": money(self.payments_credits_since),
            "current_amount": money(self.current_amount),
        }


def itemize(account_id: UUID, events: Iterable[Any], as_of: datetime | None) -> Itemization:
    """The itemization from the account's events recorded up to ``as_of`` (all if None)."""
    account: Account | None = None
    interest = fees = credits = 0
    for event in events:
        if as_of is not None and event.timestamp > as_of:
            break
        if isinstance(event, Account.InterestAccrued):
            interest += event.amount
        elif isinstance(event, Account.FeeAssessed):
            fees += event.amount
        elif isinstance(event, Account.BalanceAdjusted):
            if event.direction == "credit":
                credits += event.amount
            elif event.component == "interest":
                interest += event.amount
            elif event.component == "fees":
                fees += event.amount
            else:
                credits -= event.amount
        elif isinstance(event, Account.PaymentReceived):
            credits += _applied(event.allocation)
        elif isinstance(event, Account.PaymentReversed):
            assert account is not None
            credits -= _applied(account.payments[event.payment_id]["allocation"])
        elif isinstance(event, Account.BalanceWaived):
            credits += sum(event.amounts.values())
        account = event.mutate(account)
    if account is None:
        raise errors.InvalidDate(
            "the account had not been placed yet at that moment", field="as_of"
        )
    placed = account.itemization
    at_itemization = int(placed["principal"]) + int(placed["interest"]) + int(placed["fees"])
    return Itemization(
        account_id=account_id,
        currency=account.currency,
        itemization_date=placed["date"],
        itemization_kind=placed["kind"],
        as_of=as_of,
        amount_at_itemization=at_itemization,
        interest_since=interest,
        fees_since=fees,
        payments_credits_since=credits,
        current_amount=account.total_balance,
    )


def _applied(allocation: dict[str, int]) -> int:
    return sum(part for component, part in allocation.items() if component != CREDIT)
