"""Account life cycle: the statuses and the only transitions between them.

Kept as data so that the aggregate enforces exactly what ``docs/lifecycle.md``
documents (a test renders one from the other).
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    ACTIVE = "active"
    WITH_AGENCY = "with_agency"
    WITH_LAW_FIRM = "with_law_firm"
    SOLD = "sold"
    CLOSED = "closed"


#: (from status, action) -> to status
TRANSITIONS: dict[tuple[Status, str], Status] = {
    (Status.ACTIVE, "place_with_agency"): Status.WITH_AGENCY,
    (Status.WITH_AGENCY, "recall_from_agency"): Status.ACTIVE,
    (Status.ACTIVE, "refer_to_law_firm"): Status.WITH_LAW_FIRM,
    (Status.WITH_LAW_FIRM, "withdraw_referral"): Status.ACTIVE,
    (Status.WITH_LAW_FIRM, "legal_closed"): Status.ACTIVE,
    (Status.ACTIVE, "sell"): Status.SOLD,
    (Status.ACTIVE, "close"): Status.CLOSED,
    (Status.WITH_AGENCY, "close"): Status.CLOSED,
    (Status.WITH_LAW_FIRM, "close"): Status.CLOSED,
}

#: Statuses in which the ledger still works the debt.
OPEN_STATUSES = frozenset({Status.ACTIVE, Status.WITH_AGENCY, Status.WITH_LAW_FIRM})

CLOSE_REASONS = frozenset(
    {"paid", "settled", "uncollectible", "recalled", "bankruptcy", "deceased", "statute_barred"}
)


def next_status(current: Status, action: str) -> Status | None:
    return TRANSITIONS.get((current, action))
