"""Random command sequences against one account, checked against an independent model.

Each example opens a fresh in-memory ledger and places one debt, then runs up to
25 commands through the service layer while the clock moves.  The model predicts
every outcome (including which refusal, by code) and keeps its own per-component
ledger of what was placed, added, paid, reversed, waived and credited.  After
every step the live account must match the model, rebuild identically from its
stored events, and the hash chain must verify.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from conftest import JANE, START, placement
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from ledger.application import open_ledger
from ledger.clock import MovableClock
from ledger.errors import LedgerError
from ledger.money import Money
from ledger.services import Installment, LedgerService
from ledger.tamper.verify import verify_ledger

COMPONENTS = ("principal", "interest", "fees")
#: The contractual default, written out here so the model does not reuse the code under test.
WATERFALL = ("fees", "interest", "principal")
REFS = ("tx-0", "tx-1", "tx-2", "tx-3")
OPEN = ("active", "with_agency")

amounts = st.integers(min_value=-100, max_value=300_000)


def usd(minor: int) -> Money:
    return Money(minor, "USD")


class AccountMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.app = open_ledger("sqlite:///:memory:")
        self.clock = MovableClock(START, tick=timedelta(seconds=1))
        self.svc = LedgerService(self.app, self.clock)
        self.aid: UUID | None = None
        # ---- the model
        self.placed = dict.fromkeys(COMPONENTS, 0)
        self.added = dict.fromkeys(COMPONENTS, 0)  # interest, fees, debit adjustments
        self.paid = dict.fromkeys(COMPONENTS, 0)  # allocated by every payment ever applied
        self.restored = dict.fromkeys(COMPONENTS, 0)  # given back by reversals
        self.waived = dict.fromkeys(COMPONENTS, 0)
        self.credited = dict.fromkeys(COMPONENTS, 0)  # credit adjustments
        self.payments: dict[str, dict[str, Any]] = {}
        self.refs: dict[str, tuple[str, int]] = {}  # ref -> ("applied" | "forwarded", amount)
        self.forwarded = 0
        self.status = "active"
        self.promise_open = False
        self.plan: dict[str, int] | None = None  # {"n", "total", "paid"}
        self.plans_agreed = 0

    def teardown(self) -> None:
        self.app.close()

    # ------------------------------------------------------------ helpers

    @property
    def account_id(self) -> UUID:
        assert self.aid is not None
        return self.aid

    def expected_balance(self) -> dict[str, int]:
        return {
            c: self.placed[c]
            + self.added[c]
            - self.paid[c]
            + self.restored[c]
            - self.waived[c]
            - self.credited[c]
            for c in COMPONENTS
        }

    def total(self) -> int:
        return sum(self.expected_balance().values())

    def state(self) -> dict[str, Any]:
        account = self.svc.get_account(self.account_id)
        return copy.deepcopy({k: v for k, v in account.__dict__.items() if k != "_pending_events"})

    def closed_code(self) -> str | None:
        """The refusal every non-note write gets once the debt has left."""
        return {"sold": "account_sold", "closed": "account_closed"}.get(self.status)

    def attempt(self, expected: str | None, call: Callable[[], Any]) -> Any:
        """Run ``call``; it must succeed, or be refused with ``expected`` and change nothing."""
        if expected is None:
            return call()
        before = self.state()
        with pytest.raises(LedgerError) as caught:
            call()
        assert caught.value.code == expected, caught.value.as_dict()
        assert self.state() == before
        return None

    def leave(self, status: str) -> None:
        self.status = status
        self.promise_open = False
        self.plan = None

    # ------------------------------------------------------------- setup

    @initialize(
        principal=st.integers(1, 500_000),
        interest=st.integers(0, 50_000),
        fees=st.integers(0, 10_000),
        history=st.integers(0, 45),
    )
    def place(self, principal: int, interest: int, fees: int, history: int) -> None:
        account = self.svc.place_account(
            placement(principal=usd(principal), interest=usd(interest), fees=usd(fees)),
            debtor=JANE,
        )
        self.aid = account.id
        self.placed = {"principal": principal, "interest": interest, "fees": fees}
        # An older account: enough earlier notes that the run crosses the snapshot
        # interval (every 50 events), so loading from a snapshot is checked too.
        for n in range(history):
            self.svc.add_note(account.id, f"earlier note {n}")

    # ------------------------------------------------------------- rules

    @rule(days=st.integers(0, 45), minutes=st.integers(0, 600))
    def time_passes(self, days: int, minutes: int) -> None:
        self.clock.advance(timedelta(days=days, minutes=minutes))

    @rule(amount=amounts)
    def accrue_interest(self, amount: int) -> None:
        expected = self.closed_code() or (None if amount > 0 else "non_positive_amount")
        self.attempt(expected, lambda: self.svc.accrue_interest(self.account_id, usd(amount)))
        if expected is None:
            self.added["interest"] += amount

    @rule(amount=amounts)
    def assess_fee(self, amount: int) -> None:
        expected = self.closed_code() or (None if amount > 0 else "non_positive_amount")
        self.attempt(expected, lambda: self.svc.assess_fee(self.account_id, usd(amount), "late"))
        if expected is None:
            self.added["fees"] += amount

    @rule(
        component=st.sampled_from(COMPONENTS),
        direction=st.sampled_from(["debit", "credit"]),
        amount=amounts,
    )
    def adjust(self, component: str, direction: str, amount: int) -> None:
        expected = self.closed_code()
        if expected is None and amount <= 0:
            expected = "non_positive_amount"
        if (
            expected is None
            and direction == "credit"
            and amount > self.expected_balance()[component]
        ):
            expected = "adjustment_exceeds_balance"
        self.attempt(
            expected,
            lambda: self.svc.adjust_balance(
                self.account_id,
                component=component,
                direction=direction,
                amount=usd(amount),
                reason="correction",
            ),
        )
        if expected is None:
            target = self.added if direction == "debit" else self.credited
            target[component] += amount

    @rule(amount=st.integers(-10, 800_000))
    def pay(self, amount: int) -> None:
        self._pay(amount, None, same_amount=False)

    @rule(
        amount=st.integers(-10, 800_000),
        ref=st.sampled_from(REFS),
        same_amount=st.booleans(),
    )
    def pay_with_reference(self, amount: int, ref: str, same_amount: bool) -> None:
        """Processors retry: some references repeat, with the same or another amount."""
        self._pay(amount, ref, same_amount)

    def _pay(self, amount: int, ref: str | None, same_amount: bool) -> None:
        known = self.refs.get(ref) if ref is not None else None
        if known is not None and same_amount:
            amount = known[1]
        call = lambda: self.svc.post_payment(  # noqa: E731
            self.account_id, usd(amount), method="card", external_reference=ref
        )
        if known is not None:
            kind, original = known
            if kind == "applied" and amount != original:
                self.attempt("idempotency_conflict", call)
                return
            before = self.state()
            try:
                result = call()
            except LedgerError as e:  # a forwarded original with another amount
                assert (
                    kind == "forwarded"
                    and amount != original
                    and (e.code == "idempotency_conflict")
                ), e.as_dict()
            else:
                assert result.created is False
                assert result.forwarded is (kind == "forwarded")
            assert self.state() == before
            return
        if amount <= 0:
            self.attempt("non_positive_amount", call)
            return
        result = call()
        assert result.created is True
        if ref is not None:
            self.refs[ref] = ("forwarded" if self.status not in OPEN else "applied", amount)
        if self.status not in OPEN:
            assert result.forwarded is True
            self.forwarded += amount
            return
        assert result.forwarded is False
        # The model's own waterfall.
        remaining, allocation, owed = amount, {}, self.expected_balance()
        for component in WATERFALL:
            take = min(remaining, owed[component])
            if take:
                allocation[component] = take
                remaining -= take
        if remaining:
            allocation["credit"] = remaining
        recorded = self.svc.get_account(self.account_id).payments[result.payment_id]
        assert recorded["allocation"] == allocation
        for component in COMPONENTS:
            self.paid[component] += allocation.get(component, 0)
        self.payments[result.payment_id] = {
            "amount": amount,
            "allocation": allocation,
            "reversed": False,
            "plan": self.plan["n"] if self.plan else None,
        }
        if self.plan is not None:
            self.plan["paid"] += amount

    @rule(extra=st.integers(0, 5_000))
    def pay_off(self, extra: int) -> None:
        """Pay everything owed, sometimes with a little more (which becomes credit)."""
        self._pay(self.total() + extra, None, same_amount=False)

    @precondition(lambda self: bool(self.payments))
    @rule(data=st.data(), unknown=st.integers(0, 7))
    def reverse(self, data: st.DataObject, unknown: int) -> None:
        payment_id = (
            "not-a-payment"
            if unknown == 0
            else data.draw(st.sampled_from(sorted(self.payments)), label="payment")
        )
        payment = self.payments.get(payment_id)
        expected = self.closed_code()
        if expected is None and payment is None:
            expected = "unknown_payment"
        if expected is None and payment is not None and payment["reversed"]:
            expected = "payment_already_reversed"
        self.attempt(
            expected,
            lambda: self.svc.reverse_payment(self.account_id, payment_id, kind="nsf", reason="nsf"),
        )
        if expected is None:
            assert payment is not None
            payment["reversed"] = True
            for component in COMPONENTS:
                self.restored[component] += payment["allocation"].get(component, 0)
            if self.plan is not None and payment["plan"] == self.plan["n"]:
                self.plan["paid"] = max(0, self.plan["paid"] - payment["amount"])

    @rule(
        kind=st.sampled_from(["settlement", "interest", "fee"]),
        partial=st.booleans(),
        amount=st.integers(-5, 60_000),
        data=st.data(),
    )
    def waive(self, kind: str, partial: bool, amount: int, data: st.DataObject) -> None:
        covered = {"settlement": COMPONENTS, "interest": ("interest",), "fee": ("fees",)}[kind]
        owed = self.expected_balance()
        parts: dict[str, int]
        if partial:
            component = data.draw(st.sampled_from(covered), label="component")
            parts = {component: amount}
        else:
            parts = {c: owed[c] for c in covered if owed[c] > 0}
        expected = self.closed_code()
        if expected is None and not parts:
            expected = "non_positive_amount"
        for component, part in parts.items():
            if expected is None and part <= 0:
                expected = "non_positive_amount"
            if expected is None and part > owed[component]:
                expected = "waiver_exceeds_balance"
        self.attempt(
            expected,
            lambda: self.svc.waive(
                self.account_id,
                kind=kind,
                reason="hardship",
                amounts={c: usd(p) for c, p in parts.items()} if partial else None,
            ),
        )
        if expected is None:
            for component, part in parts.items():
                self.waived[component] += part

    @rule(amount=st.integers(-5, 400_000), days=st.integers(-3, 60))
    def promise(self, amount: int, days: int) -> None:
        due = self.clock.current.date() + timedelta(days=days)
        expected = self.closed_code()
        if expected is None and amount <= 0:
            expected = "non_positive_amount"
        if expected is None and amount > self.total():
            expected = "promise_exceeds_balance"
        if expected is None and days < 0:
            expected = "promise_due_in_past"
        if expected is None and self.promise_open:
            expected = "promise_already_open"
        self.attempt(expected, lambda: self.svc.make_promise(self.account_id, usd(amount), due))
        if expected is None:
            self.promise_open = True

    @rule(how=st.sampled_from(["keep", "break", "cancel"]))
    def end_promise(self, how: str) -> None:
        expected = self.closed_code() or (None if self.promise_open else "no_open_promise")
        calls = {
            "keep": lambda: self.svc.keep_promise(self.account_id),
            "break": lambda: self.svc.break_promise(self.account_id),
            "cancel": lambda: self.svc.cancel_promise(self.account_id, "changed"),
        }
        self.attempt(expected, calls[how])
        if expected is None:
            self.promise_open = False

    @rule(
        kind=st.sampled_from(["installment", "settlement"]),
        count=st.integers(1, 4),
        percent=st.integers(1, 110),
    )
    def agree_plan(self, kind: str, count: int, percent: int) -> None:
        owed = self.total()
        total = owed if kind == "installment" else owed * percent // 100
        count = max(1, min(count, total))
        first_due = self.clock.current.date() + timedelta(days=7)
        parts = [total // count] * count
        parts[-1] += total - sum(parts)
        schedule = [
            Installment(first_due + timedelta(days=30 * i), usd(part))
            for i, part in enumerate(parts)
        ]
        expected = self.closed_code()
        if expected is None and self.plan is not None:
            expected = "plan_already_active"
        if expected is None and total <= 0:
            expected = "non_positive_amount"
        if expected is None and kind == "settlement" and total > owed:
            expected = "installments_mismatch"
        self.attempt(
            expected,
            lambda: self.svc.agree_plan(
                self.account_id, kind=kind, total=usd(total), installments=schedule
            ),
        )
        if expected is None:
            self.plans_agreed += 1
            self.plan = {"n": self.plans_agreed, "total": total, "paid": 0}

    @rule(how=st.sampled_from(["cancel", "complete"]))
    def end_plan(self, how: str) -> None:
        expected = self.closed_code()
        if expected is None and self.plan is None:
            expected = "no_active_plan"
        if (
            expected is None
            and how == "complete"
            and self.plan is not None
            and self.plan["paid"] < self.plan["total"]
        ):
            expected = "balance_outstanding"
        call = (
            (lambda: self.svc.cancel_plan(self.account_id, "replaced"))
            if how == "cancel"
            else (lambda: self.svc.complete_plan(self.account_id))
        )
        self.attempt(expected, call)
        if expected is None:
            self.plan = None

    @rule(roll=st.integers(0, 3))
    def agency(self, roll: int) -> None:
        """Now and then, place with an agency when active, recall when with one."""
        if roll:
            return
        if self.status == "with_agency":
            self.svc.recall_from_agency(self.account_id, "recalled")
            self.status = "active"
            return
        expected = self.closed_code()
        self.attempt(
            expected,
            lambda: self.svc.place_with_agency(
                self.account_id, agency="Northwind", commission_basis_points=2500
            ),
        )
        if expected is None:
            self.status = "with_agency"

    @rule()
    def note(self) -> None:
        before = self.svc.get_account(self.account_id).note_count
        self.svc.add_note(self.account_id, "spoke to the debtor")
        assert self.svc.get_account(self.account_id).note_count == before + 1

    @rule(roll=st.integers(0, 5))
    def sell(self, roll: int) -> None:
        if roll:  # rarely: most sequences should keep working the debt
            return
        expected = self.closed_code()
        if expected is None and self.status != "active":
            expected = "invalid_transition"
        self.attempt(
            expected,
            lambda: self.svc.sell(
                self.account_id, buyer="Summit", price=usd(100), portfolio_reference="PF"
            ),
        )
        if expected is None:
            self.leave("sold")

    @rule(roll=st.integers(0, 5), reason=st.sampled_from(["uncollectible", "paid", "settled"]))
    def close(self, roll: int, reason: str) -> None:
        if roll:
            return
        expected = self.closed_code()
        if expected is None and reason == "paid" and self.total() > 0:
            expected = "balance_outstanding"
        self.attempt(expected, lambda: self.svc.close(self.account_id, reason))
        if expected is None:
            self.leave("closed")

    # -------------------------------------------------------- invariants

    @invariant()
    @precondition(lambda self: self.aid is not None)
    def balances_match_the_model(self) -> None:
        account = self.svc.get_account(self.account_id)
        assert all(v >= 0 for v in account.balance.values()), account.balance
        assert account.balance == self.expected_balance()
        unreversed = [p for p in self.payments.values() if not p["reversed"]]
        assert account.credit_balance == sum(p["allocation"].get("credit", 0) for p in unreversed)
        assert account.credit_balance >= 0
        assert account.paid_total == sum(p["amount"] for p in unreversed)
        assert account.waived_total == sum(self.waived.values())
        assert account.forwarded_total == self.forwarded
        assert account.status == self.status
        assert (account.open_promise is not None) == self.promise_open
        assert (account.plan is not None) == (self.plan is not None)
        if self.plan is not None and account.plan is not None:
            assert account.plan["paid"] == self.plan["paid"]

    @invariant()
    @precondition(lambda self: self.aid is not None)
    def replay_rebuilds_the_live_state(self) -> None:
        live = self.state()
        rebuilt: Any = None
        for event in self.app.events.get(self.account_id):
            rebuilt = event.mutate(rebuilt)
        assert {k: v for k, v in rebuilt.__dict__.items() if k != "_pending_events"} == live
        # The repository's own rebuild starts from the latest snapshot, if any.
        reloaded = self.app.repository.get(self.account_id, version=live["_version"])
        assert {k: v for k, v in reloaded.__dict__.items() if k != "_pending_events"} == live

    @invariant()
    @precondition(lambda self: self.aid is not None)
    def hash_chain_verifies(self) -> None:
        report = verify_ledger(self.app)
        assert report.ok, [p.describe() for p in report.problems]


AccountMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestAccountMachine = AccountMachine.TestCase
TestAccountMachine.__doc__ = (
    "Any sequence of commands keeps the account equal to the model, replayable and verifiable."
)
