"""What the contract shows: read-model rows and ledger results as v1 JSON.

Money leaves as decimal strings in the account's currency, times as RFC 3339 UTC
(``...Z``), dates as ISO 8601.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from api.money import show
from ledger.clock import rfc3339
from ledger.feed import FeedEvent
from ledger.history import History, HistoryEntry
from ledger.store.rows import ChainRow


def when(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return rfc3339(moment)


def day(value: date | str | None) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else value.isoformat()


def account_summary(row: Mapping[str, Any]) -> dict[str, Any]:
    """The account summary of contract v1, from the account summary read model's row."""
    currency = str(row["currency"])
    plan = row.get("plan")
    promise_id = row.get("open_promise_id")
    return {
        "id": str(row["account_id"]),
        "reference": row["reference"],
        "creditor": row["creditor"],
        "original_creditor": row.get("original_creditor"),
        "status": row["status"],
        "currency": currency,
        "balance": {
            "principal": show(row["principal"], currency),
            "interest": show(row["interest"], currency),
            "fees": show(row["fees"], currency),
            "total": show(row["total"], currency),
            "credit": show(row.get("credit") or 0, currency),
        },
        "paid_total": show(row["paid_total"] or 0, currency),
        "open_promise": None
        if promise_id is None
        else {
            "id": promise_id,
            "amount": show(row["promise_amount"], currency),
            "due_date": day(row["promise_due"]),
        },
        "plan": None
        if not plan
        else {
            "id": plan["id"],
            "kind": plan.get("kind"),
            "next_due_date": day(plan.get("next_due_date")),
            "next_amount": show(plan.get("next_amount") or 0, currency),
            "arrears": show(plan.get("arrears") or 0, currency),
        },
        "flags": list(row.get("flags") or []),
        "holder": {"kind": row["holder_kind"], "name": row["holder_name"]},
        "legal_status": row.get("legal_status"),
        "debtor_id": row.get("debtor_id"),
        "version": int(row["version"]),
    }


def balance(summary: Mapping[str, Any]) -> dict[str, Any]:
    return dict(summary["balance"])


def verdicts(items: Sequence[Any]) -> list[dict[str, Any]]:
    """Verdict records (``rule``, ``version``, ``outcome``, ``reason``, ``citation``)."""
    out = []
    for item in items:
        data = item.as_dict() if hasattr(item, "as_dict") else dict(item)
        out.append({k: data.get(k) for k in ("rule", "version", "outcome", "reason", "citation")})
    return out


def history_event(entry: HistoryEntry, row: ChainRow | None) -> dict[str, Any]:
    return {
        "position": row.position if row is not None else None,
        "version": entry.version,
        "type": entry.type,
        "at": when(entry.recorded_at),
        "data": entry.fields,
        "hash": entry.hash,
        "prev_hash": row.prev_hash.hex() if row is not None and row.prev_hash else None,
        "balance_after": {k: entry.balance[k] for k in ("principal", "interest", "fees", "total")}
        | {"credit": entry.balance.get("credit")},
    }


def history(result: History, rows: Mapping[int, ChainRow]) -> dict[str, Any]:
    return {
        "account_id": str(result.account_id),
        "as_of": when(result.as_of),
        "account": result.state,
        "events": [history_event(e, rows.get(e.version)) for e in result.entries],
    }


def feed_event(event: FeedEvent) -> dict[str, Any]:
    return {
        "position": event.position,
        "account_id": str(event.account_id),
        "version": event.version,
        "type": event.type,
        "at": when(event.at),
        "data": event.data,
        "hash": event.hash,
        "prev_hash": event.prev_hash,
    }
