"""Who must not be contacted: the one replaceable exclusion policy of the worklist.

A policy is any callable that takes an account summary row and returns the
reason the account must not be contacted, or ``None`` if it may be.  The row is
the ``accounts`` row of the account summary read model, with ``flags`` as a
list of strings (as ``read_summary`` gives it) and ``dispute_awaiting`` the
number of disputes still awaiting verification.

The worklist takes the policy as a parameter (``exclude=``) and never looks at
these facts itself, so the compliance plugins can replace or extend it in this
one place, e.g. ``combine(default_exclusion, quiet_hours_rule)``.

Reasons are stable codes (``EXCLUSION_REASONS``); a replacement policy may add
its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from ledger.domain.lifecycle import OPEN_STATUSES


class ExclusionPolicy(Protocol):
    def __call__(self, row: Mapping[str, Any], /) -> str | None:
        """The reason this account must not be contacted, or None if it may be."""
        ...


#: Codes returned by ``default_exclusion``, in the order they are checked.
EXCLUSION_REASONS = (
    "not_worked",  # sold or closed: the ledger no longer accepts contacts for it
    "ceased",  # the debtor asked us to stop communicating
    "dispute_awaiting_verification",  # collection pauses until the debt is verified
    "bankrupt",  # automatic stay
    "deceased",  # only the estate may be approached, not through the worklist
    "attorney",  # represented: talk to the attorney, not the debtor
)


def row_flags(row: Mapping[str, Any]) -> list[str]:
    """``flags`` as a list, whether the row holds the stored text or the parsed list."""
    flags = row.get("flags") or []
    if isinstance(flags, str):
        return [f for f in flags.split(",") if f]
    return list(flags)


def default_exclusion(row: Mapping[str, Any], /) -> str | None:
    """The built-in rules: sold/closed, ceased, dispute awaiting verification, bankrupt,
    deceased, represented by an attorney.  A verified dispute, an open complaint or a
    referral to the creditor's own law firm do not exclude."""
    if row.get("status") not in OPEN_STATUSES:
        return "not_worked"
    flags = row_flags(row)
    if "ceased" in flags:
        return "ceased"
    if int(row.get("dispute_awaiting") or 0) > 0:
        return "dispute_awaiting_verification"
    for flag in ("bankrupt", "deceased", "attorney"):
        if flag in flags:
            return flag
    return None


def no_exclusion(row: Mapping[str, Any], /) -> str | None:
    """A policy that excludes nothing (for tests and what-if reports, never for work)."""
    return None


def combine(*policies: ExclusionPolicy) -> ExclusionPolicy:
    """A policy that applies ``policies`` in order; the first reason given wins."""

    def combined(row: Mapping[str, Any], /) -> str | None:
        for policy in policies:
            reason = policy(row)
            if reason is not None:
                return reason
        return None

    return combined
