"""A realistic, deterministic demo portfolio, built through the service layer.

Every account gets a story (a payer, a promise breaker, a plan that defaults, a
settlement, a dispute, a legal referral, a sale ...).  The stories are laid on
one timeline and played in time order with a movable clock, so the ledger looks
like months of real work, and the same seed always gives the same ledger.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import structlog

from ledger import errors
from ledger.clock import MovableClock
from ledger.domain.ids import account_id as derive_account_id
from ledger.money import Money
from ledger.services import DebtorDetails, Installment, LedgerService, Placement

log = structlog.get_logger("arrears.demo")

DEMO_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

CREDITORS = [
    ("northwind-bank", "Northwind Bank N.A.", "USD", "America/New_York", "US-NY"),
    ("lakeside-telecom", "Lakeside Telecom Inc.", "USD", "America/Chicago", "US-IL"),
    ("pacific-health", "Pacific Health Partners", "USD", "America/Los_Angeles", "US-CA"),
    ("thames-energy", "Thames Energy Ltd", "GBP", "Europe/London", "GB"),
    ("huaxia-credit", "Huaxia Consumer Credit", "CNY", "Asia/Shanghai", "CN"),
]
AGENCIES = ["Apex Recovery", "Blue Ridge Collections", "Harbor Receivables"]
LAW_FIRMS = ["Keller & Stone LLP", "Marsh Legal Group"]
BUYERS = ["Summit Debt Holdings", "Granite Portfolio Partners"]
AGENTS = [f"agent-{n:02d}" for n in range(1, 13)]
FIRST = [
    "Alex",
    "Maria",
    "Wei",
    "Priya",
    "John",
    "Fatima",
    "Liam",
    "Sofia",
    "Chen",
    "Olu",
    "Emma",
    "Raj",
]
LAST = [
    "Walker",
    "Garcia",
    "Zhang",
    "Patel",
    "Smith",
    "Khan",
    "Murphy",
    "Rossi",
    "Li",
    "Adeyemi",
    "Brown",
]
STORIES = [
    ("payer", 14),
    ("promise_breaker", 12),
    ("plan", 14),
    ("plan_default", 8),
    ("settlement", 8),
    ("nsf", 6),
    ("dispute", 6),
    ("complaint", 4),
    ("cease", 4),
    ("agency", 8),
    ("legal", 6),
    ("sold", 5),
    ("paid_in_full", 5),
    ("hardship", 3),
    ("silent", 7),
]


@dataclass(order=True)
class Step:
    at: datetime
    order: int
    account_index: int
    action: Callable[[LedgerService], Any]


@dataclass
class DemoResult:
    accounts_created: int
    accounts_skipped: int
    steps: int
    refused: int


def _ids(rng: random.Random) -> Callable[[], str]:
    return lambda: f"{rng.getrandbits(128):032x}"


class _Story:
    """Builds the steps of one account's story; amounts in minor units of its currency."""

    def __init__(self, rng: random.Random, index: int, new_id: Callable[[], str]) -> None:
        self.rng = rng
        self.index = index
        creditor, original, currency, tz, jurisdiction = CREDITORS[index % len(CREDITORS)]
        self.creditor = creditor
        self.currency = currency
        self.tz = tz
        self.reference = f"{creditor[:3].upper()}-{100000 + index}"
        self.aid = derive_account_id(creditor, self.reference)
        scale = 100 if currency != "CNY" else 700
        principal = rng.randint(150, 9000) * scale
        self.balance = (
            principal + rng.randint(0, 90) * scale // 2 + rng.choice([0, 2500, 3500, 5000])
        )
        self.start = DEMO_START + timedelta(days=rng.randint(0, 20), minutes=rng.randint(0, 480))
        charge_off = self.start.date() - timedelta(days=rng.randint(20, 1400))
        interest = self.balance - principal
        fees = min(interest, rng.choice([0, 2500, 3500, 5000]))
        self.placement = Placement(
            creditor=creditor,
            reference=self.reference,
            currency=currency,
            principal=Money(principal, currency),
            interest=Money(interest - fees, currency),
            fees=Money(fees, currency),
            itemization_date=charge_off,
            itemization_kind=rng.choice(
                ["charge_off", "charge_off", "last_statement", "last_payment"]
            ),
            original_creditor=original,
            charge_off_date=charge_off,
            last_payment_date=charge_off - timedelta(days=rng.randint(30, 200)),
            last_payment_amount=Money(rng.randint(20, 300) * scale, currency),
        )
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        self.debtor = DebtorDetails(
            name=name,
            phones=[f"+1 555 {rng.randint(200, 999)} {rng.randint(1000, 9999)}"],
            emails=[f"{name.lower().replace(' ', '.')}{index}@example.net"],
            addresses=[
                {
                    "line1": f"{rng.randint(1, 999)} Main Street",
                    "city": "Springfield",
                    "country": jurisdiction[:2],
                }
            ],
            time_zone=tz,
            jurisdiction=jurisdiction,
        )
        self.steps: list[Step] = []
        self.seq = 0
        self.new_id = new_id

    def money(self, minor: int) -> Money:
        return Money(minor, self.currency)

    def at(self, day: int, hour: int = 0) -> datetime:
        return self.start + timedelta(days=day, hours=hour, minutes=self.rng.randint(0, 50))

    def add(self, day: float, action: Callable[[LedgerService], Any]) -> None:
        self.seq += 1
        when = self.start + timedelta(days=day, minutes=self.seq)
        self.steps.append(Step(when, self.seq, self.index, action))

    def add_local(self, day: int, local: time, action: Callable[[LedgerService], Any]) -> None:
        """A step at a wall-clock time in the debtor's zone, never before the placement."""
        zone = ZoneInfo(self.tz)
        local_day = (self.start + timedelta(days=day)).astimezone(zone).date()
        when = datetime.combine(local_day, local, tzinfo=zone).astimezone(UTC)
        while when <= self.start:
            when += timedelta(days=1)
        self.seq += 1
        self.steps.append(Step(when, self.seq, self.index, action))

    def contacts(self, first_day: int, attempts: int, reach: bool) -> int:
        day = first_day
        for n in range(attempts):
            last = n == attempts - 1
            outcome = (
                "right_party_contact"
                if (reach and last)
                else self.rng.choice(
                    ["no_answer", "left_message", "busy", "no_answer", "wrong_number"]
                )
            )
            channel = (
                "phone"
                if outcome != "no_answer" or n % 3
                else self.rng.choice(["sms", "email", "letter"])
            )
            if channel in ("sms", "email", "letter"):
                outcome = "delivered"
            agent = self.rng.choice(AGENTS)
            # Contacts happen in the debtor's business hours; one story in 50 has a call
            # logged at 21:30 local time, for ``arrears compliance audit`` to find.
            late = self.index % 50 == 3 and n == 0
            hour = time(21, 30) if late else time(self.rng.randint(10, 16), self.rng.randint(0, 59))
            self.add_local(day, hour, self._contact_step(channel, outcome, agent))
            day += self.rng.randint(1, 3)
        return day

    def _contact_step(
        self, channel: str, outcome: str, agent: str
    ) -> Callable[[LedgerService], Any]:
        def step(s: LedgerService) -> Any:
            return s.record_contact(
                self.aid, channel=channel, direction="outbound", outcome=outcome, agent=agent
            )

        return step

    def pay(self, day: int, minor: int, method: str = "ach") -> None:
        ref = f"demo-{self.index}-{self.seq}-{minor}"
        self.add(
            day,
            lambda s: s.post_payment(
                self.aid, self.money(minor), method=method, external_reference=ref
            ),
        )

    def build(self, story: str) -> list[Step]:
        rng = self.rng
        self.add(0, lambda s: s.place_account(self.placement, debtor=self.debtor))
        if rng.random() < 0.3:
            self.add(1, lambda s: s.give_consent(self.aid, "email", "signed e-sign consent form"))
        if rng.random() < 0.25:
            self.add(
                30,
                lambda s: s.accrue_interest(
                    self.aid, self.money(max(1, self.balance // 100)), rate_basis_points=1200
                ),
            )
        getattr(self, f"_{story}")()
        return self.steps

    def _promise(self, day: int, amount: int, due_in: int) -> None:
        agent = self.rng.choice(AGENTS)
        due = (self.start + timedelta(days=day + due_in)).date()
        self.add(day, lambda s: s.make_promise(self.aid, self.money(amount), due, agent=agent))

    def _payer(self) -> None:
        day = self.contacts(2, self.rng.randint(1, 4), reach=True)
        amount = max(1, self.balance // self.rng.choice([4, 5, 10]))
        self._promise(day, amount, 10)
        self.pay(day + 8, amount, self.rng.choice(["card", "ach", "check"]))
        self.add(day + 11, lambda s: s.keep_promise(self.aid))

    def _promise_breaker(self) -> None:
        day = self.contacts(2, self.rng.randint(2, 5), reach=True)
        self._promise(day, max(1, self.balance // 6), 7)
        self.add(day + 10, lambda s: s.break_promise(self.aid))
        self.contacts(day + 12, 2, reach=False)

    def _schedule(self, day: int, total: int, count: int) -> list[Installment]:
        base = total // count
        amounts = [base] * count
        amounts[-1] += total - base * count
        first = (self.start + timedelta(days=day + 7)).date()
        return [
            Installment(first + timedelta(days=30 * i), self.money(a))
            for i, a in enumerate(amounts)
        ]

    def _plan(self) -> None:
        day = self.contacts(3, self.rng.randint(1, 3), reach=True)
        count = self.rng.randint(3, 6)
        schedule = self._schedule(day, self.balance, count)
        self.add(
            day,
            lambda s: s.agree_plan(
                self.aid, kind="installment", total=self.money(self.balance), installments=schedule
            ),
        )
        for i, inst in enumerate(schedule[:2]):
            self.pay(day + 7 + 30 * i, inst.amount.minor)
        if self.rng.random() < 0.5:

            def amend(s: LedgerService) -> None:
                remaining = s.get_account(self.aid).total_balance
                later = self._schedule(day + 70, remaining, 4)
                s.amend_plan(
                    self.aid,
                    total=self.money(remaining),
                    installments=later,
                    reason="debtor asked for smaller installments",
                )

            self.add(day + 70, amend)

    def _plan_default(self) -> None:
        day = self.contacts(3, 2, reach=True)
        schedule = self._schedule(day, self.balance, 4)
        self.add(
            day,
            lambda s: s.agree_plan(
                self.aid, kind="installment", total=self.money(self.balance), installments=schedule
            ),
        )
        self.pay(day + 7, schedule[0].amount.minor)
        for inst in schedule[1:3]:
            self.add((inst.due_date - self.start.date()).days + 5, self._miss_step(inst.due_date))
        self.add(
            (schedule[2].due_date - self.start.date()).days + 6, lambda s: s.default_plan(self.aid)
        )

    def _miss_step(self, due: date) -> Callable[[LedgerService], Any]:
        return lambda s: s.miss_installment(self.aid, due)

    def _settlement(self) -> None:
        day = self.contacts(2, 2, reach=True)
        total = self.balance * self.rng.choice([50, 60, 70]) // 100
        schedule = self._schedule(day, total, 2)
        self.add(
            day,
            lambda s: s.agree_plan(
                self.aid, kind="settlement", total=self.money(total), installments=schedule
            ),
        )
        for inst in schedule:
            self.pay((inst.due_date - self.start.date()).days - 1, inst.amount.minor, "card")
        end = (schedule[-1].due_date - self.start.date()).days + 1
        self.add(end, lambda s: s.complete_plan(self.aid))
        self.add(
            end, lambda s: s.waive(self.aid, kind="settlement", reason="settlement paid in full")
        )
        self.add(end, lambda s: s.close(self.aid, "settled"))

    def _nsf(self) -> None:
        day = self.contacts(2, 2, reach=True)
        amount = max(1, self.balance // 3)
        ref = f"demo-nsf-{self.index}"
        self.add(
            day,
            lambda s: s.post_payment(
                self.aid, self.money(amount), method="check", external_reference=ref
            ),
        )

        def reverse(s: LedgerService) -> None:
            account = s.get_account(self.aid)
            payment_id = account.find_payment_by_reference(ref)
            assert payment_id is not None
            s.reverse_payment(
                self.aid,
                payment_id,
                kind=self.rng.choice(["nsf", "chargeback"]),
                reason="returned by bank",
            )

        self.add(day + 6, reverse)
        self.contacts(day + 8, 2, reach=False)

    def _dispute(self) -> None:
        day = self.contacts(2, 1, reach=True)
        holder: dict[str, str] = {}

        def raise_it(s: LedgerService) -> None:
            holder["id"] = s.raise_dispute(
                self.aid, "debtor does not recognise the debt", within_validation_period=True
            )[1]

        self.add(day, raise_it)
        self.add(
            day + 12,
            lambda s: s.provide_verification(self.aid, holder["id"], "mailed copy of statement"),
        )
        outcome = self.rng.choice(["rejected", "upheld", "corrected"])
        self.add(day + 25, lambda s: s.resolve_dispute(self.aid, holder["id"], outcome))
        if outcome == "upheld":
            self.add(day + 26, lambda s: s.close(self.aid, "uncollectible", "dispute upheld"))

    def _complaint(self) -> None:
        day = self.contacts(2, 3, reach=True)
        holder: dict[str, str] = {}

        def receive(s: LedgerService) -> None:
            holder["id"] = s.receive_complaint(
                self.aid, channel="email", category="too many calls"
            )[1]

        self.add(day, receive)
        self.add(
            day + 9,
            lambda s: s.resolve_complaint(
                self.aid, holder["id"], "apology and call frequency reduced"
            ),
        )

    def _cease(self) -> None:
        day = self.contacts(2, 2, reach=True)
        self.add(day + 1, lambda s: s.receive_cease(self.aid, "letter"))

    def _agency(self) -> None:
        agency = self.rng.choice(AGENCIES)
        self.add(
            3,
            lambda s: s.place_with_agency(
                self.aid, agency=agency, commission_basis_points=self.rng.choice([1800, 2500, 3000])
            ),
        )
        self.contacts(5, 3, reach=True)
        self.pay(20, max(1, self.balance // 5))
        self.add(90, lambda s: s.recall_from_agency(self.aid, "placement period ended"))

    def _legal(self) -> None:
        self.contacts(2, 4, reach=False)
        firm = self.rng.choice(LAW_FIRMS)
        self.add(20, lambda s: s.refer_to_law_firm(self.aid, firm))
        self.add(
            35,
            lambda s: s.change_legal_status(
                self.aid, "suit_filed", court_reference=f"CV-{self.index:05d}"
            ),
        )
        self.add(50, lambda s: s.change_legal_status(self.aid, "served"))
        judgment = self.balance + 15000
        self.add(
            90,
            lambda s: s.change_legal_status(
                self.aid,
                "judgment",
                judgment_amount=self.money(judgment),
                judgment_date=(self.start + timedelta(days=89)).date(),
            ),
        )
        self.add(100, lambda s: s.change_legal_status(self.aid, "garnishment"))
        self.pay(115, max(1, self.balance // 8), "wire")

    def _sold(self) -> None:
        self.contacts(2, 3, reach=False)
        buyer = self.rng.choice(BUYERS)
        price = max(1, self.balance * self.rng.choice([4, 6, 8]) // 100)
        self.add(
            60,
            lambda s: s.sell(
                self.aid, buyer=buyer, price=self.money(price), portfolio_reference="PF-2026-Q1"
            ),
        )
        self.add(
            61,
            lambda s: s.add_note(
                self.aid, "account transferred to buyer; notice of assignment sent"
            ),
        )

    def _paid_in_full(self) -> None:
        day = self.contacts(2, 2, reach=True)
        self.pay(day + 2, self.balance, "card")
        self.add(day + 4, lambda s: s.close(self.aid, "paid"))

    def _hardship(self) -> None:
        self.contacts(2, 2, reach=True)
        kind = self.rng.choice(["bankruptcy", "deceased", "attorney"])
        if kind == "bankruptcy":
            self.add(
                9,
                lambda s: s.notify_bankruptcy(
                    self.aid,
                    chapter="7",
                    case_number=f"BK-{self.index}",
                    filed_on=self.start.date(),
                ),
            )
        elif kind == "deceased":
            self.add(9, lambda s: s.notify_deceased(self.aid))
        else:
            self.add(9, lambda s: s.notify_attorney(self.aid, firm="Debtor Defense Legal Aid"))

    def _silent(self) -> None:
        self.contacts(4, self.rng.randint(1, 3), reach=False)


def _pick_story(rng: random.Random) -> str:
    names = [name for name, _ in STORIES]
    weights = [weight for _, weight in STORIES]
    return rng.choices(names, weights=weights)[0]


def build_steps(accounts: int, seed: int) -> list[Step]:
    rng = random.Random(seed)
    new_id = _ids(random.Random(seed + 1))
    steps: list[Step] = []
    for index in range(accounts):
        story = _Story(random.Random(rng.getrandbits(64)), index, new_id)
        steps.extend(story.build(_pick_story(rng)))
    steps.sort()
    return steps


def build_demo(
    service: LedgerService,
    *,
    accounts: int = 300,
    seed: int = 7,
    progress: Callable[[Iterable[Step]], Iterable[Step]] | None = None,
) -> DemoResult:
    """Play the demo timeline; accounts already in the store are left as they are."""
    if accounts < 1:
        raise errors.ValidationError("--accounts must be at least 1")
    clock = MovableClock(DEMO_START)
    real_clock, real_new_id = service.clock, service.new_id
    service.clock = clock
    try:
        return _play(service, clock, accounts, seed, progress)
    finally:
        # The same service goes on serving (``arrears serve --demo``): give it back
        # real time and random ids.
        service.clock, service.new_id = real_clock, real_new_id


def _play(
    service: LedgerService,
    clock: MovableClock,
    accounts: int,
    seed: int,
    progress: Callable[[Iterable[Step]], Iterable[Step]] | None,
) -> DemoResult:
    steps = build_steps(accounts, seed)
    # One id sequence per account: a rerun with more accounts issues the same ids
    # to the accounts it already has, and fresh ones to the new accounts.
    id_sequences: dict[int, Callable[[], str]] = {}
    skip: set[int] = set()
    created = refused = done = 0
    for step in progress(steps) if progress else steps:
        if step.account_index in skip:
            continue
        clock.set(step.at)
        if step.account_index not in id_sequences:
            id_sequences[step.account_index] = _ids(random.Random(f"{seed}:{step.account_index}"))
        service.new_id = id_sequences[step.account_index]
        try:
            step.action(service)
        except errors.AccountExists:
            skip.add(step.account_index)
            continue
        except errors.RuleViolation as e:
            # Stories are written ahead of time; the ledger may rightly refuse a step
            # (e.g. interest on an account that has since closed).  That is the demo
            # showing the rules at work, not a failure.
            log.debug("demo_step_refused", account_index=step.account_index, code=e.code)
            refused += 1
            continue
        if step.order == 1:
            created += 1
        done += 1
    return DemoResult(created, len(skip), done, refused)


def account_id_for(index: int) -> UUID:
    creditor = CREDITORS[index % len(CREDITORS)][0]
    return derive_account_id(creditor, f"{creditor[:3].upper()}-{100000 + index}")
