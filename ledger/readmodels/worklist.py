"""The collector worklist: open accounts that need action now, ranked.

Read from the account summary read model (``accounts`` and ``installments``
tables), for a given moment ``now``.  An account needs action for one or more
of these reasons, ranked in this order:

1. ``broken_promise`` -- a promise was recorded as broken, or an open promise's
   due date plus ``grace_days`` has passed without it being paid in full
   (whether or not the time processes have recorded it as broken yet);
2. ``missed_installment`` -- the active plan has installments whose due date
   plus ``grace_days`` has passed and that the payments towards the plan do not
   cover (``ledger.domain.plans``, the same rule as the time processes use);
   paying the arrears clears it;
3. ``never_contacted`` -- no contact of any kind has been recorded;
4. ``callback_due`` -- the last contact scheduled a callback at or before ``now``
   (any later contact replaces it).

A broken promise or a missed installment stays on the list until someone
*reaches* the debtor (a right-party contact) after it happened: attempts that
do not reach them keep it listed, and a conversation is expected to end in a new
promise, a plan, a payment or a callback, which the list then follows.

Only accounts the ledger still works (active, with an agency, with a law firm)
and with a balance owed are considered.  The exclusion policy (``exclude``,
``ledger.readmodels.contactability``) then removes those that must not be
contacted; ``scan_worklist`` reports them in ``left_out`` with the policy's
reason, so a supervisor can see what is being held back and why.

Order: by the account's highest reason; within ``callback_due`` the earliest
callback first (it is an appointment), within the other reasons the largest
balance first (compared in major units of each currency: there are no exchange
rates here), then the longest waiting, then the account id.

Agent filter: an account is *assigned* to the agent named on its most recent
contact or promise that named one (in recording order); an account no contact
or promise has named an agent for is *unassigned*.  ``agent=A`` keeps the
accounts assigned to A plus the unassigned ones; ``agent=None`` keeps all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from typing import Any

from ledger.domain.lifecycle import OPEN_STATUSES
from ledger.domain.plans import grace_cutoff, plan_position
from ledger.money import exponent, format_minor
from ledger.readmodels.account_summary import SUMMARY_COLUMNS
from ledger.readmodels.contactability import ExclusionPolicy, default_exclusion, row_flags
from ledger.readmodels.sqlstore import from_text

#: The reasons, highest priority first.
REASONS = ("broken_promise", "missed_installment", "never_contacted", "callback_due")
_RANK = {reason: i for i, reason in enumerate(REASONS)}


@dataclass(frozen=True)
class WorklistItem:
    """One account to work: why (``reason`` first, all of ``reasons``) and what it owes."""

    position: int
    account_id: str
    creditor: str
    reference: str
    currency: str
    balance: str  # decimal string in the account's currency, e.g. "1200.00"
    reason: str
    reasons: tuple[str, ...]
    detail: str
    since: datetime  # when the first-ranked reason arose
    agent: str | None  # the assigned agent, None if unassigned
    status: str
    holder: str  # who holds the debt: the creditor, an agency or a law firm
    #: Channels the contact gate allows right now; ``None`` when the gate was not asked.
    open_channels: tuple[str, ...] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "open_channels": None if self.open_channels is None else list(self.open_channels),
            "position": self.position,
            "account_id": self.account_id,
            "creditor": self.creditor,
            "reference": self.reference,
            "currency": self.currency,
            "balance": self.balance,
            "reason": self.reason,
            "reasons": list(self.reasons),
            "detail": self.detail,
            "since": to_iso(self.since),
            "agent": self.agent,
            "status": self.status,
            "holder": self.holder,
        }


@dataclass(frozen=True)
class LeftOut:
    """An account that needs action but must not be contacted, and why not."""

    account_id: str
    creditor: str
    reference: str
    reasons: tuple[str, ...]
    excluded_because: str
    agent: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "creditor": self.creditor,
            "reference": self.reference,
            "reasons": list(self.reasons),
            "excluded_because": self.excluded_because,
            "agent": self.agent,
        }


@dataclass(frozen=True)
class Worklist:
    now: datetime
    agent: str | None
    items: list[WorklistItem]
    left_out: list[LeftOut]
    total: int  # accounts listed before ``limit`` was applied

    def left_out_counts(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for entry in self.left_out:
            counts[entry.excluded_because] += 1
        return dict(sorted(counts.items()))

    def as_dict(self) -> dict[str, Any]:
        return {
            "now": to_iso(self.now),
            "agent": self.agent,
            "total": self.total,
            "items": [i.as_dict() for i in self.items],
            "left_out": [e.as_dict() for e in self.left_out],
            "left_out_counts": self.left_out_counts(),
        }


def to_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _day_after(day: date) -> datetime:
    """The first moment a due date has passed (UTC)."""
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC)


@dataclass(frozen=True)
class _Need:
    reason: str
    since: datetime
    detail: str


def _money(minor: int, currency: str) -> str:
    return f"{format_minor(minor, currency)} {currency}"


def _needs(
    row: dict[str, Any], schedule: Sequence[tuple[date, int]], now: datetime, grace_days: int
) -> list[_Need]:
    today = now.date()
    cutoff = grace_cutoff(today, grace_days)  # due before this and unpaid: late
    currency = row["currency"]
    rpc = from_text(row["last_rpc_at"]) if row["last_rpc_at"] else None

    def unanswered(since: datetime) -> bool:
        return rpc is None or rpc < since

    needs: list[_Need] = []
    if row["last_broken_promise_at"]:
        since = from_text(row["last_broken_promise_at"])
        if unanswered(since):
            needs.append(_Need("broken_promise", since, f"promise broken on {since.date()}"))
    elif row["open_promise_id"] and row["promise_due"]:
        due = date.fromisoformat(row["promise_due"])
        amount, paid = int(row["promise_amount"] or 0), int(row["promise_paid"] or 0)
        if due < cutoff and paid < amount and unanswered(_day_after(due)):
            needs.append(
                _Need(
                    "broken_promise",
                    _day_after(due),
                    f"promise of {_money(amount, currency)} due {due}, "
                    f"{_money(amount - paid, currency)} unpaid",
                )
            )
    if row["plan_id"] and schedule:
        paid = int(row["plan_paid"] or 0)
        late = plan_position(schedule, paid, cutoff).overdue
        if late and unanswered(_day_after(max(late))):
            position = plan_position(schedule, paid, today)
            count = len(position.overdue)
            needs.append(
                _Need(
                    "missed_installment",
                    _day_after(max(late)),
                    f"{_money(position.arrears, currency)} in arrears, {count} installment"
                    f"{'s' if count > 1 else ''} overdue since {min(position.overdue)}",
                )
            )
    if not int(row["contact_count"] or 0):
        placed = from_text(row["placed_at"]) if row["placed_at"] else now
        needs.append(_Need("never_contacted", placed, f"placed {placed.date()}, no contact yet"))
    if row["callback_at"]:
        callback = from_text(row["callback_at"])
        if callback <= now:
            needs.append(_Need("callback_due", callback, f"callback due {to_iso(callback)}"))
    return needs


def _schedules(tx: Any, names: dict[str, str]) -> dict[str, list[tuple[date, int]]]:
    found: dict[str, list[tuple[date, int]]] = defaultdict(list)
    for r in tx.query(
        f"SELECT account_id, due_date, amount FROM {names['installments']} ORDER BY account_id, seq"
    ):
        found[r["account_id"]].append((date.fromisoformat(r["due_date"]), int(r["amount"])))
    return found


def open_accounts(tx: Any, names: dict[str, str]) -> list[dict[str, Any]]:
    """Summary rows (without the folded state) of the accounts still worked, owing money;
    ``flags`` as a list, as the exclusion policies expect it."""
    statuses = sorted(str(s) for s in OPEN_STATUSES)
    marks = ", ".join("?" for _ in statuses)
    rows: list[dict[str, Any]] = tx.query(
        f"SELECT {', '.join(SUMMARY_COLUMNS)} FROM {names['accounts']} "
        f"WHERE status IN ({marks}) AND total > 0",
        statuses,
    )
    for row in rows:
        row["flags"] = row_flags(row)
    return rows


def _assigned(row: dict[str, Any], agent: str | None) -> bool:
    return agent is None or row["last_agent"] is None or row["last_agent"] == agent


def _order(row: dict[str, Any], need: _Need) -> tuple[Any, ...]:
    balance = Fraction(int(row["total"]), 10 ** exponent(row["currency"]))
    if need.reason == "callback_due":
        return (_RANK[need.reason], need.since, -balance, row["account_id"])
    return (_RANK[need.reason], -balance, need.since, row["account_id"])


def scan_worklist(
    tx: Any,
    names: dict[str, str],
    *,
    now: datetime,
    agent: str | None = None,
    limit: int | None = None,
    exclude: ExclusionPolicy = default_exclusion,
    grace_days: int = 0,
) -> Worklist:
    """The worklist at ``now`` and the accounts the policy left out of it."""
    schedules = _schedules(tx, names)
    ranked: list[tuple[tuple[Any, ...], dict[str, Any], list[_Need]]] = []
    left_out: list[LeftOut] = []
    for row in open_accounts(tx, names):
        if not _assigned(row, agent):
            continue
        needs = _needs(row, schedules.get(row["account_id"], ()), now, grace_days)
        if not needs:
            continue
        needs.sort(key=lambda n: _RANK[n.reason])
        because = exclude(row)
        if because is not None:
            left_out.append(
                LeftOut(
                    account_id=row["account_id"],
                    creditor=row["creditor"],
                    reference=row["reference"],
                    reasons=tuple(n.reason for n in needs),
                    excluded_because=because,
                    agent=row["last_agent"],
                )
            )
            continue
        ranked.append((_order(row, needs[0]), row, needs))
    ranked.sort(key=lambda entry: entry[0])
    chosen = ranked if limit is None else ranked[: max(0, limit)]
    items = [
        WorklistItem(
            position=i,
            account_id=row["account_id"],
            creditor=row["creditor"],
            reference=row["reference"],
            currency=row["currency"],
            balance=format_minor(int(row["total"]), row["currency"]),
            reason=needs[0].reason,
            reasons=tuple(n.reason for n in needs),
            detail=needs[0].detail,
            since=needs[0].since,
            agent=row["last_agent"],
            status=row["status"],
            holder=row["holder_name"] or row["creditor"],
        )
        for i, (_, row, needs) in enumerate(chosen, start=1)
    ]
    left_out.sort(key=lambda e: (e.excluded_because, e.creditor, e.reference))
    return Worklist(now=now, agent=agent, items=items, left_out=left_out, total=len(ranked))


def worklist(
    tx: Any,
    names: dict[str, str],
    *,
    now: datetime,
    agent: str | None = None,
    limit: int | None = None,
    exclude: ExclusionPolicy = default_exclusion,
    grace_days: int = 0,
) -> list[WorklistItem]:
    """The ranked worklist at ``now`` (see the module docstring for the rules)."""
    return scan_worklist(
        tx, names, now=now, agent=agent, limit=limit, exclude=exclude, grace_days=grace_days
    ).items
