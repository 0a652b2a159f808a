"""Domain errors with stable codes.

Callers (CLI, HTTP, partner adapters) branch on ``code``, never on message text,
so codes are part of the public contract: add new ones, never rename.
"""

from __future__ import annotations

from typing import Any


class LedgerError(Exception):
    """Base of every error the ledger reports to a person or a partner."""

    code = "ledger_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.details}


class ValidationError(LedgerError):
    """Input that can never succeed as given: fix the request, do not retry."""

    code = "invalid_input"


class InvalidAmount(ValidationError):
    code = "invalid_amount"


class NonPositiveAmount(ValidationError):
    code = "non_positive_amount"


class UnknownCurrency(ValidationError):
    code = "unknown_currency"


class CurrencyMismatch(ValidationError):
    code = "currency_mismatch"


class InvalidDate(ValidationError):
    code = "invalid_date"


class InvalidTimeZone(ValidationError):
    code = "invalid_time_zone"


class NotFound(LedgerError):
    code = "not_found"


class AccountNotFound(NotFound):
    code = "account_not_found"


class DebtorNotFound(NotFound):
    code = "debtor_not_found"


class RuleViolation(LedgerError):
    """The request is well formed but the account's state forbids it."""

    code = "rule_violation"


class AccountExists(RuleViolation):
    code = "account_exists"


class UnknownPayment(RuleViolation):
    code = "unknown_payment"


class PaymentAlreadyReversed(RuleViolation):
    code = "payment_already_reversed"


class PromiseExceedsBalance(RuleViolation):
    code = "promise_exceeds_balance"


class PromiseInPast(RuleViolation):
    code = "promise_due_in_past"


class NoOpenPromise(RuleViolation):
    code = "no_open_promise"


class PlanAlreadyActive(RuleViolation):
    code = "plan_already_active"


class NoActivePlan(RuleViolation):
    code = "no_active_plan"


class InstallmentsMismatch(RuleViolation):
    code = "installments_mismatch"


class AccountSold(RuleViolation):
    code = "account_sold"


class AccountClosed(RuleViolation):
    code = "account_closed"


class InvalidTransition(RuleViolation):
    """A life-cycle step that the account's current status does not allow."""

    code = "invalid_transition"


class WaiverExceedsBalance(RuleViolation):
    code = "waiver_exceeds_balance"


class AdjustmentExceedsBalance(RuleViolation):
    code = "adjustment_exceeds_balance"


class NoOpenDispute(RuleViolation):
    code = "no_open_dispute"


class NoOpenComplaint(RuleViolation):
    code = "no_open_complaint"


class PersonalDataErased(RuleViolation):
    code = "personal_data_erased"


class ConcurrencyConflict(LedgerError):
    """Someone else kept writing the same account: retries ran out."""

    code = "concurrency_conflict"


class StoreError(LedgerError):
    """The store cannot be reached or is not what we expect."""

    code = "store_error"


class InvalidChoice(ValidationError):
    code = "invalid_choice"


class PromiseAlreadyOpen(RuleViolation):
    code = "promise_already_open"


class BalanceOutstanding(RuleViolation):
    code = "balance_outstanding"


class IdempotencyConflict(RuleViolation):
    """The same idempotency key arrived with different content: refuse rather than guess."""

    code = "idempotency_conflict"


class ContactBlocked(RuleViolation):
    """The contact gate refused the contact; ``verdicts`` says which rules and why.
    The refusal itself is recorded on the account."""

    code = "contact_blocked"


class UnknownMessage(RuleViolation):
    code = "unknown_message"


class BreathingSpaceActive(RuleViolation):
    """A UK breathing space freezes interest, fees and contact until it ends."""

    code = "breathing_space_active"


class InstallmentAlreadyMissed(RuleViolation):
    """That installment of the active plan was already recorded as missed: nothing to do."""

    code = "installment_already_missed"


class InstallmentNotDue(RuleViolation):
    """An installment can only be missed once its due date has passed."""

    code = "installment_not_due"


class IdempotencyKeyReused(IdempotencyConflict):
    """An API request reused an ``Idempotency-Key`` with a different request: use a new key."""

    code = "idempotency_key_reused"


class TokenInvalid(LedgerError):
    """No API token, or one that is malformed, unknown or revoked."""

    code = "unauthorized"


class Forbidden(LedgerError):
    """The token is valid, but its role may not do this."""

    code = "forbidden"


class StoredEventUnreadable(LedgerError, ValueError):
    """A stored event's bytes do not decode: the store was altered or damaged.

    Not the caller's fault and not retryable; ``verify`` names the event."""

    code = "stored_event_unreadable"
