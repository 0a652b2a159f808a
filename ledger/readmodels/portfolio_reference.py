"""The portfolio report computed independently: fold the stored events up to a moment.

An auditor's cross-check of the read model (``ledger.readmodels.portfolio``), and
the oracle of its tests.  Nothing here touches the projection's tables: every
account stream is read from the events table (one ordered scan, as in
``ledger.replay``), cut where ``arrears history --as-of`` cuts it (at the first
event recorded after the moment) and folded through the domain's own ``Account``
code.  Snapshot figures come from the aggregate as it stood then (``placed_total``,
``paid_total``, ``total_balance``, ``status``, ``promises``, ``plan_history``,
``disputes``, ``complaints``); only what the aggregate does not keep — who held
the account, and which agent took a promise or a payment — is followed event by
event.  Definitions are those of the module docstring of ``portfolio``.

Memory stays flat: one stream at a time, plus the report's own rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ledger.application import Ledger
from ledger.clock import ensure_utc
from ledger.domain.account import Account
from ledger.domain.lifecycle import OPEN_STATUSES
from ledger.readmodels.portfolio import (
    RPC,
    UNKNOWN,
    AgentRow,
    GroupRow,
    PortfolioReport,
    bucket_of,
    build_report,
)
from ledger.replay import iter_streams


def account_streams(ledger: Ledger) -> Iterator[list[Any]]:
    """Each account's decoded events in version order, one stream at a time."""
    for stream in iter_streams(ledger):
        if isinstance(stream[0], Account.Placed):  # not debtors or the seal log
            yield stream


@dataclass
class _Trail:
    """What one stream's events say beyond the aggregate: holders and agents."""

    placements: list[tuple[str, int]] = field(default_factory=list)  # (agency, balance)
    flows: list[tuple[str | None, str | None, int]] = field(default_factory=list)
    payments: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    promises: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    plans: dict[str, str | None] = field(default_factory=dict)
    contacted: set[str] = field(default_factory=set)
    reached: set[str] = field(default_factory=set)
    # (agency at the time, agent, right-party?) per contact
    contacts: list[tuple[str | None, str | None, bool]] = field(default_factory=list)
    last_rpc_agent: str | None = None


class _Reference:
    def __init__(self, as_of: datetime, creditor: str | None, agency: str | None) -> None:
        self.as_of = as_of
        self.day = as_of.date()
        self.creditor = creditor
        self.agency = agency
        self.by_creditor: dict[tuple[str, str], GroupRow] = {}
        self.by_agency: dict[tuple[str, str], GroupRow] = {}
        self.agents: dict[str, AgentRow] = {}

    # --------------------------------------------------------------- rows

    def _row(self, rows: dict[tuple[str, str], GroupRow], name: str, cur: str) -> GroupRow:
        row = rows.get((name, cur))
        if row is None:
            row = rows[(name, cur)] = GroupRow(name, cur)
        return row

    def _agency_rows(self, account: Account, agency: str | None) -> list[GroupRow]:
        """The rows a fact attributed to ``agency`` counts in (none if no agency held it)."""
        if agency is None or (self.agency is not None and agency != self.agency):
            return []
        rows = [self._row(self.by_agency, agency, account.currency)]
        if self.agency is not None:
            rows.append(self._row(self.by_creditor, account.creditor, account.currency))
        return rows

    def _agent(self, name: str) -> AgentRow:
        row = self.agents.get(name)
        if row is None:
            row = self.agents[name] = AgentRow(name)
        return row

    def _agent_counts(self, holder: str | None) -> bool:
        return self.agency is None or holder == self.agency

    # ------------------------------------------------------------- streams

    def fold(self, events: list[Any]) -> None:
        if events[0].creditor != self.creditor and self.creditor is not None:
            return
        account: Account | None = None
        trail = _Trail()
        for event in events:
            if event.timestamp > self.as_of:
                break  # exactly where ``arrears history --as-of`` stops
            if account is not None:
                self._follow(account, trail, event)
            account = event.mutate(account)
        if account is not None:
            self._count(account, trail)

    def _follow(self, account: Account, trail: _Trail, event: Any) -> None:
        """Attribute one event, looking at the account as it stood just before it."""
        holder = account.agency["name"] if account.agency is not None else None
        if isinstance(event, Account.PlacedWithAgency):
            trail.placements.append((event.agency, account.total_balance))
        elif isinstance(event, Account.ContactRecorded):
            reached = event.outcome == RPC
            if reached:
                trail.last_rpc_agent = event.agent
            trail.contacts.append((holder, event.agent, reached))
            if holder is not None:
                trail.contacted.add(holder)
                if reached:
                    trail.reached.add(holder)
        elif isinstance(event, Account.PromiseMade):
            trail.promises[event.promise_id] = (holder, event.agent)
        elif isinstance(event, Account.PaymentReceived):
            agent = None
            if account.open_promise_id is not None:
                agent = trail.promises[account.open_promise_id][1]
            if agent is None:
                agent = trail.last_rpc_agent
            trail.payments[event.payment_id] = (holder, agent)
            trail.flows.append((holder, agent, event.amount))
        elif isinstance(event, Account.PaymentReversed):
            paid_holder, paid_agent = trail.payments[event.payment_id]
            amount = account.payments[event.payment_id]["amount"]
            trail.flows.append((paid_holder, paid_agent, -amount))
        elif isinstance(event, Account.PlanAgreed):
            trail.plans[event.plan_id] = holder

    def _count(self, account: Account, trail: _Trail) -> None:
        cur = account.currency
        is_open = account.status in OPEN_STATUSES
        outstanding = account.total_balance if is_open and account.total_balance > 0 else None
        bucket = UNKNOWN
        if account.charge_off_date is not None:
            bucket = bucket_of(max(0, (self.day - account.charge_off_date).days))
        statuses = [p["status"] for p in account.promises.values()]
        defaulted = {p["id"] for p in account.plan_history if p["outcome"] == "defaulted"}
        open_disputes = sum(d["status"] != "resolved" for d in account.disputes.values())
        open_complaints = sum(s == "open" for s in account.complaints.values())

        if self.agency is None:
            row = self._row(self.by_creditor, account.creditor, cur)
            row.accounts_placed += 1
            row.placed += account.placed_total
            row.collected += account.paid_total
            row.accounts_collected += account.paid_total > 0
            if outstanding is not None:
                row.aging_accounts[bucket] += 1
                row.aging_balance[bucket] += outstanding
            row.accounts_contacted += account.contact_count > 0
            row.accounts_right_party_contact += account.last_rpc_at is not None
            row.promises_made += len(statuses)
            row.promises_kept += statuses.count("kept")
            row.promises_broken += statuses.count("broken")
            row.plans_agreed += len(account.plan_history) + (account.plan is not None)
            row.plans_defaulted += len(defaulted)
            if is_open:
                row.open_disputes += open_disputes
                row.open_complaints += open_complaints

        for agency, balance in trail.placements:
            for row in self._agency_rows(account, agency):
                row.accounts_placed += 1
                row.placed += balance
        by_holder: dict[str, int] = {}
        for holder, agent, amount in trail.flows:
            if holder is not None:
                by_holder[holder] = by_holder.get(holder, 0) + amount
            if agent is not None and self._agent_counts(holder):
                collected = self._agent(agent).collected
                collected[cur] = collected.get(cur, 0) + amount
        for holder, amount in by_holder.items():
            for row in self._agency_rows(account, holder):
                row.collected += amount
                row.accounts_collected += amount > 0
        for agency in trail.contacted:
            for row in self._agency_rows(account, agency):
                row.accounts_contacted += 1
                row.accounts_right_party_contact += agency in trail.reached
        for promise_id, (holder, agent) in trail.promises.items():
            status = account.promises[promise_id]["status"]
            for row in self._agency_rows(account, holder):
                row.promises_made += 1
                row.promises_kept += status == "kept"
                row.promises_broken += status == "broken"
            if agent is not None and self._agent_counts(holder):
                self._agent(agent).promises += 1
        for plan_id, holder in trail.plans.items():
            for row in self._agency_rows(account, holder):
                row.plans_agreed += 1
                row.plans_defaulted += plan_id in defaulted
        held_by = account.agency["name"] if account.agency is not None else None
        for row in self._agency_rows(account, held_by):
            if outstanding is not None:
                row.aging_accounts[bucket] += 1
                row.aging_balance[bucket] += outstanding
            if is_open:
                row.open_disputes += open_disputes
                row.open_complaints += open_complaints
        for holder, agent, reached in trail.contacts:
            if agent is not None and self._agent_counts(holder):
                target = self._agent(agent)
                target.contacts += 1
                target.right_party_contacts += reached


def reference_portfolio_report(
    ledger: Ledger,
    *,
    as_of: datetime,
    creditor: str | None = None,
    agency: str | None = None,
) -> PortfolioReport:
    """The portfolio report as of ``as_of``, folded from the stored events alone."""
    moment = ensure_utc(as_of)
    reference = _Reference(moment, creditor, agency)
    for events in account_streams(ledger):
        reference.fold(events)
    return build_report(
        moment,
        creditor,
        agency,
        reference.by_creditor,
        reference.by_agency,
        reference.agents,
    )
