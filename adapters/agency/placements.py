"""Placement and recall files: what an agency holds now, and what was taken back.

The placement file is the agency's working copy of each account placed with it:
the debt (creditor, references, itemized balance as decimal strings), the terms
of the placement (placed on, recall due, commission) and the debtor's contact
details.  Personal data goes into the file, which the agency is entitled to,
and never into a log line: only counts and the agency's name are logged.

Both files are plain CSV (RFC 4180, a header row, ``;`` between the items of a
list cell), one row per account or per recall, in a stable order.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date
from typing import Any, TextIO
from uuid import UUID

import structlog

from ledger.domain.account import Account
from ledger.domain.debtor import Debtor
from ledger.logs import register_personal_values
from ledger.money import format_minor
from ledger.services import LedgerService

log = structlog.get_logger("arrears.adapters.agency")

PLACEMENT_COLUMNS = (
    "account_id",
    "creditor",
    "reference",
    "original_creditor",
    "currency",
    "balance_principal",
    "balance_interest",
    "balance_fees",
    "balance_total",
    "charge_off_date",
    "last_payment_date",
    "last_payment_amount",
    "placed_on",
    "recall_due",
    "commission_rate",
    "flags",
    "debtor_name",
    "debtor_phones",
    "debtor_emails",
    "debtor_address_line1",
    "debtor_address_line2",
    "debtor_address_city",
    "debtor_address_region",
    "debtor_address_postcode",
    "debtor_address_country",
    "debtor_time_zone",
)

RECALL_COLUMNS = (
    "position",
    "account_id",
    "creditor",
    "reference",
    "recalled_on",
    "reason",
    "recorded_at",
)

ADDRESS_PARTS = ("line1", "line2", "city", "region", "postcode", "country")
LIST_SEPARATOR = ";"
_PAGE = 500
_RECALLED_TOPIC = (
    f"{Account.RecalledFromAgency.__module__}:{Account.RecalledFromAgency.__qualname__}"
)
_PLACED_TOPIC = f"{Account.PlacedWithAgency.__module__}:{Account.PlacedWithAgency.__qualname__}"


def placement_rows(service: LedgerService, agency: str) -> Iterator[dict[str, str]]:
    """One row per account placed with ``agency`` now, in account id order."""
    today = service.clock.now().date()
    after: str | None = None
    while True:
        page = service.list_accounts(limit=_PAGE, after=after, agency=agency)
        for item in page.items:
            # The read model finds the accounts; the row comes from the account itself,
            # so the file never shows a balance older than the ledger's.
            account = service.get_account(UUID(item["account_id"]))
            if account.agency is None or account.agency["name"] != agency:
                continue
            yield _placement_row(service, account, today)
        if page.next_after is None:
            return
        after = page.next_after


def _placement_row(service: LedgerService, account: Account, today: date) -> dict[str, str]:
    assert account.agency is not None
    currency = account.currency
    flags = list(account.flags)
    if account.time_barred(today):
        flags.append("time_barred")
    if account.in_breathing_space(today):
        flags.append("breathing_space")
    debtor = service.debtor_of(account, fresh=True)
    if debtor is not None and debtor.erased:
        flags.append("personal_data_erased")
        debtor = None
    row = {
        "account_id": str(account.id),
        "creditor": account.creditor,
        "reference": account.reference,
        "original_creditor": account.original_creditor,
        "currency": currency,
        "balance_principal": format_minor(account.balance["principal"], currency),
        "balance_interest": format_minor(account.balance["interest"], currency),
        "balance_fees": format_minor(account.balance["fees"], currency),
        "balance_total": format_minor(account.total_balance, currency),
        "charge_off_date": _day(account.charge_off_date),
        "last_payment_date": _day(account.last_payment_date),
        "last_payment_amount": (
            format_minor(account.last_payment_amount, currency)
            if account.last_payment_amount is not None
            else ""
        ),
        "placed_on": _day(account.agency["placed_on"]),
        "recall_due": _day(account.agency["recall_due"]),
        "commission_rate": percent(account.agency["commission_basis_points"]),
        "flags": LIST_SEPARATOR.join(flags),
    }
    row.update(_debtor_columns(debtor))
    return row


def _debtor_columns(debtor: Debtor | None) -> dict[str, str]:
    if debtor is None:
        return {column: "" for column in PLACEMENT_COLUMNS if column.startswith("debtor_")}
    address: Mapping[str, str] = debtor.addresses[0] if debtor.addresses else {}
    # This process may never have seen these values registered: make sure that no
    # log line, here or in whatever runs next, can carry them.
    register_personal_values(
        debtor.name,
        *debtor.phones,
        *debtor.emails,
        address.get("line1", ""),
        address.get("line2", ""),
    )
    columns = {
        "debtor_name": debtor.name,
        "debtor_phones": LIST_SEPARATOR.join(debtor.phones),
        "debtor_emails": LIST_SEPARATOR.join(debtor.emails),
        "debtor_time_zone": debtor.time_zone or "",
    }
    for part in ADDRESS_PARTS:
        columns[f"debtor_address_{part}"] = str(address.get(part) or "")
    return columns


def recall_rows(
    service: LedgerService, agency: str, since: date | None = None
) -> Iterator[dict[str, str]]:
    """One row per recall from ``agency`` (recalled on ``since`` or later), oldest first.

    ``position`` is the recall's place in the ledger's global order: an agency that
    keeps the last one it saw can tell new recalls from old ones."""
    accounts: dict[UUID, Account] = {}
    for position, event in _events_of_topic(service, _RECALLED_TOPIC):
        if not isinstance(event, Account.RecalledFromAgency) or event.agency != agency:
            continue
        if since is not None and event.recalled_on < since:
            continue
        account_id = event.originator_id
        account = accounts.get(account_id)
        if account is None:
            account = accounts[account_id] = service.get_account(account_id)
        yield {
            "position": str(position),
            "account_id": str(account_id),
            "creditor": account.creditor,
            "reference": account.reference,
            "recalled_on": event.recalled_on.isoformat(),
            "reason": event.reason,
            "recorded_at": event.timestamp.isoformat(),
        }


def _events_of_topic(service: LedgerService, topic: str) -> Iterator[tuple[int, Any]]:
    """(position, event) for every event of one type, in global order, a batch at a time."""
    start = 1
    while True:
        batch = service.ledger.recorder.select_notifications(
            start=start, limit=1000, topics=[topic]
        )
        for notification in batch:
            yield notification.id, service.ledger.mapper.to_domain_event(notification)
        if len(batch) < 1000:
            return
        start = batch[-1].id + 1


def ever_placed_with(service: LedgerService, agency: str) -> bool:
    """Whether any account was ever placed with ``agency`` (held now or recalled since):
    an empty placement file for an agency never placed with is most likely a misspelt name."""
    return any(
        isinstance(event, Account.PlacedWithAgency) and event.agency == agency
        for _, event in _events_of_topic(service, _PLACED_TOPIC)
    )


def write_csv(rows: Iterable[Mapping[str, str]], columns: Sequence[str], out: TextIO) -> int:
    """Write a header and ``rows``; returns how many rows were written."""
    writer = csv.DictWriter(out, fieldnames=list(columns))
    writer.writeheader()
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
    return count


def write_placements(service: LedgerService, agency: str, out: TextIO) -> int:
    """The agency's placement file; returns the number of accounts in it."""
    count = write_csv(placement_rows(service, agency), PLACEMENT_COLUMNS, out)
    log.info("placements_exported", agency=agency, accounts=count)
    return count


def write_recalls(
    service: LedgerService, agency: str, out: TextIO, since: date | None = None
) -> int:
    """The agency's recall file; returns the number of recalls in it."""
    count = write_csv(recall_rows(service, agency, since), RECALL_COLUMNS, out)
    log.info("recalls_exported", agency=agency, recalls=count)
    return count


def percent(basis_points: int) -> str:
    """Basis points as a percentage with two decimals: 2500 -> ``"25.00"``."""
    whole, part = divmod(basis_points, 100)
    return f"{whole}.{part:02d}"


def _day(day: date | None) -> str:
    return day.isoformat() if day is not None else ""
