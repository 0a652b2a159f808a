"""Portfolio summary by creditor and currency, folded from one replay of the ledger.

Until the read models exist this is computed from the events on demand; one
ordered scan (``replay_all``) rather than one query per account.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ledger.application import Ledger
from ledger.domain.account import Account
from ledger.domain.lifecycle import OPEN_STATUSES
from ledger.money import format_minor
from ledger.replay import replay_all


@dataclass
class CreditorSummary:
    creditor: str
    currency: str
    accounts: int = 0
    placed: int = 0
    collected: int = 0
    outstanding: int = 0
    statuses: Counter[str] = field(default_factory=Counter)

    @property
    def liquidation_rate(self) -> float:
        """Collected / placed, as a fraction (display only; money stays integral)."""
        return self.collected / self.placed if self.placed else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "creditor": self.creditor,
            "currency": self.currency,
            "accounts": self.accounts,
            "placed": format_minor(self.placed, self.currency),
            "collected": format_minor(self.collected, self.currency),
            "outstanding": format_minor(self.outstanding, self.currency),
            "statuses": dict(sorted(self.statuses.items())),
        }


def portfolio_summary(ledger: Ledger) -> list[CreditorSummary]:
    rows: dict[tuple[str, str], CreditorSummary] = {}
    for aggregate in replay_all(ledger):
        if not isinstance(aggregate, Account):
            continue
        key = (aggregate.creditor, aggregate.currency)
        row = rows.get(key)
        if row is None:
            row = rows[key] = CreditorSummary(*key)
        row.accounts += 1
        row.placed += aggregate.placed_total
        row.collected += aggregate.paid_total
        if aggregate.status in OPEN_STATUSES:
            # Sold and closed balances are no longer ours to collect (as in the report).
            row.outstanding += aggregate.total_balance
        row.statuses[aggregate.status] += 1
    return [rows[key] for key in sorted(rows)]
