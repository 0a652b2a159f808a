"""The activity file's rows: columns per kind, and the checks a row must pass.

A row names its account by ``account_id`` or by ``creditor`` + ``reference``,
says its ``kind`` and carries that kind's fields; empty cells count as absent,
so one header can serve every kind.  Amounts are decimal strings with at most
the currency's decimals (never numbers: a float cannot hold money exactly),
moments RFC 3339 with an offset, dates ``YYYY-MM-DD``.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from ledger import errors
from ledger.clock import ensure_utc
from ledger.domain.account import CHANNELS, DIRECTIONS, OUTCOMES, PAYMENT_METHODS
from ledger.domain.ids import account_id as derive_account_id
from ledger.money import Money

#: kind -> (required fields, optional fields); every row also has ``row_key``,
#: ``kind`` and ``account_id`` or ``creditor`` + ``reference``.
KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "contact": (("channel", "direction", "outcome", "occurred_at"), ("agent", "note")),
    "promise": (("amount", "currency", "due_date"), ("agent",)),
    "payment": (("amount", "currency", "received_at", "method"), ("payment_reference",)),
    "status": (("status",), ("note",)),
}
ACCOUNT_FIELDS = ("account_id", "creditor", "reference")
COLUMNS = frozenset(
    {"row_key", "kind", *ACCOUNT_FIELDS}
    | {name for required, optional in KINDS.values() for name in (*required, *optional)}
)
#: ``unable_to_locate`` becomes a note, ``returned`` a recall from the agency,
#: ``cease_requested`` the debtor's request to stop communicating.
STATUSES = frozenset({"unable_to_locate", "returned", "cease_requested"})
MAX_ROW_KEY = 200

_MOMENT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class RowRejected(Exception):
    """A row that cannot be posted as it is; ``code`` is stable, ``message`` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ActivityRow:
    """A row that passed the checks, parsed."""

    number: int
    key: str
    kind: str
    values: Mapping[str, str]  # the row's non-empty fields, stripped
    digest: str
    account_id: UUID
    amount: Money | None = None
    moment: datetime | None = None  # occurred_at or received_at
    due_date: date | None = None


def read_activity_csv(text: str) -> list[dict[Any, Any]]:
    """The rows of an activity file (UTF-8, a header row; a leading BOM is ignored)."""
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    try:
        header = [str(name).strip().lower() for name in reader.fieldnames or ()]
        twice = sorted({name for name in header if header.count(name) > 1})
        if twice:
            raise errors.ValidationError(
                f"the header names {', '.join(twice)} more than once; give each column once",
                field="header",
            )
        reader.fieldnames = header
        return list(reader)
    except csv.Error as e:
        raise errors.ValidationError(
            f"the activity file is not valid CSV ({e}); save it as UTF-8 CSV with a header row",
            field="file",
        ) from e


def check_row(number: int, raw: Mapping[Any, Any], now: datetime) -> ActivityRow:
    """Parse one row, or raise ``RowRejected`` saying what is wrong with it."""
    extra = raw.get(None)
    if extra and any(str(v).strip() for v in extra):
        raise RowRejected("malformed_row", "the row has more fields than the header has columns")
    values: dict[str, str] = {}
    unknown: list[str] = []
    for name, value in raw.items():
        if name is None or value is None:
            continue
        column = str(name).strip().lower()
        if not isinstance(value, str):
            code = "invalid_amount" if column == "amount" else "invalid_input"
            raise RowRejected(
                code,
                f'{column} must be text (a string such as "12.50" for amounts), '
                f"not {type(value).__name__}",
            )
        text = value.strip()
        if not text:
            continue
        if column in COLUMNS:
            values[column] = text
        else:
            unknown.append(column or "(unnamed)")
    if unknown:
        raise RowRejected(
            "unknown_column",
            f"unknown column {', '.join(sorted(unknown))}; the columns are "
            f"{', '.join(sorted(COLUMNS))}",
        )
    key = values.get("row_key")
    if key is None:
        raise RowRejected("missing_field", "row_key is required: the row's unique id at the agency")
    if len(key) > MAX_ROW_KEY:
        raise RowRejected("invalid_row_key", f"row_key is longer than {MAX_ROW_KEY} characters")
    kind = values.get("kind")
    if kind is None:
        raise RowRejected("missing_field", f"kind is required: one of {', '.join(KINDS)}")
    if kind not in KINDS:
        raise RowRejected("invalid_choice", f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    required, optional = KINDS[kind]
    missing = [f for f in required if f not in values]
    if "account_id" not in values and not {"creditor", "reference"} <= values.keys():
        missing.insert(0, "account_id (or creditor and reference)")
    if missing:
        raise RowRejected("missing_field", f"a {kind} row needs {', '.join(missing)}")
    allowed = {"row_key", "kind", *ACCOUNT_FIELDS, *required, *optional}
    unexpected = sorted(set(values) - allowed)
    if unexpected:
        raise RowRejected(
            "unexpected_field",
            f"{', '.join(unexpected)} {'is' if len(unexpected) == 1 else 'are'} not part of a "
            f"{kind} row; leave {'it' if len(unexpected) == 1 else 'them'} empty",
        )
    digest = hashlib.sha256(
        json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()
    row = ActivityRow(number, key, kind, values, digest, _account_of(values))
    return _parse_kind(row, now)


def _account_of(values: Mapping[str, str]) -> UUID:
    derived = None
    if "creditor" in values and "reference" in values:
        derived = derive_account_id(values["creditor"], values["reference"])
    if "account_id" not in values:
        assert derived is not None
        return derived
    try:
        given = UUID(values["account_id"])
    except ValueError:
        raise RowRejected(
            "unknown_account", f"no account {values['account_id']!r} (an account id is a UUID)"
        ) from None
    if derived is not None and derived != given:
        raise RowRejected(
            "account_mismatch",
            "account_id and creditor/reference name different accounts; give one of them",
        )
    return given


def _parse_kind(row: ActivityRow, now: datetime) -> ActivityRow:
    v = row.values
    if row.kind == "contact":
        _choice("channel", v["channel"], CHANNELS)
        _choice("direction", v["direction"], DIRECTIONS)
        _choice("outcome", v["outcome"], OUTCOMES)
        return dataclasses.replace(row, moment=_moment("occurred_at", v["occurred_at"], now))
    if row.kind == "promise":
        return dataclasses.replace(
            row,
            amount=_money(v["amount"], v["currency"]),
            due_date=_date("due_date", v["due_date"]),
        )
    if row.kind == "payment":
        _choice("method", v["method"], PAYMENT_METHODS)
        return dataclasses.replace(
            row,
            amount=_money(v["amount"], v["currency"]),
            moment=_moment("received_at", v["received_at"], now),
        )
    _choice("status", v["status"], STATUSES)
    return row


def _choice(name: str, value: str, allowed: Iterable[str]) -> None:
    if value not in allowed:
        raise RowRejected(
            "invalid_choice", f"{name} must be one of {', '.join(sorted(allowed))}; got {value!r}"
        )


def _money(amount: str, currency: str) -> Money:
    try:
        money = Money.parse(amount, currency)
    except errors.LedgerError as e:
        raise RowRejected(e.code, e.message) from e
    if not money.is_positive:
        raise RowRejected("non_positive_amount", f"amount must be above zero; got {amount}")
    return money


def _moment(name: str, text: str, now: datetime) -> datetime:
    try:
        if not _MOMENT.fullmatch(text):
            raise ValueError(text)
        moment = ensure_utc(datetime.fromisoformat(text.upper().replace("Z", "+00:00")))
    except ValueError:
        raise RowRejected(
            "invalid_date",
            f"{name} {text!r} is not an RFC 3339 timestamp such as 2026-03-02T14:00:00Z",
        ) from None
    if moment > now:
        raise RowRejected("invalid_date", f"{name} {text} is in the future")
    return moment


def _date(name: str, text: str) -> date:
    try:
        if not _DAY.fullmatch(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise RowRejected(
            "invalid_date", f"{name} {text!r} is not a date such as 2026-03-31"
        ) from None
