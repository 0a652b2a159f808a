"""Time processes (ledger/processes.py): the passage of time recorded as events, exactly once.

Each scenario places one account, moves the ``MovableClock`` and runs a tick
through ``LedgerService.run_time_processes``, which finds its candidates in the
account summary read model and decides again on the account's fresh state.
Runs on both backends.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from conftest import JANE, START, placement, usd
from eventsourcing.domain import Snapshot

from ledger import errors, processes
from ledger.application import open_ledger
from ledger.clock import MovableClock
from ledger.domain.account import Account
from ledger.domain.plans import newly_missed
from ledger.processes import Due, TimePolicy, due
from ledger.services import Installment, LedgerService

ARREARS = str(Path(sys.executable).with_name("arrears"))
TODAY = START.date()


def on(day: date, clock: MovableClock) -> None:
    """Move the clock to noon UTC of ``day``."""
    clock.set(datetime.combine(day, time(12, 0), tzinfo=UTC))


def events_of(service: LedgerService, aid: UUID, after: int = 0) -> list[str]:
    return [type(e).__name__ for e in service.ledger.events.get(aid)][after:]


def tick(service: LedgerService, **policy: int) -> dict[str, int]:
    report = service.run_time_processes(**policy)
    assert report.failures == {}
    return dict(report.events)


@pytest.fixture
def aid(service: LedgerService) -> Iterator[UUID]:
    """A freshly placed 1200.00 USD account (version 1); read models closed afterwards."""
    yield service.place_account(placement(), debtor=JANE).id
    service.read_models().close()


def plan(service: LedgerService, aid: UUID, kind: str, total: str, *amounts: str) -> str:
    """Agree a plan with one installment per amount, due on the 1st of each month from April."""
    schedule = [Installment(date(2026, 4 + n, 1), usd(amount)) for n, amount in enumerate(amounts)]
    account = service.agree_plan(aid, kind=kind, total=usd(total), installments=schedule)
    assert account.plan is not None
    return str(account.plan["id"])


# ------------------------------------------------------------------ promises


def test_promise_is_kept_as_soon_as_payments_reach_it(
    service: LedgerService, clock: MovableClock, aid: UUID
) -> None:
    """A promise paid in two parts is kept on the tick after the second, once, before it is due."""
    service.make_promise(aid, usd("300.00"), TODAY + timedelta(days=10))
    service.post_payment(aid, usd("100.00"), method="card")
    assert tick(service) == {}
    service.post_payment(aid, usd("200.00"), method="card")
    assert tick(service) == {"PromiseKept": 1}
    assert tick(service) == {}
    assert events_of(service, aid).count("PromiseKept") == 1


@pytest.mark.parametrize("grace", [0, 3])
def test_promise_is_broken_only_after_due_date_plus_grace(
    service: LedgerService, clock: MovableClock, aid: UUID, grace: int
) -> None:
    """A promise short of its amount is broken the day after due + grace, not a day earlier."""
    promise_due = TODAY + timedelta(days=7)
    service.make_promise(aid, usd("300.00"), promise_due)
    service.post_payment(aid, usd("299.99"), method="card")
    on(promise_due + timedelta(days=grace), clock)
    assert tick(service, grace_days=grace) == {}
    on(promise_due + timedelta(days=grace + 1), clock)
    assert tick(service, grace_days=grace) == {"PromiseBroken": 1}
    assert tick(service, grace_days=grace) == {}
    assert service.get_account(aid).open_promise is None


# ------------------------------------------------------------------- plans


def test_installments_are_missed_once_each_and_the_plan_defaults_after_n(
    service: LedgerService, clock: MovableClock, aid: UUID
) -> None:
    """Unpaid installments are missed after due + grace, each once; the 3rd miss defaults (N=3)."""
    plan_id = plan(service, aid, "installment", "1200.00", "300.00", "300.00", "300.00", "300.00")
    on(date(2026, 4, 2), clock)
    service.post_payment(aid, usd("300.00"), method="ach")  # April covered, a day late
    on(date(2026, 5, 4), clock)
    assert tick(service, default_after=3) == {}  # May still within its 3 grace days
    on(date(2026, 5, 5), clock)
    assert tick(service, default_after=3) == {"InstallmentMissed": 1}
    assert tick(service, default_after=3) == {}
    on(date(2026, 7, 20), clock)  # June and July both overdue now: two misses, then default
    assert tick(service, default_after=3) == {"InstallmentMissed": 2, "PlanDefaulted": 1}
    assert tick(service, default_after=3) == {}
    stored = list(service.ledger.events.get(aid))
    missed = [e.due_date for e in stored if isinstance(e, Account.InstallmentMissed)]
    assert missed == [date(2026, 5, 1), date(2026, 6, 1), date(2026, 7, 1)]
    assert [type(e).__name__ for e in stored[-3:]] == [
        "InstallmentMissed",
        "InstallmentMissed",
        "PlanDefaulted",
    ]
    assert stored[-1].plan_id == plan_id and stored[-1].missed == 3
    assert service.get_account(aid).plan_history[-1]["outcome"] == "defaulted"


def test_default_after_is_configurable_and_catching_up_prevents_a_miss(
    service: LedgerService, clock: MovableClock, aid: UUID
) -> None:
    """With N=1 the first miss defaults; an installment paid within grace is never missed."""
    plan(service, aid, "installment", "1200.00", "600.00", "600.00")
    on(date(2026, 4, 3), clock)
    service.post_payment(aid, usd("600.00"), method="card")  # April paid within its grace
    on(date(2026, 4, 20), clock)
    assert tick(service, default_after=1) == {}
    on(date(2026, 5, 5), clock)
    assert tick(service, default_after=1) == {"InstallmentMissed": 1, "PlanDefaulted": 1}


def test_installment_plan_paid_in_full_is_completed(
    service: LedgerService, clock: MovableClock, aid: UUID
) -> None:
    """Paying an installment plan's total completes it on the next tick; the account stays open."""
    plan(service, aid, "installment", "1200.00", "600.00", "600.00")
    service.post_payment(aid, usd("1200.00"), method="wire")
    assert tick(service) == {"PlanCompleted": 1}
    assert tick(service) == {}
    account = service.get_account(aid)
    assert account.plan is None and account.status == "active"
    assert account.plan_history[-1]["outcome"] == "completed"


def test_a_plan_whose_account_owes_nothing_is_completed_never_missed(
    service: LedgerService, clock: MovableClock, aid: UUID
) -> None:
    """A waiver and a payment clear the balance before the schedule ends: the plan is
    done (no miss, no default), and the summary asks for nothing more meanwhile."""
    plan(service, aid, "installment", "1200.00", "400.00", "400.00", "400.00")
    service.waive(aid, kind="settlement", reason="hardship", amounts={"principal": usd("800.00")})
    service.post_payment(aid, usd("400.00"), method="wire")
    summary = service.live_account_summary(aid)
    assert summary["plan"]["next_due_date"] is None and summary["plan"]["arrears"] == 0
    on(date(2026, 6, 20), clock)  # the May and June installments are long overdue
    assert tick(service) == {"PlanCompleted": 1}
    assert tick(service) == {}
    account = service.get_account(aid)
    assert account.plan is None and account.plan_history[-1]["outcome"] == "completed"
    assert "InstallmentMissed" not in events_of(service, aid)


def test_settlement_is_completed_waived_and_closed_in_one_save(
    service: LedgerService, clock: MovableClock, aid: UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A paid settlement records PlanCompleted, BalanceWaived and Closed(settled) in one save."""
    plan(service, aid, "settlement", "720.00", "360.00", "360.00")
    on(date(2026, 4, 30), clock)
    service.post_payment(aid, usd("720.00"), method="card")
    saves: list[list[str]] = []
    save = service.ledger.save

    def counting_save(*aggregates: Any, **kwargs: Any) -> Any:
        saves.append([type(e).__name__ for a in aggregates for e in a.pending_events])
        return save(*aggregates, **kwargs)

    monkeypatch.setattr(service.ledger, "save", counting_save)
    assert tick(service) == {"PlanCompleted": 1, "BalanceWaived": 1, "Closed": 1}
    assert saves == [["PlanCompleted", "BalanceWaived", "Closed"]]
    account = service.get_account(aid)
    assert account.status == "closed" and account.close_reason == "settled"
    assert account.total_balance == 0 and account.waived_total == 48000
    assert tick(service) == {}


def test_a_failure_part_way_through_a_settlement_records_none_of_it(
    service: LedgerService, clock: MovableClock, aid: UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the close fails after completion and waiver, nothing is saved; the next tick does all."""
    plan(service, aid, "settlement", "600.00", "600.00")
    service.post_payment(aid, usd("600.00"), method="card")
    version = service.get_account(aid).version

    def broken_close(self: Account, **kwargs: Any) -> None:
        raise errors.InvalidTransition("simulated failure", status="active", action="close")

    with monkeypatch.context() as patch:
        patch.setattr(Account, "close", broken_close)
        report = service.run_time_processes()
    assert report.failures == {str(aid): "invalid_transition"} and not report.events
    assert service.get_account(aid).version == version
    assert len(events_of(service, aid)) == version
    assert tick(service) == {"PlanCompleted": 1, "BalanceWaived": 1, "Closed": 1}


def test_amended_plan_is_judged_on_its_new_schedule(
    service: LedgerService, clock: MovableClock, aid: UUID
) -> None:
    """After an amendment the old misses no longer count and the new dates are judged afresh."""
    plan(service, aid, "installment", "1200.00", "600.00", "600.00")
    on(date(2026, 4, 10), clock)
    assert tick(service, default_after=2) == {"InstallmentMissed": 1}
    service.amend_plan(
        aid,
        total=usd("1200.00"),
        installments=[
            Installment(date(2026, 5, 1), usd("400.00")),
            Installment(date(2026, 6, 1), usd("800.00")),
        ],
        reason="smaller first installment",
    )
    on(date(2026, 5, 10), clock)
    assert tick(service, default_after=2) == {"InstallmentMissed": 1}
    on(date(2026, 6, 10), clock)
    assert tick(service, default_after=2) == {"InstallmentMissed": 1, "PlanDefaulted": 1}


# ------------------------------------------------------- exactly once, by rule


def test_already_done_refusals_are_no_ops(
    service: LedgerService, clock: MovableClock, aid: UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stale decision refused as no open promise / already missed / no active plan: no-op."""
    plan_id = plan(service, aid, "installment", "1200.00", "600.00", "600.00")
    on(date(2026, 4, 10), clock)
    service.miss_installment(aid, date(2026, 4, 1))
    stale = Due(
        promise_id="gone",
        promise_outcome="broken",
        plan_id=plan_id,
        missed=(date(2026, 4, 1),),
        plan_outcome="defaulted",
    )
    monkeypatch.setattr(processes, "due", lambda *args: stale)
    version = service.get_account(aid).version
    assert service.advance_account(aid, TimePolicy()) == []
    stale_plan = Due(plan_id="an-older-plan", plan_outcome="defaulted")
    monkeypatch.setattr(processes, "due", lambda *args: stale_plan)
    assert service.advance_account(aid, TimePolicy()) == []
    assert service.get_account(aid).version == version


def test_a_second_service_with_a_stale_cache_records_nothing_twice(
    store_url: str, service: LedgerService, clock: MovableClock, aid: UUID
) -> None:
    """Two services (two caches) on one store: the second finds the first's events and adds none."""
    plan(service, aid, "installment", "1200.00", "600.00", "600.00")
    other_ledger = open_ledger(store_url)
    try:
        other = LedgerService(other_ledger, clock)
        other.get_account(aid)  # cached before the first service acts
        on(date(2026, 5, 10), clock)
        assert service.advance_account(aid, TimePolicy()) == [
            "InstallmentMissed",
            "InstallmentMissed",
            "PlanDefaulted",
        ]
        assert other.advance_account(aid, TimePolicy()) == []
    finally:
        other_ledger.close()


def test_snapshots_from_before_missed_dates_still_load_and_decide() -> None:
    """A plan state without 'missed_dates' (older snapshot) is decided by its count of misses."""
    schedule = [(date(2026, 4, 1), 100), (date(2026, 5, 1), 100), (date(2026, 6, 1), 100)]
    assert newly_missed(schedule, 0, date(2026, 6, 10), 3, None, 1) == (
        date(2026, 5, 1),
        date(2026, 6, 1),
    )
    account = Account.__new__(Account)
    Account.__init__(account)
    account.plan = {
        "id": "p",
        "kind": "installment",
        "total": 300,
        "installments": [{"due_date": d, "amount": a} for d, a in schedule],
        "paid": 0,
        "missed": 1,
        "agreed_at": START,
    }
    account.balance = {"principal": 300, "interest": 0, "fees": 0}  # still owed
    assert account.missed_dates is None
    todo = due(account, date(2026, 6, 10), TimePolicy(grace_days=3, default_after=5))
    assert todo.missed == (date(2026, 5, 1), date(2026, 6, 1)) and todo.plan_outcome is None
    event = Account.InstallmentMissed(
        originator_id=UUID(int=1),
        originator_version=2,
        timestamp=START,
        plan_id="p",
        due_date=date(2026, 5, 1),
        amount=100,
    )
    event.apply(account)
    assert account.plan["missed"] == 2 and account.missed_dates is None  # still only counted


def test_an_old_snapshot_without_missed_dates_is_not_missed_again(
    store_url: str, service: LedgerService, clock: MovableClock, aid: UUID
) -> None:
    """A stored snapshot whose plan predates 'missed_dates' loads; no miss is repeated."""
    plan(service, aid, "installment", "1200.00", "400.00", "400.00", "400.00")
    on(date(2026, 4, 10), clock)
    service.miss_installment(aid, date(2026, 4, 1))
    account = service.get_account(aid)
    old = Snapshot.take(account)
    state = dict(old.state)
    state["plan"] = {k: v for k, v in account.plan.items() if k != "missed_dates"}  # type: ignore[union-attr]
    service.ledger.snapshots.put(  # type: ignore[union-attr]
        [
            Snapshot(
                originator_id=old.originator_id,
                originator_version=old.originator_version,
                timestamp=old.timestamp,
                topic=old.topic,
                state=state,
            )
        ]
    )
    fresh_ledger = open_ledger(store_url)  # no cache: loads from the snapshot
    try:
        other = LedgerService(fresh_ledger, clock)
        assert other.get_account(aid).missed_dates is None
        on(date(2026, 5, 10), clock)
        assert other.advance_account(aid, TimePolicy(default_after=3)) == ["InstallmentMissed"]
        assert other.advance_account(aid, TimePolicy(default_after=3)) == []
        on(date(2026, 6, 10), clock)
        assert other.advance_account(aid, TimePolicy(default_after=3)) == [
            "InstallmentMissed",
            "PlanDefaulted",
        ]
    finally:
        fresh_ledger.close()
    stored = list(service.ledger.events.get(aid))
    missed = [e.due_date for e in stored if isinstance(e, Account.InstallmentMissed)]
    assert missed == [date(2026, 4, 1), date(2026, 5, 1), date(2026, 6, 1)]


def test_policy_is_validated() -> None:
    """Negative grace days or a default after fewer than one miss are invalid_input."""
    with pytest.raises(errors.ValidationError):
        TimePolicy(grace_days=-1)
    with pytest.raises(errors.ValidationError):
        TimePolicy(default_after=0)
    account = Account.__new__(Account)
    Account.__init__(account)
    account.status = "closed"
    assert not due(account, TODAY, TimePolicy())


# ------------------------------------------------------------------------ CLI


def arrears(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "ARREARS_LOG_LEVEL": "WARNING", **(env or {})}
    for name in ("ARREARS_STORE", "ARREARS_GRACE_DAYS", "ARREARS_DEFAULT_AFTER"):
        if name not in (env or {}):
            full.pop(name, None)
    return subprocess.run(
        [ARREARS, *args], capture_output=True, text=True, env=full, timeout=120, check=False
    )


def test_worker_once_reads_grace_and_default_from_options_and_environment(
    store_url: str,
) -> None:
    """`worker --once`: ARREARS_GRACE_DAYS / ARREARS_DEFAULT_AFTER apply, options override them."""
    real_today = datetime.now(UTC).date()
    clock = MovableClock(datetime.combine(real_today - timedelta(days=20), time(9), tzinfo=UTC))
    ledger = open_ledger(store_url)
    try:
        service = LedgerService(ledger, clock)
        aid = service.place_account(placement(), debtor=JANE).id
        first, second = real_today - timedelta(days=6), real_today - timedelta(days=5)
        service.agree_plan(
            aid,
            kind="installment",
            total=usd("1200.00"),
            installments=[Installment(first, usd("600.00")), Installment(second, usd("600.00"))],
        )
        service.make_promise(aid, usd("50.00"), first)
    finally:
        ledger.close()
    env = {"ARREARS_GRACE_DAYS": "10", "ARREARS_DEFAULT_AFTER": "3"}
    result = arrears("worker", "--once", "--json", "--store", store_url, env=env)
    assert result.returncode == 0, result.stderr
    assert '"events": {}' in result.stdout and '"grace_days": 10' in result.stdout
    result = arrears("worker", "--once", "--grace-days", "5", "--store", store_url, env=env)
    assert result.returncode == 0, result.stderr
    assert "InstallmentMissed 1, PromiseBroken 1)" in result.stdout
    result = arrears("worker", "--once", "--grace-days", "4", "--store", store_url, env=env)
    assert "InstallmentMissed 1)" in result.stdout  # second miss, still short of 3
    result = arrears("worker", "--once", "--default-after", "2", "--store", store_url, env=env)
    assert "PlanDefaulted 1)" in result.stdout
    bad = arrears("worker", "--once", "--default-after", "0", "--store", store_url)
    assert bad.returncode == 2 and "--default-after" in bad.stderr
