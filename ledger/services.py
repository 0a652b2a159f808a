"""Use cases: the one API that the CLI, the worker and the HTTP server all call.

The service owns three things the domain must not: the clock, retries on
version conflicts (re-running the command on fresh state, never merging), and
turning input at the edges (money as ``Money``, ids as text) into domain calls.
Every method either records all of its events or none of them.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, TypeVar
from uuid import UUID, uuid4

import structlog
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from ledger import errors
from ledger.access import TokenStore
from ledger.application import Ledger
from ledger.clock import Clock, SystemClock, ensure_utc
from ledger.contact_gate import (
    LEGAL,
    ContactRules,
    VerdictRecord,
    no_rules,
)
from ledger.contact_use_cases import WORK_CHANNELS, ContactGateUseCases, RecordedContact
from ledger.domain.account import Account
from ledger.domain.allocation import DEFAULT_ORDER
from ledger.domain.debtor import Debtor
from ledger.domain.ids import account_id as derive_account_id
from ledger.domain.ids import child_id
from ledger.feed import FeedEvent, FeedPage, Visible, read_feed, stream_events
from ledger.history import History, account_history
from ledger.idempotency import IdempotencyStore
from ledger.itemization import Itemization, itemize
from ledger.logs import register_personal_values
from ledger.money import Money, check_currency
from ledger.portfolio import CreditorSummary, portfolio_summary
from ledger.processes import Order, TickReport, TimePolicy, advance, run_tick
from ledger.readmodels import ReadModels
from ledger.readmodels.account_listing import AccountPage, list_accounts
from ledger.readmodels.account_summary import live_summary
from ledger.readmodels.contactability import ExclusionPolicy
from ledger.readmodels.forecast import CashForecast
from ledger.readmodels.portfolio import PortfolioReport
from ledger.readmodels.worklist import LeftOut, Worklist, WorklistItem
from ledger.store.rows import ChainRow
from ledger.tamper.seal import SealResult, record_seal
from ledger.tamper.verify import VerifyReport, verify_ledger

log = structlog.get_logger("arrears.service")

T = TypeVar("T")
AllocationOrder = Callable[[str], Sequence[str]]


def default_allocation_order(creditor: str) -> Sequence[str]:
    return DEFAULT_ORDER


@dataclass(frozen=True)
class DebtorDetails:
    name: str
    phones: Sequence[str] = ()
    emails: Sequence[str] = ()
    addresses: Sequence[Mapping[str, str]] = ()
    time_zone: str | None = None
    jurisdiction: str | None = None


@dataclass(frozen=True)
class Placement:
    creditor: str
    reference: str
    currency: str
    principal: Money
    interest: Money
    fees: Money
    itemization_date: date
    itemization_kind: str
    original_creditor: str = ""
    charge_off_date: date | None = None
    last_payment_date: date | None = None
    last_payment_amount: Money | None = None


@dataclass(frozen=True)
class PaymentResult:
    account: Account
    payment_id: str
    created: bool
    forwarded: bool = False


@dataclass(frozen=True)
class Installment:
    due_date: date
    amount: Money


@dataclass
class LedgerService(ContactGateUseCases):
    """Every use case; the plumbing (loading, retries) is ``ServiceCore``'s, the contact
    gate's use cases are ``ContactGateUseCases``'s."""

    ledger: Ledger
    clock: Clock = field(default_factory=SystemClock)
    allocation_order: AllocationOrder = default_allocation_order
    contact_rules: ContactRules = no_rules
    max_attempts: int = 16
    new_id: Callable[[], str] = field(default=lambda: uuid4().hex)
    _locks: weakref.WeakValueDictionary[UUID, threading.RLock] = field(
        default_factory=weakref.WeakValueDictionary, init=False, repr=False
    )
    _locks_guard: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _read_models: ReadModels | None = field(default=None, init=False, repr=False)

    # ------------------------------------------------------------ debtors

    def register_debtor(self, details: DebtorDetails, debtor_id: UUID | None = None) -> Debtor:
        debtor = self._new_debtor(details, debtor_id)
        self.ledger.save(debtor)
        log.info("debtor_registered", debtor_id=str(debtor.id))
        return debtor

    def _new_debtor(self, details: DebtorDetails, debtor_id: UUID | None) -> Debtor:
        register_personal_values(details.name, *details.phones, *details.emails)
        return Debtor.register(
            at=self._now(),
            debtor_id=debtor_id or UUID(self.new_id()),
            name=details.name,
            phones=details.phones,
            emails=details.emails,
            addresses=[dict(a) for a in details.addresses],
            time_zone=details.time_zone,
            jurisdiction=details.jurisdiction,
        )

    def update_debtor_contact_details(self, debtor_id: UUID, **changes: Any) -> Debtor:
        register_personal_values(*changes.get("phones") or (), *changes.get("emails") or ())
        at = self._now()

        def run(debtor: Debtor) -> Debtor:
            debtor.change_contact_details(at=at, **changes)
            return debtor

        return self._change(debtor_id, self._debtor_for_command, run)

    def erase_debtor(self, debtor_id: UUID, reason: str) -> Debtor:
        at = self._now()

        def run(debtor: Debtor) -> Debtor:
            debtor.erase_personal_data(at=at, reason=reason)
            return debtor

        return self._change(debtor_id, self._debtor_for_command, run)

    # ----------------------------------------------------------- accounts

    def place_account(
        self,
        placement: Placement,
        *,
        debtor: DebtorDetails | None = None,
        debtor_id: UUID | None = None,
    ) -> Account:
        """Place a debt; the same creditor + reference twice is refused with ``account_exists``."""
        currency = check_currency(placement.currency)
        parts = [placement.principal, placement.interest, placement.fees]
        if placement.last_payment_amount is not None:
            parts.append(placement.last_payment_amount)
        for part in parts:
            if part.currency != currency:
                raise errors.CurrencyMismatch(
                    f"placement is in {currency}, an amount is in {part.currency}",
                    expected=currency,
                    got=part.currency,
                )
        existing_id = derive_account_id(placement.creditor, placement.reference)
        self._refuse_existing(existing_id)
        if (debtor is None) == (debtor_id is None):
            raise errors.ValidationError(
                "give either the debtor's details or a debtor_id", field="debtor"
            )
        new_debtor = self._new_debtor(debtor, None) if debtor is not None else None
        if debtor_id is not None:
            self.get_debtor(debtor_id)
        account = Account.place(
            at=self._now(),
            creditor=placement.creditor,
            original_creditor=placement.original_creditor,
            reference=placement.reference,
            currency=currency,
            principal=placement.principal.minor,
            interest=placement.interest.minor,
            fees=placement.fees.minor,
            itemization_date=placement.itemization_date,
            itemization_kind=placement.itemization_kind,
            charge_off_date=placement.charge_off_date,
            last_payment_date=placement.last_payment_date,
            last_payment_amount=(
                placement.last_payment_amount.minor if placement.last_payment_amount else None
            ),
            debtor_id=new_debtor.id if new_debtor is not None else debtor_id,  # type: ignore[arg-type]
        )
        try:
            if new_debtor is not None:
                self.ledger.save(new_debtor, account)
            else:
                self.ledger.save(account)
        except IntegrityError:
            self._refuse_existing(existing_id)
            raise
        log.info("account_placed", account_id=str(account.id), creditor=placement.creditor)
        return account

    def _refuse_existing(self, account_id: UUID) -> None:
        try:
            self.ledger.repository.get(account_id)
        except AggregateNotFoundError:
            return
        raise errors.AccountExists(
            f"an account with this creditor and reference already exists: {account_id}",
            account_id=str(account_id),
        )

    def list_account_ids(self) -> list[UUID]:
        return [aid for aid, _ in self.iter_account_references()]

    # ---------------------------------------------------- balance changes

    def accrue_interest(
        self,
        account_id: UUID,
        amount: Money,
        *,
        rate_basis_points: int | None = None,
        period_start: date | None = None,
        period_end: date | None = None,
    ) -> Account:
        at = self._now()
        return self._account(
            account_id,
            lambda a: a.accrue_interest(
                at=at,
                amount=amount.minor,
                currency=amount.currency,
                rate_basis_points=rate_basis_points,
                period_start=period_start,
                period_end=period_end,
            ),
        )

    def assess_fee(self, account_id: UUID, amount: Money, fee_type: str) -> Account:
        at = self._now()
        return self._account(
            account_id,
            lambda a: a.assess_fee(
                at=at, amount=amount.minor, currency=amount.currency, fee_type=fee_type
            ),
        )

    def adjust_balance(
        self, account_id: UUID, *, component: str, direction: str, amount: Money, reason: str
    ) -> Account:
        at = self._now()
        return self._account(
            account_id,
            lambda a: a.adjust_balance(
                at=at,
                component=component,
                direction=direction,
                amount=amount.minor,
                currency=amount.currency,
                reason=reason,
            ),
        )

    def post_payment(
        self,
        account_id: UUID,
        amount: Money,
        *,
        method: str,
        received_at: datetime | None = None,
        external_reference: str | None = None,
    ) -> PaymentResult:
        """Post a payment once: the same external reference returns the original payment."""
        at = self._now()
        received = ensure_utc(received_at) if received_at is not None else at
        payment_id = (
            child_id(account_id, "payment", external_reference)
            if external_reference
            else self.new_id()
        )

        def run(account: Account) -> PaymentResult:
            if amount.currency != account.currency:
                raise errors.CurrencyMismatch(
                    f"account is in {account.currency}, payment is in {amount.currency}",
                    expected=account.currency,
                    got=amount.currency,
                )
            if external_reference:
                existing = account.find_payment_by_reference(external_reference)
                if existing is not None:
                    original = account.payments.get(existing)
                    original_amount = (
                        original["amount"]
                        if original is not None
                        else account.forwarded_payments.get(existing)
                    )
                    if original_amount is not None and original_amount != amount.minor:
                        raise errors.IdempotencyConflict(
                            f"external reference {external_reference!r} was already posted "
                            f"with a different amount",
                            payment_id=existing,
                        )
                    return PaymentResult(
                        account, existing, created=False, forwarded=original is None
                    )
            account.receive_payment(
                at=at,
                payment_id=payment_id,
                amount=amount.minor,
                currency=amount.currency,
                method=method,
                received_at=received,
                external_reference=external_reference,
                order=self.allocation_order(account.creditor),
            )
            forwarded = isinstance(account.pending_events[-1], Account.PaymentForwarded)
            return PaymentResult(account, payment_id, created=True, forwarded=forwarded)

        result = self._change(account_id, self._account_for_command, run)
        log.info(
            "payment_posted" if result.created else "payment_replayed",
            account_id=str(account_id),
            payment_id=result.payment_id,
            amount_minor=amount.minor,
            currency=amount.currency,
        )
        return result

    def reverse_payment(
        self, account_id: UUID, payment_id: str, *, kind: str, reason: str
    ) -> Account:
        at = self._now()
        return self._account(
            account_id,
            lambda a: a.reverse_payment(at=at, payment_id=payment_id, kind=kind, reason=reason),
        )

    def waive(
        self,
        account_id: UUID,
        *,
        kind: str,
        reason: str,
        amounts: Mapping[str, Money] | None = None,
    ) -> Account:
        at = self._now()

        def run(account: Account) -> None:
            minor = None if amounts is None else {k: m.minor for k, m in amounts.items()}
            currencies = {m.currency for m in (amounts or {}).values()} or {account.currency}
            if currencies != {account.currency}:
                raise errors.CurrencyMismatch(
                    f"account is in {account.currency}, "
                    f"waiver is in {', '.join(sorted(currencies))}",
                    expected=account.currency,
                    got=",".join(sorted(currencies)),
                )
            currency = account.currency
            account.waive(at=at, kind=kind, currency=currency, reason=reason, amounts=minor)

        return self._account(account_id, run)

    # ------------------------------------------------ contacts & promises

    def record_contact(
        self,
        account_id: UUID,
        *,
        channel: str,
        direction: str,
        outcome: str,
        occurred_at: datetime | None = None,
        agent: str | None = None,
        purpose: str = "collection",
        callback_at: datetime | None = None,
        party: str = "debtor",
        to: str | None = None,
        note: str | None = None,
        contact_id: str | None = None,
    ) -> RecordedContact:
        """Record a contact that happened.  An outbound one is judged by the rules in force
        when it happened; if it broke any, a violation event is recorded with it (same save):
        the contact is a fact and is kept, the violation is the compliance record."""
        at = self._now()
        when = ensure_utc(occurred_at) if occurred_at is not None else at
        callback = ensure_utc(callback_at) if callback_at is not None else None
        contact_id = contact_id or self.new_id()

        def run(account: Account) -> RecordedContact:
            violations: tuple[VerdictRecord, ...] = ()
            if direction == "outbound" and channel in WORK_CHANNELS:
                decision = self._judge(
                    account, channel=channel, purpose=purpose, at=when, party=party, to=to
                )
                violations = decision.blocking
            account.record_contact(
                at=at,
                contact_id=contact_id,
                channel=channel,
                direction=direction,
                outcome=outcome,
                occurred_at=when,
                agent=agent,
                purpose=purpose,
                callback_at=callback,
                party=party,
                to=to,
            )
            if violations:
                account.flag_violation(
                    at=at, contact_id=contact_id, verdicts=[v.as_dict() for v in violations]
                )
            if note:
                account.add_note(
                    at=at, note_id=child_id(account.id, "note", contact_id), text=note, agent=agent
                )
            return RecordedContact(account, contact_id, violations)

        result = self._change(account_id, self._account_for_command, run)
        if result.violations:
            log.warning(
                "contact_violation_recorded",
                account_id=str(account_id),
                contact_id=contact_id,
                rules=[v.rule for v in result.violations],
            )
        return result

    def make_promise(
        self,
        account_id: UUID,
        amount: Money,
        due_date: date,
        *,
        agent: str | None = None,
        promise_id: str | None = None,
    ) -> Account:
        """``promise_id`` lets an importer choose a deterministic id, to find it again."""
        at = self._now()
        return self._account(
            account_id,
            lambda a: a.make_promise(
                at=at,
                promise_id=promise_id or self.new_id(),
                amount=amount.minor,
                currency=amount.currency,
                due_date=due_date,
                agent=agent,
            ),
        )

    def keep_promise(self, account_id: UUID, promise_id: str | None = None) -> Account:
        at = self._now()
        return self._account(account_id, lambda a: a.keep_promise(at=at, promise_id=promise_id))

    def break_promise(self, account_id: UUID, promise_id: str | None = None) -> Account:
        at = self._now()
        return self._account(account_id, lambda a: a.break_promise(at=at, promise_id=promise_id))

    def cancel_promise(
        self, account_id: UUID, reason: str, promise_id: str | None = None
    ) -> Account:
        at = self._now()
        return self._account(
            account_id, lambda a: a.cancel_promise(at=at, reason=reason, promise_id=promise_id)
        )

    # --------------------------------------------------------------- plans

    def agree_plan(
        self, account_id: UUID, *, kind: str, total: Money, installments: Sequence[Installment]
    ) -> Account:
        at = self._now()
        schedule = self._schedule(total, installments)
        return self._account(
            account_id,
            lambda a: a.agree_plan(
                at=at,
                plan_id=self.new_id(),
                kind=kind,
                total=total.minor,
                currency=total.currency,
                installments=schedule,
            ),
        )

    @staticmethod
    def _schedule(total: Money, installments: Sequence[Installment]) -> list[dict[str, Any]]:
        for item in installments:
            if item.amount.currency != total.currency:
                raise errors.CurrencyMismatch(
                    f"plan is in {total.currency}, an installment is in {item.amount.currency}",
                    expected=total.currency,
                    got=item.amount.currency,
                )
        return [{"due_date": i.due_date, "amount": i.amount.minor} for i in installments]

    def amend_plan(
        self, account_id: UUID, *, total: Money, installments: Sequence[Installment], reason: str
    ) -> Account:
        at = self._now()
        schedule = self._schedule(total, installments)
        return self._account(
            account_id,
            lambda a: a.amend_plan(
                at=at,
                total=total.minor,
                currency=total.currency,
                installments=schedule,
                reason=reason,
            ),
        )

    def cancel_plan(self, account_id: UUID, reason: str) -> Account:
        at = self._now()
        return self._account(account_id, lambda a: a.cancel_plan(at=at, reason=reason))

    def miss_installment(self, account_id: UUID, due_date: date) -> Account:
        at = self._now()
        return self._account(account_id, lambda a: a.miss_installment(at=at, due_date=due_date))

    def default_plan(self, account_id: UUID) -> Account:
        at = self._now()
        return self._account(account_id, lambda a: a.default_plan(at=at))

    def complete_plan(self, account_id: UUID) -> Account:
        at = self._now()
        return self._account(account_id, lambda a: a.complete_plan(at=at))

    # ------------------------------------------------ disputes & compliance

    def raise_dispute(
        self,
        account_id: UUID,
        reason: str,
        *,
        within_validation_period: bool,
        received_at: datetime | None = None,
        written: bool | None = None,
    ) -> tuple[Account, str]:
        at = self._now()
        dispute_id = self.new_id()
        account = self._account(
            account_id,
            lambda a: a.raise_dispute(
                at=at,
                dispute_id=dispute_id,
                reason=reason,
                within_validation_period=within_validation_period,
                received_at=None if received_at is None else ensure_utc(received_at),
                written=written,
            ),
        )
        return account, dispute_id

    def provide_verification(self, account_id: UUID, dispute_id: str, method: str) -> Account:
        at = self._now()
        return self._account(
            account_id,
            lambda a: a.provide_verification(at=at, dispute_id=dispute_id, method=method),
        )

    def resolve_dispute(
        self, account_id: UUID, dispute_id: str, outcome: str, note: str = ""
    ) -> Account:
        at = self._now()
        return self._account(
            account_id,
            lambda a: a.resolve_dispute(at=at, dispute_id=dispute_id, outcome=outcome, note=note),
        )

    def receive_complaint(
        self, account_id: UUID, *, channel: str, category: str
    ) -> tuple[Account, str]:
        at = self._now()
        complaint_id = self.new_id()
        account = self._account(
            account_id,
            lambda a: a.receive_complaint(
                at=at, complaint_id=complaint_id, channel=channel, category=category
            ),
        )
        return account, complaint_id

    def resolve_complaint(self, account_id: UUID, complaint_id: str, outcome: str) -> Account:
        at = self._now()
        return self._account(
            account_id,
            lambda a: a.resolve_complaint(at=at, complaint_id=complaint_id, outcome=outcome),
        )

    def receive_cease(
        self, account_id: UUID, received_via: str, received_at: datetime | None = None
    ) -> Account:
        at = self._now()
        received = None if received_at is None else ensure_utc(received_at)
        return self._account(
            account_id,
            lambda a: a.receive_cease(at=at, received_via=received_via, received_at=received),
        )

    def give_consent(self, account_id: UUID, channel: str, evidence: str) -> Account:
        at = self._now()
        return self._account(
            account_id, lambda a: a.give_consent(at=at, channel=channel, evidence=evidence)
        )

    def revoke_consent(self, account_id: UUID, channel: str, evidence: str) -> Account:
        at = self._now()
        return self._account(
            account_id, lambda a: a.revoke_consent(at=at, channel=channel, evidence=evidence)
        )

    def notify_attorney(
        self, account_id: UUID, firm: str, attorney_reference: str | None = None
    ) -> Account:
        at = self._now()
        return self._account(
            account_id,
            lambda a: a.notify_attorney(at=at, firm=firm, attorney_reference=attorney_reference),
        )

    def notify_bankruptcy(
        self, account_id: UUID, *, chapter: str, case_number: str, filed_on: date
    ) -> Account:
        at = self._now()
        return self._account(
            account_id,
            lambda a: a.notify_bankruptcy(
                at=at, chapter=chapter, case_number=case_number, filed_on=filed_on
            ),
        )

    def notify_deceased(self, account_id: UUID, date_of_death: date | None = None) -> Account:
        at = self._now()
        return self._account(
            account_id, lambda a: a.notify_deceased(at=at, date_of_death=date_of_death)
        )

    # ----------------------------------------------- agencies, law, sales

    def place_with_agency(
        self,
        account_id: UUID,
        *,
        agency: str,
        commission_basis_points: int,
        placed_on: date | None = None,
        recall_due: date | None = None,
    ) -> Account:
        at = self._now()
        return self._account(
            account_id,
            lambda a: a.place_with_agency(
                at=at,
                agency=agency,
                commission_basis_points=commission_basis_points,
                placed_on=placed_on or at.date(),
                recall_due=recall_due,
            ),
        )

    def recall_from_agency(
        self, account_id: UUID, reason: str, recalled_on: date | None = None
    ) -> Account:
        at = self._now()
        return self._account(
            account_id,
            lambda a: a.recall_from_agency(
                at=at, recalled_on=recalled_on or at.date(), reason=reason
            ),
        )

    def refer_to_law_firm(
        self, account_id: UUID, law_firm: str, referred_on: date | None = None
    ) -> Account:
        """Refer to a law firm; the rule packs may refuse (a time-barred debt is never sued on)."""

        def refer(account: Account, at: datetime) -> None:
            account.refer_to_law_firm(
                at=at, law_firm=law_firm, referred_on=referred_on or at.date()
            )

        account, _ = self._gated(
            account_id,
            channel=LEGAL,
            purpose="legal_referral",
            party="debtor",
            to=None,
            action=refer,
        )
        return account

    def change_legal_status(
        self,
        account_id: UUID,
        legal_status: str,
        *,
        effective_on: date | None = None,
        judgment_amount: Money | None = None,
        judgment_date: date | None = None,
        court_reference: str | None = None,
        details: str = "",
    ) -> Account:
        at = self._now()

        def run(account: Account) -> None:
            if judgment_amount is not None and judgment_amount.currency != account.currency:
                raise errors.CurrencyMismatch(
                    f"account is in {account.currency}, judgment is in {judgment_amount.currency}",
                    expected=account.currency,
                    got=judgment_amount.currency,
                )
            account.change_legal_status(
                at=at,
                legal_status=legal_status,
                effective_on=effective_on or at.date(),
                judgment_amount=judgment_amount.minor if judgment_amount else None,
                judgment_date=judgment_date,
                court_reference=court_reference,
                details=details,
            )

        return self._account(account_id, run)

    def withdraw_referral(self, account_id: UUID, reason: str) -> Account:
        at = self._now()
        return self._account(account_id, lambda a: a.withdraw_referral(at=at, reason=reason))

    def sell(
        self,
        account_id: UUID,
        *,
        buyer: str,
        price: Money,
        portfolio_reference: str,
        sale_date: date | None = None,
    ) -> Account:
        at = self._now()
        return self._account(
            account_id,
            lambda a: a.sell(
                at=at,
                buyer=buyer,
                price=price.minor,
                currency=price.currency,
                sale_date=sale_date or at.date(),
                portfolio_reference=portfolio_reference,
            ),
        )

    def close(self, account_id: UUID, reason: str, note: str = "") -> Account:
        at = self._now()
        return self._account(account_id, lambda a: a.close(at=at, reason=reason, note=note))

    def add_note(
        self, account_id: UUID, text: str, agent: str | None = None, *, note_id: str | None = None
    ) -> Account:
        at = self._now()
        return self._account(
            account_id,
            lambda a: a.add_note(at=at, note_id=note_id or self.new_id(), text=text, agent=agent),
        )

    # -------------------------------------------------------------- audit

    def history(self, account_id: UUID, as_of: datetime | None = None) -> History:
        self.get_account(account_id)
        return account_history(self.ledger, account_id, ensure_utc(as_of) if as_of else None)

    def verify(self, *, account_id: UUID | None = None, digest: str | None = None) -> VerifyReport:
        return verify_ledger(self.ledger, account_id=account_id, digest=digest)

    def read_models(self) -> ReadModels:
        """The read side, opened on first use (commands that only write never pay for it)."""
        if self._read_models is None:
            self._read_models = ReadModels(self.ledger)
        return self._read_models

    def account_summary(self, account_id: UUID, *, wait: bool = True) -> dict[str, Any]:
        """The account summary read model, caught up with this ledger first when ``wait``."""
        models = self.read_models()
        if wait:
            models.engine.catch_up(["account_summary"])
        summary = models.summary(account_id, self._now())
        if summary is None:
            raise errors.AccountNotFound(f"no account {account_id}", account_id=str(account_id))
        return summary

    def live_account_summary(self, account_id: UUID) -> dict[str, Any]:
        """The account summary computed from the account's events now (no read model):
        what a write's response shows, without waiting for the projection."""
        return self.summary_of(self.get_account(account_id))

    def summary_of(self, account: Account) -> dict[str, Any]:
        """The summary of an account a command just returned (already up to date)."""
        return live_summary(account, self._now())

    # read-side use cases (reports, worklist, forecast, time processes) go below this line

    def list_accounts(
        self,
        *,
        limit: int = 100,
        after: str | None = None,
        creditor: str | None = None,
        status: str | None = None,
        agency: str | None = None,
        law_firm: str | None = None,
        visible: Visible | None = None,
        wait: bool = True,
    ) -> AccountPage:
        """Accounts from the account summary read model, in id order, a page at a time
        (``ledger.readmodels.account_listing``); ``visible`` leaves out what the caller
        may not see."""
        if limit < 1:
            raise errors.ValidationError("limit must be at least 1", field="limit")
        models = self.read_models()
        if wait:
            models.engine.catch_up(["account_summary"])
        with models.engine.reading("account_summary") as (tx, names):
            return list_accounts(
                tx,
                names,
                today=self._now().date(),
                limit=limit,
                after=after,
                creditor=creditor,
                status=status,
                agency=agency,
                law_firm=law_firm,
                visible=visible,
            )

    def itemization(self, account_id: UUID, as_of: datetime | None = None) -> Itemization:
        """The Regulation F validation itemization as of ``as_of`` (``ledger.itemization``)."""
        self.get_account(account_id)
        events = self.ledger.events.get(account_id)
        return itemize(account_id, events, ensure_utc(as_of) if as_of is not None else None)

    def account_events(self, account_id: UUID, *, after_version: int = 0) -> list[FeedEvent]:
        """The account's events after ``after_version`` with positions and chain hashes,
        as the feed shows them (``ledger.feed``)."""
        currency = self.get_account(account_id).currency
        return stream_events(self.read_models(), account_id, currency, after_version=after_version)

    def account_rows(self, account_id: UUID) -> dict[int, ChainRow]:
        """The account's stored rows by version: global positions and chain hashes."""
        return {row.version: row for row in self.ledger.rows().stream(account_id)}

    def feed(
        self,
        *,
        after: int = 0,
        limit: int = 100,
        visible: Visible | None = None,
        scan_limit: int = 5000,
    ) -> FeedPage:
        """Account events after position ``after`` in global order (``ledger.feed``)."""
        if limit < 1 or after < 0:
            raise errors.ValidationError("limit must be at least 1 and after not negative")
        models = self.read_models()
        head = models.engine.head()
        models.engine.catch_up(["account_summary"])
        return read_feed(
            models, after=after, upto=head, limit=limit, visible=visible, scan_limit=scan_limit
        )

    def run_time_processes(
        self,
        grace_days: int = 3,
        default_after: int = 2,
        *,
        order: Order = "shuffle",
        stop: Callable[[], bool] | None = None,
        catch_up: bool = True,
    ) -> TickReport:
        """One tick of the time processes (``ledger.processes``) as of the service clock."""
        policy = TimePolicy(grace_days=grace_days, default_after=default_after)
        return run_tick(self, self._now(), policy, order=order, stop=stop, catch_up=catch_up)

    def advance_account(self, account_id: UUID, policy: TimePolicy) -> list[str]:
        """Record what the passage of time says about one account, in one save.

        Decided on the account's fresh state and re-decided after a version
        conflict, so a rerun or a second worker records nothing twice.  Returns the
        names of the events recorded (none if nothing was due).
        """

        def fresh(aggregate_id: UUID) -> Account:
            return self._load(aggregate_id, Account, fresh=True)

        recorded = self._change(
            account_id, fresh, lambda account: advance(account, self._now(), policy)
        )
        if recorded:
            log.info("time_processes_recorded", account_id=str(account_id), events=recorded)
        return recorded

    def portfolio_report(
        self,
        as_of: datetime | None = None,
        creditor: str | None = None,
        agency: str | None = None,
        *,
        wait: bool = True,
    ) -> PortfolioReport:
        """The portfolio report as of ``as_of`` (recorded time; default now), by creditor and
        by agency; the read model is caught up with this ledger first when ``wait``."""
        moment = ensure_utc(as_of) if as_of is not None else self._now()
        models = self.read_models()
        if wait:
            models.engine.catch_up(["portfolio"])
        return models.portfolio(moment, creditor=creditor, agency=agency)

    def worklist(
        self,
        *,
        agent: str | None = None,
        limit: int | None = None,
        exclude: ExclusionPolicy | None = None,
        grace_days: int | None = None,
        wait: bool = True,
        gate: bool = True,
    ) -> Worklist:
        """Accounts that need action now, ranked; ``exclude`` replaces the default
        contactability policy (``ledger.readmodels.contactability``).  A promise or an
        installment is late after ``grace_days`` (default: the time processes' policy).

        With ``gate`` (the default) the contact gate is asked, for each account listed,
        which channels are open right now; an account with none is left out
        (``no_open_channel``), so ``limit`` counts only accounts someone can work."""
        policy = TimePolicy() if grace_days is None else TimePolicy(grace_days=grace_days)
        models = self.read_models()
        if wait:
            models.engine.catch_up(["account_summary"])
        now = self._now()
        ranked = models.worklist(
            now,
            agent=agent,
            limit=None if gate else limit,
            exclude=exclude,
            grace_days=policy.grace_days,
        )
        if not gate:
            return ranked
        items: list[WorklistItem] = []
        left_out = list(ranked.left_out)
        for item in ranked.items:
            if limit is not None and len(items) >= limit:
                break
            channels = self.open_channels(UUID(item.account_id), now)
            if not channels:
                left_out.append(
                    LeftOut(
                        account_id=item.account_id,
                        creditor=item.creditor,
                        reference=item.reference,
                        reasons=item.reasons,
                        excluded_because="no_open_channel",
                        agent=item.agent,
                    )
                )
                continue
            items.append(replace(item, position=len(items) + 1, open_channels=channels))
        total = ranked.total - (len(left_out) - len(ranked.left_out))
        return replace(ranked, items=items, left_out=left_out, total=total)

    def cash_forecast(self, *, weeks: int = 8, wait: bool = True) -> CashForecast:
        """Installments and promises falling due in the next ``weeks`` ISO weeks."""
        if weeks < 1:
            raise errors.ValidationError("weeks must be at least 1", field="weeks")
        models = self.read_models()
        if wait:
            models.engine.catch_up(["account_summary"])
        return models.forecast(self._now().date(), weeks=weeks)

    def portfolio_summary(self) -> list[CreditorSummary]:
        return portfolio_summary(self.ledger)

    def seal(self) -> SealResult:
        result = record_seal(self.ledger, self._now())
        log.info("ledger_sealed", position=result.position, digest=result.digest)
        return result

    # ------------------------------------------- API state (operational tables)

    def tokens(self) -> TokenStore:
        """API bearer tokens (``ledger.access``), opened on first use."""
        with self._locks_guard:
            store: TokenStore | None = self.__dict__.get("_tokens")
            if store is None:
                store = self.__dict__["_tokens"] = TokenStore(self.ledger, self.clock)
        return store

    def idempotency(self) -> IdempotencyStore:
        """Idempotency keys of API requests (``ledger.idempotency``), opened on first use."""
        with self._locks_guard:
            store: IdempotencyStore | None = self.__dict__.get("_idempotency")
            if store is None:
                store = self.__dict__["_idempotency"] = IdempotencyStore(self.ledger, self.clock)
        return store
