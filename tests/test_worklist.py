"""The collector worklist: ranking, exclusions, the replaceable policy, agent filter, limit, CLI.

Scenarios are built through the service with a movable clock (START is Monday
2026-03-02 14:00 UTC) and read back through the account summary read model, on
each backend.  The demo test cross-checks every listed or left-out account
against the ledger's own aggregates.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import click
import pytest
from click.testing import CliRunner

import cli
import cli.worklist
from bootstrap import build_service
from ledger.application import open_ledger
from ledger.clock import MovableClock
from ledger.domain.account import Account
from ledger.domain.lifecycle import OPEN_STATUSES
from ledger.readmodels.contactability import combine, default_exclusion, no_exclusion
from ledger.readmodels.worklist import REASONS, Worklist
from ledger.services import Installment, LedgerService
from tests.conftest import JANE, placement, usd


def at(day: int, hour: int = 10) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


def place(service: LedgerService, reference: str, principal: str = "1000.00") -> UUID:
    account = service.place_account(
        placement(reference, principal=usd(principal), interest=usd("0.00"), fees=usd("0.00")),
        debtor=JANE,
    )
    return account.id


def reach(service: LedgerService, aid: UUID, agent: str | None = None, **extra: Any) -> None:
    service.record_contact(
        aid,
        channel="phone",
        direction="outbound",
        outcome="right_party_contact",
        agent=agent,
        **extra,
    )


def miss(service: LedgerService, aid: UUID, agent: str | None = None) -> None:
    service.record_contact(
        aid, channel="phone", direction="outbound", outcome="no_answer", agent=agent
    )


def refs(result: Worklist) -> list[str]:
    return [i.reference for i in result.items]


@pytest.fixture
def ranked(service: LedgerService, clock: MovableClock) -> dict[str, UUID]:
    """One account per reason (two for some), plus accounts that need nothing, at 2026-03-09."""
    return build_ranked(service, clock)


def build_ranked(service: LedgerService, clock: MovableClock) -> dict[str, UUID]:
    ids: dict[str, UUID] = {}
    ids["BROKEN"] = place(service, "BROKEN", "800.00")
    reach(service, ids["BROKEN"])
    service.make_promise(ids["BROKEN"], usd("100.00"), date(2026, 3, 5))
    ids["OVERDUE-PROMISE"] = place(service, "OVERDUE-PROMISE", "900.00")
    reach(service, ids["OVERDUE-PROMISE"])
    service.make_promise(ids["OVERDUE-PROMISE"], usd("200.00"), date(2026, 3, 5))
    ids["MISSED"] = place(service, "MISSED", "1000.00")
    reach(service, ids["MISSED"])
    service.agree_plan(
        ids["MISSED"],
        kind="installment",
        total=usd("1000.00"),
        installments=[
            Installment(date(2026, 3, 4), usd("400.00")),
            Installment(date(2026, 4, 4), usd("600.00")),
        ],
    )
    ids["NEW-SMALL"] = place(service, "NEW-SMALL", "300.00")
    ids["NEW-BIG"] = place(service, "NEW-BIG", "5000.00")
    ids["CALLBACK"] = place(service, "CALLBACK", "700.00")
    reach(service, ids["CALLBACK"], callback_at=at(8, 16))
    ids["CALLBACK-LATER"] = place(service, "CALLBACK-LATER", "700.00")
    reach(service, ids["CALLBACK-LATER"], callback_at=at(20, 16))
    ids["QUIET"] = place(service, "QUIET", "650.00")
    reach(service, ids["QUIET"])
    ids["PAID-UP"] = place(service, "PAID-UP", "650.00")
    service.post_payment(ids["PAID-UP"], usd("650.00"), method="card")
    clock.set(at(6))
    service.break_promise(ids["BROKEN"])
    clock.set(at(9))
    return ids


def test_every_reason_appears_in_rank_order(
    service: LedgerService, ranked: dict[str, UUID]
) -> None:
    """Broken promises, then missed installments, never contacted (largest first), callbacks."""
    result = service.worklist()
    assert refs(result) == [
        "OVERDUE-PROMISE",  # 900.00: a due date passed unpaid counts as broken
        "BROKEN",  # 800.00: recorded as broken
        "MISSED",
        "NEW-BIG",
        "NEW-SMALL",
        "CALLBACK",
    ]
    assert [i.reason for i in result.items] == [
        "broken_promise",
        "broken_promise",
        "missed_installment",
        "never_contacted",
        "never_contacted",
        "callback_due",
    ]
    assert {i.reason for i in result.items} == set(REASONS)
    by_ref = {i.reference: i for i in result.items}
    assert by_ref["NEW-BIG"].balance == "5000.00"
    assert (
        by_ref["MISSED"].detail == "400.00 USD in arrears, 1 installment overdue since 2026-03-04"
    )
    assert (
        by_ref["OVERDUE-PROMISE"].detail
        == "promise of 200.00 USD due 2026-03-05, 200.00 USD unpaid"
    )
    assert by_ref["BROKEN"].since.date() == date(2026, 3, 6)
    assert by_ref["CALLBACK"].since == at(8, 16)
    assert [i.position for i in result.items] == [1, 2, 3, 4, 5, 6]
    assert result.total == 6 and result.left_out == []


def test_an_account_lists_all_its_reasons_under_the_highest(
    service: LedgerService, clock: MovableClock
) -> None:
    """A plan agreed without any contact, then missed: missed installment, also never contacted."""
    aid = place(service, "BOTH")
    service.agree_plan(
        aid,
        kind="installment",
        total=usd("1000.00"),
        installments=[Installment(date(2026, 3, 3), usd("1000.00"))],
    )
    clock.set(at(7))  # past the 3 grace days
    (item,) = service.worklist().items
    assert (item.reason, item.reasons) == (
        "missed_installment",
        ("missed_installment", "never_contacted"),
    )


def test_callback_orders_earliest_first_and_is_replaced_by_a_later_contact(
    service: LedgerService, clock: MovableClock
) -> None:
    """Callbacks come in appointment order; a contact made after the callback clears it."""
    early, late = place(service, "CB-EARLY", "100.00"), place(service, "CB-LATE", "9000.00")
    reach(service, late, callback_at=at(3, 12))
    reach(service, early, callback_at=at(3, 9))
    clock.set(at(3, 11))
    assert refs(service.worklist()) == ["CB-EARLY"]  # the other one is not due yet
    clock.set(at(4))
    assert refs(service.worklist()) == ["CB-EARLY", "CB-LATE"]
    reach(service, early)
    assert refs(service.worklist()) == ["CB-LATE"]


def test_broken_promise_stays_until_the_debtor_is_reached(
    service: LedgerService, ranked: dict[str, UUID]
) -> None:
    """Attempts that do not reach the debtor keep a broken promise listed; talking clears it."""
    miss(service, ranked["BROKEN"])
    assert "BROKEN" in refs(service.worklist())
    reach(service, ranked["BROKEN"])
    assert "BROKEN" not in refs(service.worklist())
    service.post_payment(ranked["OVERDUE-PROMISE"], usd("200.00"), method="ach")
    assert "OVERDUE-PROMISE" not in refs(service.worklist())  # paid late, in full


def test_late_means_past_the_grace_days_of_the_time_processes(
    service: LedgerService, clock: MovableClock
) -> None:
    """A promise due 5 March is late from 9 March (3 grace days), or from 6 March with none."""
    aid = place(service, "LATE")
    reach(service, aid)
    service.make_promise(aid, usd("100.00"), date(2026, 3, 5))
    plan_id = place(service, "PLAN")
    reach(service, plan_id)
    service.agree_plan(
        plan_id,
        kind="installment",
        total=usd("1000.00"),
        installments=[Installment(date(2026, 3, 5), usd("1000.00"))],
    )
    clock.set(at(8, 23))
    assert refs(service.worklist()) == []
    assert refs(service.worklist(grace_days=0)) == ["LATE", "PLAN"]
    clock.set(at(9, 0))
    assert refs(service.worklist()) == ["LATE", "PLAN"]
    assert [i.since for i in service.worklist().items] == [at(6, 0), at(6, 0)]


def test_paying_the_arrears_takes_a_missed_installment_off(
    service: LedgerService, ranked: dict[str, UUID]
) -> None:
    """The plan's arrears come from its schedule: paying 400.00 covers the missed installment."""
    service.post_payment(ranked["MISSED"], usd("399.99"), method="card")
    assert "MISSED" in refs(service.worklist())
    service.post_payment(ranked["MISSED"], usd("0.01"), method="card")
    assert "MISSED" not in refs(service.worklist())


def test_each_exclusion_removes_an_account_and_says_why(
    service: LedgerService, clock: MovableClock
) -> None:
    """Ceased, dispute awaiting verification, bankrupt, deceased and attorney are left out."""
    references = "CEASED DISPUTED BANKRUPT DECEASED ATTORNEY VERIFIED COMPLAINT SOLD CLOSED FINE"
    ids = {ref: place(service, ref) for ref in references.split()}
    service.receive_cease(ids["CEASED"], "letter")
    service.raise_dispute(ids["DISPUTED"], "not mine", within_validation_period=True)
    service.notify_bankruptcy(
        ids["BANKRUPT"], chapter="7", case_number="BK-1", filed_on=date(2026, 2, 1)
    )
    service.notify_deceased(ids["DECEASED"])
    service.notify_attorney(ids["ATTORNEY"], firm="Defense LLP")
    _, dispute = service.raise_dispute(ids["VERIFIED"], "not mine", within_validation_period=True)
    service.provide_verification(ids["VERIFIED"], dispute, "copy of statement")
    service.receive_complaint(ids["COMPLAINT"], channel="email", category="tone")
    service.sell(ids["SOLD"], buyer="debt-buyer", price=usd("50.00"), portfolio_reference="PF-1")
    service.close(ids["CLOSED"], "uncollectible")
    result = service.worklist()
    # a verified dispute and an open complaint do not stop collection; sold/closed are not worked
    assert sorted(refs(result)) == ["COMPLAINT", "FINE", "VERIFIED"]
    assert {e.reference: e.excluded_because for e in result.left_out} == {
        "ATTORNEY": "attorney",
        "BANKRUPT": "bankrupt",
        "CEASED": "ceased",
        "DECEASED": "deceased",
        "DISPUTED": "dispute_awaiting_verification",
    }
    assert all(e.reasons == ("never_contacted",) for e in result.left_out)
    assert result.left_out_counts() == {
        "attorney": 1,
        "bankrupt": 1,
        "ceased": 1,
        "deceased": 1,
        "dispute_awaiting_verification": 1,
    }
    service.provide_verification(
        ids["DISPUTED"], result_dispute_id(service, ids["DISPUTED"]), "copy"
    )
    assert "DISPUTED" in refs(service.worklist())


def result_dispute_id(service: LedgerService, aid: UUID) -> str:
    (dispute_id,) = service.get_account(aid).disputes
    return str(dispute_id)


def test_the_exclusion_policy_is_replaceable(service: LedgerService) -> None:
    """A custom policy replaces the default; combine() refines it; no_exclusion lists all."""
    for ref in ("VIP-1", "PLAIN-1", "CEASED-1"):
        place(service, ref)
    service.receive_cease(service.resolve_account("CEASED-1"), "phone")

    def vip_handled_elsewhere(row: Mapping[str, Any]) -> str | None:
        return "vip_desk" if str(row["reference"]).startswith("VIP") else None

    custom = service.worklist(exclude=vip_handled_elsewhere)
    assert sorted(refs(custom)) == ["CEASED-1", "PLAIN-1"]  # the default rules are gone
    assert [(e.reference, e.excluded_because) for e in custom.left_out] == [("VIP-1", "vip_desk")]
    both = service.worklist(exclude=combine(default_exclusion, vip_handled_elsewhere))
    assert refs(both) == ["PLAIN-1"]
    assert {e.excluded_because for e in both.left_out} == {"ceased", "vip_desk"}
    assert sorted(refs(service.worklist(exclude=no_exclusion))) == ["CEASED-1", "PLAIN-1", "VIP-1"]
    assert sorted(refs(service.worklist())) == ["PLAIN-1", "VIP-1"]


def test_agent_filter_keeps_the_agents_accounts_and_unassigned_ones(
    service: LedgerService, clock: MovableClock
) -> None:
    """Assigned = agent of the latest contact or promise naming one; unassigned show for all."""
    mine, theirs, handed_over, anonymous, fresh = (
        place(service, ref) for ref in ("MINE", "THEIRS", "HANDED-OVER", "ANONYMOUS", "FRESH")
    )
    reach(service, mine, agent="ana", callback_at=at(3))
    reach(service, theirs, agent="bob", callback_at=at(3))
    reach(service, handed_over, agent="bob")
    service.make_promise(handed_over, usd("50.00"), date(2026, 3, 2), agent="ana")
    reach(service, anonymous, callback_at=at(3))
    clock.set(at(6))
    everyone = service.worklist()
    assert sorted(refs(everyone)) == ["ANONYMOUS", "FRESH", "HANDED-OVER", "MINE", "THEIRS"]
    assert {i.reference: i.agent for i in everyone.items} == {
        "ANONYMOUS": None,
        "FRESH": None,
        "HANDED-OVER": "ana",
        "MINE": "ana",
        "THEIRS": "bob",
    }
    assert sorted(refs(service.worklist(agent="ana"))) == [
        "ANONYMOUS",
        "FRESH",
        "HANDED-OVER",
        "MINE",
    ]
    assert sorted(refs(service.worklist(agent="bob"))) == ["ANONYMOUS", "FRESH", "THEIRS"]
    assert sorted(refs(service.worklist(agent="carol"))) == ["ANONYMOUS", "FRESH"]
    assert fresh  # placed only: never contacted, unassigned


def test_limit_keeps_the_top_of_the_ranking(
    service: LedgerService, ranked: dict[str, UUID]
) -> None:
    """--limit cuts after ranking; the total still counts every account listed."""
    result = service.worklist(limit=3)
    assert refs(result) == ["OVERDUE-PROMISE", "BROKEN", "MISSED"]
    assert result.total == 6


# ---------------------------------------------------------------------- CLI


@pytest.fixture
def cli_store(
    sqlite_url: str, clock: MovableClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A SQLite store with the ranked scenario; the CLI reads it at 2026-03-09 10:00."""
    app = open_ledger(sqlite_url)
    service = LedgerService(app, clock)
    build_ranked(service, clock)
    app.close()

    def open_at_clock(store: str | None) -> LedgerService:
        opened = build_service(store, clock=MovableClock(at(9)))
        click.get_current_context().call_on_close(opened.ledger.close)
        return opened

    monkeypatch.setattr(cli.worklist, "open_service", open_at_clock)
    yield sqlite_url


def run(*args: str) -> str:
    result = CliRunner().invoke(cli.main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_cli_worklist_json(cli_store: str) -> None:
    """--format json gives every item with reason, balance as a decimal string, and the total."""
    data = json.loads(run("worklist", "--format", "json", "--limit", "4", "--store", cli_store))
    assert [i["reference"] for i in data["items"]] == [
        "OVERDUE-PROMISE",
        "BROKEN",
        "MISSED",
        "NEW-BIG",
    ]
    assert data["items"][3] == {
        "position": 4,
        "account_id": data["items"][3]["account_id"],
        "creditor": "acme-bank",
        "reference": "NEW-BIG",
        "currency": "USD",
        "balance": "5000.00",
        "reason": "never_contacted",
        "reasons": ["never_contacted"],
        "detail": "placed 2026-03-02, no contact yet",
        "since": data["items"][3]["since"],
        "agent": None,
        "status": "active",
        "holder": "acme-bank",
        "open_channels": ["letter"],  # 04:00 in Chicago: only a letter may go out now
    }
    assert data["total"] == 6 and data["now"] == "2026-03-09T10:00:00Z"


def test_cli_worklist_table_with_agent_and_left_out(cli_store: str) -> None:
    """The table shows one line per account and a footer counting who was left out and why."""
    app = open_ledger(cli_store)
    service = LedgerService(app, MovableClock(at(9)))
    service.receive_cease(service.resolve_account("NEW-SMALL"), "letter")
    app.close()
    lines = run("worklist", "--agent", "ana", "--store", cli_store).splitlines()
    assert lines[0].split()[:4] == ["#", "reason", "reference", "creditor"]
    assert [line.split()[2] for line in lines[1:-1]] == [
        "OVERDUE-PROMISE",
        "BROKEN",
        "MISSED",
        "NEW-BIG",
        "CALLBACK",
    ]
    assert lines[1].split()[1] == "broken_promise" and "900.00" in lines[1]
    assert lines[-1] == (
        "5 accounts for ana (or unassigned); left out, must not be contacted: 1 (ceased 1)"
    )


def test_cli_worklist_empty(sqlite_url: str, clock: MovableClock) -> None:
    """A ledger where nothing needs action says so instead of printing an empty table."""
    app = open_ledger(sqlite_url)
    service = LedgerService(app, clock)
    reach(service, place(service, "QUIET"))
    app.close()
    assert run("worklist", "--store", sqlite_url).splitlines() == [
        "worklist: nothing needs action now",
        "0 accounts",
    ]


# --------------------------------------------------------------------- demo


def _why_not(account: Account) -> str | None:
    """The exclusion, worked out from the aggregate rather than the read model."""
    if account.ceased:
        return "ceased"
    if any(d["status"] == "awaiting_verification" for d in account.disputes.values()):
        return "dispute_awaiting_verification"
    if account.bankrupt:
        return "bankrupt"
    if account.deceased:
        return "deceased"
    if account.attorney is not None:
        return "attorney"
    return None


def test_demo_worklist_never_lists_an_excluded_account(demo_copy: str) -> None:
    """On the demo, with exclusions added, every entry agrees with the ledger's aggregates."""
    app = open_ledger(demo_copy)
    try:
        clock = MovableClock(datetime(2026, 8, 3, 9, tzinfo=UTC), tick=timedelta(seconds=1))
        service = LedgerService(app, clock)
        before = service.worklist()
        assert before.total > 0
        assert {i.reason for i in before.items} >= {"broken_promise", "missed_installment"}
        targets = [UUID(i.account_id) for i in before.items[:6]]
        service.receive_cease(targets[0], "letter")
        service.raise_dispute(targets[1], "not mine", within_validation_period=False)
        service.notify_bankruptcy(
            targets[2], chapter="13", case_number="BK-9", filed_on=date(2026, 7, 1)
        )
        service.notify_deceased(targets[3])
        service.notify_attorney(targets[4], firm="Defense LLP")
        _, dispute = service.raise_dispute(
            targets[5], "wrong amount", within_validation_period=True
        )
        service.provide_verification(targets[5], dispute, "statement")

        after = service.worklist()
        listed = {UUID(i.account_id) for i in after.items}
        left_out = {UUID(e.account_id): e.excluded_because for e in after.left_out}
        assert listed.isdisjoint(left_out)
        assert set(targets[:5]) <= set(left_out) and targets[5] in listed
        for aid in listed:
            account = service.get_account(aid)
            assert _why_not(account) is None, (account.reference, account.flags)
            assert account.status in OPEN_STATUSES and account.total_balance > 0
        for aid, because in left_out.items():
            assert _why_not(service.get_account(aid)) == because
        everything = service.worklist(exclude=no_exclusion)
        assert {UUID(i.account_id) for i in everything.items} == listed | set(left_out)
        assert len(after.items) == after.total == len(before.items) - 5
    finally:
        app.close()
