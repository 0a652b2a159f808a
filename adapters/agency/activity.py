"""Agency activity files in: contacts, promises, payments and status updates, posted once.

An agency reports its work on the accounts placed with it as rows, each with
its own unique ``row_key``.  Every row is checked before anything is posted;
a row that fails is reported (row number, code, message) and the others are
still posted.  The CLI (``arrears import activity``) and the HTTP API
(``POST /v1/imports``) both call ``import_activity``.

Each row is posted exactly once, however often the file is imported and
wherever an import stops:

* Before its ledger write a row is claimed in the ``import_rows`` operational
  table (primary key ``(agency, row_key)``, with a digest of the row's content),
  and marked ``posted`` only after the write.  A row already ``posted`` is
  skipped; the same key with other content is ``idempotency_key_reused``.
* Every write is keyed by the row, so a write made just before a crash is found
  again: a payment carries ``external_reference = "AGENCY:ROW_KEY"`` (the ledger
  itself refuses to post that twice); contacts, promises and notes get ids
  derived from the account and the row (``child_id``); a ``returned`` status
  is a recall whose reason names the row.  A row whose claim was left
  ``pending`` is looked up on the account first and posted only if absent.
* A claim is a lease: while an import holds a row, another import of it
  reports ``in_flight`` and posts nothing.  An import that fails with an
  exception gives its leases back at once; one that is killed holds them for
  ``lease_seconds``, after which the next import recovers the rows.  Keep the
  lease above the slowest single ledger write (seconds, not minutes).
* The ledger refusing a row (a rule, e.g. an open promise already) records
  nothing; the row is marked ``rejected`` and may be sent again, changed or not.

Row numbers count data rows from 1 (the header is not a row).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TextIO, TypeVar
from uuid import UUID

import structlog

from adapters.agency.claims import ImportRows, StoredRow
from adapters.agency.posting import NotPlacedWithAgency, Outcome, RowPoster, check_placed
from adapters.agency.rows import ActivityRow, RowRejected, check_row, read_activity_csv
from ledger import errors
from ledger.clock import ensure_utc
from ledger.domain.account import Account
from ledger.services import LedgerService

log = structlog.get_logger("arrears.adapters.agency")

T = TypeVar("T")
ERROR_COLUMNS = ("row", "row_key", "code", "message")


class Progress(Protocol):
    """Wraps the rows as they are posted: a function returning e.g. ``tqdm(items)``."""

    def __call__(self, items: Sequence[T], /) -> Iterable[T]: ...


# ------------------------------------------------------------------ results


@dataclass(frozen=True)
class RowResult:
    """What became of one row; ``code`` and ``message`` say why it was rejected."""

    row: int
    row_key: str
    kind: str
    outcome: Outcome
    code: str = ""
    message: str = ""
    result: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ImportReport:
    """One import: a result per row, in file order, and the counts the summary gives."""

    agency: str
    source: str
    rows: tuple[RowResult, ...]

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.rows if r.outcome == outcome)

    @property
    def posted(self) -> int:
        return self.count("posted")

    @property
    def already_posted(self) -> int:
        return self.count("already_posted")

    @property
    def rejected(self) -> int:
        return self.count("rejected")

    @property
    def in_flight(self) -> int:
        return self.count("in_flight")

    @property
    def errors(self) -> tuple[RowResult, ...]:
        """The rows that were not posted and will not be until the agency acts."""
        return tuple(r for r in self.rows if r.outcome == "rejected")

    def summary(self) -> str:
        line = (
            f"{self.source}: {self.posted} posted, {self.already_posted} already posted, "
            f"{self.rejected} rejected"
        )
        if self.in_flight:
            line += f", {self.in_flight} in flight in another import (run it again later)"
        return line

    def write_errors(self, out: TextIO) -> None:
        """The error file: one line per rejected row (row number, key, code, message)."""
        writer = csv.DictWriter(out, fieldnames=list(ERROR_COLUMNS), extrasaction="ignore")
        writer.writeheader()
        for result in self.errors:
            writer.writerow(result.as_dict())

    def as_dict(self) -> dict[str, Any]:
        return {
            "agency": self.agency,
            "source": self.source,
            "posted": self.posted,
            "already_posted": self.already_posted,
            "rejected": self.rejected,
            "in_flight": self.in_flight,
            "rows": [r.as_dict() for r in self.rows],
        }


@dataclass(frozen=True)
class _SameAs:
    """A row repeated in the same file: it shares the fate of its first occurrence."""

    row: ActivityRow
    earlier: int

    def follow(self, first: RowResult) -> RowResult:
        row = self.row
        if first.outcome in ("posted", "already_posted"):
            same = f"same as row {self.earlier}"
            return RowResult(row.number, row.key, row.kind, "already_posted", result=same)
        return dataclasses.replace(
            first,
            row=row.number,
            message=f"same as row {self.earlier}: {first.message}",
        )


PlanItem = ActivityRow | RowResult | _SameAs


# ------------------------------------------------------------------- import


def import_activity(
    service: LedgerService,
    agency: str,
    rows: Iterable[Mapping[str, str]] | str,
    *,
    source: str,
    progress: Progress | None = None,
    lease_seconds: float = 60.0,
) -> ImportReport:
    """Check every row, then post the valid ones, each exactly once (see the module doc).

    ``rows`` is the file's text (CSV with a header) or its rows as mappings (the
    API's JSON); ``source`` names the file in ``import_rows`` and in the report.
    Raises only for the file as a whole (not CSV, a column named twice) or a
    failing store; a row's problems are in the report.  A failure half-way
    leaves everything posted so far posted: run the import again.
    """
    agency = agency.strip()
    if not agency:
        raise errors.ValidationError("name the agency whose activity this is", field="agency")
    raw_rows = read_activity_csv(rows) if isinstance(rows, str) else list(rows)
    now = ensure_utc(service.clock.now())
    store = ImportRows(service, lease_seconds=lease_seconds)
    try:
        plan = _check_all(service, store, agency, raw_rows, now)
        results = _post_all(service, store, agency, source, plan, progress)
    finally:
        store.close()
    report = ImportReport(agency, source, tuple(results))
    log.info(
        "agency_activity_imported",
        agency=agency,
        source=source,
        posted=report.posted,
        already_posted=report.already_posted,
        rejected=report.rejected,
        in_flight=report.in_flight,
    )
    return report


def _check_all(
    service: LedgerService,
    store: ImportRows,
    agency: str,
    raw_rows: Sequence[Mapping[Any, Any]],
    now: datetime,
) -> list[PlanItem]:
    """Every row checked before any is posted: a ``RowResult`` for the decided ones."""
    plan: list[PlanItem] = []
    first: dict[str, ActivityRow] = {}
    for number, raw in enumerate(raw_rows, start=1):
        try:
            row = check_row(number, raw, now)
        except RowRejected as e:
            plan.append(_rejected(number, raw, e.code, e.message))
            continue
        earlier = first.setdefault(row.key, row)
        if earlier is row:
            plan.append(row)
        elif earlier.digest == row.digest:
            plan.append(_SameAs(row, earlier.number))
        else:
            plan.append(_duplicate(row, earlier))
    stored = store.states(agency, list(first))
    accounts: dict[UUID, Account | None] = {}
    for index, item in enumerate(plan):
        if isinstance(item, ActivityRow):
            plan[index] = _check_against_ledger(service, agency, item, stored, accounts)
    return plan


def _check_against_ledger(
    service: LedgerService,
    agency: str,
    row: ActivityRow,
    stored: Mapping[str, StoredRow],
    accounts: dict[UUID, Account | None],
) -> ActivityRow | RowResult:
    earlier = stored.get(row.key)
    if earlier is not None and earlier.state != "rejected":
        if earlier.row_hash != row.digest:
            return _reused(row)
        if earlier.state == "posted":
            return RowResult(row.number, row.key, row.kind, "already_posted")
        return row  # pending: a crashed import's row, recovered when posted
    if row.account_id not in accounts:
        try:
            accounts[row.account_id] = service.get_account(row.account_id)
        except errors.AccountNotFound:
            accounts[row.account_id] = None
    account = accounts[row.account_id]
    if account is None:
        return RowResult(
            row.number,
            row.key,
            row.kind,
            "rejected",
            "unknown_account",
            "no account with this account_id, or this creditor and reference",
        )
    if row.amount is not None and row.amount.currency != account.currency:
        return RowResult(
            row.number,
            row.key,
            row.kind,
            "rejected",
            "currency_mismatch",
            f"the account is in {account.currency}, the row in {row.amount.currency}",
        )
    try:
        check_placed(account, agency)
    except NotPlacedWithAgency as e:
        return RowResult(row.number, row.key, row.kind, "rejected", e.code, e.message)
    return row


def _post_all(
    service: LedgerService,
    store: ImportRows,
    agency: str,
    source: str,
    plan: list[PlanItem],
    progress: Progress | None,
) -> list[RowResult]:
    poster = RowPoster(service, agency)
    results: list[RowResult] = []
    by_number: dict[int, RowResult] = {}
    for item in progress(plan) if progress is not None else plan:
        if isinstance(item, RowResult):
            last = item
        elif isinstance(item, _SameAs):
            last = item.follow(by_number[item.earlier])
        else:
            last = _post_one(store, poster, agency, source, item)
        results.append(last)
        by_number[last.row] = last
        if last.outcome == "rejected":
            log.info("agency_row_rejected", agency=agency, row=last.row, code=last.code)
    return results


def _post_one(
    store: ImportRows, poster: RowPoster, agency: str, source: str, row: ActivityRow
) -> RowResult:
    claim = store.claim(agency, row.key, row.digest, source)
    if claim == "posted":
        return RowResult(row.number, row.key, row.kind, "already_posted")
    if claim == "reused":
        return _reused(row)
    if claim == "in_flight":
        return RowResult(
            row.number,
            row.key,
            row.kind,
            "in_flight",
            "in_flight",
            "another import is posting this row now; import the file again later",
        )
    try:
        outcome, result = poster.post(row, recovering=claim == "recover")
    except errors.LedgerError as e:
        # The service records all of a command or nothing: nothing was written.
        store.finish(agency, row.key, row.digest, "rejected", error=e.code)
        return RowResult(row.number, row.key, row.kind, "rejected", e.code, e.message)
    except BaseException:
        # Written or not, we cannot tell: give the row to the next import, which checks.
        with contextlib.suppress(Exception):
            store.release(agency, row.key, row.digest)
        raise
    store.finish(agency, row.key, row.digest, "posted", result=result)
    return RowResult(row.number, row.key, row.kind, outcome, result=result)


def _rejected(number: int, raw: Mapping[Any, Any], code: str, message: str) -> RowResult:
    key = raw.get("row_key")
    kind = raw.get("kind")
    return RowResult(
        number,
        key.strip() if isinstance(key, str) else "",
        kind.strip() if isinstance(kind, str) else "",
        "rejected",
        code,
        message,
    )


def _duplicate(row: ActivityRow, earlier: ActivityRow) -> RowResult:
    return RowResult(
        row.number,
        row.key,
        row.kind,
        "rejected",
        "idempotency_key_reused",
        f"row_key {row.key!r} is also row {earlier.number}, with other content; "
        "give each row its own key",
    )


def _reused(row: ActivityRow) -> RowResult:
    return RowResult(
        row.number,
        row.key,
        row.kind,
        "rejected",
        "idempotency_key_reused",
        f"row_key {row.key!r} was already imported with other content; a row cannot be "
        "changed once sent: send a new row with a new key",
    )
