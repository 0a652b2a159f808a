"""Posting one activity row: its ledger write, keyed by the row so it is found again.

A payment carries ``external_reference = "AGENCY:ROW_KEY"``; contacts, promises
and notes get ids derived from the account and that same reference
(``child_id``); a recall's reason names the row.  ``recorded`` looks these up,
so an import that stopped between a write and its mark is finished without
writing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from adapters.agency.rows import ActivityRow
from ledger import errors
from ledger.domain.account import Account
from ledger.domain.ids import child_id
from ledger.services import LedgerService

Outcome = Literal["posted", "already_posted", "rejected", "in_flight"]


@dataclass
class RowPoster:
    service: LedgerService
    agency: str

    def external_reference(self, row: ActivityRow) -> str:
        return f"{self.agency}:{row.key}"

    def fact_id(self, row: ActivityRow, kind: str) -> str:
        return child_id(row.account_id, kind, self.external_reference(row))

    def recall_reason(self, row: ActivityRow) -> str:
        note = row.values.get("note")
        return f"returned by agency {self.agency}, row {row.key}" + (f": {note}" if note else "")

    def post(self, row: ActivityRow, *, recovering: bool) -> tuple[Outcome, str]:
        """Write the row's fact, or find it written by an import that stopped half-way."""
        account = self.service.get_account(row.account_id)
        if recovering:
            found = self.recorded(row, account)
            if found is not None:
                return "already_posted", found
        check_placed(account, self.agency)
        return self.write(row, account)

    def recorded(self, row: ActivityRow, account: Account) -> str | None:
        """What an earlier, interrupted import wrote for this row, if it wrote it."""
        if row.kind == "payment":
            payment = account.find_payment_by_reference(self.external_reference(row))
            return None if payment is None else f"payment {payment}"
        if row.kind == "promise":
            promise = self.fact_id(row, "promise")
            return f"promise {promise}" if promise in account.promises else None
        status = row.values.get("status")
        if status == "cease_requested":
            return "cease on record" if account.ceased else None
        events = self.service.ledger.events.get(row.account_id)
        if row.kind == "contact":
            contact = self.fact_id(row, "contact")
            hit = any(
                isinstance(e, Account.ContactRecorded) and e.contact_id == contact for e in events
            )
            return f"contact {contact}" if hit else None
        if status == "unable_to_locate":
            note = self.fact_id(row, "note")
            hit = any(isinstance(e, Account.NoteAdded) and e.note_id == note for e in events)
            return f"note {note}" if hit else None
        reason = self.recall_reason(row)
        hit = any(isinstance(e, Account.RecalledFromAgency) and e.reason == reason for e in events)
        return "recalled" if hit else None

    def write(self, row: ActivityRow, account: Account) -> tuple[Outcome, str]:
        v = row.values
        agent = f"{self.agency}/{v['agent']}" if "agent" in v else self.agency
        if row.kind == "payment":
            assert row.amount is not None
            paid = self.service.post_payment(
                row.account_id,
                row.amount,
                method=v["method"],
                received_at=row.moment,
                external_reference=self.external_reference(row),
            )
            outcome: Outcome = "posted" if paid.created else "already_posted"
            theirs = v.get("payment_reference")
            return outcome, f"payment {paid.payment_id}" + (f" ({theirs})" if theirs else "")
        if row.kind == "promise":
            assert row.amount is not None and row.due_date is not None
            promise_id = self.fact_id(row, "promise")
            self.service.make_promise(
                row.account_id, row.amount, row.due_date, agent=agent, promise_id=promise_id
            )
            return "posted", f"promise {promise_id}"
        if row.kind == "contact":
            recorded = self.service.record_contact(
                row.account_id,
                channel=v["channel"],
                direction=v["direction"],
                outcome=v["outcome"],
                occurred_at=row.moment,
                agent=agent,
                note=v.get("note"),
                contact_id=self.fact_id(row, "contact"),
            )
            result = f"contact {recorded.contact_id}"
            if recorded.violations:
                rules = ", ".join(sorted({x.rule for x in recorded.violations}))
                result += f" (violations recorded: {rules})"
            return "posted", result
        status = v["status"]
        if status == "unable_to_locate":
            note_id = self.fact_id(row, "note")
            text = f"agency {self.agency}: unable to locate the debtor"
            self.service.add_note(
                row.account_id,
                text + (f": {v['note']}" if "note" in v else ""),
                agent=agent,
                note_id=note_id,
            )
            return "posted", f"note {note_id}"
        if status == "returned":
            self.service.recall_from_agency(row.account_id, self.recall_reason(row))
            return "posted", "recalled"
        if account.ceased:
            return "posted", "cease already on record"
        self.service.receive_cease(row.account_id, received_via=f"agency:{self.agency}")
        return "posted", "cease recorded"


class NotPlacedWithAgency(errors.RuleViolation):
    """An agency posted to an account that is not placed with it."""

    code = "not_placed_with_agency"


def check_placed(account: Account, agency: str) -> None:
    if account.agency is None or account.agency["name"] != agency:
        # Which agency (if any) holds it is none of this agency's business.
        raise NotPlacedWithAgency(
            f"account {account.id} is not placed with agency {agency}; an agency may only "
            "post to the accounts placed with it",
            account_id=str(account.id),
        )
