"""Which accounts must not be sold, and why (OCC Bulletin 2014-37, RMAi).

Not sold: disputed, ceased, bankrupt, deceased or represented debtors, debts on
a performing plan, time-barred debts (or, with a margin, nearly so), debts in a
breathing space, debts held by an agency or a law firm, already sold or closed,
nothing owed, or whose debtor's identity was erased (the buyer must receive it).
Each reason is a stable ``code`` plus a sentence for a person.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from ledger.domain.account import Account
from ledger.domain.debtor import Debtor
from ledger.domain.lifecycle import Status
from ledger.money import format_minor


@dataclass(frozen=True)
class Reason:
    code: str
    text: str

    def __str__(self) -> str:
        return f"{self.code}: {self.text}"


def plan_in_arrears(account: Account, today: date) -> bool:
    """Less paid on the active plan than the installments due before today add up to."""
    plan = account.plan
    if plan is None:
        return False
    due = sum(int(i["amount"]) for i in plan["installments"] if i["due_date"] < today)
    return int(plan["paid"]) < due


def refusal_reasons(
    account: Account,
    debtor: Debtor | None,
    today: date,
    *,
    sale_of: tuple[str, str] | None = None,
    limitation_margin: timedelta = timedelta(0),
) -> list[Reason]:
    """Why ``account`` must not be sold on ``today`` (empty: it may be).

    ``sale_of`` is the account's own sale, (buyer, portfolio reference), if it was sold.
    """
    out: list[Reason] = []
    money = account.currency

    def refuse(code: str, text: str) -> None:
        out.append(Reason(code, text))

    open_disputes = [d for d in account.disputes.values() if d["status"] != "resolved"]
    if open_disputes:
        refuse("disputed", f"{len(open_disputes)} dispute(s) not resolved")
    if account.ceased:
        refuse("ceased", "the debtor asked us to cease communication")
    if account.bankrupt:
        refuse("bankrupt", "a bankruptcy was notified")
    if account.deceased:
        refuse("deceased", "the debtor is deceased")
    if account.attorney is not None:
        refuse("represented", f"represented by attorney {account.attorney['firm']}")
    plan = account.plan
    if plan is not None and not plan_in_arrears(account, today):
        refuse(
            "performing_plan",
            f"{plan['kind']} plan is up to date (paid {format_minor(int(plan['paid']), money)} "
            f"of {format_minor(int(plan['total']), money)})",
        )
    expires = account.limitation_expires_on
    if account.time_barred(today):
        refuse("time_barred", f"the limitation period expired on {expires}")
    elif expires is not None and today + limitation_margin >= expires:
        refuse("near_limitation", f"the limitation period expires on {expires}")
    if account.in_breathing_space(today):
        space = account.breathing_space or {}
        refuse("breathing_space", f"in a {space.get('kind')} breathing space")
    status = account.status
    if status == Status.SOLD:
        buyer, portfolio = sale_of or (account.buyer or "", "?")
        refuse("sold", f"already sold to {buyer} (portfolio {portfolio})")
    elif status == Status.CLOSED:
        refuse("closed", f"closed ({account.close_reason})")
    elif status == Status.WITH_AGENCY and account.agency is not None:
        refuse("with_agency", f"placed with agency {account.agency['name']}; recall it first")
    elif status == Status.WITH_LAW_FIRM and account.law_firm is not None:
        refuse(
            "with_law_firm",
            f"referred to law firm {account.law_firm['name']}; withdraw the referral first",
        )
    if status not in (Status.SOLD, Status.CLOSED) and account.total_balance <= 0:
        refuse("nothing_owed", f"balance is {format_minor(account.total_balance, money)}")
    if debtor is None or debtor.erased or not debtor.name:
        refuse("identity_missing", "the debtor's identity was erased or is unknown")
    return out
