"""The worker (ledger/worker.py, ``arrears worker``) on the demo portfolio, on both backends.

* Killed with SIGKILL part-way through catching the read models up, then
  restarted with ``--once``, it leaves every read model table identical, row for
  row, to a rebuild from the first event.
* Two workers started at the same moment in two OS processes record every event
  the time processes call for exactly once: the events stored afterwards are, as
  a multiset, exactly those a single pass computes from the state before.
* SIGTERM and SIGINT stop it cleanly, exit code 0.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Hashable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from conftest import JANE, placement
from multiproc import run_processes

from ledger.application import Ledger, open_ledger
from ledger.clock import MovableClock
from ledger.domain.account import Account
from ledger.money import Money
from ledger.processes import TimePolicy, advance
from ledger.readmodels import ReadModels
from ledger.readmodels.engine import physical_names
from ledger.readmodels.sqlstore import ReadStore
from ledger.services import Installment, LedgerService
from ledger.store.url import parse_store_url
from ledger.worker import Worker

ARREARS = str(Path(sys.executable).with_name("arrears"))
#: After the whole demo timeline: plans in arrears, promises and plans to settle.
NOW = datetime(2026, 9, 15, 12, 0, tzinfo=UTC)
POLICY = TimePolicy(grace_days=3, default_after=2)


def worker_env() -> dict[str, str]:
    env = {**os.environ, "ARREARS_LOG_LEVEL": "WARNING"}
    for name in ("ARREARS_STORE", "ARREARS_GRACE_DAYS", "ARREARS_DEFAULT_AFTER"):
        env.pop(name, None)
    return env


def positions(store: ReadStore) -> dict[str, int]:
    """Each read model's committed position, read without creating anything (0 before)."""
    try:
        rows = store.query("SELECT name, position FROM projection_state WHERE slot = 'active'")
    except Exception:  # the worker has not created the state table yet
        store.close()
        return {}
    return {r["name"]: int(r["position"]) for r in rows}


def dump(models: ReadModels, name: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of read model ``name``'s active generation, sorted."""
    out = {}
    for logical, table in models.engine.tables(name).items():
        rows = models.store.query(f"SELECT * FROM {table}")
        normalised = [
            tuple(bytes(v) if isinstance(v, memoryview | bytearray) else v for v in r.values())
            for r in rows
        ]
        out[logical] = sorted(normalised, key=repr)
    return out


def interrupt(url: str, store: ReadStore, head: int, signum: int, log: Path) -> dict[str, int]:
    """Start a following worker, send ``signum`` once it has committed a batch past where
    the read models stood but not reached ``head``; the positions it left."""
    before = positions(store)
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [ARREARS, "worker", "--store", url, "--tick", "3600"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=worker_env(),
        )
        try:
            while time.monotonic() - started < 60:
                now = positions(store)
                if any(before.get(name, 0) < p < head for name, p in now.items()):
                    break
                if now and min(now.values()) >= head:
                    break  # too quick to catch part-way: the caller's assertions say so
                assert proc.poll() is None, log.read_text()
                time.sleep(0.005)
            proc.send_signal(signum)
            code = proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
    expected = -signal.SIGKILL if signum == signal.SIGKILL else 0
    assert code == expected, log.read_text()
    return positions(store)


def test_worker_killed_mid_batch_and_restarted_leaves_identical_read_models(
    demo_copy: str, tmp_path: Path
) -> None:
    """SIGKILL mid-catch-up, SIGTERM mid-catch-up, then --once: every table equals a rebuild."""
    ledger = open_ledger(demo_copy)
    head = int(ledger.recorder.max_notification_id() or 0)
    store = ReadStore(parse_store_url(demo_copy))
    started = time.monotonic()
    assert not any(positions(store).values())  # a fresh copy: nothing projected yet
    killed_at = interrupt(demo_copy, store, head, signal.SIGKILL, tmp_path / "killed.log")
    assert any(0 < p < head for p in killed_at.values()), (killed_at, head)
    stopped_at = interrupt(demo_copy, store, head, signal.SIGTERM, tmp_path / "stopped.log")
    assert "stopped by SIGTERM" in (tmp_path / "stopped.log").read_text()
    assert sum(stopped_at.values()) > sum(killed_at.values())

    rerun = subprocess.run(
        [ARREARS, "worker", "--once", "--store", demo_copy],
        capture_output=True,
        text=True,
        env=worker_env(),
        timeout=120,
        check=False,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert "InstallmentMissed" in rerun.stdout  # the tick's own events are compared too

    models = ReadModels(ledger)
    try:
        new_head = models.engine.head()
        assert new_head >= head
        before = {s.name: s for s in models.engine.status()}
        assert all(s.position == new_head for s in before.values()), before
        for name, projection in models.engine.projections.items():
            kept = dump(models, name)
            assert sum(len(rows) for rows in kept.values()) > 0, name
            models.engine.rebuild(name)
            rebuilt = dump(models, name)
            state = {s.name: s for s in models.engine.status()}[name]
            assert state.generation == before[name].generation + 1
            assert state.position == before[name].position
            assert state.events == before[name].events
            assert set(physical_names(projection, state.generation).values()) == set(
                models.engine.tables(name).values()
            )
            for logical in kept:
                assert kept[logical] == rebuilt[logical], f"{name}.{logical} differs"
    finally:
        models.close()
        store.close()
        ledger.close()
    print(
        f"\n{demo_copy.split(':')[0]}: killed at {killed_at}, stopped at {stopped_at} of {head}; "
        f"whole test {time.monotonic() - started:.1f}s"
    )


# ------------------------------------------------------ two workers at once


def event_key(event: Any) -> tuple[Hashable, ...]:
    """What makes a time-process event unique: its type, account and subject."""
    name = type(event).__name__
    subject: Hashable
    if isinstance(event, Account.PromiseKept | Account.PromiseBroken):
        subject = event.promise_id
    elif isinstance(event, Account.InstallmentMissed):
        subject = (event.plan_id, event.due_date)
    elif isinstance(event, Account.PlanDefaulted | Account.PlanCompleted):
        subject = event.plan_id
    elif isinstance(event, Account.BalanceWaived):
        subject = event.kind
    elif isinstance(event, Account.Closed):
        subject = event.reason
    else:
        subject = None
    return (name, str(event.originator_id), subject)


def arrange_more(url: str, accounts: int = 80) -> None:
    """The demo settles its own promises and settlements; give the workers some too.

    On quiet active accounts, after the demo timeline: promises paid in full, promises
    paid in part, installment plans paid in full, and settlements paid in full.
    """
    ledger = open_ledger(url)
    try:
        clock = MovableClock(datetime(2026, 8, 1, 9, 0, tzinfo=UTC), tick=timedelta(seconds=1))
        service = LedgerService(ledger, clock)
        quiet = []
        for aid in service.list_account_ids():
            account = service.get_account(aid)
            if (
                account.status == "active"
                and account.plan is None
                and account.open_promise is None
                and account.total_balance >= 1000
            ):
                quiet.append(account)
            if len(quiet) == accounts:
                break
        for n, account in enumerate(quiet):
            balance = account.total_balance

            def money(minor: int, currency: str = account.currency) -> Money:
                return Money(minor, currency)

            if n % 4 in (0, 1):
                service.make_promise(account.id, money(balance // 10), date(2026, 8, 10))
                paid = balance // 10 if n % 4 == 0 else balance // 20
                service.post_payment(account.id, money(paid), method="card")
                continue
            total = balance if n % 4 == 2 else balance * 6 // 10
            first = total // 2
            service.agree_plan(
                account.id,
                kind="installment" if n % 4 == 2 else "settlement",
                total=money(total),
                installments=[
                    Installment(date(2026, 8, 5), money(first)),
                    Installment(date(2026, 9, 5), money(total - first)),
                ],
            )
            service.post_payment(account.id, money(total), method="ach")
    finally:
        ledger.close()


def expected_events(url: str) -> Counter[tuple[Hashable, ...]]:
    """What one pass of the time processes must record at NOW, computed account by account
    on the stored state (a throwaway ledger: the accounts are changed but never saved)."""
    ledger = open_ledger(url)
    try:
        service = LedgerService(ledger, MovableClock(NOW))
        expected: Counter[tuple[Hashable, ...]] = Counter()
        for aid in service.list_account_ids():
            account = service.get_account(aid)
            advance(account, NOW, POLICY)
            expected.update(event_key(e) for e in account.pending_events)
        return expected
    finally:
        ledger.close()


def events_after(ledger: Ledger, position: int) -> list[Any]:
    found = []
    while True:
        batch = ledger.recorder.select_notifications(
            start=position, limit=1000, inclusive_of_start=False
        )
        found.extend(ledger.mapper.to_domain_event(n) for n in batch)
        if len(batch) < 1000:
            return found
        position = batch[-1].id


def _worker_once(worker: int, barrier: Any, url: str, order: str) -> dict[str, Any]:
    """One worker process: catch up, wait for the other at the barrier, tick, catch up."""
    ledger = open_ledger(url)
    try:
        service = LedgerService(ledger, MovableClock(NOW))
        conflicts = 0
        forget = service._forget

        def counting_forget(aggregate_id: UUID) -> None:  # called on each version conflict
            nonlocal conflicts
            conflicts += 1
            forget(aggregate_id)

        service._forget = counting_forget  # type: ignore[method-assign]

        class InStep(Worker):
            def tick(self) -> Any:
                barrier.wait(timeout=60)
                return super().tick()

        runner = InStep(service, POLICY, order=order)  # type: ignore[arg-type]
        report = runner.run_once()
        runner.close()
        return {**report.as_dict(), "conflicts": conflicts}
    finally:
        ledger.close()


def test_time_processes_fire_exactly_once_with_two_concurrent_workers(demo_copy: str) -> None:
    """Two worker processes ticking at once: each due event is stored once, none is missing."""
    started = time.monotonic()
    arrange_more(demo_copy)
    expected = expected_events(demo_copy)
    kinds = Counter(key[0] for key in expected.elements())
    assert set(kinds) == {
        "PromiseKept",
        "PromiseBroken",
        "InstallmentMissed",
        "PlanDefaulted",
        "PlanCompleted",
        "BalanceWaived",
        "Closed",
    }, kinds
    ledger = open_ledger(demo_copy)
    head = int(ledger.recorder.max_notification_id() or 0)
    ledger.close()

    reports = run_processes(_worker_once, [(demo_copy, "sorted")] * 2)
    for report in reports:
        assert report["failures"] == {}, report

    ledger = open_ledger(demo_copy)
    try:
        new = events_after(ledger, head)
        stored = Counter(event_key(e) for e in new)
        assert stored == expected
        assert max(stored.values()) == 1
        assert sum(sum(r["events"].values()) for r in reports) == len(new)
        # Over the whole ledger (the demo recorded some of these itself), still one each.
        every = Counter(
            event_key(e)
            for e in events_after(ledger, 0)
            if isinstance(
                e,
                Account.PromiseKept
                | Account.PromiseBroken
                | Account.InstallmentMissed
                | Account.PlanDefaulted
                | Account.PlanCompleted,
            )
        )
        assert max(every.values()) == 1
        # A third pass finds nothing left to do.
        third = LedgerService(ledger, MovableClock(NOW))
        rerun = third.run_time_processes(POLICY.grace_days, POLICY.default_after)
        third.read_models().close()
        assert rerun.failures == {} and not rerun.events, rerun.as_dict()
    finally:
        ledger.close()
    shares = [sum(r["events"].values()) for r in reports]
    conflicts = sum(r["conflicts"] for r in reports)
    assert conflicts > 0 or min(shares) > 0, "the two workers never overlapped"
    print(
        f"\n{demo_copy.split(':')[0]}: {sum(expected.values())} events expected ({dict(kinds)}), "
        "stored once each; "
        f"workers recorded {shares}, {conflicts} version conflicts "
        f"lost and retried; whole test {time.monotonic() - started:.1f}s"
    )


# ------------------------------------------------------------ clean stop


def test_sigterm_and_sigint_stop_the_worker_cleanly(store_url: str, tmp_path: Path) -> None:
    """A following worker stops on SIGTERM and on SIGINT with exit code 0 and says why."""
    ledger = open_ledger(store_url)
    try:
        LedgerService(ledger).place_account(placement(), debtor=JANE)
        head = int(ledger.recorder.max_notification_id() or 0)
    finally:
        ledger.close()
    store = ReadStore(parse_store_url(store_url))
    try:
        for signum in (signal.SIGTERM, signal.SIGINT):
            out = tmp_path / f"{signum}.log"
            with out.open("w") as log:
                proc = subprocess.Popen(
                    [ARREARS, "worker", "--store", store_url, "--tick", "0.2"],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=worker_env(),
                )
                try:
                    deadline = time.monotonic() + 30
                    while "tick at" not in out.read_text():
                        assert proc.poll() is None, out.read_text()
                        assert time.monotonic() < deadline, out.read_text()
                        time.sleep(0.05)
                    proc.send_signal(signum)
                    assert proc.wait(timeout=10) == 0, out.read_text()
                finally:
                    if proc.poll() is None:
                        proc.kill()
            text = out.read_text()
            assert f"stopped by {signal.Signals(signum).name}" in text, text
            assert "Traceback" not in text, text
            caught_up = positions(store)
            assert "account_summary" in caught_up and set(caught_up.values()) == {head}
    finally:
        store.close()
