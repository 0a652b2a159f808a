"""Agency sync: the placement and recall files out, the agency's activity file in.

The story: accounts are placed with the agency Northwind; it gets its placement
file, works the accounts, and sends back a CSV of contacts, promises, payments
and status updates.  Valid rows are posted, each exactly once however often the
file is sent and wherever an import is cut short; bad rows come back in an
error file with their row numbers.  The resume tests run on both backends.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import pytest
from click.testing import CliRunner
from conftest import JANE, START, placement, usd

import cli
import cli.core
from adapters.agency.activity import ImportReport, import_activity
from adapters.agency.claims import ImportRows
from adapters.agency.placements import PLACEMENT_COLUMNS, write_placements, write_recalls
from ledger.application import open_ledger
from ledger.clock import MovableClock
from ledger.domain.account import Account
from ledger.domain.ids import child_id
from ledger.services import LedgerService

T = TypeVar("T")
AGENCY = "northwind"
OTHER = "southgate"
HEADER = (
    "row_key,account_id,creditor,reference,kind,channel,direction,outcome,occurred_at,agent,"
    "note,amount,currency,due_date,received_at,method,payment_reference,status"
)


def activity_file(*rows: str, header: str = HEADER) -> str:
    return "\r\n".join([header, *rows]) + "\r\n"


@pytest.fixture
def sqlite_service(sqlite_url: str, clock: MovableClock) -> Iterator[LedgerService]:
    app = open_ledger(sqlite_url)
    yield LedgerService(app, clock)
    app.close()


def place_portfolio(service: LedgerService) -> dict[str, UUID]:
    """NW-1..NW-3 with Northwind, SG-1 with Southgate, HOME-1 worked in house."""
    ids: dict[str, UUID] = {}
    for reference in ("NW-1", "NW-2", "NW-3", "SG-1", "HOME-1"):
        ids[reference] = service.place_account(placement(reference), debtor=JANE).id
    for reference, basis_points in (("NW-1", 2500), ("NW-2", 1875), ("NW-3", 2000)):
        service.place_with_agency(
            ids[reference],
            agency=AGENCY,
            commission_basis_points=basis_points,
            placed_on=date(2026, 3, 1),
            recall_due=date(2026, 8, 31),
        )
    service.place_with_agency(ids["SG-1"], agency=OTHER, commission_basis_points=3000)
    return ids


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def versions(service: LedgerService, ids: dict[str, UUID]) -> dict[str, int]:
    return {ref: service.get_account(aid).version for ref, aid in ids.items()}


def events_of(service: LedgerService, account_id: UUID, kind: type[Any]) -> list[Any]:
    return [e for e in service.ledger.events.get(account_id) if isinstance(e, kind)]


# --------------------------------------------------------------- out: files


def test_placement_file_holds_the_agencys_accounts_with_real_values(
    sqlite_service: LedgerService,
) -> None:
    """Only Northwind's accounts, with itemized balance, last payment, terms and debtor."""
    service = sqlite_service
    ids = place_portfolio(service)
    service.post_payment(
        ids["NW-1"], usd("200.00"), method="card", received_at=START - timedelta(days=1)
    )
    service.receive_cease(ids["NW-2"], received_via="letter")
    out = io.StringIO()

    assert write_placements(service, AGENCY, out) == 3

    rows = csv_rows(out.getvalue())
    assert out.getvalue().splitlines()[0] == ",".join(PLACEMENT_COLUMNS)
    assert [r["reference"] for r in rows] == sorted(
        ("NW-1", "NW-2", "NW-3"), key=lambda ref: str(ids[ref])
    )
    nw1 = next(r for r in rows if r["reference"] == "NW-1")
    assert nw1 == {
        "account_id": str(ids["NW-1"]),
        "creditor": "acme-bank",
        "reference": "NW-1",
        "original_creditor": "Acme Bank N.A.",
        "currency": "USD",
        "balance_principal": "1000.00",
        "balance_interest": "0.00",
        "balance_fees": "0.00",
        "balance_total": "1000.00",
        "charge_off_date": "2025-11-30",
        "last_payment_date": "2026-03-01",
        "last_payment_amount": "200.00",
        "placed_on": "2026-03-01",
        "recall_due": "2026-08-31",
        "commission_rate": "25.00",
        "flags": "",
        "debtor_name": "Jane Q. Debtor",
        "debtor_phones": "+1 415 555 0134",
        "debtor_emails": "jane.debtor@example.com",
        "debtor_address_line1": "12 Elm Street",
        "debtor_address_line2": "",
        "debtor_address_city": "Springfield",
        "debtor_address_region": "",
        "debtor_address_postcode": "62701",
        "debtor_address_country": "US",
        "debtor_time_zone": "America/Chicago",
    }
    nw2 = next(r for r in rows if r["reference"] == "NW-2")
    assert (nw2["balance_total"], nw2["commission_rate"], nw2["flags"]) == (
        "1200.00",
        "18.75",
        "ceased",
    )
    assert (nw2["last_payment_date"], nw2["last_payment_amount"]) == ("", "")


def test_erased_debtor_leaves_the_personal_columns_empty(sqlite_service: LedgerService) -> None:
    """An erased debtor's details are not exported; the flag says why they are missing."""
    service = sqlite_service
    ids = place_portfolio(service)
    service.erase_debtor(service.get_account(ids["NW-3"]).debtor_id, reason="gdpr_request")  # type: ignore[arg-type]
    out = io.StringIO()
    write_placements(service, AGENCY, out)
    nw3 = next(r for r in csv_rows(out.getvalue()) if r["reference"] == "NW-3")
    assert nw3["flags"] == "personal_data_erased"
    assert all(nw3[c] == "" for c in PLACEMENT_COLUMNS if c.startswith("debtor_"))


def test_recall_file_lists_the_agencys_recalls_since_a_date(
    sqlite_service: LedgerService, clock: MovableClock
) -> None:
    """Recalls from Northwind only, oldest first, filtered by recall date."""
    service = sqlite_service
    ids = place_portfolio(service)
    service.recall_from_agency(ids["NW-1"], "creditor_request", recalled_on=date(2026, 3, 2))
    service.recall_from_agency(ids["SG-1"], "creditor_request", recalled_on=date(2026, 3, 2))
    clock.advance(timedelta(days=10))
    service.recall_from_agency(ids["NW-2"], "recall_due", recalled_on=date(2026, 3, 12))

    out = io.StringIO()
    assert write_recalls(service, AGENCY, out) == 2
    rows = csv_rows(out.getvalue())
    assert [(r["reference"], r["recalled_on"], r["reason"]) for r in rows] == [
        ("NW-1", "2026-03-02", "creditor_request"),
        ("NW-2", "2026-03-12", "recall_due"),
    ]
    assert int(rows[0]["position"]) < int(rows[1]["position"])
    assert rows[1]["account_id"] == str(ids["NW-2"])

    later = io.StringIO()
    assert write_recalls(service, AGENCY, later, since=date(2026, 3, 5)) == 1
    assert csv_rows(later.getvalue())[0]["reference"] == "NW-2"
    out = io.StringIO()
    write_placements(service, AGENCY, out)
    assert [r["reference"] for r in csv_rows(out.getvalue())] == ["NW-3"]


# ---------------------------------------------------------- in: activity

# One valid row of each kind, then one invalid row for each reason.
VALID_ROWS = (
    "c-1,,acme-bank,NW-1,contact,phone,outbound,right_party_contact,2026-03-02T13:00:00Z,mia,"
    "promised to pay on Friday,,,,,,,",
    "p-1,,acme-bank,NW-1,promise,,,,,mia,,300.00,USD,2026-03-06,,,,",
    "pay-1,{NW-2},,,payment,,,,,,,125.50,USD,,2026-03-01T10:00:00-05:00,ach,TX-991,",
    "s-1,,acme-bank,NW-2,status,,,,,,,,,,,,,unable_to_locate",
    "s-2,,acme-bank,NW-3,status,,,,,,,,,,,,,returned",
)
INVALID_ROWS = (
    ",,acme-bank,NW-1,contact,sms,outbound,sent,2026-03-02T09:00:00Z,,,,,,,,,",
    "x-1,,acme-bank,NW-1,contact,sms,outbound,,2026-03-02T09:00:00Z,,,,,,,,,",
    "x-2,,acme-bank,NW-1,payment,,,,,,,12.345,USD,,2026-03-01T10:00:00Z,card,,",
    "x-3,,acme-bank,NW-1,payment,,,,,,,1.5e2,USD,,2026-03-01T10:00:00Z,card,,",
    "x-4,,acme-bank,NW-1,contact,phone,inbound,right_party_contact,2026-03-02,,,,,,,,,",
    "x-5,,acme-bank,NW-1,payment,,,,,,,10.00,USD,,2026-03-03T10:00:00Z,card,,",
    "x-6,,acme-bank,NOPE-9,status,,,,,,,,,,,,,unable_to_locate",
    "x-7,,acme-bank,SG-1,payment,,,,,,,10.00,USD,,2026-03-01T10:00:00Z,card,,",
    "x-8,,acme-bank,HOME-1,status,,,,,,,,,,,,,unable_to_locate",
    "x-9,,acme-bank,NW-1,contact,pigeon,outbound,sent,2026-03-02T09:00:00Z,,,,,,,,,",
    "x-10,,acme-bank,NW-2,promise,,,,,,,50.00,EUR,2026-03-20,,,,",
    "x-11,,acme-bank,NW-1,promise,,,,,,,80.00,USD,2026-03-20,,,,",
    "x-12,,acme-bank,NW-1,payment,,,,mia,,,10.00,USD,,2026-03-01T10:00:00Z,card,,",
    "c-1,,acme-bank,NW-1,contact,phone,outbound,no_answer,2026-03-02T13:00:00Z,,,,,,,,,",
    "p-1,,acme-bank,NW-1,promise,,,,,mia,,300.00,USD,2026-03-06,,,,",
)
EXPECTED_ERRORS = [
    ("6", "", "missing_field"),
    ("7", "x-1", "missing_field"),
    ("8", "x-2", "invalid_amount"),
    ("9", "x-3", "invalid_amount"),
    ("10", "x-4", "invalid_date"),
    ("11", "x-5", "invalid_date"),
    ("12", "x-6", "unknown_account"),
    ("13", "x-7", "not_placed_with_agency"),
    ("14", "x-8", "not_placed_with_agency"),
    ("15", "x-9", "invalid_choice"),
    ("16", "x-10", "currency_mismatch"),
    ("17", "x-11", "promise_already_open"),
    ("18", "x-12", "unexpected_field"),
    ("19", "c-1", "idempotency_key_reused"),
    ("21", "x-13", "unknown_column"),
    ("22", "x-14", "malformed_row"),
]


def mixed_file(ids: dict[str, UUID]) -> str:
    """The rows above under a header with one column Arrears does not know (``colour``),
    then a row that fills it and a row with more fields than the header."""
    rows = [row.replace("{NW-2}", str(ids["NW-2"])) + "," for row in (*VALID_ROWS, *INVALID_ROWS)]
    rows.append("x-13,,acme-bank,NW-1,status,,,,,,,,,,,,,unable_to_locate,blue")
    rows.append("x-14,,acme-bank,NW-1,status,,,,,,,,,,,,,unable_to_locate,,surplus")
    return activity_file(*rows, header=HEADER + ",colour")


def errors_of(report: ImportReport) -> list[tuple[str, str, str]]:
    out = io.StringIO()
    report.write_errors(out)
    assert out.getvalue().splitlines()[0] == "row,row_key,code,message"
    return [(r["row"], r["row_key"], r["code"]) for r in csv_rows(out.getvalue())]


def assert_mixed_file_posted(service: LedgerService, ids: dict[str, UUID]) -> None:
    """Exactly the five valid rows are in the ledger, each once."""
    nw1, nw2, nw3 = (service.get_account(ids[r]) for r in ("NW-1", "NW-2", "NW-3"))
    contact_id = child_id(ids["NW-1"], "contact", f"{AGENCY}:c-1")
    contacts = events_of(service, ids["NW-1"], Account.ContactRecorded)
    assert [(c.contact_id, c.channel, c.outcome, c.agent) for c in contacts] == [
        (contact_id, "phone", "right_party_contact", "northwind/mia")
    ]
    notes = [n.text for n in events_of(service, ids["NW-1"], Account.NoteAdded)]
    assert notes == ["promised to pay on Friday"]
    promise_id = child_id(ids["NW-1"], "promise", f"{AGENCY}:p-1")
    assert list(nw1.promises) == [promise_id]
    assert nw1.open_promise is not None and nw1.open_promise["amount"] == 30000
    assert nw2.payment_refs == {
        f"{AGENCY}:pay-1": child_id(ids["NW-2"], "payment", f"{AGENCY}:pay-1")
    }
    assert nw2.total_balance == 120000 - 12550
    assert nw2.last_payment_date == date(2026, 3, 1)
    assert [n.text for n in events_of(service, ids["NW-2"], Account.NoteAdded)] == [
        "agency northwind: unable to locate the debtor"
    ]
    recalls = events_of(service, ids["NW-3"], Account.RecalledFromAgency)
    assert [r.reason for r in recalls] == ["returned by agency northwind, row s-2"]
    assert nw3.agency is None and nw3.status == "active"
    assert versions(service, {r: ids[r] for r in ("SG-1", "HOME-1")}) == {"SG-1": 2, "HOME-1": 1}


def test_mixed_file_posts_the_valid_rows_and_reports_each_bad_one(
    sqlite_service: LedgerService,
) -> None:
    """Valid rows of every kind are posted; each bad row is in the error file with its number."""
    service = sqlite_service
    ids = place_portfolio(service)

    report = import_activity(service, AGENCY, mixed_file(ids), source="nw-0302.csv")

    assert (report.posted, report.already_posted, report.rejected) == (5, 1, 16)
    assert errors_of(report) == EXPECTED_ERRORS
    by_row = {r.row: r for r in report.rows}
    assert by_row[20].outcome == "already_posted" and by_row[20].result == "same as row 2"
    assert by_row[3].result.endswith("(TX-991)")
    assert "more decimals than USD allows" in by_row[8].message
    assert "future" in by_row[11].message
    assert report.summary() == "nw-0302.csv: 5 posted, 1 already posted, 16 rejected"
    assert_mixed_file_posted(service, ids)


def test_importing_the_same_file_twice_posts_nothing_twice(
    sqlite_service: LedgerService,
) -> None:
    """The second import finds every valid row already posted and writes no event."""
    service = sqlite_service
    ids = place_portfolio(service)
    text = mixed_file(ids)
    import_activity(service, AGENCY, text, source="nw-0302.csv")
    before = versions(service, ids)

    again = import_activity(service, AGENCY, text, source="nw-0302.csv")

    assert (again.posted, again.already_posted, again.rejected) == (0, 6, 16)
    assert errors_of(again) == EXPECTED_ERRORS
    assert versions(service, ids) == before
    assert_mixed_file_posted(service, ids)


def test_same_row_key_with_other_content_is_rejected(sqlite_service: LedgerService) -> None:
    """A row cannot be changed once sent: the same key with another amount is refused."""
    service = sqlite_service
    ids = place_portfolio(service)
    row = "pay-7,,acme-bank,NW-1,payment,,,,,,,{amount},USD,,2026-03-01T10:00:00Z,card,,"
    first = import_activity(service, AGENCY, activity_file(row.format(amount="40.00")), source="a")
    assert first.posted == 1
    before = versions(service, ids)

    second = import_activity(service, AGENCY, activity_file(row.format(amount="45.00")), source="b")

    assert [(r.outcome, r.code) for r in second.rows] == [("rejected", "idempotency_key_reused")]
    assert versions(service, ids) == before
    assert service.get_account(ids["NW-1"]).paid_total == 4000


def test_an_agency_may_post_only_to_its_own_accounts(sqlite_service: LedgerService) -> None:
    """Southgate cannot post to Northwind's account, nor Northwind to Southgate's."""
    service = sqlite_service
    ids = place_portfolio(service)
    payment = "k-1,,acme-bank,{ref},payment,,,,,,,10.00,USD,,2026-03-01T10:00:00Z,card,,"

    theirs = import_activity(
        service, OTHER, activity_file(payment.format(ref="NW-1")), source="sg.csv"
    )
    ours = import_activity(
        service, AGENCY, activity_file(payment.format(ref="SG-1")), source="nw.csv"
    )

    for report in (theirs, ours):
        assert [r.code for r in report.rows] == ["not_placed_with_agency"]
    assert OTHER not in ours.rows[0].message  # who does hold it is not Northwind's business
    assert service.get_account(ids["NW-1"]).paid_total == 0
    assert service.get_account(ids["SG-1"]).paid_total == 0


def test_rows_as_mappings_refuse_numbers_for_money(sqlite_service: LedgerService) -> None:
    """The API's JSON rows: an amount sent as a number (a float) is refused, text is posted."""
    service = sqlite_service
    ids = place_portfolio(service)
    base = {
        "kind": "payment",
        "account_id": str(ids["NW-1"]),
        "currency": "USD",
        "received_at": "2026-03-01T10:00:00Z",
        "method": "card",
    }
    rows: list[dict[str, Any]] = [
        {**base, "row_key": "j-1", "amount": 12.5},
        {**base, "row_key": "j-2", "amount": "12.50"},
        {**base, "row_key": "j-3", "amount": "5.00", "colour": "blue"},
    ]
    report = import_activity(service, AGENCY, rows, source="api")
    assert [(r.row, r.outcome, r.code) for r in report.rows] == [
        (1, "rejected", "invalid_amount"),
        (2, "posted", ""),
        (3, "rejected", "unknown_column"),
    ]
    assert service.get_account(ids["NW-1"]).paid_total == 1250


def test_a_row_the_ledger_refused_can_be_sent_again(sqlite_service: LedgerService) -> None:
    """A refusal records nothing: once the open promise is cancelled, the same row is posted."""
    service = sqlite_service
    ids = place_portfolio(service)
    service.make_promise(ids["NW-1"], usd("50.00"), date(2026, 3, 4))
    text = activity_file("p-9,,acme-bank,NW-1,promise,,,,,,,80.00,USD,2026-03-20,,,,")
    refused = import_activity(service, AGENCY, text, source="a")
    assert [r.code for r in refused.rows] == ["promise_already_open"]

    service.cancel_promise(ids["NW-1"], "superseded")
    again = import_activity(service, AGENCY, text, source="a")

    assert [r.outcome for r in again.rows] == ["posted"]
    assert (
        child_id(ids["NW-1"], "promise", f"{AGENCY}:p-9")
        in service.get_account(ids["NW-1"]).promises
    )


# ------------------------------------------------------ crashes and resume


class SimulatedCrash(Exception):
    pass


@dataclass
class CrashPlan:
    """The ``at``-th ledger write raises, once: before the write, or after it happened."""

    at: int
    after_write: bool
    calls: int = 0

    def around(self, write: Callable[[], T]) -> T:
        self.calls += 1
        if self.calls != self.at:
            return write()
        if self.after_write:
            write()
        raise SimulatedCrash(f"crash at write {self.at}")


@dataclass
class CrashingService(LedgerService):
    plan: CrashPlan = field(default_factory=lambda: CrashPlan(at=0, after_write=False))

    def post_payment(self, *args: Any, **kwargs: Any) -> Any:
        return self.plan.around(lambda: LedgerService.post_payment(self, *args, **kwargs))

    def record_contact(self, *args: Any, **kwargs: Any) -> Any:
        return self.plan.around(lambda: LedgerService.record_contact(self, *args, **kwargs))

    def make_promise(self, *args: Any, **kwargs: Any) -> Any:
        return self.plan.around(lambda: LedgerService.make_promise(self, *args, **kwargs))

    def add_note(self, *args: Any, **kwargs: Any) -> Any:
        return self.plan.around(lambda: LedgerService.add_note(self, *args, **kwargs))

    def recall_from_agency(self, *args: Any, **kwargs: Any) -> Any:
        return self.plan.around(lambda: LedgerService.recall_from_agency(self, *args, **kwargs))

    def receive_cease(self, *args: Any, **kwargs: Any) -> Any:
        return self.plan.around(lambda: LedgerService.receive_cease(self, *args, **kwargs))


RESUME_ROWS = (
    "r-1,,acme-bank,NW-1,contact,phone,outbound,left_message,2026-03-02T13:00:00Z,,"
    "call back,,,,,,,",
    "r-2,,acme-bank,NW-1,promise,,,,,,,300.00,USD,2026-03-06,,,,",
    "r-3,,acme-bank,NW-1,payment,,,,,,,100.00,USD,,2026-03-01T10:00:00Z,card,,",
    "r-4,,acme-bank,NW-2,payment,,,,,,,75.25,USD,,2026-03-01T11:00:00Z,ach,,",
    "r-5,,acme-bank,NW-2,status,,,,,,,,,,,,,unable_to_locate",
    "r-6,,acme-bank,NW-2,status,,,,,,,,,,,,,cease_requested",
    "r-7,,acme-bank,NW-3,status,,,,,,,,,,,,,returned",
    "r-8,,acme-bank,NW-1,payment,,,,,,,0,USD,,2026-03-01T10:00:00Z,card,,",
)


def assert_resume_rows_posted_once(service: LedgerService, ids: dict[str, UUID]) -> None:
    nw1, nw2, nw3 = (service.get_account(ids[r]) for r in ("NW-1", "NW-2", "NW-3"))
    assert len(events_of(service, ids["NW-1"], Account.ContactRecorded)) == 1
    assert [n.text for n in events_of(service, ids["NW-1"], Account.NoteAdded)] == ["call back"]
    assert len(nw1.promises) == 1
    assert (len(nw1.payments), nw1.total_balance) == (1, 110000)
    assert (len(nw2.payments), nw2.total_balance) == (1, 120000 - 7525)
    assert len(events_of(service, ids["NW-2"], Account.NoteAdded)) == 1
    assert len(events_of(service, ids["NW-2"], Account.CeaseCommunicationReceived)) == 1
    assert nw2.ceased
    assert len(events_of(service, ids["NW-3"], Account.RecalledFromAgency)) == 1
    assert nw3.agency is None


@pytest.mark.parametrize(
    ("at", "after_write"),
    [(1, False), (3, True), (1, True), (2, True), (5, True), (6, True), (7, True)],
    ids=[
        "contact-before",
        "payment-after",
        "contact-after",
        "promise-after",
        "note-after",
        "cease-after",
        "recall-after",
    ],
)
def test_an_import_cut_short_resumes_without_loss_or_duplicates(
    service: LedgerService, at: int, after_write: bool
) -> None:
    """The import dies at one write (before or after it landed); the rerun posts each row once."""
    ids = place_portfolio(service)
    text = activity_file(*RESUME_ROWS)
    crashing = CrashingService(
        service.ledger, service.clock, plan=CrashPlan(at=at, after_write=after_write)
    )

    with pytest.raises(SimulatedCrash):
        import_activity(crashing, AGENCY, text, source="nw.csv")
    resumed = import_activity(service, AGENCY, text, source="nw.csv")

    crashed_row = resumed.rows[at - 1]
    assert crashed_row.outcome == ("already_posted" if after_write else "posted")
    assert (resumed.posted, resumed.already_posted) == (
        7 - at + (not after_write),
        at - 1 + after_write,
    )
    assert [(r.row, r.code) for r in resumed.errors] == [(8, "non_positive_amount")]
    assert_resume_rows_posted_once(service, ids)

    before = versions(service, ids)
    third = import_activity(service, AGENCY, text, source="nw.csv")
    assert (third.posted, third.already_posted, third.rejected) == (0, 7, 1)
    assert versions(service, ids) == before


def test_a_killed_import_holds_its_rows_until_the_lease_ends(
    service: LedgerService, clock: MovableClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after a write (no chance to release): its row is in flight, then recovered once."""
    ids = place_portfolio(service)
    text = activity_file(*RESUME_ROWS)
    crashing = CrashingService(service.ledger, clock, plan=CrashPlan(at=3, after_write=True))
    with monkeypatch.context() as patch:
        patch.setattr(ImportRows, "release", lambda *args: None)  # kill -9: no cleanup
        with pytest.raises(SimulatedCrash):
            import_activity(crashing, AGENCY, text, source="nw.csv")

    soon = import_activity(service, AGENCY, text, source="nw.csv")
    assert [(r.row, r.outcome) for r in soon.rows if r.outcome == "in_flight"] == [(3, "in_flight")]
    assert "in flight" in soon.summary()
    assert len(service.get_account(ids["NW-1"]).payments) == 1

    clock.advance(timedelta(seconds=61))
    later = import_activity(service, AGENCY, text, source="nw.csv")
    assert [(r.row, r.outcome) for r in later.rows][2] == (3, "already_posted")
    assert (later.posted, later.in_flight) == (0, 0)
    assert_resume_rows_posted_once(service, ids)


def test_import_rows_table_records_each_rows_state(sqlite_service: LedgerService) -> None:
    """Posted rows keep their digest and result; refused rows keep their error code."""
    service = sqlite_service
    place_portfolio(service)
    service.make_promise(service.resolve_account("acme-bank/NW-2"), usd("10.00"), date(2026, 3, 9))
    text = activity_file(
        "t-1,,acme-bank,NW-1,payment,,,,,,,10.00,USD,,2026-03-01T10:00:00Z,card,,",
        "t-2,,acme-bank,NW-2,promise,,,,,,,20.00,USD,2026-03-10,,,,",
    )
    import_activity(service, AGENCY, text, source="nw.csv")
    store = ImportRows(service)
    try:
        states = store.states(AGENCY, ["t-1", "t-2", "t-3"])
        with store._db.transaction(write=False) as tx:
            stored = tx.query(
                "SELECT row_key, state, result, error, file FROM import_rows ORDER BY row_key"
            )
    finally:
        store.close()
    assert {k: s.state for k, s in states.items()} == {"t-1": "posted", "t-2": "rejected"}
    assert [(r["row_key"], r["state"], r["error"], r["file"]) for r in stored] == [
        ("t-1", "posted", None, "nw.csv"),
        ("t-2", "rejected", "promise_already_open", "nw.csv"),
    ]
    assert stored[0]["result"].startswith("payment ")


# ------------------------------------------------------------------ CLI


@pytest.fixture
def cli_store(
    sqlite_url: str, clock: MovableClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The CLI on a SQLite store, with the test's clock (the rows' dates are in its past)."""
    monkeypatch.setattr(
        cli.core,
        "build_service",
        lambda store=None, **_: LedgerService(open_ledger(store), clock),
    )
    yield sqlite_url


def test_cli_exports_placements_and_imports_activity_with_an_error_file(
    cli_store: str, clock: MovableClock, tmp_path: Path
) -> None:
    """arrears placements export / import activity / placements recalls, end to end."""
    app = open_ledger(cli_store)
    try:
        ids = place_portfolio(LedgerService(app, clock))
    finally:
        app.close()
    runner = CliRunner()
    placements_file = tmp_path / "northwind-placements.csv"

    exported = runner.invoke(
        cli.main,
        [
            "placements",
            "export",
            "--agency",
            AGENCY,
            "--out",
            str(placements_file),
            "--store",
            cli_store,
        ],
    )
    assert exported.exit_code == 0, exported.output
    assert "3 accounts placed with northwind" in exported.stderr
    assert len(csv_rows(placements_file.read_text())) == 3

    activity_path = tmp_path / "nw-0302.csv"
    activity_path.write_text(mixed_file(ids), encoding="utf-8")
    imported = runner.invoke(
        cli.main,
        ["import", "activity", str(activity_path), "--agency", AGENCY, "--store", cli_store],
    )
    assert imported.exit_code == 1, imported.output
    assert imported.stdout == "nw-0302.csv: 5 posted, 1 already posted, 16 rejected\n"
    errors_path = tmp_path / "nw-0302.errors.csv"
    assert f"rejected rows: {errors_path}" in imported.stderr
    rows = csv_rows(errors_path.read_text())
    assert [(r["row"], r["row_key"], r["code"]) for r in rows] == EXPECTED_ERRORS

    custom = tmp_path / "out" / "errors.csv"
    custom.parent.mkdir()
    again = runner.invoke(
        cli.main,
        [
            "import",
            "activity",
            str(activity_path),
            "--agency",
            AGENCY,
            "--errors",
            str(custom),
            "--store",
            cli_store,
        ],
    )
    assert again.stdout == "nw-0302.csv: 0 posted, 6 already posted, 16 rejected\n"
    assert len(csv_rows(custom.read_text())) == 16

    recalls = runner.invoke(
        cli.main,
        [
            "placements",
            "recalls",
            "--agency",
            AGENCY,
            "--since",
            "2026-03-01",
            "--store",
            cli_store,
        ],
    )
    assert recalls.exit_code == 0, recalls.output
    assert [r["reference"] for r in csv_rows(recalls.stdout)] == ["NW-3"]


def test_cli_refuses_a_file_that_is_not_csv_text(cli_store: str, tmp_path: Path) -> None:
    """A binary file is one error line and exit code 2, not a traceback."""
    bad = tmp_path / "activity.csv"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    result = CliRunner().invoke(
        cli.main, ["import", "activity", str(bad), "--agency", AGENCY, "--store", cli_store]
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("error [invalid_input]: ")


def placed_portfolio(store: str, clock: MovableClock) -> dict[str, UUID]:
    app = open_ledger(store)
    try:
        return place_portfolio(LedgerService(app, clock))
    finally:
        app.close()


def one_line_error(result: Any, code: str) -> str:
    """Exit 2 and one `error [code]: ...` line on stderr, no traceback."""
    assert result.exit_code == 2, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error [{code}]: "), lines[0]
    return str(lines[0])


def test_cli_refuses_an_unwritable_error_file_before_posting_anything(
    cli_store: str, clock: MovableClock, tmp_path: Path
) -> None:
    """--errors in a missing directory: one line naming it, exit 2, and no row posted
    (the agency would otherwise lose the list of its rejected rows)."""
    ids = placed_portfolio(cli_store, clock)
    activity_path = tmp_path / "nw-0302.csv"
    activity_path.write_text(mixed_file(ids), encoding="utf-8")
    unwritable = tmp_path / "no" / "such" / "dir" / "e.csv"
    result = CliRunner().invoke(
        cli.main,
        [
            "import",
            "activity",
            str(activity_path),
            "--agency",
            AGENCY,
            "--errors",
            str(unwritable),
            "--store",
            cli_store,
        ],
    )
    line = one_line_error(result, "invalid_input")
    assert line == f"error [invalid_input]: cannot write {unwritable}: No such file or directory"
    app = open_ledger(cli_store)
    try:
        service = LedgerService(app, clock)
        assert versions(service, ids) == {"NW-1": 2, "NW-2": 2, "NW-3": 2, "SG-1": 2, "HOME-1": 1}
    finally:
        app.close()
    assert not list(tmp_path.glob(".*.partial"))


@pytest.mark.parametrize("command", ["export", "recalls"])
def test_cli_placement_files_to_an_unwritable_path_are_one_line(
    cli_store: str, tmp_path: Path, command: str
) -> None:
    runner = CliRunner()
    base = ["placements", command, "--agency", AGENCY, "--store", cli_store, "--out"]
    missing = tmp_path / "nodir2" / "x.csv"
    line = one_line_error(runner.invoke(cli.main, [*base, str(missing)]), "invalid_input")
    assert line == f"error [invalid_input]: cannot write {missing}: No such file or directory"
    line = one_line_error(runner.invoke(cli.main, [*base, str(tmp_path)]), "invalid_input")
    assert line == f"error [invalid_input]: cannot write {tmp_path}: it is a directory"


def test_cli_refuses_an_empty_file_and_says_when_a_file_has_no_rows(
    cli_store: str, clock: MovableClock, tmp_path: Path
) -> None:
    """A 0-byte (or blank) file is refused, exit 2; a header alone posts nothing, exit 0,
    and says so."""
    placed_portfolio(cli_store, clock)
    runner = CliRunner()

    def run(path: Path) -> Any:
        return runner.invoke(
            cli.main, ["import", "activity", str(path), "--agency", AGENCY, "--store", cli_store]
        )

    for name, content in (("empty.csv", b""), ("blank.csv", b"\xef\xbb\xbf\r\n \n")):
        empty = tmp_path / name
        empty.write_bytes(content)
        line = one_line_error(run(empty), "invalid_input")
        assert line.startswith(f"error [invalid_input]: {empty}: the file is empty")
        assert not (tmp_path / name.replace(".csv", ".errors.csv")).exists()

    header_only = tmp_path / "header.csv"
    header_only.write_text(HEADER + "\r\n", encoding="utf-8")
    result = run(header_only)
    assert result.exit_code == 0, result.output
    assert result.stdout == "header.csv: 0 posted, 0 already posted, 0 rejected\n"
    assert f"warning [no_rows]: {header_only} has a header but no rows" in result.stderr
    assert csv_rows((tmp_path / "header.errors.csv").read_text()) == []


def test_cli_warns_about_an_agency_nothing_was_ever_placed_with(
    cli_store: str, clock: MovableClock
) -> None:
    """An unknown (likely misspelt) agency gets its empty file, exit 0, and a warning;
    an agency whose accounts were all recalled gets no warning."""
    ids = placed_portfolio(cli_store, clock)
    app = open_ledger(cli_store)
    try:
        LedgerService(app, clock).recall_from_agency(ids["SG-1"], "end of contract")
    finally:
        app.close()
    runner = CliRunner()

    def export(agency: str) -> Any:
        return runner.invoke(
            cli.main, ["placements", "export", "--agency", agency, "--store", cli_store]
        )

    ghost = export("ghost")
    assert ghost.exit_code == 0, ghost.output
    assert csv_rows(ghost.stdout) == []
    assert ghost.stderr.splitlines() == [
        "placements: 0 accounts placed with ghost",
        "warning [unknown_agency]: no account has ever been placed with 'ghost'; "
        "check the agency's name",
    ]
    recalled = export(OTHER)
    assert recalled.exit_code == 0, recalled.output
    assert recalled.stderr == f"placements: 0 accounts placed with {OTHER}\n"
    assert "warning" not in export(AGENCY).stderr


def test_the_documented_activity_file_imports_cleanly(sqlite_service: LedgerService) -> None:
    """The sample in docs/adapters.md is a valid activity file: every row is posted."""
    docs = (Path(__file__).resolve().parent.parent / "docs" / "adapters.md").read_text()
    section = docs.split("## Agency sync\n", 1)[1]
    sample = section.split("```csv\n", 1)[1].split("```", 1)[0]
    place_portfolio(sqlite_service)

    report = import_activity(sqlite_service, AGENCY, sample, source="docs")

    assert [(r.row_key, r.outcome) for r in report.rows] == [
        ("nw-1001", "posted"),
        ("nw-1002", "posted"),
        ("nw-1003", "posted"),
        ("nw-1004", "posted"),
    ]
