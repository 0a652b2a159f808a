"""Auditor replay: an account's events in order, and the account as it stood at any moment.

"As of" means what the ledger had recorded by then (event timestamps), so a
report printed on a past date can be reproduced exactly today.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID

from ledger.application import Ledger
from ledger.clock import rfc3339
from ledger.domain.account import Account
from ledger.domain.allocation import COMPONENTS
from ledger.money import format_minor

_BASE_FIELDS = {"originator_id", "originator_version", "timestamp", "originator_topic"}
MONEY_FIELDS = {
    "amount",
    "principal",
    "interest",
    "fees",
    "total",
    "price",
    "judgment_amount",
    "last_payment_amount",
}
MONEY_MAPS = {"allocation", "amounts"}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def event_fields(event: Any, currency: str) -> dict[str, Any]:
    """Key fields of an event, money as decimal strings in the account's currency."""
    out: dict[str, Any] = {}
    for name, value in vars(event).items():
        if name in _BASE_FIELDS:
            continue
        if name in MONEY_FIELDS and isinstance(value, int) and not isinstance(value, bool):
            out[name] = format_minor(value, currency)
        elif name in MONEY_MAPS and isinstance(value, dict):
            out[name] = {k: format_minor(v, currency) for k, v in value.items()}
        elif name == "installments" and isinstance(value, list):
            out[name] = [
                {
                    "due_date": i["due_date"].isoformat(),
                    "amount": format_minor(i["amount"], currency),
                }
                for i in value
            ]
        else:
            out[name] = _plain(value)
    return out


def balance_view(account: Account) -> dict[str, str]:
    view = {c: format_minor(account.balance[c], account.currency) for c in COMPONENTS}
    view["total"] = format_minor(account.total_balance, account.currency)
    view["credit"] = format_minor(account.credit_balance, account.currency)
    return view


def account_state(account: Account) -> dict[str, Any]:
    currency = account.currency
    promise = account.open_promise
    plan = account.plan
    return {
        "id": str(account.id),
        "creditor": account.creditor,
        "reference": account.reference,
        "status": account.status,
        "currency": currency,
        "balance": balance_view(account),
        "paid_total": format_minor(account.paid_total, currency),
        "open_promise": None
        if promise is None
        else {
            "id": promise["id"],
            "amount": format_minor(promise["amount"], currency),
            "due_date": promise["due_date"].isoformat(),
        },
        "plan": None
        if plan is None
        else {
            "id": plan["id"],
            "kind": plan["kind"],
            "total": format_minor(plan["total"], currency),
            "paid": format_minor(plan["paid"], currency),
            "installments": [
                {
                    "due_date": i["due_date"].isoformat(),
                    "amount": format_minor(i["amount"], currency),
                }
                for i in plan["installments"]
            ],
        },
        "flags": account.flags,
        "holder": account.holder,
        "version": account.version,
    }


@dataclass
class HistoryEntry:
    version: int
    recorded_at: datetime
    type: str
    fields: dict[str, Any]
    balance: dict[str, str]
    hash: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "recorded_at": rfc3339(self.recorded_at),
            "type": self.type,
            "fields": self.fields,
            "balance_after": self.balance,
            "hash": self.hash,
        }


@dataclass
class History:
    account_id: UUID
    as_of: datetime | None
    entries: list[HistoryEntry] = field(default_factory=list)
    state: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "account_id": str(self.account_id),
            "as_of": rfc3339(self.as_of) if self.as_of else None,
            "events": [e.as_dict() for e in self.entries],
            "state": self.state,
        }


def account_history(ledger: Ledger, account_id: UUID, as_of: datetime | None) -> History:
    hashes = {row.version: row.hash for row in ledger.rows().stream(account_id)}
    history = History(account_id=account_id, as_of=as_of)
    account: Account | None = None
    events: Iterable[Any] = ledger.events.get(account_id)
    for event in events:
        if as_of is not None and event.timestamp > as_of:
            break
        account = event.mutate(account)
        assert account is not None
        digest = hashes.get(event.originator_version)
        history.entries.append(
            HistoryEntry(
                version=event.originator_version,
                recorded_at=event.timestamp,
                type=type(event).__name__,
                fields=event_fields(event, account.currency),
                balance=balance_view(account),
                hash=digest.hex() if digest else None,
            )
        )
    history.state = account_state(account) if account is not None else None
    return history
