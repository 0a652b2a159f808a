"""Accounts listed from the account summary read model, a page at a time.

Pages are keyset-paginated on the account id, so a page costs the same on the
first and the thousandth call, and accounts placed meanwhile never shift or
repeat what was already listed.  ``visible`` decides which rows the caller may
see (an agency sees only what is placed with it); the rows it refuses are
skipped without counting towards ``limit``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from ledger.readmodels.account_summary import SUMMARY_COLUMNS, _in_list, _plan_view

Visible = Callable[[Mapping[str, Any]], bool]

#: Rows read per query while looking for visible ones.
SCAN_BATCH = 200


@dataclass(frozen=True)
class AccountPage:
    items: list[dict[str, Any]]  # rows shaped as ``read_summary`` returns them
    next_after: str | None  # the last account id listed, when there may be more


def list_accounts(
    tx: Any,
    names: Mapping[str, str],
    *,
    today: date,
    limit: int,
    after: str | None = None,
    creditor: str | None = None,
    status: str | None = None,
    agency: str | None = None,
    law_firm: str | None = None,
    visible: Visible | None = None,
) -> AccountPage:
    """Up to ``limit`` accounts with an id above ``after``, in id order, filtered."""
    conditions, params = ["account_id > ?"], []
    for column, value in (
        ("creditor", creditor),
        ("status", status),
        ("agency", agency),
        ("law_firm", law_firm),
    ):
        if value is not None:
            conditions.append(f"{column} = ?")
            params.append(value)
    sql = (
        f"SELECT {', '.join(SUMMARY_COLUMNS)} FROM {names['accounts']} "
        f"WHERE {' AND '.join(conditions)} ORDER BY account_id LIMIT ?"
    )
    found: list[dict[str, Any]] = []
    cursor = after or ""
    batch = max(limit + 1, SCAN_BATCH) if visible is not None else limit + 1
    while len(found) <= limit:
        rows = tx.query(sql, (cursor, *params, batch))
        for row in rows:
            if visible is None or visible(row):
                found.append(row)
                if len(found) > limit:
                    break
        if len(rows) < batch:
            break
        cursor = rows[-1]["account_id"]
    more = len(found) > limit
    items = found[:limit]
    _add_plans(tx, names, items, today)
    return AccountPage(items, items[-1]["account_id"] if more and items else None)


def _add_plans(tx: Any, names: Mapping[str, str], rows: list[dict[str, Any]], today: date) -> None:
    with_plan = [r["account_id"] for r in rows if r["plan_id"] is not None]
    schedules: dict[str, list[dict[str, Any]]] = {}
    for start in range(0, len(with_plan), 512):
        chunk, marks = _in_list(with_plan[start : start + 512])
        for item in tx.query(
            f"SELECT account_id, due_date, amount FROM {names['installments']} "
            f"WHERE account_id IN ({marks}) ORDER BY account_id, seq",
            chunk,
        ):
            schedules.setdefault(item["account_id"], []).append(item)
    for row in rows:
        row["plan"] = _plan_view(row, schedules.get(row["account_id"], []), today)
        row["flags"] = [f for f in (row["flags"] or "").split(",") if f]
