"""Account rules as a user of the service layer sees them: refusals by code, and exact money.

The placed debt in most tests is the conftest ``placement()``: 1000.00 principal,
150.00 interest and 50.00 fees (1200.00 USD), itemized at charge-off.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from conftest import JANE, START, placement, usd
from eventsourcing.persistence import StoredEvent

from ledger import errors
from ledger.application import open_ledger
from ledger.clock import MovableClock
from ledger.domain.account import MAX_MINOR, Account
from ledger.money import Money
from ledger.services import DebtorDetails, Installment, LedgerService
from ledger.tamper.verify import verify_ledger

NEXT_MONTH = date(2026, 4, 1)
IN_TWO_MONTHS = date(2026, 5, 1)
YESTERDAY = START.date() - timedelta(days=1)

#: Codes of the abstract bases: never raised as such.
ABSTRACT_CODES = {"ledger_error", "rule_violation", "not_found"}


def refused(code: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> errors.LedgerError:
    """Run ``call`` and return the LedgerError it raised, which must carry ``code``."""
    with pytest.raises(errors.LedgerError) as caught:
        call(*args, **kwargs)
    assert caught.value.code == code, caught.value.as_dict()
    return caught.value


def balance(svc: LedgerService, aid: UUID) -> dict[str, int]:
    return dict(svc.get_account(aid).balance)


def stored_events(svc: LedgerService, aid: UUID) -> list[Any]:
    return list(svc.ledger.events.get(aid))


@pytest.fixture
def aid(memory_service: LedgerService) -> UUID:
    """The id of a freshly placed 1200.00 USD account owed by Jane."""
    return memory_service.place_account(placement(), debtor=JANE).id


# ------------------------------------------------------ every code is covered


def test_every_raisable_error_code_is_triggered_in_this_module() -> None:
    """Each concrete error code in ledger/errors.py has a scenario below that triggers it."""
    defined = {
        cls.code
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.LedgerError)
    } - ABSTRACT_CODES
    tree = ast.parse(Path(__file__).read_text())
    passing = [  # tests expected to fail (xfail) do not count
        f
        for f in tree.body
        if isinstance(f, ast.FunctionDef)
        and f.name.startswith("test_")
        and not any("xfail" in ast.unparse(d) for d in f.decorator_list)
    ]
    triggered = {
        node.args[0].value
        for scope in passing
        for node in ast.walk(scope)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "refused"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }
    assert defined - triggered == set()


# ------------------------------------------------------------------ amounts


def test_zero_and_negative_payments_are_refused(memory_service: LedgerService, aid: UUID) -> None:
    """Paying 0.00 or -5.00 is non_positive_amount and leaves the balance alone."""
    refused("non_positive_amount", memory_service.post_payment, aid, usd("0.00"), method="card")
    refused("non_positive_amount", memory_service.post_payment, aid, usd("-5.00"), method="card")
    assert memory_service.get_account(aid).total_balance == 120000


def test_a_debt_of_nothing_cannot_be_placed(memory_service: LedgerService) -> None:
    """A placement whose principal, interest and fees are all zero is non_positive_amount."""
    zero = placement(principal=usd("0"), interest=usd("0"), fees=usd("0"))
    refused("non_positive_amount", memory_service.place_account, zero, debtor=JANE)


def test_negative_component_in_a_placement_is_invalid(memory_service: LedgerService) -> None:
    """Negative interest at placement is invalid_amount."""
    bad = placement(interest=usd("-1.00"))
    refused("invalid_amount", memory_service.place_account, bad, debtor=JANE)


def test_absurdly_large_amounts_are_refused_not_crashed(
    memory_service: LedgerService, aid: UUID
) -> None:
    """An amount beyond what the store can hold is invalid_amount, not an OverflowError."""
    huge = Money(10**20, "USD")
    refused("invalid_amount", memory_service.accrue_interest, aid, huge)
    refused("invalid_amount", memory_service.post_payment, aid, huge, method="wire")
    assert memory_service.get_account(aid).version == 1
    memory_service.accrue_interest(aid, Money(MAX_MINOR, "USD"))
    assert memory_service.get_account(aid).balance["interest"] == MAX_MINOR + 15000
    # Waiving everything owed is not limited by the single-amount cap.
    memory_service.waive(aid, kind="interest", reason="rate applied in error")
    assert memory_service.get_account(aid).balance["interest"] == 0


def test_payment_in_another_currency_is_refused(memory_service: LedgerService, aid: UUID) -> None:
    """A EUR payment on a USD debt is currency_mismatch."""
    err = refused(
        "currency_mismatch",
        memory_service.post_payment,
        aid,
        Money.parse("10.00", "EUR"),
        method="card",
    )
    assert err.details == {"expected": "USD", "got": "EUR"}


def test_placement_amounts_must_share_its_currency(memory_service: LedgerService) -> None:
    """A USD placement with a EUR principal is currency_mismatch."""
    bad = placement(principal=Money.parse("1000.00", "EUR"))
    refused("currency_mismatch", memory_service.place_account, bad, debtor=JANE)


def test_placement_in_a_metal_is_refused(memory_service: LedgerService) -> None:
    """A debt cannot be denominated in gold: unknown_currency."""
    refused(
        "unknown_currency", memory_service.place_account, placement(currency="XAU"), debtor=JANE
    )


# -------------------------------------------------------------- waterfall


def test_default_waterfall_pays_fees_then_interest_then_principal(
    memory_service: LedgerService, aid: UUID
) -> None:
    """60.00 clears the 50.00 fees and 10.00 of interest; principal is untouched."""
    result = memory_service.post_payment(aid, usd("60.00"), method="card")
    account = memory_service.get_account(aid)
    assert account.payments[result.payment_id]["allocation"] == {"fees": 5000, "interest": 1000}
    assert account.balance == {"principal": 100000, "interest": 14000, "fees": 0}
    assert account.paid_total == 6000

    memory_service.post_payment(aid, usd("200.00"), method="ach")
    assert balance(memory_service, aid) == {"principal": 94000, "interest": 0, "fees": 0}


def test_creditor_specific_order_puts_principal_first(
    memory_service: LedgerService, clock: MovableClock, aid: UUID
) -> None:
    """A creditor whose contract pays principal first sees 60.00 come off principal."""
    principal_first = LedgerService(
        memory_service.ledger,
        clock,
        allocation_order=lambda creditor: ("principal", "interest", "fees"),
    )
    principal_first.post_payment(aid, usd("60.00"), method="card")
    assert balance(memory_service, aid) == {"principal": 94000, "interest": 15000, "fees": 5000}


def test_overpayment_becomes_credit_never_a_negative_component(
    memory_service: LedgerService, aid: UUID
) -> None:
    """Paying 1300.00 on 1200.00 clears every component and leaves 100.00 credit owed back."""
    result = memory_service.post_payment(aid, usd("1300.00"), method="wire")
    account = memory_service.get_account(aid)
    assert account.balance == {"principal": 0, "interest": 0, "fees": 0}
    assert account.credit_balance == 10000
    assert account.payments[result.payment_id]["allocation"] == {
        "fees": 5000,
        "interest": 15000,
        "principal": 100000,
        "credit": 10000,
    }
    memory_service.close(aid, "paid")
    assert memory_service.get_account(aid).status == "closed"


def test_reversal_restores_exactly_what_its_payment_allocated(
    memory_service: LedgerService, aid: UUID
) -> None:
    """Reversing an early payment after a later one gives back its own fees and interest only."""
    first = memory_service.post_payment(aid, usd("100.00"), method="check")  # fees 50, interest 50
    memory_service.post_payment(aid, usd("200.00"), method="card")  # interest 100, principal 100
    assert balance(memory_service, aid) == {"principal": 90000, "interest": 0, "fees": 0}

    memory_service.reverse_payment(aid, first.payment_id, kind="nsf", reason="cheque bounced")
    account = memory_service.get_account(aid)
    assert account.balance == {"principal": 90000, "interest": 5000, "fees": 5000}
    assert account.paid_total == 20000
    assert account.payments[first.payment_id]["reversed"] is True


def test_reversing_an_overpayment_takes_back_its_credit(
    memory_service: LedgerService, aid: UUID
) -> None:
    """A chargeback of a 1300.00 payment restores the 1200.00 debt and removes the 100.00 credit."""
    result = memory_service.post_payment(aid, usd("1300.00"), method="card")
    memory_service.reverse_payment(aid, result.payment_id, kind="chargeback", reason="disputed")
    account = memory_service.get_account(aid)
    assert account.balance == {"principal": 100000, "interest": 15000, "fees": 5000}
    assert account.credit_balance == 0


def test_unknown_payment_cannot_be_reversed(memory_service: LedgerService, aid: UUID) -> None:
    """Reversing a payment id the account never saw is unknown_payment."""
    refused("unknown_payment", memory_service.reverse_payment, aid, "p-404", kind="nsf", reason="x")


def test_a_payment_is_reversed_only_once(memory_service: LedgerService, aid: UUID) -> None:
    """A second NSF on the same payment is payment_already_reversed; the debt is restored once."""
    paid = memory_service.post_payment(aid, usd("100.00"), method="check")
    memory_service.reverse_payment(aid, paid.payment_id, kind="nsf", reason="bounced")
    refused(
        "payment_already_reversed",
        memory_service.reverse_payment,
        aid,
        paid.payment_id,
        kind="chargeback",
        reason="again",
    )
    assert memory_service.get_account(aid).total_balance == 120000


def test_unknown_reversal_kind_is_an_invalid_choice(
    memory_service: LedgerService, aid: UUID
) -> None:
    """Only nsf and chargeback reversals exist."""
    paid = memory_service.post_payment(aid, usd("100.00"), method="check")
    refused(
        "invalid_choice",
        memory_service.reverse_payment,
        aid,
        paid.payment_id,
        kind="oops",
        reason="x",
    )


# -------------------------------------------------------------- idempotency


def test_same_external_reference_posts_once(memory_service: LedgerService, aid: UUID) -> None:
    """A processor retry with the same reference returns the original payment; money moves once."""
    first = memory_service.post_payment(
        aid, usd("100.00"), method="card", external_reference="tx-1"
    )
    version = memory_service.get_account(aid).version
    again = memory_service.post_payment(
        aid, usd("100.00"), method="card", external_reference="tx-1"
    )
    assert (first.created, again.created) == (True, False)
    assert again.payment_id == first.payment_id
    account = memory_service.get_account(aid)
    assert account.version == version
    assert account.total_balance == 110000
    assert account.paid_total == 10000
    assert account.find_payment_by_reference("tx-1") == first.payment_id


def test_same_reference_with_another_amount_is_refused(
    memory_service: LedgerService, aid: UUID
) -> None:
    """Reusing a payment reference for a different amount is idempotency_conflict, not a guess."""
    memory_service.post_payment(aid, usd("100.00"), method="card", external_reference="tx-1")
    err = refused(
        "idempotency_conflict",
        memory_service.post_payment,
        aid,
        usd("150.00"),
        method="card",
        external_reference="tx-1",
    )
    assert err.details["payment_id"] == memory_service.get_account(aid).payment_refs["tx-1"]
    assert memory_service.get_account(aid).total_balance == 110000


def test_blank_reference_is_no_reference(memory_service: LedgerService, aid: UUID) -> None:
    """Two 1.00 payments posted with an empty reference both count; "" is not remembered."""
    first = memory_service.post_payment(aid, usd("1.00"), method="card", external_reference="")
    second = memory_service.post_payment(aid, usd("1.00"), method="card", external_reference="")
    assert first.created and second.created
    account = memory_service.get_account(aid)
    assert account.paid_total == 200
    assert account.payment_refs == {}


def test_forwarded_reference_with_another_amount_is_refused(
    memory_service: LedgerService, aid: UUID
) -> None:
    """After a sale, reusing a forwarded payment's reference for another amount is refused too."""
    memory_service.sell(
        aid, buyer="Summit Debt Holdings", price=usd("60.00"), portfolio_reference="PF-1"
    )
    memory_service.post_payment(aid, usd("100.00"), method="card", external_reference="tx-9")
    refused(
        "idempotency_conflict",
        memory_service.post_payment,
        aid,
        usd("999.00"),
        method="card",
        external_reference="tx-9",
    )


# ----------------------------------------------------------------- promises


def test_promise_cannot_exceed_the_balance(memory_service: LedgerService, aid: UUID) -> None:
    """Promising 1200.01 on a 1200.00 debt is promise_exceeds_balance; 1200.00 is fine."""
    refused("promise_exceeds_balance", memory_service.make_promise, aid, usd("1200.01"), NEXT_MONTH)
    account = memory_service.make_promise(aid, usd("1200.00"), NEXT_MONTH)
    assert account.open_promise is not None
    assert account.open_promise["amount"] == 120000


def test_promise_cannot_be_due_in_the_past(memory_service: LedgerService, aid: UUID) -> None:
    """A promise due yesterday is promise_due_in_past; one due today is accepted."""
    refused("promise_due_in_past", memory_service.make_promise, aid, usd("10.00"), YESTERDAY)
    memory_service.make_promise(aid, usd("10.00"), START.date())


def test_only_one_open_promise(memory_service: LedgerService, aid: UUID) -> None:
    """A second promise while one is open is promise_already_open, naming the open one."""
    first = memory_service.make_promise(aid, usd("100.00"), NEXT_MONTH).open_promise
    assert first is not None
    err = refused(
        "promise_already_open", memory_service.make_promise, aid, usd("50.00"), NEXT_MONTH
    )
    assert err.details["promise_id"] == first["id"]


def test_keeping_a_promise_needs_an_open_one(memory_service: LedgerService, aid: UUID) -> None:
    """Keeping, breaking or cancelling with no open promise is no_open_promise."""
    refused("no_open_promise", memory_service.keep_promise, aid)
    memory_service.make_promise(aid, usd("100.00"), NEXT_MONTH)
    memory_service.break_promise(aid)
    refused("no_open_promise", memory_service.cancel_promise, aid, "changed mind")


def test_payments_count_towards_the_open_promise(memory_service: LedgerService, aid: UUID) -> None:
    """A 40.00 payment made while a 100.00 promise is open shows as 40.00 paid on it."""
    memory_service.make_promise(aid, usd("100.00"), NEXT_MONTH)
    memory_service.post_payment(aid, usd("40.00"), method="card")
    promise = memory_service.get_account(aid).open_promise
    assert promise is not None
    assert promise["paid"] == 4000


# -------------------------------------------------------------------- plans


def test_second_plan_is_refused(memory_service: LedgerService, aid: UUID) -> None:
    """Agreeing a plan while one is active is plan_already_active."""
    memory_service.agree_plan(
        aid,
        kind="installment",
        total=usd("1200.00"),
        installments=[
            Installment(NEXT_MONTH, usd("600.00")),
            Installment(IN_TWO_MONTHS, usd("600.00")),
        ],
    )
    refused(
        "plan_already_active",
        memory_service.agree_plan,
        aid,
        kind="settlement",
        total=usd("500.00"),
        installments=[Installment(NEXT_MONTH, usd("500.00"))],
    )


def test_plan_commands_need_an_active_plan(memory_service: LedgerService, aid: UUID) -> None:
    """Cancelling, completing or missing an installment without a plan is no_active_plan."""
    refused("no_active_plan", memory_service.cancel_plan, aid, "no reason")
    refused("no_active_plan", memory_service.complete_plan, aid)
    refused("no_active_plan", memory_service.miss_installment, aid, NEXT_MONTH)


def test_installments_must_add_up_to_the_plan_total(
    memory_service: LedgerService, aid: UUID
) -> None:
    """Two installments of 500.00 for a 1200.00 plan is installments_mismatch."""
    err = refused(
        "installments_mismatch",
        memory_service.agree_plan,
        aid,
        kind="installment",
        total=usd("1200.00"),
        installments=[
            Installment(NEXT_MONTH, usd("500.00")),
            Installment(IN_TWO_MONTHS, usd("500.00")),
        ],
    )
    assert err.details == {"scheduled": "1000.00", "total": "1200.00", "currency": "USD"}


def test_installment_plan_must_cover_the_whole_balance(
    memory_service: LedgerService, aid: UUID
) -> None:
    """An installment plan for 1000.00 of a 1200.00 debt is installments_mismatch."""
    err = refused(
        "installments_mismatch",
        memory_service.agree_plan,
        aid,
        kind="installment",
        total=usd("1000.00"),
        installments=[Installment(NEXT_MONTH, usd("1000.00"))],
    )
    assert err.details == {"scheduled": "1000.00", "balance": "1200.00", "currency": "USD"}


def test_settlement_cannot_exceed_the_balance(memory_service: LedgerService, aid: UUID) -> None:
    """A 1300.00 settlement on a 1200.00 debt is installments_mismatch."""
    refused(
        "installments_mismatch",
        memory_service.agree_plan,
        aid,
        kind="settlement",
        total=usd("1300.00"),
        installments=[Installment(NEXT_MONTH, usd("1300.00"))],
    )


def test_plan_needs_at_least_one_installment(memory_service: LedgerService, aid: UUID) -> None:
    """An empty schedule is installments_mismatch."""
    refused(
        "installments_mismatch",
        memory_service.agree_plan,
        aid,
        kind="settlement",
        total=usd("100.00"),
        installments=[],
    )


def test_installment_dates_must_be_future_and_increasing(
    memory_service: LedgerService, aid: UUID
) -> None:
    """An installment due yesterday, or two on the same day, is invalid_date."""
    refused(
        "invalid_date",
        memory_service.agree_plan,
        aid,
        kind="settlement",
        total=usd("100.00"),
        installments=[Installment(YESTERDAY, usd("100.00"))],
    )
    refused(
        "invalid_date",
        memory_service.agree_plan,
        aid,
        kind="settlement",
        total=usd("100.00"),
        installments=[Installment(NEXT_MONTH, usd("50.00")), Installment(NEXT_MONTH, usd("50.00"))],
    )


def test_installment_in_another_currency_is_refused(
    memory_service: LedgerService, aid: UUID
) -> None:
    """A EUR installment in a USD plan is currency_mismatch."""
    refused(
        "currency_mismatch",
        memory_service.agree_plan,
        aid,
        kind="settlement",
        total=usd("100.00"),
        installments=[Installment(NEXT_MONTH, Money(10000, "EUR"))],
    )


def test_unpaid_plan_cannot_be_completed(memory_service: LedgerService, aid: UUID) -> None:
    """Completing a 600.00 settlement with 100.00 paid is balance_outstanding with 500.00 left."""
    memory_service.agree_plan(
        aid,
        kind="settlement",
        total=usd("600.00"),
        installments=[Installment(NEXT_MONTH, usd("600.00"))],
    )
    memory_service.post_payment(aid, usd("100.00"), method="card")
    err = refused("balance_outstanding", memory_service.complete_plan, aid)
    assert err.details == {"remaining": "500.00", "currency": "USD"}


def test_settlement_paid_then_waived_then_closed_settled(
    memory_service: LedgerService, aid: UUID
) -> None:
    """A 600.00 settlement paid in two halves, the rest waived, closes as settled at zero."""
    memory_service.agree_plan(
        aid,
        kind="settlement",
        total=usd("600.00"),
        installments=[
            Installment(NEXT_MONTH, usd("300.00")),
            Installment(IN_TWO_MONTHS, usd("300.00")),
        ],
    )
    memory_service.post_payment(aid, usd("300.00"), method="card")
    memory_service.post_payment(aid, usd("300.00"), method="card")
    assert balance(memory_service, aid) == {"principal": 60000, "interest": 0, "fees": 0}
    memory_service.complete_plan(aid)
    memory_service.waive(aid, kind="settlement", reason="settlement paid in full")
    account = memory_service.close(aid, "settled")
    assert account.balance == {"principal": 0, "interest": 0, "fees": 0}
    assert account.waived_total == 60000
    assert account.paid_total == 60000
    assert account.plan is None
    assert account.plan_history[-1]["outcome"] == "completed"
    assert (account.status, account.close_reason) == ("closed", "settled")


def test_bounced_pre_plan_payment_does_not_erase_plan_progress(
    memory_service: LedgerService, aid: UUID
) -> None:
    """A cheque from before the plan bouncing leaves the plan's own 300.00 paid intact."""
    cheque = memory_service.post_payment(aid, usd("200.00"), method="check")
    memory_service.agree_plan(
        aid,
        kind="installment",
        total=usd("1000.00"),
        installments=[Installment(NEXT_MONTH, usd("1000.00"))],
    )
    memory_service.post_payment(aid, usd("300.00"), method="card")
    memory_service.reverse_payment(aid, cheque.payment_id, kind="nsf", reason="bounced")
    account = memory_service.get_account(aid)
    assert account.plan is not None
    assert account.plan["paid"] == 30000
    assert account.total_balance == 90000


# ------------------------------------------------------------ waivers & adjustments


def test_waiver_cannot_exceed_the_component(memory_service: LedgerService, aid: UUID) -> None:
    """Waiving 150.01 of 150.00 interest is waiver_exceeds_balance; 150.00 clears it."""
    err = refused(
        "waiver_exceeds_balance",
        memory_service.waive,
        aid,
        kind="interest",
        reason="hardship",
        amounts={"interest": usd("150.01")},
    )
    assert err.details == {"component": "interest", "balance": "150.00", "currency": "USD"}
    memory_service.waive(
        aid, kind="interest", reason="hardship", amounts={"interest": usd("150.00")}
    )
    assert balance(memory_service, aid) == {"principal": 100000, "interest": 0, "fees": 5000}


def test_waiver_amounts_in_another_currency_are_refused(
    memory_service: LedgerService, aid: UUID
) -> None:
    """A settlement waiver listing 1.00 USD interest and 1.00 EUR fees is currency_mismatch."""
    refused(
        "currency_mismatch",
        memory_service.waive,
        aid,
        kind="settlement",
        reason="x",
        amounts={"interest": usd("1.00"), "fees": Money(100, "EUR")},
    )
    assert balance(memory_service, aid) == {"principal": 100000, "interest": 15000, "fees": 5000}


def test_waiver_kind_limits_its_components(memory_service: LedgerService, aid: UUID) -> None:
    """A fee waiver cannot touch principal (invalid_choice); a zero interest waiver is refused."""
    refused(
        "invalid_choice",
        memory_service.waive,
        aid,
        kind="fee",
        reason="x",
        amounts={"principal": usd("1.00")},
    )
    memory_service.waive(aid, kind="interest", reason="hardship")
    refused("non_positive_amount", memory_service.waive, aid, kind="interest", reason="again")


def test_credit_adjustment_cannot_exceed_the_component(
    memory_service: LedgerService, aid: UUID
) -> None:
    """Crediting 50.01 against 50.00 fees is adjustment_exceeds_balance; a debit has no cap."""
    refused(
        "adjustment_exceeds_balance",
        memory_service.adjust_balance,
        aid,
        component="fees",
        direction="credit",
        amount=usd("50.01"),
        reason="fee charged in error",
    )
    memory_service.adjust_balance(
        aid, component="fees", direction="debit", amount=usd("10.00"), reason="returned mail fee"
    )
    memory_service.adjust_balance(
        aid,
        component="fees",
        direction="credit",
        amount=usd("60.00"),
        reason="fees charged in error",
    )
    assert balance(memory_service, aid)["fees"] == 0


def test_adjustments_need_a_known_component_and_a_reason(
    memory_service: LedgerService, aid: UUID
) -> None:
    """A 'tax' component is invalid_choice; a blank reason is invalid_input."""
    refused(
        "invalid_choice",
        memory_service.adjust_balance,
        aid,
        component="tax",
        direction="debit",
        amount=usd("1.00"),
        reason="x",
    )
    refused(
        "invalid_input",
        memory_service.adjust_balance,
        aid,
        component="fees",
        direction="debit",
        amount=usd("1.00"),
        reason="  ",
    )


# --------------------------------------------------------- disputes & complaints


def test_dispute_steps_need_an_open_dispute(memory_service: LedgerService, aid: UUID) -> None:
    """Verifying an unknown dispute, or resolving one twice, is no_open_dispute."""
    refused("no_open_dispute", memory_service.provide_verification, aid, "d-404", "statement")
    _, dispute_id = memory_service.raise_dispute(aid, "not my debt", within_validation_period=True)
    assert memory_service.get_account(aid).flags == ["disputed"]
    memory_service.resolve_dispute(aid, dispute_id, "rejected")
    refused("no_open_dispute", memory_service.resolve_dispute, aid, dispute_id, "upheld")
    assert memory_service.get_account(aid).flags == []


def test_complaint_must_be_open_to_resolve(memory_service: LedgerService, aid: UUID) -> None:
    """Resolving an unknown or already resolved complaint is no_open_complaint."""
    refused("no_open_complaint", memory_service.resolve_complaint, aid, "c-404", "apology")
    _, complaint_id = memory_service.receive_complaint(aid, channel="email", category="calls")
    memory_service.resolve_complaint(aid, complaint_id, "apology")
    refused("no_open_complaint", memory_service.resolve_complaint, aid, complaint_id, "again")


def test_compliance_notices_raise_flags(memory_service: LedgerService, aid: UUID) -> None:
    """Cease, attorney, bankruptcy and death notices each show as a flag on the account."""
    memory_service.receive_complaint(aid, channel="phone", category="tone")
    memory_service.receive_cease(aid, "letter")
    memory_service.notify_attorney(aid, "Lee & Partners")
    memory_service.notify_bankruptcy(aid, chapter="7", case_number="BK-1", filed_on=YESTERDAY)
    memory_service.notify_deceased(aid)
    assert memory_service.get_account(aid).flags == [
        "complaint",
        "ceased",
        "attorney",
        "bankrupt",
        "deceased",
    ]


# --------------------------------------------------------------- life cycle


def test_agency_and_law_firm_round_trips(memory_service: LedgerService, aid: UUID) -> None:
    """Agency placement and recall, then law-firm referral to judgment and legal close."""
    svc = memory_service
    assert svc.place_with_agency(aid, agency="Northwind", commission_basis_points=2500).holder == {
        "kind": "agency",
        "name": "Northwind",
    }
    assert svc.recall_from_agency(aid, "performance review").status == "active"
    assert svc.refer_to_law_firm(aid, "Lee & Partners").status == "with_law_firm"
    svc.change_legal_status(
        aid, "judgment", judgment_amount=usd("1350.00"), judgment_date=YESTERDAY
    )
    assert svc.get_account(aid).judgment == {"amount": 135000, "date": YESTERDAY}
    account = svc.change_legal_status(aid, "closed")
    assert (account.status, account.holder["kind"]) == ("active", "creditor")


def test_transitions_not_in_the_table_are_refused(memory_service: LedgerService, aid: UUID) -> None:
    """Recalling, withdrawing or changing legal status from 'active' is invalid_transition."""
    svc = memory_service
    err = refused("invalid_transition", svc.recall_from_agency, aid, "no agency")
    assert err.details == {"status": "active", "action": "recall_from_agency"}
    refused("invalid_transition", svc.withdraw_referral, aid, "no firm")
    refused("invalid_transition", svc.change_legal_status, aid, "served")
    refused("invalid_transition", svc.change_legal_status, aid, "closed")
    svc.place_with_agency(aid, agency="Northwind", commission_basis_points=2500)
    refused(
        "invalid_transition",
        svc.sell,
        aid,
        buyer="Summit",
        price=usd("1.00"),
        portfolio_reference="PF",
    )
    refused("invalid_transition", svc.refer_to_law_firm, aid, "Lee & Partners")
    assert svc.get_account(aid).status == "with_agency"


def test_close_needs_a_known_reason_and_paid_needs_zero(
    memory_service: LedgerService, aid: UUID
) -> None:
    """Closing as 'bored' is invalid_choice; as 'paid' with 1200.00 owed is balance_outstanding."""
    refused("invalid_choice", memory_service.close, aid, "bored")
    err = refused("balance_outstanding", memory_service.close, aid, "paid")
    assert err.details == {"balance": 120000}
    assert memory_service.get_account(aid).status == "active"


PAYMENT_ID = "payment made before the account left"

#: Every write other than a note or a payment, as (name, call(service, account, payment_id)).
WRITES: list[tuple[str, Callable[[LedgerService, UUID, str], Any]]] = [
    ("accrue_interest", lambda s, a, p: s.accrue_interest(a, usd("1.00"))),
    ("assess_fee", lambda s, a, p: s.assess_fee(a, usd("25.00"), "late_fee")),
    (
        "adjust_balance",
        lambda s, a, p: s.adjust_balance(
            a, component="fees", direction="credit", amount=usd("1.00"), reason="goodwill"
        ),
    ),
    ("reverse_payment", lambda s, a, p: s.reverse_payment(a, p, kind="nsf", reason="bounced")),
    ("waive", lambda s, a, p: s.waive(a, kind="interest", reason="hardship")),
    (
        "record_contact",
        lambda s, a, p: s.record_contact(
            a, channel="phone", direction="outbound", outcome="no_answer"
        ),
    ),
    ("make_promise", lambda s, a, p: s.make_promise(a, usd("10.00"), NEXT_MONTH)),
    (
        "agree_plan",
        lambda s, a, p: s.agree_plan(
            a,
            kind="settlement",
            total=usd("10.00"),
            installments=[Installment(NEXT_MONTH, usd("10.00"))],
        ),
    ),
    (
        "raise_dispute",
        lambda s, a, p: s.raise_dispute(a, "not mine", within_validation_period=True),
    ),
    ("receive_complaint", lambda s, a, p: s.receive_complaint(a, channel="email", category="tone")),
    ("receive_cease", lambda s, a, p: s.receive_cease(a, "letter")),
    ("give_consent", lambda s, a, p: s.give_consent(a, "sms", "signed form")),
    ("notify_attorney", lambda s, a, p: s.notify_attorney(a, "Lee & Partners")),
    (
        "notify_bankruptcy",
        lambda s, a, p: s.notify_bankruptcy(a, chapter="7", case_number="BK-1", filed_on=YESTERDAY),
    ),
    ("notify_deceased", lambda s, a, p: s.notify_deceased(a)),
    (
        "place_with_agency",
        lambda s, a, p: s.place_with_agency(a, agency="Northwind", commission_basis_points=2500),
    ),
    ("refer_to_law_firm", lambda s, a, p: s.refer_to_law_firm(a, "Lee & Partners")),
    (
        "sell",
        lambda s, a, p: s.sell(a, buyer="Other Buyer", price=usd("1.00"), portfolio_reference="X"),
    ),
    ("close", lambda s, a, p: s.close(a, "uncollectible")),
]


@pytest.mark.parametrize(("name", "write"), WRITES, ids=[n for n, _ in WRITES])
def test_writes_after_sale_are_refused(
    memory_service: LedgerService, aid: UUID, name: str, write: Callable[..., Any]
) -> None:
    """Once sold, every write but a note or a payment is account_sold and records nothing."""
    paid = memory_service.post_payment(aid, usd("10.00"), method="card")
    memory_service.sell(
        aid, buyer="Summit Debt Holdings", price=usd("60.00"), portfolio_reference="PF-2026-Q1"
    )
    version = memory_service.get_account(aid).version
    err = refused("account_sold", write, memory_service, aid, paid.payment_id)
    assert err.details["account_id"] == str(aid)
    assert memory_service.get_account(aid).version == version


@pytest.mark.parametrize(("name", "write"), WRITES, ids=[n for n, _ in WRITES])
def test_writes_after_close_are_refused(
    memory_service: LedgerService, aid: UUID, name: str, write: Callable[..., Any]
) -> None:
    """Once closed, every write but a note or a payment is account_closed and records nothing."""
    paid = memory_service.post_payment(aid, usd("10.00"), method="card")
    memory_service.close(aid, "uncollectible")
    version = memory_service.get_account(aid).version
    refused("account_closed", write, memory_service, aid, paid.payment_id)
    assert memory_service.get_account(aid).version == version


def test_sold_account_takes_notes_and_forwards_payments(
    memory_service: LedgerService, aid: UUID
) -> None:
    """After a sale a note is kept and a 100.00 payment is forwarded to the buyer, not applied."""
    memory_service.sell(
        aid, buyer="Summit Debt Holdings", price=usd("60.00"), portfolio_reference="PF-2026-Q1"
    )
    memory_service.add_note(aid, "notice of assignment sent")
    result = memory_service.post_payment(aid, usd("100.00"), method="check")
    account = memory_service.get_account(aid)
    assert result.created and result.forwarded
    assert account.note_count == 1
    assert account.total_balance == 120000
    assert account.paid_total == 0
    assert account.forwarded_total == 10000
    assert account.holder == {"kind": "buyer", "name": "Summit Debt Holdings"}
    last = stored_events(memory_service, aid)[-1]
    assert isinstance(last, Account.PaymentForwarded)
    assert last.forward_to == "Summit Debt Holdings"


def test_closed_account_takes_notes_and_forwards_payments_to_the_creditor(
    memory_service: LedgerService, aid: UUID
) -> None:
    """After closing, a payment is recorded as forwarded to the creditor and the balance stays."""
    memory_service.close(aid, "recalled")
    memory_service.add_note(aid, "creditor recalled the account")
    result = memory_service.post_payment(aid, usd("25.00"), method="card")
    account = memory_service.get_account(aid)
    assert result.forwarded
    assert (account.total_balance, account.forwarded_total, account.note_count) == (120000, 2500, 1)
    last = stored_events(memory_service, aid)[-1]
    assert isinstance(last, Account.PaymentForwarded)
    assert last.forward_to == "acme-bank"


def test_sale_or_close_ends_open_promise_and_plan(memory_service: LedgerService) -> None:
    """A sold or closed account shows no open promise and no active plan, and says why."""
    svc = memory_service
    sold = svc.place_account(placement("ACC-S"), debtor=JANE).id
    svc.make_promise(sold, usd("100.00"), NEXT_MONTH)
    account = svc.sell(sold, buyer="Summit", price=usd("60.00"), portfolio_reference="PF")
    assert account.open_promise is None
    assert [p["status"] for p in account.promises.values()] == ["cancelled"]

    closed = svc.place_account(placement("ACC-C"), debtor=JANE).id
    svc.agree_plan(
        closed,
        kind="installment",
        total=usd("1200.00"),
        installments=[Installment(NEXT_MONTH, usd("1200.00"))],
    )
    account = svc.close(closed, "uncollectible")
    assert account.plan is None
    assert account.plan_history[-1]["outcome"] == "cancelled"


def test_empty_note_is_refused(memory_service: LedgerService, aid: UUID) -> None:
    """A blank note is invalid_input."""
    refused("invalid_input", memory_service.add_note, aid, "   ")


# ------------------------------------------------------------- dates & choices


def test_payment_cannot_be_received_in_the_future(
    memory_service: LedgerService, clock: MovableClock, aid: UUID
) -> None:
    """A payment dated tomorrow is invalid_date."""
    tomorrow = clock.current + timedelta(days=1)
    refused(
        "invalid_date",
        memory_service.post_payment,
        aid,
        usd("10.00"),
        method="card",
        received_at=tomorrow,
    )


def test_contact_and_itemization_cannot_be_in_the_future(
    memory_service: LedgerService, clock: MovableClock, aid: UUID
) -> None:
    """A contact next week and an itemization date next month are invalid_date."""
    refused(
        "invalid_date",
        memory_service.record_contact,
        aid,
        channel="phone",
        direction="outbound",
        outcome="no_answer",
        occurred_at=clock.current + timedelta(days=7),
    )
    future = placement("ACC-F", itemization_date=NEXT_MONTH)
    refused("invalid_date", memory_service.place_account, future, debtor=JANE)
    for field in ("charge_off_date", "last_payment_date"):
        error = refused(
            "invalid_date",
            memory_service.place_account,
            placement("ACC-G", **{field: NEXT_MONTH}),
            debtor=JANE,
        )
        assert error.details == {"field": field}


def test_unknown_payment_method_is_an_invalid_choice(
    memory_service: LedgerService, aid: UUID
) -> None:
    """Only the listed payment methods exist: 'bitcoin' is invalid_choice."""
    err = refused(
        "invalid_choice", memory_service.post_payment, aid, usd("10.00"), method="bitcoin"
    )
    assert err.details == {"field": "method", "value": "bitcoin"}


# ----------------------------------------------------------- placing & finding


def test_placing_the_same_debt_twice_returns_the_existing_id(
    memory_service: LedgerService, aid: UUID
) -> None:
    """The same creditor and reference again is account_exists, pointing at the first account."""
    err = refused("account_exists", memory_service.place_account, placement(), debtor=JANE)
    assert err.details["account_id"] == str(aid)
    padded = placement(reference=" ACC-0001 ", creditor="acme-bank ")
    err = refused("account_exists", memory_service.place_account, padded, debtor=JANE)
    assert err.details["account_id"] == str(aid)
    assert memory_service.list_account_ids() == [aid]


def test_padding_is_not_stored_in_the_reference(memory_service: LedgerService) -> None:
    """A reference placed with stray spaces is found again by its plain text."""
    account = memory_service.place_account(placement(reference=" ACC-7 "), debtor=JANE)
    assert account.reference == "ACC-7"
    assert memory_service.resolve_account("ACC-7") == account.id


def test_unknown_account_is_not_found(memory_service: LedgerService) -> None:
    """Paying into an account that does not exist is account_not_found."""
    missing = uuid4()
    err = refused(
        "account_not_found", memory_service.post_payment, missing, usd("1.00"), method="card"
    )
    assert err.details == {"account_id": str(missing)}


def test_a_debtor_id_is_not_an_account(memory_service: LedgerService, aid: UUID) -> None:
    """Looking up a debtor's id as an account is account_not_found."""
    debtor_id = memory_service.get_account(aid).debtor_id
    assert debtor_id is not None
    refused("account_not_found", memory_service.get_account, debtor_id)


def test_placing_for_an_unknown_debtor_is_refused(memory_service: LedgerService) -> None:
    """Placing for a debtor id that does not exist is debtor_not_found; nothing is placed."""
    refused("debtor_not_found", memory_service.place_account, placement("ACC-X"), debtor_id=uuid4())
    assert memory_service.list_account_ids() == []


def test_placing_for_an_existing_debtor(memory_service: LedgerService) -> None:
    """Two debts of one person share the debtor id."""
    debtor = memory_service.register_debtor(JANE)
    first = memory_service.place_account(placement("ACC-1"), debtor_id=debtor.id)
    second = memory_service.place_account(placement("ACC-2"), debtor_id=debtor.id)
    assert first.debtor_id == second.debtor_id == debtor.id


def test_debtor_needs_a_name(memory_service: LedgerService) -> None:
    """Registering a debtor with a blank name is invalid_input."""
    refused("invalid_input", memory_service.register_debtor, DebtorDetails(name="  "))


def test_a_debtor_needs_a_real_time_zone_and_real_contact_points(
    memory_service: LedgerService,
) -> None:
    """Mars/Olympus is invalid_time_zone; 'call me maybe' and 'not-an-email' are refused,
    naming the position but not the value; real numbers in any common form pass."""
    refused(
        "invalid_time_zone",
        memory_service.register_debtor,
        DebtorDetails(name="Jane", time_zone="Mars/Olympus"),
    )
    phone = refused(
        "invalid_input",
        memory_service.register_debtor,
        DebtorDetails(name="Jane", phones=["+1 415 555 0134", "call me maybe"]),
    )
    assert phone.details == {"field": "phones[1]"} and "maybe" not in phone.message
    refused(
        "invalid_input",
        memory_service.register_debtor,
        DebtorDetails(name="Jane", emails=["not-an-email"]),
    )
    fine = memory_service.register_debtor(
        DebtorDetails(
            name="Jane",
            phones=["(415) 555-0134", "+44 20 7946 0958 ext 12", "+86 138 0013 8000"],
            emails=["jane.debtor@example.co.uk"],
        )
    )
    refused(
        "invalid_input",
        memory_service.update_debtor_contact_details,
        fine.id,
        phones=["12"],
    )


def test_a_stored_event_that_does_not_decode_is_named_as_such(
    memory_service: LedgerService, aid: UUID
) -> None:
    """Bytes the transcoder never wrote (a damaged or doctored row) are
    stored_event_unreadable wherever they are read, not a msgpack error."""
    ledger = memory_service.ledger
    last = list(ledger.events.get(aid))[-1]
    stored = ledger.mapper.to_stored_event(last)
    ledger.recorder.insert_events(
        [
            StoredEvent(
                originator_id=aid,
                originator_version=stored.originator_version + 1,
                topic=stored.topic,
                state=b"\xc1 not msgpack",
            )
        ]
    )
    refused("stored_event_unreadable", lambda: list(ledger.events.get(aid)))


# ------------------------------------------------------------- personal data


def test_erased_debtor_cannot_be_erased_or_changed_again(
    memory_service: LedgerService, aid: UUID
) -> None:
    """After erasure the debtor is blank, changes are personal_data_erased, the debt stays."""
    debtor_id = memory_service.get_account(aid).debtor_id
    assert debtor_id is not None
    debtor = memory_service.erase_debtor(debtor_id, "right to erasure request")
    assert (debtor.name, debtor.phones, debtor.emails, debtor.addresses) == ("", [], [], [])
    refused("personal_data_erased", memory_service.erase_debtor, debtor_id, "again")
    refused(
        "personal_data_erased",
        memory_service.update_debtor_contact_details,
        debtor_id,
        phones=["+1 415 555 0199"],
    )
    assert memory_service.get_account(aid).total_balance == 120000
    assert verify_ledger(memory_service.ledger).ok


def test_unknown_debtor_is_not_found(memory_service: LedgerService) -> None:
    """Erasing a debtor that does not exist is debtor_not_found."""
    refused("debtor_not_found", memory_service.erase_debtor, uuid4(), "no such person")


def test_contact_details_are_not_shared_with_the_caller(memory_service: LedgerService) -> None:
    """Changing the list passed to update_debtor_contact_details afterwards changes nothing."""
    debtor = memory_service.register_debtor(JANE)
    phones = ["+1 415 555 0100"]
    memory_service.update_debtor_contact_details(debtor.id, phones=phones)
    phones.append("+1 415 555 0666")
    assert memory_service.get_debtor(debtor.id).phones == ["+1 415 555 0100"]


def test_account_events_never_hold_personal_data(memory_service: LedgerService, aid: UUID) -> None:
    """Jane's name, phone, email and street appear in her debtor stream but in no account event."""
    svc = memory_service
    svc.post_payment(aid, usd("10.00"), method="card", external_reference="tx-1")
    svc.record_contact(aid, channel="phone", direction="outbound", outcome="right_party_contact")
    svc.make_promise(aid, usd("100.00"), NEXT_MONTH)
    svc.add_note(aid, "called debtor about the promise")
    svc.close(aid, "uncollectible")
    secrets = [JANE.name, *JANE.phones, *JANE.emails, JANE.addresses[0]["line1"]]
    decode = svc.ledger.mapper.transcoder.decode

    account_rows = svc.ledger.recorder.select_events(aid)
    assert len(account_rows) == 6  # placed, paid, contact, promise, note, closed
    for row in account_rows:
        text = repr(decode(row.state))
        raw = bytes(row.state)
        for secret in secrets:
            assert secret not in text, (row.topic, secret)
            assert secret.encode() not in raw

    debtor_id = svc.get_account(aid).debtor_id
    assert debtor_id is not None
    debtor_state = repr(decode(svc.ledger.recorder.select_events(debtor_id)[0].state))
    assert JANE.name in debtor_state  # the check above would have seen it


# --------------------------------------------------------------------- time


def test_event_times_come_from_the_movable_clock(memory_service: LedgerService) -> None:
    """Each fact is stamped with the clock's reading, also after the clock is moved on."""
    placed_at = datetime(2026, 3, 10, 9, 30, tzinfo=START.tzinfo)
    clock = MovableClock(placed_at)  # no tick: every reading is exactly the set time
    svc = LedgerService(memory_service.ledger, clock)
    aid = svc.place_account(placement(), debtor=JANE).id
    clock.advance(timedelta(days=3, hours=2))
    paid_at = clock.current
    svc.post_payment(aid, usd("10.00"), method="cash")
    clock.set(datetime(2026, 4, 30, 23, 59, tzinfo=START.tzinfo))
    svc.accrue_interest(aid, usd("12.00"), rate_basis_points=1200)

    events = stored_events(svc, aid)
    assert [e.timestamp for e in events] == [
        placed_at,
        paid_at,
        datetime(2026, 4, 30, 23, 59, tzinfo=START.tzinfo),
    ]
    assert events[1].received_at == paid_at == placed_at + timedelta(days=3, hours=2)
    account = svc.get_account(aid)
    assert account.placed_at == placed_at
    assert account.last_payment_date == date(2026, 3, 13)


# ------------------------------------------------------------ concurrency & store


def test_writer_that_keeps_losing_the_race_gives_up(tmp_path: Path, clock: MovableClock) -> None:
    """Losing every race to another process's writes is concurrency_conflict; nothing is saved."""
    url = f"sqlite:///{tmp_path / 'arrears.db'}"
    here, there = open_ledger(url), open_ledger(url)
    try:
        mine = LedgerService(here, clock)
        theirs = LedgerService(there, clock)
        aid = mine.place_account(placement(), debtor=JANE).id
        mine.get_account(aid)

        def id_while_someone_else_writes() -> str:
            theirs.add_note(aid, "written by another process")
            return uuid4().hex

        loser = LedgerService(here, clock, new_id=id_while_someone_else_writes, max_attempts=3)
        refused("concurrency_conflict", loser.add_note, aid, "mine")
        account = mine.get_account(aid)
        assert account.note_count == 3
        assert account.version == 4
    finally:
        here.close()
        there.close()


def test_unreachable_store_is_a_store_error(tmp_path: Path) -> None:
    """Opening a store in a directory that does not exist is store_error, in one line."""
    err = refused("store_error", open_ledger, f"sqlite:///{tmp_path / 'missing' / 'x.db'}")
    assert "\n" not in err.message


def test_an_installment_is_missed_once_and_only_after_its_due_date(
    memory_service: LedgerService, aid: UUID, clock: MovableClock
) -> None:
    """Missed before its day: installment_not_due; missed twice: installment_already_missed."""
    memory_service.agree_plan(
        aid,
        kind="installment",
        total=usd("1200.00"),
        installments=[
            Installment(NEXT_MONTH, usd("600.00")),
            Installment(IN_TWO_MONTHS, usd("600.00")),
        ],
    )
    refused("installment_not_due", memory_service.miss_installment, aid, NEXT_MONTH)
    clock.set(datetime.combine(NEXT_MONTH, START.timetz()) + timedelta(days=1))
    memory_service.miss_installment(aid, NEXT_MONTH)
    refused("installment_already_missed", memory_service.miss_installment, aid, NEXT_MONTH)
    assert memory_service.get_account(aid).plan["missed"] == 1  # type: ignore[index]


# ------------------------------------------------------------- contact gate codes


def test_a_blocked_contact_is_refused_with_its_verdicts(clock: MovableClock) -> None:
    """Whatever the rules, a block becomes ``contact_blocked`` carrying every verdict."""
    from plugins.types import Verdict

    def no_sms(account: Any, debtor: Any, channel: str, *rest: Any) -> list[Verdict]:
        return [Verdict("block" if channel == "sms" else "allow", "t.no_sms", "2", "no", "x")]

    app = open_ledger("sqlite:///:memory:")
    svc = LedgerService(app, clock, contact_rules=no_sms)
    try:
        aid = svc.place_account(placement(), debtor=JANE).id
        error = refused("contact_blocked", svc.request_message, aid, channel="sms", template="t")
        assert error.details["verdicts"] == [
            {
                "rule": "t.no_sms",
                "version": "2",
                "outcome": "block",
                "reason": "no",
                "citation": "x",
            }
        ]
        assert svc.request_message(aid, channel="email", template="t").status == "queued"
    finally:
        app.close()


def test_breathing_space_refuses_interest_fees_and_a_second_moratorium(
    memory_service: LedgerService, aid: UUID
) -> None:
    svc = memory_service
    svc.start_breathing_space(aid, kind="standard", started_on=START.date(), reference="BS-1")
    refused("breathing_space_active", svc.accrue_interest, aid, usd("1.00"))
    refused("breathing_space_active", svc.assess_fee, aid, usd("1.00"), "late")
    refused(  # a charge by another name is frozen too; a credit is not
        "breathing_space_active",
        svc.adjust_balance,
        aid,
        component="fees",
        direction="debit",
        amount=usd("1.00"),
        reason="collection fee",
    )
    svc.adjust_balance(aid, component="fees", direction="credit", amount=usd("1.00"), reason="x")
    refused(
        "breathing_space_active",
        svc.start_breathing_space,
        aid,
        kind="mental_health",
        started_on=START.date(),
        reference="BS-2",
    )
    refused("invalid_transition", svc.end_crisis_treatment, aid, START.date())
    svc.cancel_breathing_space(aid, START.date() - timedelta(days=0), reason="adviser cancelled")
    refused("invalid_transition", svc.cancel_breathing_space, aid, IN_TWO_MONTHS, "again")
    # The same cancellation again (a retried form) changes nothing and records nothing.
    version = svc.get_account(aid).version
    refused("invalid_transition", svc.cancel_breathing_space, aid, START.date(), "again")
    assert svc.get_account(aid).version == version
    assert balance(svc, aid)["fees"] == 4900


# ------------------------------------------------ API tokens, roles, idempotency keys


def test_a_missing_malformed_or_revoked_token_is_unauthorized(
    memory_service: LedgerService,
) -> None:
    """No token, garbage, or a revoked token: unauthorized."""
    tokens = memory_service.tokens()
    principal, token = tokens.create("admin")
    tokens.revoke(principal.token_id)
    for bad in (None, "arr_nope", token):
        refused("unauthorized", tokens.require, bad)


def test_a_role_acting_beyond_its_permissions_is_forbidden() -> None:
    """An auditor may read an account but not record a payment on it: forbidden."""
    from ledger.access import Principal, require

    summary = {"account_id": "a1", "creditor": "acme-bank", "holder": {"kind": "creditor"}}
    refused("forbidden", require, Principal("t1", "auditor"), "payment.write", summary)


def test_an_idempotency_key_reused_for_another_request_is_refused(
    memory_service: LedgerService,
) -> None:
    """The same Idempotency-Key with a different body: idempotency_key_reused."""
    keys = memory_service.idempotency()
    assert keys.begin("t1", "key-1", "hash-of-first-body").outcome == "proceed"
    refused("idempotency_key_reused", keys.reserve, "t1", "key-1", "hash-of-another-body")


def test_message_outcomes_are_recorded_once_and_never_go_backwards(
    memory_service: LedgerService, aid: UUID
) -> None:
    svc = memory_service
    refused("unknown_message", svc.record_message_outcome, aid, "nope", "sent")
    svc.request_message(aid, channel="sms", template="reminder", message_id="m-1")
    assert svc.record_message_outcome(aid, "m-1", "sent", "prov-9") is True
    assert svc.record_message_outcome(aid, "m-1", "sent", "prov-9") is False
    assert svc.record_message_outcome(aid, "m-1", "delivered") is True
    assert svc.record_message_outcome(aid, "m-1", "sent") is False  # late, out of order
    assert svc.record_message_outcome(aid, "m-1", "failed") is False
    assert svc.get_account(aid).messages["m-1"]["status"] == "delivered"
    svc.request_message(aid, channel="sms", template="reminder", message_id="m-2")
    assert svc.record_message_outcome(aid, "m-2", "failed", "dead after 8 attempts") is True
    assert svc.record_message_outcome(aid, "m-2", "failed", "again") is False
    assert svc.record_message_outcome(aid, "m-2", "sent", "prov-10") is True  # retried by hand
    assert svc.get_account(aid).messages["m-2"]["status"] == "sent"
    assert svc.acknowledge_delivery(
        aid, partner_kind="law_firm", partner="Dewey", delivery_key="k-1"
    )
    assert not svc.acknowledge_delivery(
        aid, partner_kind="law_firm", partner="Dewey", delivery_key="k-1"
    )
