"""The ``Account`` aggregate: one debt, as a stream of immutable facts.

Every command method checks the account's rules first (``_check_*``) and only
then triggers an event; the event's ``apply`` is the sole place state changes,
so replaying the stored events always rebuilds exactly the live state.

Personal data never enters this stream: the debtor is referenced by id only, so
that a person can be erased (``Debtor``) without touching the account history.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger import errors
from ledger.domain.allocation import COMPONENTS, CREDIT, DEFAULT_ORDER, allocate
from ledger.domain.ids import account_id
from ledger.domain.lifecycle import CLOSE_REASONS, Status, next_status
from ledger.money import check_currency, format_minor

ITEMIZATION_KINDS = frozenset(
    {"last_statement", "charge_off", "last_payment", "transaction", "judgment"}
)
CHANNELS = frozenset({"phone", "sms", "email", "letter", "visit"})
DIRECTIONS = frozenset({"inbound", "outbound"})
OUTCOMES = frozenset(
    {
        "right_party_contact",
        "third_party_contact",
        "no_answer",
        "left_message",
        "busy",
        "wrong_number",
        "refused",
        "sent",
        "delivered",
        "failed",
        "returned",
    }
)
PAYMENT_METHODS = frozenset({"card", "ach", "bank_transfer", "check", "cash", "wire", "other"})
REVERSAL_KINDS = frozenset({"nsf", "chargeback"})
#: ``settlement`` forgives what a completed settlement leaves; the others one component
#: (a goodwill or hardship waiver), so an auditor can tell the two apart.
WAIVER_KINDS = frozenset({"settlement", "principal", "interest", "fee"})
PLAN_KINDS = frozenset({"installment", "settlement"})
LEGAL_STATUSES = frozenset({"suit_filed", "served", "judgment", "garnishment", "closed"})
ADJUSTMENT_DIRECTIONS = frozenset({"debit", "credit"})
DISPUTE_OUTCOMES = frozenset({"upheld", "rejected", "withdrawn", "corrected"})
PARTIES = frozenset({"debtor", "guarantor", "third_party"})
BREATHING_SPACE_KINDS = frozenset({"standard", "mental_health"})
#: A standard breathing space lasts 60 days; a mental-health crisis one lasts as long as
#: the crisis treatment plus 30 days (Debt Respite Scheme Regulations 2020, regs 26 and 32).
STANDARD_BREATHING_SPACE = timedelta(days=60)
CRISIS_AFTERCARE = timedelta(days=30)
CONTACT_MEMORY = timedelta(days=35)
CONTACT_MEMORY_MAX = 500


def _choice(field: str, value: str, allowed: frozenset[str]) -> str:
    if value not in allowed:
        raise errors.InvalidChoice(
            f"{field} must be one of {', '.join(sorted(allowed))}; got {value!r}",
            field=field,
            value=str(value),
        )
    return value


#: Largest single amount, in minor units.  Far above any real debt in any currency,
#: and low enough that balances built from many such amounts still fit the store's
#: 64-bit integers (an unbounded amount used to crash the save with OverflowError).
MAX_MINOR = 10**15


def _whole(field: str, amount: int) -> int:
    if type(amount) is not int:
        raise errors.InvalidAmount(f"{field} must be whole minor units", field=field)
    if amount > MAX_MINOR:
        raise errors.InvalidAmount(
            f"{field} of {amount} minor units is larger than the ledger accepts ({MAX_MINOR})",
            field=field,
        )
    return amount


def _not_after(field: str, moment: datetime | None, now: datetime, message: str) -> None:
    """Facts reported to the ledger happened already: a moment after ``now`` is a typo."""
    if moment is not None and moment > now:
        raise errors.InvalidDate(message, field=field)


def _positive(field: str, amount: int) -> int:
    if _whole(field, amount) <= 0:
        raise errors.NonPositiveAmount(f"{field} must be greater than zero", field=field)
    return amount


def _not_negative(field: str, amount: int) -> int:
    if _whole(field, amount) < 0:
        raise errors.InvalidAmount(f"{field} cannot be negative", field=field)
    return amount


class Account(Aggregate):
    """One debt owed to one creditor, worked until paid, settled, sold or closed."""

    class Event(Aggregate.Event):
        """Base for every account fact; ``class_version`` is its schema version."""

        class_version: ClassVar[int] = 1

    class Placed(Aggregate.Created):
        class_version: ClassVar[int] = 1
        creditor: str
        original_creditor: str
        reference: str
        currency: str
        principal: int
        interest: int
        fees: int
        itemization_date: date
        itemization_kind: str
        charge_off_date: date | None
        last_payment_date: date | None
        last_payment_amount: int | None
        debtor_id: UUID

        def apply(self, account: Account) -> None:
            account.creditor = self.creditor
            account.original_creditor = self.original_creditor
            account.reference = self.reference
            account.currency = self.currency
            account.debtor_id = self.debtor_id
            account.itemization = {
                "date": self.itemization_date,
                "kind": self.itemization_kind,
                "principal": self.principal,
                "interest": self.interest,
                "fees": self.fees,
            }
            account.charge_off_date = self.charge_off_date
            account.last_payment_date = self.last_payment_date
            account.last_payment_amount = self.last_payment_amount
            account.balance = {
                "principal": self.principal,
                "interest": self.interest,
                "fees": self.fees,
            }
            account.placed_total = self.principal + self.interest + self.fees
            account.placed_at = self.timestamp

    class InterestAccrued(Event):
        amount: int
        rate_basis_points: int | None
        period_start: date | None
        period_end: date | None

        def apply(self, account: Account) -> None:
            account.balance["interest"] += self.amount

    class FeeAssessed(Event):
        amount: int
        fee_type: str

        def apply(self, account: Account) -> None:
            account.balance["fees"] += self.amount

    class BalanceAdjusted(Event):
        component: str
        direction: str
        amount: int
        reason: str

        def apply(self, account: Account) -> None:
            sign = 1 if self.direction == "debit" else -1
            account.balance[self.component] += sign * self.amount

    class ContactRecorded(Event):
        """v2 added ``purpose``: the rule packs treat legally required notices differently.
        v3 added ``callback_at``: a callback the debtor asked for, which the worklist schedules.
        v4 added ``party`` (debtor, guarantor or third party) and ``to`` (which contact point,
        as a label such as ``"phone:0"``, never the number): the China rules count unanswered
        calls per number and allow third parties only to be asked for contact details.
        """

        class_version: ClassVar[int] = 4
        contact_id: str
        channel: str
        direction: str
        outcome: str
        agent: str | None
        occurred_at: datetime
        purpose: str
        callback_at: datetime | None
        party: str
        to: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["purpose"] = "collection"

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            state["callback_at"] = None

        @staticmethod
        def upcast_v3_v4(state: dict[str, Any]) -> None:
            state["party"] = "debtor"
            state["to"] = None

        def apply(self, account: Account) -> None:
            account.remember_contact(
                {
                    "contact_id": self.contact_id,
                    "channel": self.channel,
                    "direction": self.direction,
                    "outcome": self.outcome,
                    "occurred_at": self.occurred_at,
                    "purpose": self.purpose,
                    "party": self.party,
                    "to": self.to,
                }
            )
            account.contact_count += 1
            if account.last_contact_at is None or self.occurred_at >= account.last_contact_at:
                account.last_contact_at = self.occurred_at
            if self.outcome == "right_party_contact" and (
                account.last_rpc_at is None or self.occurred_at >= account.last_rpc_at
            ):
                account.last_rpc_at = self.occurred_at

    class PromiseMade(Event):
        promise_id: str
        amount: int
        due_date: date
        agent: str | None

        def apply(self, account: Account) -> None:
            account.promises[self.promise_id] = {
                "amount": self.amount,
                "due_date": self.due_date,
                "status": "open",
                "paid": 0,
                "made_at": self.timestamp,
            }
            account.open_promise_id = self.promise_id

    class PromiseKept(Event):
        promise_id: str

        def apply(self, account: Account) -> None:
            account._settle_promise(self.promise_id, "kept")

    class PromiseBroken(Event):
        promise_id: str

        def apply(self, account: Account) -> None:
            account._settle_promise(self.promise_id, "broken")

    class PromiseCancelled(Event):
        promise_id: str
        reason: str

        def apply(self, account: Account) -> None:
            account._settle_promise(self.promise_id, "cancelled")

    class PaymentReceived(Event):
        payment_id: str
        amount: int
        method: str
        received_at: datetime
        external_reference: str | None
        allocation: dict[str, int]

        def apply(self, account: Account) -> None:
            for component, part in self.allocation.items():
                if component == CREDIT:
                    account.credit_balance += part
                else:
                    account.balance[component] -= part
            account.paid_total += self.amount
            account.payments[self.payment_id] = {
                "amount": self.amount,
                "allocation": dict(self.allocation),
                "reversed": False,
                "external_reference": self.external_reference,
                "method": self.method,
                # What the payment counted towards, so that its reversal takes it
                # back from there and nowhere else.
                "promise_id": account.open_promise_id,
                "plan_ref": account._plan_ref(),
            }
            if self.external_reference is not None:
                account.payment_refs[self.external_reference] = self.payment_id
            if account.open_promise_id is not None:
                account.promises[account.open_promise_id]["paid"] += self.amount
            if account.plan is not None:
                account.plan["paid"] += self.amount
            account.last_payment_date = self.received_at.date()
            account.last_payment_amount = self.amount

    class PaymentForwarded(Event):
        """A payment that reached us after the debt left (sold or closed): passed on."""

        payment_id: str
        amount: int
        method: str
        received_at: datetime
        external_reference: str | None
        forward_to: str

        def apply(self, account: Account) -> None:
            account.forwarded_total += self.amount
            account.forwarded_payments[self.payment_id] = self.amount
            if self.external_reference is not None:
                account.payment_refs[self.external_reference] = self.payment_id

    class PaymentReversed(Event):
        payment_id: str
        kind: str
        reason: str

        def apply(self, account: Account) -> None:
            payment = account.payments[self.payment_id]
            for component, part in payment["allocation"].items():
                if component == CREDIT:
                    account.credit_balance -= part
                else:
                    account.balance[component] += part
            account.paid_total -= payment["amount"]
            payment["reversed"] = True
            # Only the promise / plan the payment counted towards loses it: a bounced
            # cheque from before a plan must not wipe out the plan's own payments.
            promise_id = payment.get("promise_id")
            if promise_id is not None and promise_id == account.open_promise_id:
                promise = account.promises[promise_id]
                promise["paid"] = max(0, promise["paid"] - payment["amount"])
            plan_ref = payment.get("plan_ref")
            if plan_ref is not None and plan_ref == account._plan_ref():
                assert account.plan is not None
                account.plan["paid"] = max(0, account.plan["paid"] - payment["amount"])

    class PlanAgreed(Event):
        plan_id: str
        kind: str
        total: int
        installments: list[dict[str, Any]]

        def apply(self, account: Account) -> None:
            account.plan = {
                "id": self.plan_id,
                "kind": self.kind,
                "total": self.total,
                "installments": [dict(i) for i in self.installments],
                "paid": 0,
                "missed": 0,
                # The due dates recorded as missed, so none is missed twice.  Plans in
                # snapshots from before this key read it with ``.get`` (see missed_dates).
                "missed_dates": [],
                "agreed_at": self.timestamp,
                "revision": 0,
            }

    class PlanAmended(Event):
        plan_id: str
        total: int
        installments: list[dict[str, Any]]
        reason: str

        def apply(self, account: Account) -> None:
            assert account.plan is not None
            account.plan["total"] = self.total
            account.plan["installments"] = [dict(i) for i in self.installments]
            account.plan["paid"] = 0
            account.plan["missed"] = 0
            account.plan["missed_dates"] = []
            account.plan["revision"] = account.plan.get("revision", 0) + 1

    class PlanCancelled(Event):
        plan_id: str
        reason: str

        def apply(self, account: Account) -> None:
            account._end_plan("cancelled")

    class InstallmentMissed(Event):
        plan_id: str
        due_date: date
        amount: int

        def apply(self, account: Account) -> None:
            assert account.plan is not None
            account.plan["missed"] += 1
            dates = account.plan.get("missed_dates")
            if dates is not None:  # None: a plan from an older snapshot, only counted
                dates.append(self.due_date)

    class PlanDefaulted(Event):
        plan_id: str
        missed: int

        def apply(self, account: Account) -> None:
            account._end_plan("defaulted")

    class PlanCompleted(Event):
        plan_id: str

        def apply(self, account: Account) -> None:
            account._end_plan("completed")

    class BalanceWaived(Event):
        kind: str
        amounts: dict[str, int]
        reason: str

        def apply(self, account: Account) -> None:
            for component, part in self.amounts.items():
                account.balance[component] -= part
            account.waived_total += sum(self.amounts.values())

    class DisputeRaised(Event):
        """v2 added ``received_at`` and ``written``: when and how the dispute reached the
        collector, which decide whether it falls in the validation period."""

        class_version: ClassVar[int] = 2
        dispute_id: str
        reason: str
        within_validation_period: bool
        received_at: datetime | None
        written: bool | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["received_at"] = None
            state["written"] = None

        def apply(self, account: Account) -> None:
            account.disputes[self.dispute_id] = {
                "status": "awaiting_verification",
                "within_validation_period": self.within_validation_period,
                "raised_at": self.timestamp,
            }

    class DisputeVerificationProvided(Event):
        dispute_id: str
        method: str

        def apply(self, account: Account) -> None:
            account.disputes[self.dispute_id]["status"] = "verified"

    class DisputeResolved(Event):
        dispute_id: str
        outcome: str
        note: str

        def apply(self, account: Account) -> None:
            account.disputes[self.dispute_id]["status"] = "resolved"

    class ComplaintReceived(Event):
        complaint_id: str
        channel: str
        category: str

        def apply(self, account: Account) -> None:
            account.complaints[self.complaint_id] = "open"

    class ComplaintResolved(Event):
        complaint_id: str
        outcome: str

        def apply(self, account: Account) -> None:
            account.complaints[self.complaint_id] = "resolved"

    class CeaseCommunicationReceived(Event):
        """v2 added ``received_at``: when the request reached the collector."""

        class_version: ClassVar[int] = 2
        received_via: str
        received_at: datetime | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["received_at"] = None

        def apply(self, account: Account) -> None:
            account.ceased = True

    class ChannelConsentGiven(Event):
        channel: str
        evidence: str

        def apply(self, account: Account) -> None:
            account.consents[self.channel] = True

    class ChannelConsentRevoked(Event):
        channel: str
        evidence: str

        def apply(self, account: Account) -> None:
            account.consents[self.channel] = False

    class AttorneyRepresentationNotified(Event):
        firm: str
        attorney_reference: str | None

        def apply(self, account: Account) -> None:
            account.attorney = {"firm": self.firm, "reference": self.attorney_reference}

    class BankruptcyNotified(Event):
        chapter: str
        case_number: str
        filed_on: date

        def apply(self, account: Account) -> None:
            account.bankrupt = True

    class DeceasedNotified(Event):
        date_of_death: date | None

        def apply(self, account: Account) -> None:
            account.deceased = True

    class PlacedWithAgency(Event):
        agency: str
        commission_basis_points: int
        placed_on: date
        recall_due: date | None

        def apply(self, account: Account) -> None:
            account.status = Status.WITH_AGENCY.value
            account.agency = {
                "name": self.agency,
                "commission_basis_points": self.commission_basis_points,
                "placed_on": self.placed_on,
                "recall_due": self.recall_due,
            }

    class RecalledFromAgency(Event):
        agency: str
        recalled_on: date
        reason: str

        def apply(self, account: Account) -> None:
            account.status = Status.ACTIVE.value
            account.agency = None

    class ReferredToLawFirm(Event):
        law_firm: str
        referred_on: date

        def apply(self, account: Account) -> None:
            account.status = Status.WITH_LAW_FIRM.value
            account.law_firm = {"name": self.law_firm, "referred_on": self.referred_on}
            account.legal_status = "referred"

    class LegalStatusChanged(Event):
        """v2 added ``details``: what the firm said of the step, in its own words."""

        class_version: ClassVar[int] = 2
        legal_status: str
        effective_on: date
        judgment_amount: int | None
        judgment_date: date | None
        court_reference: str | None
        details: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["details"] = ""

        def apply(self, account: Account) -> None:
            account.legal_status = self.legal_status
            if self.legal_status == "judgment":
                account.judgment = {
                    "amount": self.judgment_amount,
                    "date": self.judgment_date,
                }
            if self.legal_status == "closed":
                account.status = Status.ACTIVE.value
                account.law_firm = None

    class ReferralWithdrawn(Event):
        law_firm: str
        reason: str

        def apply(self, account: Account) -> None:
            account.status = Status.ACTIVE.value
            account.law_firm = None
            account.legal_status = None

    class SoldToDebtBuyer(Event):
        buyer: str
        price: int
        sale_date: date
        portfolio_reference: str

        def apply(self, account: Account) -> None:
            account.status = Status.SOLD.value
            account.buyer = self.buyer
            account._end_arrangements()

    class Closed(Event):
        reason: str
        note: str

        def apply(self, account: Account) -> None:
            account.status = Status.CLOSED.value
            account.close_reason = self.reason
            account._end_arrangements()

    class NoteAdded(Event):
        note_id: str
        text: str
        agent: str | None

        def apply(self, account: Account) -> None:
            account.note_count += 1

    class ContactBlocked(Event):
        """The contact gate refused a contact before it happened: the proof that the rules
        were followed.  ``verdicts`` holds every verdict given, not only the blocking ones."""

        request_id: str
        channel: str
        purpose: str
        party: str
        to: str | None
        attempted_at: datetime
        verdicts: list[dict[str, str]]

        def apply(self, account: Account) -> None:
            account.blocked_contacts += 1

    class ContactViolationFlagged(Event):
        """A contact recorded after the fact broke a rule in force when it happened."""

        contact_id: str
        verdicts: list[dict[str, str]]

        def apply(self, account: Account) -> None:
            account.violations += 1

    class MessageQueued(Event):
        """The gate allowed a message and it waits for its channel to send it."""

        message_id: str
        channel: str
        template: str
        purpose: str
        locale: str
        to: str | None

        def apply(self, account: Account) -> None:
            account.messages[self.message_id] = {
                "channel": self.channel,
                "template": self.template,
                "status": "queued",
            }

    class MessageSent(Event):
        """The channel's provider accepted the message (``provider_id`` is its reference)."""

        message_id: str
        provider_id: str

        def apply(self, account: Account) -> None:
            account.messages[self.message_id]["status"] = "sent"

    class MessageDelivered(Event):
        message_id: str
        detail: str

        def apply(self, account: Account) -> None:
            account.messages[self.message_id]["status"] = "delivered"

    class MessageFailed(Event):
        """The message could not be delivered: refused by the provider, bounced, or
        dead-lettered after every retry."""

        message_id: str
        reason: str

        def apply(self, account: Account) -> None:
            account.messages[self.message_id]["status"] = "failed"

    class PartnerAcknowledged(Event):
        """A partner confirmed it received a delivery (a referral, a placement, a recall,
        a sale file); ``delivery_key`` is the delivery's idempotency key."""

        partner_kind: str
        partner: str
        delivery_key: str
        partner_reference: str

        def apply(self, account: Account) -> None:
            account.acknowledged.append(self.delivery_key)

    class BreathingSpaceStarted(Event):
        """A UK Debt Respite Scheme moratorium: contact, interest and fees are frozen.
        ``ends_on`` is None for a mental-health crisis moratorium until treatment ends."""

        kind: str
        started_on: date
        ends_on: date | None
        reference: str

        def apply(self, account: Account) -> None:
            account.breathing_space = {
                "kind": self.kind,
                "started_on": self.started_on,
                "ends_on": self.ends_on,
                "reference": self.reference,
            }

    class CrisisTreatmentEnded(Event):
        """Mental-health crisis treatment ended: the moratorium runs 30 more days."""

        treatment_ended_on: date
        ends_on: date

        def apply(self, account: Account) -> None:
            assert account.breathing_space is not None
            account.breathing_space = {**account.breathing_space, "ends_on": self.ends_on}

    class BreathingSpaceCancelled(Event):
        """The moratorium ended early (cancelled by the debt adviser or the court)."""

        ended_on: date
        reason: str

        def apply(self, account: Account) -> None:
            assert account.breathing_space is not None
            account.breathing_space = {**account.breathing_space, "ends_on": self.ended_on}

    class ContactPreferencesSet(Event):
        """How the debtor asked to be contacted; replaces the previous preferences.
        Times are local ``HH:MM`` strings in the debtor's time zone."""

        channels: list[str] | None
        refused_channels: list[str]
        window_start: str | None
        window_end: str | None

        def apply(self, account: Account) -> None:
            account.contact_preferences = {
                "channels": None if self.channels is None else list(self.channels),
                "refused_channels": list(self.refused_channels),
                "window_start": self.window_start,
                "window_end": self.window_end,
            }

    class LimitationDateSet(Event):
        """When the limitation period for suit runs out (the debt becomes time-barred)."""

        expires_on: date
        basis: str

        def apply(self, account: Account) -> None:
            account.limitation_expires_on = self.expires_on

    class CallConsentGiven(Event):
        """The debtor agreed directly to calls in a period (12 CFR 1006.14(b)(3)(i))."""

        given_at: datetime
        until: datetime
        evidence: str

        def apply(self, account: Account) -> None:
            account.call_consents.append({"given_at": self.given_at, "until": self.until})

    # ------------------------------------------------------------------ state

    def __init__(self) -> None:
        self.status: str = Status.ACTIVE.value
        self.creditor = ""
        self.original_creditor = ""
        self.reference = ""
        self.currency = ""
        self.debtor_id: UUID | None = None
        self.itemization: dict[str, Any] = {}
        self.charge_off_date: date | None = None
        self.last_payment_date: date | None = None
        self.last_payment_amount: int | None = None
        self.balance: dict[str, int] = {c: 0 for c in COMPONENTS}
        self.placed_total = 0
        self.placed_at: datetime | None = None
        self.credit_balance = 0
        self.paid_total = 0
        self.waived_total = 0
        self.forwarded_total = 0
        self.forwarded_payments: dict[str, int] = {}
        self.payments: dict[str, dict[str, Any]] = {}
        self.payment_refs: dict[str, str] = {}
        self.promises: dict[str, dict[str, Any]] = {}
        self.open_promise_id: str | None = None
        self.plan: dict[str, Any] | None = None
        self.plan_history: list[dict[str, Any]] = []
        self.disputes: dict[str, dict[str, Any]] = {}
        self.complaints: dict[str, str] = {}
        self.ceased = False
        self.consents: dict[str, bool] = {}
        self.attorney: dict[str, Any] | None = None
        self.bankrupt = False
        self.deceased = False
        self.agency: dict[str, Any] | None = None
        self.law_firm: dict[str, Any] | None = None
        self.legal_status: str | None = None
        self.judgment: dict[str, Any] | None = None
        self.buyer: str | None = None
        self.close_reason: str | None = None
        self.contact_count = 0
        self.last_contact_at: datetime | None = None
        self.last_rpc_at: datetime | None = None
        self.note_count = 0
        self.recent_contacts: list[dict[str, Any]] = []
        self.blocked_contacts = 0
        self.violations = 0
        self.messages: dict[str, dict[str, Any]] = {}
        self.breathing_space: dict[str, Any] | None = None
        self.contact_preferences: dict[str, Any] = {
            "channels": None,
            "refused_channels": [],
            "window_start": None,
            "window_end": None,
        }
        self.limitation_expires_on: date | None = None
        self.call_consents: list[dict[str, datetime]] = []
        self.acknowledged: list[str] = []

    # ------------------------------------------------------------ derived views

    def remember_contact(self, contact: dict[str, Any]) -> None:
        """Keep the contacts the rules look back over, newest last.

        The rules look back 8 days (Reg F) or one day (China); keeping those within
        ``CONTACT_MEMORY`` of the newest contact, and at most ``CONTACT_MEMORY_MAX``,
        bounds the state (and its snapshots) for accounts with years of dialer history.
        The full history stays in the stream for audits.
        """
        contacts = self.recent_contacts
        contacts.append(contact)
        if len(contacts) > 1 and contacts[-2]["occurred_at"] > contact["occurred_at"]:
            contacts.sort(key=lambda c: c["occurred_at"])
        horizon = contacts[-1]["occurred_at"] - CONTACT_MEMORY
        while contacts and (
            contacts[0]["occurred_at"] < horizon or len(contacts) > CONTACT_MEMORY_MAX
        ):
            contacts.pop(0)

    def in_breathing_space(self, on: date) -> bool:
        space = self.breathing_space
        if space is None or on < space["started_on"]:
            return False
        return space["ends_on"] is None or on <= space["ends_on"]

    def time_barred(self, on: date) -> bool:
        return self.limitation_expires_on is not None and on >= self.limitation_expires_on

    @property
    def total_balance(self) -> int:
        return sum(self.balance.values())

    @property
    def open_promise(self) -> dict[str, Any] | None:
        if self.open_promise_id is None:
            return None
        return {"id": self.open_promise_id, **self.promises[self.open_promise_id]}

    @property
    def flags(self) -> list[str]:
        flags = []
        if any(d["status"] != "resolved" for d in self.disputes.values()):
            flags.append("disputed")
        if any(s == "open" for s in self.complaints.values()):
            flags.append("complaint")
        if self.ceased:
            flags.append("ceased")
        if self.attorney is not None:
            flags.append("attorney")
        if self.bankrupt:
            flags.append("bankrupt")
        if self.deceased:
            flags.append("deceased")
        return flags

    @property
    def holder(self) -> dict[str, str]:
        if self.status == Status.SOLD and self.buyer is not None:
            return {"kind": "buyer", "name": self.buyer}
        if self.agency is not None:
            return {"kind": "agency", "name": self.agency["name"]}
        if self.law_firm is not None:
            return {"kind": "law_firm", "name": self.law_firm["name"]}
        return {"kind": "creditor", "name": self.creditor}

    # --------------------------------------------------------------- commands

    @classmethod
    def place(
        cls,
        *,
        at: datetime,
        creditor: str,
        original_creditor: str,
        reference: str,
        currency: str,
        principal: int,
        interest: int,
        fees: int,
        itemization_date: date,
        itemization_kind: str,
        charge_off_date: date | None,
        last_payment_date: date | None,
        last_payment_amount: int | None,
        debtor_id: UUID,
    ) -> Account:
        for name, value in (("principal", principal), ("interest", interest), ("fees", fees)):
            _not_negative(name, value)
        if principal + interest + fees <= 0:
            raise errors.NonPositiveAmount("a placed debt must have a balance above zero")
        if last_payment_amount is not None:
            _positive("last_payment_amount", last_payment_amount)
        _choice("itemization_kind", itemization_kind, ITEMIZATION_KINDS)
        creditor, reference = creditor.strip(), reference.strip()
        if not creditor or not reference:
            raise errors.ValidationError("creditor and reference are required", field="reference")
        check_currency(currency)
        for field, day in (
            ("itemization_date", itemization_date),
            ("charge_off_date", charge_off_date),
            ("last_payment_date", last_payment_date),
        ):
            if day is not None and day > at.date():
                raise errors.InvalidDate(f"{field} cannot be in the future", field=field)
        return cls._create(
            cls.Placed,
            id=account_id(creditor, reference),
            timestamp=at,
            creditor=creditor,
            original_creditor=original_creditor.strip() or creditor,
            reference=reference,
            currency=currency,
            principal=principal,
            interest=interest,
            fees=fees,
            itemization_date=itemization_date,
            itemization_kind=itemization_kind,
            charge_off_date=charge_off_date,
            last_payment_date=last_payment_date,
            last_payment_amount=last_payment_amount,
            debtor_id=debtor_id,
        )

    def _emit(self, event_class: type[Account.Event], at: datetime, **fields: Any) -> None:
        self.trigger_event(event_class, timestamp=at, **fields)

    def _check_open(self) -> None:
        """Sold and closed accounts accept notes and forwarded payments only."""
        if self.status == Status.SOLD:
            raise errors.AccountSold(
                f"account {self.reference} was sold to {self.buyer}; only notes and "
                "forwarded payments can be recorded",
                account_id=str(self.id),
            )
        if self.status == Status.CLOSED:
            raise errors.AccountClosed(
                f"account {self.reference} is closed ({self.close_reason}); only notes and "
                "forwarded payments can be recorded",
                account_id=str(self.id),
            )

    def _transition(self, action: str) -> None:
        self._check_open()
        if next_status(Status(self.status), action) is None:
            raise errors.InvalidTransition(
                f"cannot {action.replace('_', ' ')} while the account is {self.status}",
                status=self.status,
                action=action,
            )

    def _decimal(self, minor: int) -> str:
        """An amount of this account as the edges show money: a decimal string."""
        return format_minor(minor, self.currency)

    def _shown(self, minor: int) -> str:
        """An amount for an error message: "941.00 USD", never raw minor units."""
        return f"{self._decimal(minor)} {self.currency}"

    def _check_currency(self, currency: str) -> None:
        if currency != self.currency:
            raise errors.CurrencyMismatch(
                f"account is in {self.currency}, amount is in {currency}",
                expected=self.currency,
                got=currency,
            )

    def accrue_interest(
        self,
        *,
        at: datetime,
        amount: int,
        currency: str,
        rate_basis_points: int | None = None,
        period_start: date | None = None,
        period_end: date | None = None,
    ) -> None:
        self._check_open()
        self._check_currency(currency)
        _positive("amount", amount)
        self._check_not_frozen(at, "interest")
        if rate_basis_points is not None:
            _not_negative("rate_basis_points", rate_basis_points)
        self._emit(
            self.InterestAccrued,
            at,
            amount=amount,
            rate_basis_points=rate_basis_points,
            period_start=period_start,
            period_end=period_end,
        )

    def assess_fee(self, *, at: datetime, amount: int, currency: str, fee_type: str) -> None:
        self._check_open()
        self._check_currency(currency)
        _positive("amount", amount)
        self._check_not_frozen(at, "fees")
        self._emit(self.FeeAssessed, at, amount=amount, fee_type=fee_type)

    def adjust_balance(
        self,
        *,
        at: datetime,
        component: str,
        direction: str,
        amount: int,
        currency: str,
        reason: str,
    ) -> None:
        self._check_open()
        self._check_currency(currency)
        _choice("component", component, frozenset(COMPONENTS))
        _choice("direction", direction, ADJUSTMENT_DIRECTIONS)
        _positive("amount", amount)
        if not reason.strip():
            raise errors.ValidationError("an adjustment needs a reason", field="reason")
        if direction == "debit" and component in ("interest", "fees"):
            self._check_not_frozen(at, component)  # a charge by another name
        if direction == "credit" and amount > self.balance[component]:
            raise errors.AdjustmentExceedsBalance(
                f"a credit of {self._shown(amount)} exceeds the {component} balance of "
                f"{self._shown(self.balance[component])}",
                component=component,
                balance=self._decimal(self.balance[component]),
                currency=self.currency,
            )
        self._emit(
            self.BalanceAdjusted,
            at,
            component=component,
            direction=direction,
            amount=amount,
            reason=reason,
        )

    def record_contact(
        self,
        *,
        at: datetime,
        contact_id: str,
        channel: str,
        direction: str,
        outcome: str,
        occurred_at: datetime,
        agent: str | None = None,
        purpose: str = "collection",
        callback_at: datetime | None = None,
        party: str = "debtor",
        to: str | None = None,
    ) -> None:
        self._check_open()
        _choice("channel", channel, CHANNELS)
        _choice("direction", direction, DIRECTIONS)
        _choice("outcome", outcome, OUTCOMES)
        _choice("party", party, PARTIES)
        if occurred_at > at:
            raise errors.InvalidDate(
                "a contact cannot have happened in the future", field="occurred_at"
            )
        if callback_at is not None and callback_at <= occurred_at:
            raise errors.InvalidDate(
                "a callback must be scheduled after the contact", field="callback_at"
            )
        self._emit(
            self.ContactRecorded,
            at,
            contact_id=contact_id,
            channel=channel,
            direction=direction,
            outcome=outcome,
            agent=agent,
            occurred_at=occurred_at,
            purpose=purpose,
            callback_at=callback_at,
            party=party,
            to=to,
        )

    def make_promise(
        self,
        *,
        at: datetime,
        promise_id: str,
        amount: int,
        currency: str,
        due_date: date,
        agent: str | None = None,
    ) -> None:
        self._check_open()
        self._check_currency(currency)
        _positive("amount", amount)
        if amount > self.total_balance:
            raise errors.PromiseExceedsBalance(
                f"a promise of {self._shown(amount)} exceeds the balance of "
                f"{self._shown(self.total_balance)}",
                balance=self._decimal(self.total_balance),
                currency=self.currency,
            )
        if due_date < at.date():
            raise errors.PromiseInPast(f"promise due date {due_date} is in the past")
        if self.open_promise_id is not None:
            raise errors.PromiseAlreadyOpen(
                "the account already has an open promise; cancel it first",
                promise_id=self.open_promise_id,
            )
        self._emit(
            self.PromiseMade,
            at,
            promise_id=promise_id,
            amount=amount,
            due_date=due_date,
            agent=agent,
        )

    def _check_promise(self, promise_id: str | None) -> str:
        if self.open_promise_id is None or (
            promise_id is not None and promise_id != self.open_promise_id
        ):
            raise errors.NoOpenPromise("no open promise with that id on this account")
        return self.open_promise_id

    def keep_promise(self, *, at: datetime, promise_id: str | None = None) -> None:
        self._check_open()
        self._emit(self.PromiseKept, at, promise_id=self._check_promise(promise_id))

    def break_promise(self, *, at: datetime, promise_id: str | None = None) -> None:
        self._check_open()
        self._emit(self.PromiseBroken, at, promise_id=self._check_promise(promise_id))

    def cancel_promise(self, *, at: datetime, reason: str, promise_id: str | None = None) -> None:
        self._check_open()
        self._emit(
            self.PromiseCancelled, at, promise_id=self._check_promise(promise_id), reason=reason
        )

    def _settle_promise(self, promise_id: str, outcome: str) -> None:
        self.promises[promise_id]["status"] = outcome
        if self.open_promise_id == promise_id:
            self.open_promise_id = None

    def find_payment_by_reference(self, external_reference: str) -> str | None:
        return self.payment_refs.get(external_reference)

    def receive_payment(
        self,
        *,
        at: datetime,
        payment_id: str,
        amount: int,
        currency: str,
        method: str,
        received_at: datetime,
        external_reference: str | None = None,
        order: Sequence[str] = DEFAULT_ORDER,
    ) -> None:
        """Apply a payment by the waterfall, or forward it if the debt has left us.

        A blank ``external_reference`` means none.  A reference already recorded is
        refused: the caller must look it up first (the service returns the original).
        """
        self._check_currency(currency)
        _positive("amount", amount)
        _choice("method", method, PAYMENT_METHODS)
        if received_at > at:
            raise errors.InvalidDate(
                "a payment cannot be received in the future", field="received_at"
            )
        if external_reference is not None and not external_reference.strip():
            external_reference = None
        if external_reference is not None and external_reference in self.payment_refs:
            raise errors.IdempotencyConflict(
                f"external reference {external_reference!r} was already posted",
                payment_id=self.payment_refs[external_reference],
            )
        if self.status in (Status.SOLD, Status.CLOSED):
            forward_to = self.buyer if self.status == Status.SOLD else self.creditor
            self._emit(
                self.PaymentForwarded,
                at,
                payment_id=payment_id,
                amount=amount,
                method=method,
                received_at=received_at,
                external_reference=external_reference,
                forward_to=forward_to or self.creditor,
            )
            return
        self._emit(
            self.PaymentReceived,
            at,
            payment_id=payment_id,
            amount=amount,
            method=method,
            received_at=received_at,
            external_reference=external_reference,
            allocation=allocate(amount, self.balance, order),
        )

    def reverse_payment(self, *, at: datetime, payment_id: str, kind: str, reason: str) -> None:
        self._check_open()
        _choice("kind", kind, REVERSAL_KINDS)
        payment = self.payments.get(payment_id)
        if payment is None:
            raise errors.UnknownPayment(
                f"no payment {payment_id} on this account", payment_id=payment_id
            )
        if payment["reversed"]:
            raise errors.PaymentAlreadyReversed(
                f"payment {payment_id} was already reversed", payment_id=payment_id
            )
        self._emit(self.PaymentReversed, at, payment_id=payment_id, kind=kind, reason=reason)

    def _check_schedule(
        self, at: datetime, kind: str, total: int, installments: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        _positive("total", total)
        if not installments:
            raise errors.InstallmentsMismatch("a plan needs at least one installment")
        schedule: list[dict[str, Any]] = []
        previous: date | None = None
        for item in installments:
            due, amount = item["due_date"], item["amount"]
            _positive("installment amount", amount)
            if due < at.date():
                raise errors.InvalidDate(f"installment due {due} is in the past", field="due_date")
            if previous is not None and due <= previous:
                raise errors.InvalidDate(
                    "installment dates must strictly increase", field="due_date"
                )
            previous = due
            schedule.append({"due_date": due, "amount": amount})
        scheduled = sum(i["amount"] for i in schedule)
        if scheduled != total:
            raise errors.InstallmentsMismatch(
                f"installments add up to {self._shown(scheduled)}, but the plan total is "
                f"{self._shown(total)}",
                scheduled=self._decimal(scheduled),
                total=self._decimal(total),
                currency=self.currency,
            )
        if kind == "installment" and total != self.total_balance:
            raise errors.InstallmentsMismatch(
                f"an installment plan must cover the balance of "
                f"{self._shown(self.total_balance)}, not {self._shown(total)} "
                "(agree a settlement plan to collect less)",
                scheduled=self._decimal(total),
                balance=self._decimal(self.total_balance),
                currency=self.currency,
            )
        if kind == "settlement" and total > self.total_balance:
            raise errors.InstallmentsMismatch(
                f"a settlement of {self._shown(total)} exceeds the balance of "
                f"{self._shown(self.total_balance)}",
                scheduled=self._decimal(total),
                balance=self._decimal(self.total_balance),
                currency=self.currency,
            )
        return schedule

    def agree_plan(
        self,
        *,
        at: datetime,
        plan_id: str,
        kind: str,
        total: int,
        currency: str,
        installments: Sequence[Mapping[str, Any]],
    ) -> None:
        self._check_open()
        self._check_currency(currency)
        _choice("kind", kind, PLAN_KINDS)
        if self.plan is not None:
            raise errors.PlanAlreadyActive(
                "the account already has an active plan; amend or cancel it",
                plan_id=self.plan["id"],
            )
        schedule = self._check_schedule(at, kind, total, installments)
        self._emit(
            self.PlanAgreed, at, plan_id=plan_id, kind=kind, total=total, installments=schedule
        )

    def _check_plan(self, plan_id: str | None = None) -> dict[str, Any]:
        """The active plan; with ``plan_id``, only if it is still that plan."""
        if self.plan is None:
            raise errors.NoActivePlan("the account has no active plan")
        if plan_id is not None and self.plan["id"] != plan_id:
            raise errors.NoActivePlan(
                f"plan {plan_id} is no longer the active plan", plan_id=plan_id
            )
        return self.plan

    @property
    def missed_dates(self) -> list[date] | None:
        """Due dates of the active plan recorded as missed (none without a plan).

        ``None`` when the plan was restored from a snapshot taken before the
        dates were kept: only the count (``plan["missed"]``) is known then.
        """
        if self.plan is None:
            return []
        dates: list[date] | None = self.plan.get("missed_dates")
        return dates

    def amend_plan(
        self,
        *,
        at: datetime,
        total: int,
        currency: str,
        installments: Sequence[Mapping[str, Any]],
        reason: str,
    ) -> None:
        """Replace the remaining schedule; what was already paid stays paid."""
        self._check_open()
        self._check_currency(currency)
        plan = self._check_plan()
        schedule = self._check_schedule(at, plan["kind"], total, installments)
        self._emit(
            self.PlanAmended,
            at,
            plan_id=plan["id"],
            total=total,
            installments=schedule,
            reason=reason,
        )

    def cancel_plan(self, *, at: datetime, reason: str) -> None:
        self._check_open()
        plan = self._check_plan()
        self._emit(self.PlanCancelled, at, plan_id=plan["id"], reason=reason)

    def miss_installment(self, *, at: datetime, due_date: date, plan_id: str | None = None) -> None:
        """Record that the installment due ``due_date`` was not paid; once per due date."""
        self._check_open()
        plan = self._check_plan(plan_id)
        match = [i for i in plan["installments"] if i["due_date"] == due_date]
        if not match:
            raise errors.ValidationError(f"the plan has no installment due {due_date}")
        if due_date >= at.date():
            raise errors.InstallmentNotDue(
                f"the installment due {due_date} can only be missed after that day",
                due_date=due_date.isoformat(),
            )
        if due_date in (self.missed_dates or ()):
            raise errors.InstallmentAlreadyMissed(
                f"the installment due {due_date} was already recorded as missed",
                due_date=due_date.isoformat(),
            )
        self._emit(
            self.InstallmentMissed,
            at,
            plan_id=plan["id"],
            due_date=due_date,
            amount=match[0]["amount"],
        )

    def default_plan(self, *, at: datetime, plan_id: str | None = None) -> None:
        """End the plan as defaulted; how many misses make a default is the caller's policy."""
        self._check_open()
        plan = self._check_plan(plan_id)
        self._emit(self.PlanDefaulted, at, plan_id=plan["id"], missed=plan["missed"])

    def complete_plan(self, *, at: datetime, plan_id: str | None = None) -> None:
        self._check_open()
        plan = self._check_plan(plan_id)
        # Done when its payments reach its total, or when nothing is owed any more
        # (a waiver or a credit covered what the schedule still asked for).
        if plan["paid"] < plan["total"] and self.total_balance > 0:
            left = plan["total"] - plan["paid"]
            raise errors.BalanceOutstanding(
                f"the plan has {self._shown(left)} left to pay",
                remaining=self._decimal(left),
                currency=self.currency,
            )
        self._emit(self.PlanCompleted, at, plan_id=plan["id"])

    def _end_plan(self, outcome: str) -> None:
        assert self.plan is not None
        self.plan_history.append(
            {"id": self.plan["id"], "kind": self.plan["kind"], "outcome": outcome}
        )
        self.plan = None

    def _plan_ref(self) -> str | None:
        if self.plan is None:
            return None
        return f"{self.plan['id']}:{self.plan.get('revision', 0)}"

    def _end_arrangements(self) -> None:
        """A debt that leaves us (sold or closed) can no longer keep a promise or a plan."""
        if self.open_promise_id is not None:
            self._settle_promise(self.open_promise_id, "cancelled")
        if self.plan is not None:
            self._end_plan("cancelled")

    def waive(
        self,
        *,
        at: datetime,
        kind: str,
        currency: str,
        reason: str,
        amounts: Mapping[str, int] | None = None,
    ) -> None:
        """Forgive part of the debt. ``amounts=None`` waives everything that kind covers."""
        self._check_open()
        self._check_currency(currency)
        _choice("kind", kind, WAIVER_KINDS)
        covered = {
            "settlement": COMPONENTS,
            "principal": ("principal",),
            "interest": ("interest",),
            "fee": ("fees",),
        }[kind]
        given = amounts is not None
        if amounts is None:
            # Everything owed: checked below against the balance, not the size cap
            # (a component may have grown past MAX_MINOR through many charges).
            amounts = {c: self.balance[c] for c in covered if self.balance[c] > 0}
        for component, part in amounts.items():
            if component not in covered:
                raise errors.InvalidChoice(
                    f"a {kind} waiver cannot touch {component}", field="component", value=component
                )
            if given:
                _positive(f"{component} waiver", part)
            if part > self.balance[component]:
                raise errors.WaiverExceedsBalance(
                    f"waiving {self._shown(part)} exceeds the {component} balance of "
                    f"{self._shown(self.balance[component])}",
                    component=component,
                    balance=self._decimal(self.balance[component]),
                    currency=self.currency,
                )
        if not amounts:
            raise errors.NonPositiveAmount(f"nothing to waive: the {kind} balance is zero")
        self._emit(self.BalanceWaived, at, kind=kind, amounts=dict(amounts), reason=reason)

    def raise_dispute(
        self,
        *,
        at: datetime,
        dispute_id: str,
        reason: str,
        within_validation_period: bool,
        received_at: datetime | None = None,
        written: bool | None = None,
    ) -> None:
        self._check_open()
        _not_after("received_at", received_at, at, "a dispute cannot be received in the future")
        self._emit(
            self.DisputeRaised,
            at,
            dispute_id=dispute_id,
            reason=reason,
            within_validation_period=within_validation_period,
            received_at=received_at,
            written=written,
        )

    def _check_dispute(self, dispute_id: str, *statuses: str) -> None:
        dispute = self.disputes.get(dispute_id)
        if dispute is None or dispute["status"] not in statuses:
            raise errors.NoOpenDispute(
                f"no dispute {dispute_id} in state {' or '.join(statuses)}", dispute_id=dispute_id
            )

    def provide_verification(self, *, at: datetime, dispute_id: str, method: str) -> None:
        self._check_open()
        self._check_dispute(dispute_id, "awaiting_verification")
        self._emit(self.DisputeVerificationProvided, at, dispute_id=dispute_id, method=method)

    def resolve_dispute(
        self, *, at: datetime, dispute_id: str, outcome: str, note: str = ""
    ) -> None:
        self._check_open()
        _choice("outcome", outcome, DISPUTE_OUTCOMES)
        self._check_dispute(dispute_id, "awaiting_verification", "verified")
        self._emit(self.DisputeResolved, at, dispute_id=dispute_id, outcome=outcome, note=note)

    def receive_complaint(
        self, *, at: datetime, complaint_id: str, channel: str, category: str
    ) -> None:
        self._check_open()
        self._emit(
            self.ComplaintReceived,
            at,
            complaint_id=complaint_id,
            channel=channel,
            category=category,
        )

    def resolve_complaint(self, *, at: datetime, complaint_id: str, outcome: str) -> None:
        self._check_open()
        if self.complaints.get(complaint_id) != "open":
            raise errors.NoOpenComplaint(
                f"no open complaint {complaint_id}", complaint_id=complaint_id
            )
        self._emit(self.ComplaintResolved, at, complaint_id=complaint_id, outcome=outcome)

    def receive_cease(
        self, *, at: datetime, received_via: str, received_at: datetime | None = None
    ) -> None:
        self._check_open()
        _not_after("received_at", received_at, at, "a cease request cannot arrive in the future")
        self._emit(
            self.CeaseCommunicationReceived,
            at,
            received_via=received_via,
            received_at=received_at,
        )

    def give_consent(self, *, at: datetime, channel: str, evidence: str) -> None:
        self._check_open()
        _choice("channel", channel, CHANNELS)
        self._emit(self.ChannelConsentGiven, at, channel=channel, evidence=evidence)

    def revoke_consent(self, *, at: datetime, channel: str, evidence: str) -> None:
        self._check_open()
        _choice("channel", channel, CHANNELS)
        self._emit(self.ChannelConsentRevoked, at, channel=channel, evidence=evidence)

    def notify_attorney(
        self, *, at: datetime, firm: str, attorney_reference: str | None = None
    ) -> None:
        self._check_open()
        self._emit(
            self.AttorneyRepresentationNotified,
            at,
            firm=firm,
            attorney_reference=attorney_reference,
        )

    def notify_bankruptcy(
        self, *, at: datetime, chapter: str, case_number: str, filed_on: date
    ) -> None:
        self._check_open()
        self._emit(
            self.BankruptcyNotified, at, chapter=chapter, case_number=case_number, filed_on=filed_on
        )

    def notify_deceased(self, *, at: datetime, date_of_death: date | None = None) -> None:
        self._check_open()
        self._emit(self.DeceasedNotified, at, date_of_death=date_of_death)

    def place_with_agency(
        self,
        *,
        at: datetime,
        agency: str,
        commission_basis_points: int,
        placed_on: date,
        recall_due: date | None = None,
    ) -> None:
        self._transition("place_with_agency")
        if not 0 <= commission_basis_points <= 10_000:
            raise errors.ValidationError(
                "commission rate must be between 0% and 100%", field="commission_rate"
            )
        self._emit(
            self.PlacedWithAgency,
            at,
            agency=agency,
            commission_basis_points=commission_basis_points,
            placed_on=placed_on,
            recall_due=recall_due,
        )

    def recall_from_agency(self, *, at: datetime, recalled_on: date, reason: str) -> None:
        self._transition("recall_from_agency")
        assert self.agency is not None
        self._emit(
            self.RecalledFromAgency,
            at,
            agency=self.agency["name"],
            recalled_on=recalled_on,
            reason=reason,
        )

    def refer_to_law_firm(self, *, at: datetime, law_firm: str, referred_on: date) -> None:
        self._transition("refer_to_law_firm")
        if referred_on > at.date():
            # The gate judged the time bar today: a referral dated later would escape it.
            raise errors.InvalidDate(
                "a referral cannot be dated in the future", field="referred_on"
            )
        self._emit(self.ReferredToLawFirm, at, law_firm=law_firm, referred_on=referred_on)

    def change_legal_status(
        self,
        *,
        at: datetime,
        legal_status: str,
        effective_on: date,
        judgment_amount: int | None = None,
        judgment_date: date | None = None,
        court_reference: str | None = None,
        details: str = "",
    ) -> None:
        self._check_open()
        _choice("legal_status", legal_status, LEGAL_STATUSES)
        if legal_status == "closed":
            self._transition("legal_closed")
        elif self.status != Status.WITH_LAW_FIRM:
            raise errors.InvalidTransition(
                "legal status can only change while the account is with a law firm",
                status=self.status,
                action="change_legal_status",
            )
        if legal_status == "judgment":
            if judgment_amount is None or judgment_date is None:
                raise errors.ValidationError(
                    "a judgment needs its amount and date", field="judgment_amount"
                )
            _positive("judgment_amount", judgment_amount)
        self._emit(
            self.LegalStatusChanged,
            at,
            legal_status=legal_status,
            effective_on=effective_on,
            judgment_amount=judgment_amount,
            judgment_date=judgment_date,
            court_reference=court_reference,
            details=details,
        )

    def withdraw_referral(self, *, at: datetime, reason: str) -> None:
        self._transition("withdraw_referral")
        assert self.law_firm is not None
        self._emit(self.ReferralWithdrawn, at, law_firm=self.law_firm["name"], reason=reason)

    def sell(
        self,
        *,
        at: datetime,
        buyer: str,
        price: int,
        currency: str,
        sale_date: date,
        portfolio_reference: str,
    ) -> None:
        self._transition("sell")
        self._check_currency(currency)
        _not_negative("price", price)
        self._emit(
            self.SoldToDebtBuyer,
            at,
            buyer=buyer,
            price=price,
            sale_date=sale_date,
            portfolio_reference=portfolio_reference,
        )

    def close(self, *, at: datetime, reason: str, note: str = "") -> None:
        self._transition("close")
        _choice("reason", reason, CLOSE_REASONS)
        if reason == "paid" and self.total_balance > 0:
            raise errors.BalanceOutstanding(
                f"cannot close as paid with {self.total_balance} still owed",
                balance=self.total_balance,
            )
        self._emit(self.Closed, at, reason=reason, note=note)

    def add_note(self, *, at: datetime, note_id: str, text: str, agent: str | None = None) -> None:
        if not text.strip():
            raise errors.ValidationError("a note cannot be empty", field="text")
        self._emit(self.NoteAdded, at, note_id=note_id, text=text, agent=agent)

    # ------------------------------------------------- contact gate and rule facts

    def _check_not_frozen(self, at: datetime, what: str) -> None:
        if self.in_breathing_space(at.date()):
            assert self.breathing_space is not None
            raise errors.BreathingSpaceActive(
                f"{what} cannot be added during a breathing space "
                f"(started {self.breathing_space['started_on']})",
                started_on=self.breathing_space["started_on"].isoformat(),
            )

    def block_contact(
        self,
        *,
        at: datetime,
        request_id: str,
        channel: str,
        purpose: str,
        party: str,
        to: str | None,
        verdicts: Sequence[Mapping[str, str]],
    ) -> None:
        """Record a refusal; allowed on any account, sold and closed ones included."""
        self._emit(
            self.ContactBlocked,
            at,
            request_id=request_id,
            channel=channel,
            purpose=purpose,
            party=party,
            to=to,
            attempted_at=at,
            verdicts=[dict(v) for v in verdicts],
        )

    def flag_violation(
        self, *, at: datetime, contact_id: str, verdicts: Sequence[Mapping[str, str]]
    ) -> None:
        if not any(c["contact_id"] == contact_id for c in self.recent_contacts):
            raise errors.ValidationError(f"no recent contact {contact_id}", field="contact_id")
        self._emit(
            self.ContactViolationFlagged,
            at,
            contact_id=contact_id,
            verdicts=[dict(v) for v in verdicts],
        )

    def queue_message(
        self,
        *,
        at: datetime,
        message_id: str,
        channel: str,
        template: str,
        purpose: str,
        locale: str,
        to: str | None,
    ) -> None:
        self._check_open()
        _choice("channel", channel, CHANNELS)
        if not template.strip():
            raise errors.ValidationError("a message needs a template", field="template")
        if message_id in self.messages:
            return  # the same request again: already queued
        self._emit(
            self.MessageQueued,
            at,
            message_id=message_id,
            channel=channel,
            template=template,
            purpose=purpose,
            locale=locale,
            to=to,
        )

    def start_breathing_space(
        self, *, at: datetime, kind: str, started_on: date, reference: str
    ) -> None:
        self._check_open()
        _choice("kind", kind, BREATHING_SPACE_KINDS)
        if self.in_breathing_space(started_on):
            raise errors.BreathingSpaceActive(
                "a breathing space is already running", started_on=started_on.isoformat()
            )
        ends_on = started_on + STANDARD_BREATHING_SPACE if kind == "standard" else None
        self._emit(
            self.BreathingSpaceStarted,
            at,
            kind=kind,
            started_on=started_on,
            ends_on=ends_on,
            reference=reference,
        )

    def end_crisis_treatment(self, *, at: datetime, treatment_ended_on: date) -> None:
        space = self.breathing_space
        if space is None or space["kind"] != "mental_health" or space["ends_on"] is not None:
            raise errors.InvalidTransition(
                "no mental-health crisis breathing space waiting for its treatment to end",
                status=self.status,
                action="end_crisis_treatment",
            )
        if treatment_ended_on < space["started_on"]:
            raise errors.InvalidDate(
                "treatment cannot end before the breathing space started",
                field="treatment_ended_on",
            )
        self._emit(
            self.CrisisTreatmentEnded,
            at,
            treatment_ended_on=treatment_ended_on,
            ends_on=treatment_ended_on + CRISIS_AFTERCARE,
        )

    def cancel_breathing_space(self, *, at: datetime, ended_on: date, reason: str) -> None:
        """End a breathing space early; an end before its start voids it (entered by
        mistake).  It can only be shortened, never extended past its end."""
        space = self.breathing_space
        if space is None or (space["ends_on"] is not None and ended_on > space["ends_on"]):
            raise errors.InvalidTransition(
                f"no breathing space running on {ended_on}",
                status=self.status,
                action="cancel_breathing_space",
            )
        if space["ends_on"] is not None and ended_on == space["ends_on"]:
            # Already ends that day (a repeated cancellation): nothing would change.
            raise errors.InvalidTransition(
                f"the breathing space already ends on {ended_on}",
                status=self.status,
                action="cancel_breathing_space",
            )
        self._emit(self.BreathingSpaceCancelled, at, ended_on=ended_on, reason=reason)

    def set_contact_preferences(
        self,
        *,
        at: datetime,
        channels: Sequence[str] | None = None,
        refused_channels: Sequence[str] = (),
        window_start: time | None = None,
        window_end: time | None = None,
    ) -> None:
        self._check_open()
        for channel in [*(channels or ()), *refused_channels]:
            _choice("channel", channel, CHANNELS)
        if (window_start is None) != (window_end is None):
            raise errors.ValidationError(
                "give both ends of the contact window, or neither", field="window_start"
            )
        if window_start is not None and window_start == window_end:
            raise errors.ValidationError("the contact window is empty", field="window_end")
        self._emit(
            self.ContactPreferencesSet,
            at,
            channels=None if channels is None else sorted(set(channels)),
            refused_channels=sorted(set(refused_channels)),
            window_start=None if window_start is None else window_start.strftime("%H:%M"),
            window_end=None if window_end is None else window_end.strftime("%H:%M"),
        )

    def set_limitation_date(self, *, at: datetime, expires_on: date, basis: str) -> None:
        self._check_open()
        if not basis.strip():
            raise errors.ValidationError("say what the limitation date is based on", field="basis")
        self._emit(self.LimitationDateSet, at, expires_on=expires_on, basis=basis)

    def give_call_consent(
        self, *, at: datetime, given_at: datetime, until: datetime, evidence: str
    ) -> None:
        self._check_open()
        if until <= given_at:
            raise errors.InvalidDate("consent must end after it was given", field="until")
        if given_at > at:
            raise errors.InvalidDate("consent cannot be given in the future", field="given_at")
        self._emit(self.CallConsentGiven, at, given_at=given_at, until=until, evidence=evidence)

    # ------------------------------------------------------- delivery outcomes

    MESSAGE_ORDER: ClassVar[dict[str, int]] = {"queued": 0, "sent": 1, "delivered": 2, "failed": 2}

    def _message(self, message_id: str) -> dict[str, Any]:
        message = self.messages.get(message_id)
        if message is None:
            raise errors.UnknownMessage(
                f"no message {message_id} on this account", message_id=message_id
            )
        return message

    def mark_message(self, *, at: datetime, message_id: str, status: str, detail: str = "") -> bool:
        """Record a delivery outcome once; a repeated or out-of-date report changes nothing
        (partners report twice and out of order).  Returns whether an event was recorded.

        ``delivered`` is final.  ``failed`` is not: a dead delivery retried by hand that
        then goes out is recorded as sent (and delivered), so the history ends with
        what really happened."""
        message = self._message(message_id)
        current = message["status"]
        if status not in ("sent", "delivered", "failed"):
            raise errors.InvalidChoice(
                f"status must be sent, delivered or failed; got {status!r}", field="status"
            )
        if current == "delivered" or status == current:
            return False
        if current != "failed" and self.MESSAGE_ORDER[status] <= self.MESSAGE_ORDER[current]:
            return False
        if status == "sent":
            self._emit(self.MessageSent, at, message_id=message_id, provider_id=detail)
        elif status == "delivered":
            self._emit(self.MessageDelivered, at, message_id=message_id, detail=detail)
        else:
            self._emit(self.MessageFailed, at, message_id=message_id, reason=detail)
        return True

    def acknowledge(
        self,
        *,
        at: datetime,
        partner_kind: str,
        partner: str,
        delivery_key: str,
        partner_reference: str,
    ) -> bool:
        if delivery_key in self.acknowledged:
            return False
        self._emit(
            self.PartnerAcknowledged,
            at,
            partner_kind=partner_kind,
            partner=partner,
            delivery_key=delivery_key,
            partner_reference=partner_reference,
        )
        return True
