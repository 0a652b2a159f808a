"""Portfolio report read model: by creditor and by agency, as of any recorded moment.

The projection keeps *time-stamped facts*, never running totals, so a report as
of any past moment is a set of SQL queries with ``recorded_at <= as_of`` filters,
and the report for a past date printed today equals the one printed on that date.

As of
    "As of T" means what the ledger had *recorded* by T (event timestamps, UTC),
    exactly like ``arrears history --as-of``.  A bare date means the end of that day
    UTC (``end_of_day``).  Each fact carries the running maximum of its stream's
    timestamps, so a stream whose clock ever stepped back is cut at the same event
    ``history`` stops at: the prefix of the stream recorded by T.

Scopes and attribution
    *By creditor* covers every account of the creditor.  *By agency* covers what
    each agency held: a flow (payment, reversal, contact, promise, plan) counts for
    the agency that held the account when it was recorded; a reversal always
    counts against whoever was credited with the payment it reverses.  Snapshot
    figures (outstanding, aging, open disputes and complaints) count for the agency
    holding the account at T (placed with it and not recalled by T).  With
    ``agency=A`` the by-creditor rows show agency A's book, broken down by creditor.
    Money is never added across currencies: every row is one (group, currency).

Figures (all in minor units inside; decimal strings in ``as_dict``)
    accounts_placed   creditor: accounts placed by T; agency: placements received by T
                      (an account placed twice with the same agency counts twice).
    placed            creditor: principal + interest + fees at placement; agency: the
                      account's balance at the moment it was placed with the agency.
    collected         payments received by T minus those of them reversed by T
                      (forwarded payments are passed on, not collected);
                      ``accounts_collected`` counts the accounts whose collected
                      amount (in that scope) is above zero.
    outstanding       balance (principal + interest + fees, credit balances excluded)
                      of accounts open at T (not sold or closed) with a balance above
                      zero; ``accounts_outstanding`` counts them.
    aging             those accounts and balances by days from charge-off to T's (UTC) date:
                      0-30, 31-60, 61-90, 91-180, 181-365, over 365 (a charge-off
                      after T counts as 0 days); ``unknown`` when no charge-off date.
    open_disputes     disputes raised by T, not resolved by T, on accounts open at T
                      (a closed or sold account's dispute can no longer be worked);
    open_complaints   likewise for complaints.

Rates (exact fractions, rendered with 4 decimals, half up; ``None`` when 0/0)
    right_party_contact_rate = accounts with a right-party contact recorded by T
                               / accounts with any contact recorded by T;
    promise_kept_rate        = promises kept by T / (kept by T + broken by T);
                               cancelled (also by a sale or closure, as the account
                               does) and still open promises are not counted;
    liquidation_rate         = collected / placed (per currency);
    plan_default_rate        = plans defaulted by T / plans agreed by T.

Agent productivity
    contacts and right-party contacts recorded by the agent; promises taken by the
    agent; collected: each payment is credited to the agent of the promise open
    when it was recorded (if that promise names one), otherwise to the agent of the
    account's latest right-party contact before it (if any); a reversal takes the
    amount back from the same agent.  Filters apply as to every other figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from typing import Any, ClassVar

from ledger.clock import ensure_utc, rfc3339
from ledger.domain.account import Account
from ledger.errors import LedgerError
from ledger.money import format_minor
from ledger.readmodels.engine import EventRecord, Projection, ProjectionTx
from ledger.readmodels.sqlstore import day_text, to_text

BUCKETS: tuple[str, ...] = ("0-30", "31-60", "61-90", "91-180", "181-365", "over 365")
UNKNOWN = "unknown"
ALL_BUCKETS: tuple[str, ...] = (*BUCKETS, UNKNOWN)
#: Upper bound (days since charge-off, inclusive) of each bucket but the last.
_BOUNDS: tuple[int, ...] = (30, 60, 90, 180, 365)
RPC = "right_party_contact"


def end_of_day(day: date) -> datetime:
    """The moment "as of DATE" means: the last recorded microsecond of that day, UTC."""
    return datetime.combine(day, time.max, tzinfo=UTC)


def bucket_of(days: int) -> str:
    """The aging bucket of an account charged off ``days`` days before the report date."""
    for label, bound in zip(BUCKETS, _BOUNDS, strict=False):
        if days <= bound:
            return label
    return BUCKETS[-1]


def rate_text(value: Fraction | None) -> str | None:
    """An exact fraction with 4 decimals, rounded half up; ``None`` stays ``None``."""
    if value is None:
        return None
    scaled = value * 10_000
    units = (scaled.numerator * 2 + scaled.denominator) // (scaled.denominator * 2)
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10_000)
    return f"{sign}{whole}.{frac:04d}"


def _ratio(numerator: int, denominator: int) -> Fraction | None:
    return Fraction(numerator, denominator) if denominator else None


# ----------------------------------------------------------------- the report


@dataclass
class GroupRow:
    """One creditor's or agency's figures in one currency."""

    name: str
    currency: str
    accounts_placed: int = 0
    placed: int = 0
    accounts_collected: int = 0
    collected: int = 0
    aging_accounts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ALL_BUCKETS, 0))
    aging_balance: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ALL_BUCKETS, 0))
    accounts_contacted: int = 0
    accounts_right_party_contact: int = 0
    promises_made: int = 0
    promises_kept: int = 0
    promises_broken: int = 0
    plans_agreed: int = 0
    plans_defaulted: int = 0
    open_disputes: int = 0
    open_complaints: int = 0

    @property
    def accounts_outstanding(self) -> int:
        return sum(self.aging_accounts.values())

    @property
    def outstanding(self) -> int:
        return sum(self.aging_balance.values())

    @property
    def right_party_contact_rate(self) -> Fraction | None:
        return _ratio(self.accounts_right_party_contact, self.accounts_contacted)

    @property
    def promise_kept_rate(self) -> Fraction | None:
        return _ratio(self.promises_kept, self.promises_kept + self.promises_broken)

    @property
    def liquidation_rate(self) -> Fraction | None:
        return _ratio(self.collected, self.placed)

    @property
    def plan_default_rate(self) -> Fraction | None:
        return _ratio(self.plans_defaulted, self.plans_agreed)

    def add(self, other: GroupRow) -> None:
        """Add ``other`` (same currency) into this row: counts and money, never rates."""
        assert other.currency == self.currency
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for bucket in ALL_BUCKETS:
            self.aging_accounts[bucket] += other.aging_accounts[bucket]
            self.aging_balance[bucket] += other.aging_balance[bucket]

    def as_dict(self, key: str) -> dict[str, Any]:
        cur = self.currency
        return {
            key: self.name,
            "currency": cur,
            "accounts_placed": self.accounts_placed,
            "placed": format_minor(self.placed, cur),
            "accounts_collected": self.accounts_collected,
            "collected": format_minor(self.collected, cur),
            "liquidation_rate": rate_text(self.liquidation_rate),
            "accounts_outstanding": self.accounts_outstanding,
            "outstanding": format_minor(self.outstanding, cur),
            "aging": {
                b: {
                    "accounts": self.aging_accounts[b],
                    "balance": format_minor(self.aging_balance[b], cur),
                }
                for b in ALL_BUCKETS
            },
            "accounts_contacted": self.accounts_contacted,
            "accounts_right_party_contact": self.accounts_right_party_contact,
            "right_party_contact_rate": rate_text(self.right_party_contact_rate),
            "promises_made": self.promises_made,
            "promises_kept": self.promises_kept,
            "promises_broken": self.promises_broken,
            "promise_kept_rate": rate_text(self.promise_kept_rate),
            "plans_agreed": self.plans_agreed,
            "plans_defaulted": self.plans_defaulted,
            "plan_default_rate": rate_text(self.plan_default_rate),
            "open_disputes": self.open_disputes,
            "open_complaints": self.open_complaints,
        }


_COUNTS = (
    "accounts_placed",
    "placed",
    "accounts_collected",
    "collected",
    "accounts_contacted",
    "accounts_right_party_contact",
    "promises_made",
    "promises_kept",
    "promises_broken",
    "plans_agreed",
    "plans_defaulted",
    "open_disputes",
    "open_complaints",
)


@dataclass
class AgentRow:
    agent: str
    contacts: int = 0
    right_party_contacts: int = 0
    promises: int = 0
    collected: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "contacts": self.contacts,
            "right_party_contacts": self.right_party_contacts,
            "promises": self.promises,
            "collected": {c: format_minor(v, c) for c, v in sorted(self.collected.items())},
        }


@dataclass
class PortfolioReport:
    as_of: datetime
    creditor: str | None
    agency: str | None
    by_creditor: list[GroupRow]
    by_agency: list[GroupRow]
    agents: list[AgentRow]

    @property
    def totals(self) -> list[GroupRow]:
        """Per currency, the sum of the by-creditor rows (an account has one creditor)."""
        out: dict[str, GroupRow] = {}
        for row in self.by_creditor:
            total = out.get(row.currency)
            if total is None:
                total = out[row.currency] = GroupRow("total", row.currency)
            total.add(row)
        return [out[c] for c in sorted(out)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "as_of": rfc3339(self.as_of),
            "creditor": self.creditor,
            "agency": self.agency,
            "buckets": list(ALL_BUCKETS),
            "totals": [
                {k: v for k, v in t.as_dict("total").items() if k != "total"} for t in self.totals
            ],
            "by_creditor": [r.as_dict("creditor") for r in self.by_creditor],
            "by_agency": [r.as_dict("agency") for r in self.by_agency],
            "agents": [a.as_dict() for a in self.agents],
        }


def build_report(
    as_of: datetime,
    creditor: str | None,
    agency: str | None,
    by_creditor: dict[tuple[str, str], GroupRow],
    by_agency: dict[tuple[str, str], GroupRow],
    agents: dict[str, AgentRow],
) -> PortfolioReport:
    """Rows in a stable order: by name, then currency; agents by name."""
    return PortfolioReport(
        as_of=as_of,
        creditor=creditor,
        agency=agency,
        by_creditor=[by_creditor[k] for k in sorted(by_creditor)],
        by_agency=[by_agency[k] for k in sorted(by_agency)],
        agents=[agents[k] for k in sorted(agents)],
    )


# ----------------------------------------------------------------- the projection


def _parts(amounts: dict[str, int], sign: int = 1) -> tuple[int, int, int]:
    """(principal, interest, fees) of a per-component mapping, times ``sign``."""
    return (
        sign * amounts.get("principal", 0),
        sign * amounts.get("interest", 0),
        sign * amounts.get("fees", 0),
    )


@dataclass(slots=True)
class _State:
    """What the projection must remember of one account between batches."""

    account_id: str
    creditor: str
    currency: str
    charge_off_date: str | None
    placed_at: str
    ended_at: str | None = None
    end_status: str | None = None
    principal: int = 0
    interest: int = 0
    fees: int = 0
    credit: int = 0
    agency: str | None = None
    placement_version: int | None = None
    promise_id: str | None = None
    promise_agent: str | None = None
    plan_id: str | None = None
    rpc_agent: str | None = None
    last_at: str = ""
    version: int = 0

    def row(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in STATE_COLUMNS)


STATE_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(_State))

_MONEY_COLUMNS = (
    "account_id, version, recorded_at, creditor, currency, agency, agent, kind, payment_id, "
    "principal, interest, fees, credit, placed, collected, waived"
)


@dataclass
class _Batch:
    money: list[tuple[Any, ...]] = field(default_factory=list)
    contacts: list[tuple[Any, ...]] = field(default_factory=list)
    placements: dict[tuple[str, int], list[Any]] = field(default_factory=dict)
    promises: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    plans: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    cases: dict[tuple[str, str, str], list[Any]] = field(default_factory=dict)
    recalls: list[tuple[Any, ...]] = field(default_factory=list)
    promise_ends: list[tuple[Any, ...]] = field(default_factory=list)
    plan_ends: list[tuple[Any, ...]] = field(default_factory=list)
    case_ends: list[tuple[Any, ...]] = field(default_factory=list)
    # payment_id -> (agency, agent, principal, interest, fees, credit, collected), per account
    payments: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)


class PortfolioProjection(Projection):
    """Time-stamped facts for the portfolio report (see the module docstring)."""

    name = "portfolio"
    version = 1
    tables: ClassVar[dict[str, str]] = {
        "accounts": (
            "CREATE TABLE IF NOT EXISTS {name} ("
            "account_id TEXT PRIMARY KEY, creditor TEXT NOT NULL, currency TEXT NOT NULL, "
            "charge_off_date TEXT, placed_at TEXT NOT NULL, ended_at TEXT, end_status TEXT, "
            "principal BIGINT NOT NULL, interest BIGINT NOT NULL, fees BIGINT NOT NULL, "
            "credit BIGINT NOT NULL, agency TEXT, placement_version BIGINT, promise_id TEXT, "
            "promise_agent TEXT, plan_id TEXT, rpc_agent TEXT, last_at TEXT NOT NULL, "
            "version BIGINT NOT NULL)"
        ),
        "money": (
            "CREATE TABLE IF NOT EXISTS {name} ("
            "account_id TEXT NOT NULL, version BIGINT NOT NULL, recorded_at TEXT NOT NULL, "
            "creditor TEXT NOT NULL, currency TEXT NOT NULL, agency TEXT, agent TEXT, "
            "kind TEXT NOT NULL, payment_id TEXT, principal BIGINT NOT NULL, "
            "interest BIGINT NOT NULL, fees BIGINT NOT NULL, credit BIGINT NOT NULL, "
            "placed BIGINT NOT NULL, collected BIGINT NOT NULL, waived BIGINT NOT NULL, "
            "PRIMARY KEY (account_id, version))"
        ),
        "placements": (
            "CREATE TABLE IF NOT EXISTS {name} ("
            "account_id TEXT NOT NULL, version BIGINT NOT NULL, agency TEXT NOT NULL, "
            "creditor TEXT NOT NULL, currency TEXT NOT NULL, placed_at TEXT NOT NULL, "
            "recalled_at TEXT, balance BIGINT NOT NULL, PRIMARY KEY (account_id, version))"
        ),
        "contacts": (
            "CREATE TABLE IF NOT EXISTS {name} ("
            "account_id TEXT NOT NULL, version BIGINT NOT NULL, recorded_at TEXT NOT NULL, "
            "occurred_at TEXT NOT NULL, creditor TEXT NOT NULL, currency TEXT NOT NULL, "
            "agency TEXT, agent TEXT, channel TEXT NOT NULL, direction TEXT NOT NULL, "
            "outcome TEXT NOT NULL, PRIMARY KEY (account_id, version))"
        ),
        "promises": (
            "CREATE TABLE IF NOT EXISTS {name} ("
            "account_id TEXT NOT NULL, promise_id TEXT NOT NULL, made_at TEXT NOT NULL, "
            "creditor TEXT NOT NULL, currency TEXT NOT NULL, agency TEXT, agent TEXT, "
            "amount BIGINT NOT NULL, due_date TEXT NOT NULL, outcome TEXT, resolved_at TEXT, "
            "PRIMARY KEY (account_id, promise_id))"
        ),
        "plans": (
            "CREATE TABLE IF NOT EXISTS {name} ("
            "account_id TEXT NOT NULL, plan_id TEXT NOT NULL, agreed_at TEXT NOT NULL, "
            "creditor TEXT NOT NULL, currency TEXT NOT NULL, agency TEXT, kind TEXT NOT NULL, "
            "total BIGINT NOT NULL, outcome TEXT, ended_at TEXT, "
            "PRIMARY KEY (account_id, plan_id))"
        ),
        "cases": (
            "CREATE TABLE IF NOT EXISTS {name} ("
            "account_id TEXT NOT NULL, kind TEXT NOT NULL, case_id TEXT NOT NULL, "
            "opened_at TEXT NOT NULL, creditor TEXT NOT NULL, currency TEXT NOT NULL, "
            "agency TEXT, resolved_at TEXT, outcome TEXT, "
            "PRIMARY KEY (account_id, kind, case_id))"
        ),
    }
    indexes: ClassVar[dict[str, list[str]]] = {
        "money": ["recorded_at", "payment_id"],
        "placements": ["agency"],
        "contacts": ["recorded_at"],
    }

    def handle(self, tx: ProjectionTx, events: Sequence[EventRecord]) -> None:
        records = [r for r in events if isinstance(r.event, Account.Event | Account.Placed)]
        if not records:
            return
        ids = list(dict.fromkeys(str(r.originator_id) for r in records))
        states = self._load(tx, ids)
        batch = _Batch()
        self._load_payments(tx, records, batch)
        touched: set[str] = set()
        for record in records:
            key = str(record.originator_id)
            event = record.event
            stamp = to_text(record.timestamp)
            if isinstance(event, Account.Placed):
                st = states[key] = _State(
                    account_id=key,
                    creditor=event.creditor,
                    currency=event.currency,
                    charge_off_date=day_text(event.charge_off_date),
                    placed_at=stamp,
                    last_at=stamp,
                    version=record.version,
                )
                touched.add(key)
                self._placed(st, record, batch)
                continue
            found = states.get(key)
            if found is None:  # cannot happen: every account stream starts with Placed
                raise LedgerError(f"portfolio: event for unknown account {key}")
            st = found
            st.last_at = max(st.last_at, stamp)
            st.version = record.version
            touched.add(key)
            handler = _HANDLERS.get(type(event))
            if handler is not None:
                handler(self, st, record, batch)
        self._flush(tx, batch)
        self._save(tx, [states[k] for k in sorted(touched)])

    # ------------------------------------------------------------- events

    @staticmethod
    def _money(
        st: _State,
        record: EventRecord,
        batch: _Batch,
        kind: str,
        *,
        principal: int = 0,
        interest: int = 0,
        fees: int = 0,
        credit: int = 0,
        placed: int = 0,
        collected: int = 0,
        waived: int = 0,
        agency: str | None = None,
        agent: str | None = None,
        payment_id: str | None = None,
    ) -> None:
        st.principal += principal
        st.interest += interest
        st.fees += fees
        st.credit += credit
        batch.money.append(
            (
                st.account_id,
                record.version,
                st.last_at,
                st.creditor,
                st.currency,
                agency,
                agent,
                kind,
                payment_id,
                principal,
                interest,
                fees,
                credit,
                placed,
                collected,
                waived,
            )
        )

    def _placed(self, st: _State, record: EventRecord, batch: _Batch) -> None:
        e = record.event
        self._money(
            st,
            record,
            batch,
            "placed",
            principal=e.principal,
            interest=e.interest,
            fees=e.fees,
            placed=e.principal + e.interest + e.fees,
        )

    def _interest(self, st: _State, record: EventRecord, batch: _Batch) -> None:
        self._money(st, record, batch, "interest", interest=record.event.amount, agency=st.agency)

    def _fee(self, st: _State, record: EventRecord, batch: _Batch) -> None:
        self._money(st, record, batch, "fee", fees=record.event.amount, agency=st.agency)

    def _adjusted(self, st: _State, record: EventRecord, batch: _Batch) -> None:
        e = record.event
        sign = 1 if e.direction == "debit" else -1
        principal, interest, fees = _parts({e.component: sign * e.amount})
        self._money(
            st,
            record,
            batch,
            "adjustment",
            principal=principal,
            interest=interest,
            fees=fees,
            agency=st.agency,
        )

    def _waived(self, st: _State, record: EventRecord, batch: _Batch) -> None:
        amounts: dict[str, int] = record.event.amounts
        principal, interest, fees = _parts(amounts, -1)
        self._money(
            st,
            record,
            batch,
            "waiver",
            principal=principal,
            interest=interest,
            fees=fees,
            waived=sum(amounts.values()),
            agency=st.agency,
        )

    def _paid(self, st: _State, record: EventRecord, batch: _Batch) -> None:
        e = record.event
        allocation: dict[str, int] = e.allocation
        agent = st.promise_agent if st.promise_id is not None else None
        if agent is None:
            agent = st.rpc_agent
        principal, interest, fees = _parts(allocation, -1)
        credit = allocation.get("credit", 0)
        batch.payments[(st.account_id, e.payment_id)] = (
            st.agency,
            agent,
            principal,
            interest,
            fees,
            credit,
            e.amount,
        )
        self._money(
            st,
            record,
            batch,
            "payment",
            principal=principal,
            interest=interest,
            fees=fees,
            credit=credit,
            collected=e.amount,
            agency=st.agency,
            agent=agent,
            payment_id=e.payment_id,
        )

    def _reversed(self, st: _State, record: EventRecord, batch: _Batch) -> None:
        payment_id = record.event.payment_id
        found = batch.payments.get((st.account_id, payment_id))
        if found is None:
            raise LedgerError(f"portfolio: reversal of unknown payment {payment_id}")
        agency, agent, principal, interest, fees, credit, amount = found
        self._money(
            st,
            record,
            batch,
            "reversal",
            principal=-principal,
            interest=-interest,
            fees=-fees,
            credit=-credit,
            collected=-amount,
            agency=agency,
            agent=agent,
            payment_id=payment_id,
        )

    def _contact(self, st: _State, record: EventRecord, batch: _Batch) -> None:
        e = record.event
        if e.outcome == RPC:
            st.rpc_agent = e.agent
        batch.contacts.append(
            (
                st.account_id,
                record.version,
                st.last_at,
                to_text(e.occurred_at),
                st.creditor,
                st.currency,
                st.agency,
                e.agent,
                e.channel,
                e.direction,
                e.outcome,
            )
        )

    def _promise_made(self, st: _State, record: EventRecord, batch: _Batch) -> None:
        e = record.event
        st.promise_id, st.promise_agent = e.promise_id, e.agent
        batch.promises[(st.account_id, e.promise_id)] = [
            st.account_id,
            e.promise_id,
            st.last_at,
            st.creditor,
            st.currency,
            st.agency,
            e.agent,
            e.amount,
            day_text(e.due_date),
            None,
            None,
        ]

    def _end_promise(self, st: _State, promise_id: str, outcome: str, batch: _Batch) -> None:
        if st.promise_id == promise_id:
            st.promise_id = st.promise_agent = None
        pending = batch.promises.get((st.account_id, promise_id))
        if pending is not None:
            pending[9:11] = [outcome, st.last_at]
        else:
            batch.promise_ends.append((outcome, st.last_at, st.account_id, promise_id))

    def _kept(self, st: _State, record: EventRecord, batch: _Batch) -> None:
        self._end_promise(st, record.event.promise_id, "kept", batch)

    def _broken(self, st: _State, record: EventRecord, batch: _Batch) -> None:
        self._end_promise(st, record.event.promise_id, "broken", batch)

    def _promise_cancelled(self, st: _State, record: EventRecord, batch: _Batch) -> None:
        self._end_promise(st, record.event.promise_id, "cancelled", batch)

    def _plan_agreed(self, st: _State, record: EventRecord, batch: _Batch) -> None:
        e = record.event
        st.plan_id = e.plan_id
        batch.plans[(st.account_id, e.plan_id)] = [
            st.account_id,
            e.plan_id,
            st.last_at,
            st.creditor,
            st.currency,
            st.agency,
            e.kind,
            e.total,
            None,
            None,
        ]

    def _end_plan(self, st: _State, plan_id: str, outcome: str, batch: _Batch) -> None:
        if st.plan_id == plan_id:
            st.plan_id = None
        pending = batch.plans.get((st.account_id, plan_id))
        if pending is not None:
            pending[8:10] = [outcome, st.last_at]
        else:
            batch.plan_ends.append((outcome, st.last_at, st.account_id, plan_id))

    def _plan_cancelled(self, st: _State, record: EventRecord, batch: _Batch) -> None:
        self._end_plan(st, record.event.plan_id, "cancelled", batch)

    def _plan_defaulted(self, st: _State, record: EventRecord, batch: _Batch) -> None:
        self._end_plan(st, record.event.plan_id, "defaulted", batch)

    def _plan_completed(self, st: _State, record: EventRecord, batch: _Batch) -> None:
        self._end_plan(st, record.event.plan_id, "completed", batch)

    def _open_case(self, st: _State, kind: str, case_id: str, batch: _Batch) -> None:
        batch.cases[(st.account_id, kind, case_id)] = [
            st.account_id,
            kind,
            case_id,
            st.last_at,
            st.creditor,
            st.currency,
            st.agency,
            None,
            None,
        ]

    def _close_case(self, st: _State, kind: str, case_id: str, outcome: str, b: _Batch) -> None:
        pending = b.cases.get((st.account_id, kind, case_id))
        if pending is not None:
            pending[7:9] = [st.last_at, outcome]
        else:
            b.case_ends.append((st.last_at, outcome, st.account_id, kind, case_id))

    def _dispute_raised(self, st: _State, record: EventRecord, batch: _Batch) -> None:
        self._open_case(st, "dispute", record.event.dispute_id, batch)

    def _dispute_resolved(self, st: _State, record: EventRecord, batch: _Batch) -> None:
        e = record.event
        self._close_case(st, "dispute", e.dispute_id, e.outcome, batch)

    def _complaint_received(self, st: _State, record: EventRecord, batch: _Batch) -> None:
        self._open_case(st, "complaint", record.event.complaint_id, batch)

    def _complaint_resolved(self, st: _State, record: EventRecord, batch: _Batch) -> None:
        e = record.event
        self._close_case(st, "complaint", e.complaint_id, e.outcome, batch)

    def _with_agency(self, st: _State, record: EventRecord, batch: _Batch) -> None:
        agency: str = record.event.agency
        st.agency, st.placement_version = agency, record.version
        batch.placements[(st.account_id, record.version)] = [
            st.account_id,
            record.version,
            agency,
            st.creditor,
            st.currency,
            st.last_at,
            None,
            st.principal + st.interest + st.fees,
        ]

    def _recalled(self, st: _State, record: EventRecord, batch: _Batch) -> None:
        if st.placement_version is not None:
            pending = batch.placements.get((st.account_id, st.placement_version))
            if pending is not None:
                pending[6] = st.last_at
            else:
                batch.recalls.append((st.last_at, st.account_id, st.placement_version))
        st.agency = st.placement_version = None

    def _ended(self, st: _State, record: EventRecord, batch: _Batch) -> None:
        """Sold or closed: like the aggregate, any open promise and plan are cancelled."""
        st.ended_at = st.last_at
        st.end_status = "sold" if isinstance(record.event, Account.SoldToDebtBuyer) else "closed"
        if st.promise_id is not None:
            self._end_promise(st, st.promise_id, "cancelled", batch)
        if st.plan_id is not None:
            self._end_plan(st, st.plan_id, "cancelled", batch)

    # ------------------------------------------------------------ storage

    def _load(self, tx: ProjectionTx, ids: list[str]) -> dict[str, _State]:
        found: dict[str, _State] = {}
        columns = ", ".join(STATE_COLUMNS)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            for row in tx.query(
                f"SELECT {columns} FROM {{accounts}} WHERE account_id IN ({marks})", chunk
            ):
                state = _State(**row)
                for name in ("principal", "interest", "fees", "credit", "version"):
                    setattr(state, name, int(getattr(state, name)))
                if state.placement_version is not None:
                    state.placement_version = int(state.placement_version)
                found[state.account_id] = state
        return found

    def _load_payments(
        self, tx: ProjectionTx, records: Sequence[EventRecord], batch: _Batch
    ) -> None:
        """The payments this batch reverses, in one query (those paid in this batch are
        found in the batch itself)."""
        wanted = sorted(
            {
                (str(r.originator_id), r.event.payment_id)
                for r in records
                if isinstance(r.event, Account.PaymentReversed)
            }
        )
        payment_ids = sorted({p for _, p in wanted})
        keys = set(wanted)
        for start in range(0, len(payment_ids), 500):
            chunk = payment_ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            for row in tx.query(
                "SELECT account_id, payment_id, agency, agent, principal, interest, fees, "
                f"credit, collected FROM {{money}} WHERE kind = 'payment' "
                f"AND payment_id IN ({marks})",
                chunk,
            ):
                key = (row["account_id"], row["payment_id"])
                if key in keys:
                    batch.payments[key] = (
                        row["agency"],
                        row["agent"],
                        *(
                            int(row[c])
                            for c in ("principal", "interest", "fees", "credit", "collected")
                        ),
                    )

    def _flush(self, tx: ProjectionTx, b: _Batch) -> None:
        _insert(tx, "money", _MONEY_COLUMNS, b.money)
        _insert(
            tx,
            "contacts",
            "account_id, version, recorded_at, occurred_at, creditor, currency, agency, agent, "
            "channel, direction, outcome",
            b.contacts,
        )
        _insert(
            tx,
            "placements",
            "account_id, version, agency, creditor, currency, placed_at, recalled_at, balance",
            list(b.placements.values()),
        )
        _insert(
            tx,
            "promises",
            "account_id, promise_id, made_at, creditor, currency, agency, agent, amount, "
            "due_date, outcome, resolved_at",
            list(b.promises.values()),
        )
        _insert(
            tx,
            "plans",
            "account_id, plan_id, agreed_at, creditor, currency, agency, kind, total, outcome, "
            "ended_at",
            list(b.plans.values()),
        )
        _insert(
            tx,
            "cases",
            "account_id, kind, case_id, opened_at, creditor, currency, agency, resolved_at, "
            "outcome",
            list(b.cases.values()),
        )
        tx.executemany(
            "UPDATE {placements} SET recalled_at = ? WHERE account_id = ? AND version = ?",
            b.recalls,
        )
        tx.executemany(
            "UPDATE {promises} SET outcome = ?, resolved_at = ? "
            "WHERE account_id = ? AND promise_id = ?",
            b.promise_ends,
        )
        tx.executemany(
            "UPDATE {plans} SET outcome = ?, ended_at = ? WHERE account_id = ? AND plan_id = ?",
            b.plan_ends,
        )
        tx.executemany(
            "UPDATE {cases} SET resolved_at = ?, outcome = ? "
            "WHERE account_id = ? AND kind = ? AND case_id = ?",
            b.case_ends,
        )

    def _save(self, tx: ProjectionTx, states: list[_State]) -> None:
        marks = ", ".join("?" for _ in STATE_COLUMNS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in STATE_COLUMNS if c != "account_id")
        tx.executemany(
            f"INSERT INTO {{accounts}} ({', '.join(STATE_COLUMNS)}) VALUES ({marks}) "
            f"ON CONFLICT (account_id) DO UPDATE SET {updates}",
            [s.row() for s in states],
        )


def _insert(tx: ProjectionTx, table: str, columns: str, rows: Sequence[Sequence[Any]]) -> None:
    """One parameterised INSERT per row, sent as a batch (``executemany``: one pipeline
    on PostgreSQL, which measured faster here than multi-row VALUES statements)."""
    if rows:
        marks = ", ".join("?" * len(rows[0]))
        tx.executemany(f"INSERT INTO {{{table}}} ({columns}) VALUES ({marks})", rows)


_HANDLERS: dict[type[Any], Any] = {
    Account.InterestAccrued: PortfolioProjection._interest,
    Account.FeeAssessed: PortfolioProjection._fee,
    Account.BalanceAdjusted: PortfolioProjection._adjusted,
    Account.BalanceWaived: PortfolioProjection._waived,
    Account.PaymentReceived: PortfolioProjection._paid,
    Account.PaymentReversed: PortfolioProjection._reversed,
    Account.ContactRecorded: PortfolioProjection._contact,
    Account.PromiseMade: PortfolioProjection._promise_made,
    Account.PromiseKept: PortfolioProjection._kept,
    Account.PromiseBroken: PortfolioProjection._broken,
    Account.PromiseCancelled: PortfolioProjection._promise_cancelled,
    Account.PlanAgreed: PortfolioProjection._plan_agreed,
    Account.PlanCancelled: PortfolioProjection._plan_cancelled,
    Account.PlanDefaulted: PortfolioProjection._plan_defaulted,
    Account.PlanCompleted: PortfolioProjection._plan_completed,
    Account.DisputeRaised: PortfolioProjection._dispute_raised,
    Account.DisputeResolved: PortfolioProjection._dispute_resolved,
    Account.ComplaintReceived: PortfolioProjection._complaint_received,
    Account.ComplaintResolved: PortfolioProjection._complaint_resolved,
    Account.PlacedWithAgency: PortfolioProjection._with_agency,
    Account.RecalledFromAgency: PortfolioProjection._recalled,
    Account.SoldToDebtBuyer: PortfolioProjection._ended,
    Account.Closed: PortfolioProjection._ended,
}


# ----------------------------------------------------------------- the queries


def _num(value: Any) -> int:
    """SUM over BIGINT is NUMERIC on PostgreSQL (a Decimal) and may be NULL: an exact int."""
    return int(value) if value is not None else 0


class _Query:
    """The SQL of one view: ``scope`` (ledger or agency) grouped by creditor or agency."""

    def __init__(
        self,
        tx: Any,
        names: dict[str, str],
        as_of: str,
        scope: str,
        group: str,
        creditor: str | None,
        agency: str | None,
    ) -> None:
        self.tx = tx
        self.names = names
        self.at = as_of
        self.scope = scope
        self.group = group
        self.creditor = creditor
        self.agency = agency

    def run(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.tx.query(sql.format(**self.names), params)
        return rows

    def facts(self, alias: str) -> tuple[str, list[Any]]:
        """Filters on a fact table that carries creditor and agency-at-the-time columns."""
        sql, params = "", []
        if self.creditor is not None:
            sql += f" AND {alias}.creditor = ?"
            params.append(self.creditor)
        if self.scope == "agency":
            if self.agency is not None:
                sql += f" AND {alias}.agency = ?"
                params.append(self.agency)
            else:
                sql += f" AND {alias}.agency IS NOT NULL"
        return sql, params

    def holders(self) -> tuple[str, str, list[Any]]:
        """For snapshots: (join, group column, params) of accounts (``a``) held at T."""
        if self.scope == "ledger":
            return "", f"a.{self.group}", []
        join = (
            " JOIN {placements} p ON p.account_id = a.account_id AND p.placed_at <= ? "
            "AND (p.recalled_at IS NULL OR p.recalled_at > ?)"
        )
        params: list[Any] = [self.at, self.at]
        if self.agency is not None:
            join += " AND p.agency = ?"
            params.append(self.agency)
        column = "p.agency" if self.group == "agency" else "a.creditor"
        return join, column, params

    def rows(self, day: date) -> dict[tuple[str, str], GroupRow]:
        out: dict[tuple[str, str], GroupRow] = {}

        def row(r: dict[str, Any]) -> GroupRow:
            key = (r["g"], r["currency"])
            found = out.get(key)
            if found is None:
                found = out[key] = GroupRow(*key)
            return found

        g, at = self.group, self.at
        # placed
        if self.scope == "ledger":
            where, params = self.facts("m")
            sql = (
                f"SELECT m.{g} AS g, m.currency, COUNT(*) AS n, SUM(m.placed) AS amount "
                f"FROM {{money}} m WHERE m.kind = 'placed' AND m.recorded_at <= ?{where} "
                f"GROUP BY m.{g}, m.currency"
            )
        else:
            where, params = self.facts("p")
            sql = (
                f"SELECT p.{g} AS g, p.currency, COUNT(*) AS n, SUM(p.balance) AS amount "
                f"FROM {{placements}} p WHERE p.placed_at <= ?{where} "
                f"GROUP BY p.{g}, p.currency"
            )
        for r in self.run(sql, [at, *params]):
            target = row(r)
            target.accounts_placed = _num(r["n"])
            target.placed = _num(r["amount"])
        # collected
        where, params = self.facts("m")
        for r in self.run(
            "SELECT g, currency, SUM(amount) AS amount, "
            "SUM(CASE WHEN amount > 0 THEN 1 ELSE 0 END) AS paying FROM ("
            f"SELECT m.{g} AS g, m.currency AS currency, SUM(m.collected) AS amount "
            f"FROM {{money}} m WHERE m.kind IN ('payment', 'reversal') "
            f"AND m.recorded_at <= ?{where} GROUP BY m.{g}, m.currency, m.account_id) x "
            "GROUP BY g, currency",
            [at, *params],
        ):
            target = row(r)
            target.collected = _num(r["amount"])
            target.accounts_collected = _num(r["paying"])
        # contacts
        where, params = self.facts("c")
        for r in self.run(
            f"SELECT c.{g} AS g, c.currency, COUNT(DISTINCT c.account_id) AS contacted, "
            f"COUNT(DISTINCT CASE WHEN c.outcome = '{RPC}' THEN c.account_id END) AS rpc "
            f"FROM {{contacts}} c WHERE c.recorded_at <= ?{where} GROUP BY c.{g}, c.currency",
            [at, *params],
        ):
            target = row(r)
            target.accounts_contacted = _num(r["contacted"])
            target.accounts_right_party_contact = _num(r["rpc"])
        # promises
        where, params = self.facts("r")
        for r in self.run(
            f"SELECT r.{g} AS g, r.currency, COUNT(*) AS made, "
            "SUM(CASE WHEN r.outcome = 'kept' AND r.resolved_at <= ? THEN 1 ELSE 0 END) AS kept, "
            "SUM(CASE WHEN r.outcome = 'broken' AND r.resolved_at <= ? THEN 1 ELSE 0 END) "
            f"AS broken FROM {{promises}} r WHERE r.made_at <= ?{where} "
            f"GROUP BY r.{g}, r.currency",
            [at, at, at, *params],
        ):
            target = row(r)
            target.promises_made = _num(r["made"])
            target.promises_kept = _num(r["kept"])
            target.promises_broken = _num(r["broken"])
        # plans
        where, params = self.facts("n")
        for r in self.run(
            f"SELECT n.{g} AS g, n.currency, COUNT(*) AS agreed, "
            "SUM(CASE WHEN n.outcome = 'defaulted' AND n.ended_at <= ? THEN 1 ELSE 0 END) "
            f"AS defaulted FROM {{plans}} n WHERE n.agreed_at <= ?{where} "
            f"GROUP BY n.{g}, n.currency",
            [at, at, *params],
        ):
            target = row(r)
            target.plans_agreed = _num(r["agreed"])
            target.plans_defaulted = _num(r["defaulted"])
        # snapshots: outstanding and aging, open disputes and complaints
        join, column, join_params = self.holders()
        accounts_where, accounts_params = " AND (a.ended_at IS NULL OR a.ended_at > ?)", [at]
        if self.creditor is not None:
            accounts_where += " AND a.creditor = ?"
            accounts_params.append(self.creditor)
        bounds = [day_text(day - timedelta(days=b)) for b in _BOUNDS]
        labels = " ".join(f"WHEN a.charge_off_date >= ? THEN '{b}'" for b in BUCKETS[:-1])
        for r in self.run(
            "SELECT g, currency, bucket, COUNT(*) AS n, SUM(balance) AS amount FROM ("
            f"SELECT {column} AS g, a.currency AS currency, b.balance AS balance, "
            f"CASE WHEN a.charge_off_date IS NULL THEN '{UNKNOWN}' {labels} "
            f"ELSE '{BUCKETS[-1]}' END AS bucket "
            "FROM (SELECT account_id, SUM(principal + interest + fees) AS balance "
            "FROM {money} WHERE recorded_at <= ? GROUP BY account_id) b "
            f"JOIN {{accounts}} a ON a.account_id = b.account_id{join} "
            f"WHERE b.balance > 0{accounts_where}) x GROUP BY g, currency, bucket",
            [*bounds, at, *join_params, *accounts_params],
        ):
            target = row(r)
            target.aging_accounts[r["bucket"]] = _num(r["n"])
            target.aging_balance[r["bucket"]] = _num(r["amount"])
        for r in self.run(
            f"SELECT {column} AS g, a.currency AS currency, "
            "SUM(CASE WHEN k.kind = 'dispute' THEN 1 ELSE 0 END) AS disputes, "
            "SUM(CASE WHEN k.kind = 'complaint' THEN 1 ELSE 0 END) AS complaints "
            f"FROM {{cases}} k JOIN {{accounts}} a ON a.account_id = k.account_id{join} "
            "WHERE k.opened_at <= ? AND (k.resolved_at IS NULL OR k.resolved_at > ?)"
            f"{accounts_where} GROUP BY {column}, a.currency",
            [*join_params, at, at, *accounts_params],
        ):
            target = row(r)
            target.open_disputes = _num(r["disputes"])
            target.open_complaints = _num(r["complaints"])
        return out

    def agents(self) -> dict[str, AgentRow]:
        out: dict[str, AgentRow] = {}

        def agent(name: str) -> AgentRow:
            found = out.get(name)
            if found is None:
                found = out[name] = AgentRow(name)
            return found

        at = self.at
        where, params = self.facts("c")
        for r in self.run(
            "SELECT c.agent AS agent, COUNT(*) AS n, "
            f"SUM(CASE WHEN c.outcome = '{RPC}' THEN 1 ELSE 0 END) AS rpc FROM {{contacts}} c "
            f"WHERE c.agent IS NOT NULL AND c.recorded_at <= ?{where} GROUP BY c.agent",
            [at, *params],
        ):
            target = agent(r["agent"])
            target.contacts = _num(r["n"])
            target.right_party_contacts = _num(r["rpc"])
        where, params = self.facts("r")
        for r in self.run(
            "SELECT r.agent AS agent, COUNT(*) AS n FROM {promises} r "
            f"WHERE r.agent IS NOT NULL AND r.made_at <= ?{where} GROUP BY r.agent",
            [at, *params],
        ):
            agent(r["agent"]).promises = _num(r["n"])
        where, params = self.facts("m")
        for r in self.run(
            "SELECT m.agent AS agent, m.currency, SUM(m.collected) AS amount FROM {money} m "
            "WHERE m.kind IN ('payment', 'reversal') AND m.agent IS NOT NULL "
            f"AND m.recorded_at <= ?{where} GROUP BY m.agent, m.currency",
            [at, *params],
        ):
            agent(r["agent"]).collected[r["currency"]] = _num(r["amount"])
        return out


def portfolio_report(
    tx: Any,
    names: dict[str, str],
    *,
    as_of: datetime,
    creditor: str | None = None,
    agency: str | None = None,
) -> PortfolioReport:
    """The report as of ``as_of`` (recorded time), from the projection's tables ``names``.

    ``tx`` is a read transaction (``Tx``); run every query in one transaction (on
    PostgreSQL a repeatable-read one) so the sections agree with each other.
    """
    moment = ensure_utc(as_of)
    at, day = to_text(moment), moment.date()
    creditor_scope = "agency" if agency is not None else "ledger"
    by_creditor = _Query(tx, names, at, creditor_scope, "creditor", creditor, agency)
    by_agency = _Query(tx, names, at, "agency", "agency", creditor, agency)
    agents = _Query(tx, names, at, creditor_scope, "creditor", creditor, agency)
    return build_report(
        moment,
        creditor,
        agency,
        by_creditor.rows(day),
        by_agency.rows(day),
        agents.agents(),
    )
