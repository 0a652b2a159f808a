"""The projection engine: positions, rebuilds, concurrency, read-your-writes, following, CLI.

Every check that compares tables runs generically over ``default_projections()``,
so read models added later are covered without touching this file.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from click.testing import CliRunner

import cli
import cli.core
from ledger import errors
from ledger.application import Ledger, open_ledger
from ledger.clock import MovableClock
from ledger.money import Money
from ledger.readmodels import default_projections
from ledger.readmodels.account_summary import AccountSummaryProjection
from ledger.readmodels.engine import (
    EventRecord,
    Projection,
    ProjectionEngine,
    ProjectionTx,
    physical_names,
)
from ledger.readmodels.sqlstore import ReadStore, StateEncoder, fast_decoder
from ledger.services import Installment, LedgerService
from tests.conftest import JANE, placement, requires_postgres

LATER = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


# ------------------------------------------------------------------ helpers


@contextmanager
def engine_on(
    url: str, *, batch_size: int = 5000, projections: Sequence[Projection] | None = None
) -> Iterator[ProjectionEngine]:
    """An engine with its own ledger and read-store connections, like a separate process."""
    ledger = open_ledger(url)
    assert ledger.store_config is not None
    store = ReadStore(ledger.store_config)
    try:
        chosen = list(projections) if projections is not None else default_projections()
        yield ProjectionEngine(ledger, store, chosen, batch_size=batch_size)
    finally:
        store.close()
        ledger.close()


def _plain(value: Any) -> Any:
    return bytes(value) if isinstance(value, memoryview | bytearray) else value


def table_rows(
    engine: ProjectionEngine, name: str, generation: int | None = None
) -> dict[str, Any]:
    """Every row of every table of one read model (a generation, default the active one), sorted."""
    (projection,) = [p for p in engine.projections.values() if p.name == name]
    names = engine.tables(name) if generation is None else physical_names(projection, generation)
    out = {}
    with engine.store.transaction(write=False) as tx:
        for logical, table in names.items():
            rows = [tuple(_plain(v) for v in row) for row in tx.rows(f"SELECT * FROM {table}")]
            out[logical] = sorted(rows, key=repr)
    return out


def all_tables(engine: ProjectionEngine) -> dict[str, dict[str, Any]]:
    return {name: table_rows(engine, name) for name in engine.projections}


def status_of(engine: ProjectionEngine, name: str) -> Any:
    (found,) = [s for s in engine.status() if s.name == name]
    return found


def stored_events(engine: ProjectionEngine) -> int:
    with engine.store.transaction(write=False) as tx:
        return int(tx.scalar("SELECT count(*) FROM stored_events"))


class Writer:
    """New events through the service, of many kinds, on demo accounts (refusals are fine)."""

    def __init__(self, ledger: Ledger, seed: int = 1) -> None:
        self.clock = MovableClock(LATER, tick=timedelta(seconds=1))
        self.service = LedgerService(ledger, self.clock)
        self.accounts = self.service.list_account_ids()
        self.rng = random.Random(seed)
        self.written = 0
        # Demo accounts may be closed or sold by now; fresh ones take every command.
        self.fresh = [
            self.service.place_account(placement(f"W{seed}-{n}"), debtor=JANE).id for n in range(3)
        ]

    def one(self) -> None:
        s, rng = self.service, self.rng
        account = rng.choice(self.fresh if rng.random() < 0.5 else self.accounts)
        currency = s.get_account(account).currency
        kind = rng.randrange(6)
        self.clock.advance(timedelta(hours=1))
        today = self.clock.now().date()
        try:
            if kind == 0:
                s.post_payment(account, Money(rng.randint(100, 5000), currency), method="card")
            elif kind == 1:
                s.record_contact(
                    account,
                    channel="phone",
                    direction="outbound",
                    outcome=rng.choice(["right_party_contact", "no_answer"]),
                    agent=f"agent-{rng.randint(1, 5):02d}",
                    callback_at=self.clock.now() + timedelta(days=2),
                )
            elif kind == 2:
                s.make_promise(
                    account, Money(2500, currency), today + timedelta(days=7), agent="agent-07"
                )
            elif kind == 3:
                s.break_promise(account)
            elif kind == 4:
                s.agree_plan(
                    account,
                    kind="installment",
                    total=Money(3000, currency),
                    installments=[
                        Installment(today + timedelta(days=30 * n), Money(1000, currency))
                        for n in (1, 2, 3)
                    ],
                )
            else:
                s.assess_fee(account, Money(1500, currency), fee_type="late")
            self.written += 1
        except errors.LedgerError:
            pass

    def some(self, n: int) -> None:
        for _ in range(n):
            self.one()


# ------------------------------------------------------- incremental = rebuild


def test_incremental_in_steps_with_writes_equals_rebuild_from_zero(demo_copy: str) -> None:
    """Catch-up one batch at a time, by several engines in turn, interleaved with new writes,
    then every read model rebuilt from zero into a new generation: every table row for row."""
    names = [p.name for p in default_projections()]
    ledger = open_ledger(demo_copy)
    writer = Writer(ledger)
    head = int(ledger.recorder.max_notification_id() or 0)
    batch = max(200, head // 6)
    try:
        steps, applied = 0, 1
        while applied or steps < 12:
            # A fresh engine every few steps: its caches start cold, like a restarted worker.
            with engine_on(demo_copy, batch_size=batch) as engine:
                for _ in range(3):
                    applied = engine.catch_up(max_batches=1)
                    if steps < 12:
                        writer.some(4)
                    steps += 1
        assert writer.written > 20
        with engine_on(demo_copy, batch_size=batch) as engine:
            engine.catch_up()
            head = engine.head()
            incremental = all_tables(engine)
            before = {n: status_of(engine, n) for n in names}
            for name in names:
                assert before[name].position == head
                assert before[name].events == stored_events(engine)
                engine.rebuild(name)
            rebuilt = all_tables(engine)
            after = {n: status_of(engine, n) for n in names}
    finally:
        ledger.close()
    for name in names:
        assert after[name].generation == before[name].generation + 1
        assert after[name].position == head and after[name].lag == 0
        assert rebuilt[name].keys() == incremental[name].keys()
        for logical in incremental[name]:
            assert rebuilt[name][logical] == incremental[name][logical], (name, logical)
        assert any(incremental[name].values()), name
    accounts = incremental["account_summary"]["accounts"]
    assert len(accounts) == len(writer.accounts) + len(writer.fresh)


def test_failed_batch_commits_nothing_and_the_retry_counts_once(demo_copy: str) -> None:
    """A batch that fails half-way leaves rows, position and caches as before; the next
    catch-up applies it exactly once."""

    class Flaky(AccountSummaryProjection):
        calls = 0

        def handle(self, tx: ProjectionTx, events: Sequence[EventRecord]) -> None:
            super().handle(tx, events)  # rows written (and cached states changed) ...
            Flaky.calls += 1
            if Flaky.calls == 3:
                raise RuntimeError("crash after writing")  # ... then the batch fails

    with engine_on(demo_copy, projections=[Flaky()]) as engine:
        engine.batch_size = max(100, engine.head() // 5)
        engine.catch_up(max_batches=2)
        rows_before = table_rows(engine, "account_summary")
        position = status_of(engine, "account_summary").position
        with pytest.raises(RuntimeError):
            engine.catch_up()
        assert status_of(engine, "account_summary").position == position
        assert table_rows(engine, "account_summary") == rows_before
        engine.catch_up()  # the same engine, so the same (reset) projection object
        assert status_of(engine, "account_summary").events == stored_events(engine)
        incremental = table_rows(engine, "account_summary")
        engine.rebuild("account_summary")
        assert table_rows(engine, "account_summary") == incremental


# -------------------------------------------------------------------- rebuild


def test_rebuild_keeps_serving_the_old_generation_then_switches(demo_copy: str) -> None:
    """While a rebuild fills the next generation, readers get the old tables (from another
    connection), and status shows the rebuild; then the switch drops the old generation."""
    only = [AccountSummaryProjection()]
    with engine_on(demo_copy, projections=only) as engine:
        engine.catch_up()
        old = table_rows(engine, "account_summary")
        generation = status_of(engine, "account_summary").generation
        batch = max(100, engine.head() // 5)
    rebuilding, checked = threading.Event(), threading.Event()
    seen: dict[str, Any] = {}
    failure: list[BaseException] = []

    def progress(count: int) -> None:
        if not rebuilding.is_set():
            rebuilding.set()
            checked.wait(30)

    def rebuild() -> None:
        try:
            with engine_on(demo_copy, batch_size=batch, projections=only) as builder:
                seen["total"] = builder.rebuild("account_summary", progress=progress)
        except BaseException as e:
            failure.append(e)
            rebuilding.set()

    thread = threading.Thread(target=rebuild)
    thread.start()
    try:
        assert rebuilding.wait(30)
        with engine_on(demo_copy, projections=[AccountSummaryProjection()]) as reader:
            mid = status_of(reader, "account_summary")
            assert mid.generation == generation and mid.building is not None
            assert 0 < mid.building < mid.head
            assert reader.tables("account_summary")["accounts"].endswith(f"_g{generation}")
            assert table_rows(reader, "account_summary") == old  # served in full meanwhile
    finally:
        checked.set()
        thread.join(60)
    assert not failure, failure
    with engine_on(demo_copy, projections=[AccountSummaryProjection()]) as engine:
        done = status_of(engine, "account_summary")
        assert done.generation == generation + 1 and done.building is None and done.lag == 0
        assert seen["total"] == done.events == stored_events(engine)
        assert done.position == done.head
        assert table_rows(engine, "account_summary") == old
        names = physical_names(AccountSummaryProjection(), generation)
        with engine.store.transaction(write=False) as tx:
            assert not any(engine.store.table_exists(tx, t) for t in names.values())


def test_a_reader_inside_reading_is_never_cut_off_by_the_switch(demo_copy: str) -> None:
    """A reader in ``engine.reading(name)`` keeps its generation through a rebuild's switch:
    SQLite's snapshot keeps the dropped tables readable; PostgreSQL's switch waits."""
    only = [AccountSummaryProjection()]
    with engine_on(demo_copy, projections=only) as engine:
        engine.catch_up()
        generation = status_of(engine, "account_summary").generation
    failures: list[BaseException] = []

    def rebuild() -> None:
        try:
            with engine_on(demo_copy, projections=[AccountSummaryProjection()]) as builder:
                builder.rebuild("account_summary")
        except BaseException as e:
            failures.append(e)

    thread = threading.Thread(target=rebuild)
    with (
        engine_on(demo_copy, projections=only) as reader,
        engine_on(demo_copy, projections=[AccountSummaryProjection()]) as watcher,
    ):
        with reader.reading("account_summary") as (tx, names):
            assert names["accounts"].endswith(f"_g{generation}")
            before = tx.rows(f"SELECT * FROM {names['accounts']} ORDER BY account_id")
            thread.start()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # until the rebuild is done or at its switch
                state = status_of(watcher, "account_summary")
                if state.generation > generation or state.building == state.head:
                    break
                time.sleep(0.05)
            if reader.store.postgres:
                time.sleep(0.5)
                assert thread.is_alive()  # the switch waits for this reader
            else:
                thread.join(30)
                assert status_of(watcher, "account_summary").generation == generation + 1
            after = tx.rows(f"SELECT * FROM {names['accounts']} ORDER BY account_id")
            assert after == before and before
        thread.join(60)
        assert not failures, failures
        assert status_of(watcher, "account_summary").generation == generation + 1


# ----------------------------------------------------------------- concurrency


def test_two_engines_catching_up_concurrently_never_double_count(demo_copy: str) -> None:
    """Two engines (own connections, own caches) race through the same read models from
    zero while new events arrive: the rows equal a single engine's rebuild, and each
    read model counted every event once."""
    failures: list[BaseException] = []
    start = threading.Barrier(3)
    ledger = open_ledger(demo_copy)
    head = int(ledger.recorder.max_notification_id() or 0)

    def race(seed: int) -> None:
        try:
            with engine_on(demo_copy, batch_size=max(100, head // (5 + seed))) as engine:
                start.wait(30)
                while engine.catch_up(max_batches=1):
                    pass
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=race, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    try:
        start.wait(30)
        Writer(ledger, seed=5).some(20)
    finally:
        ledger.close()
    for thread in threads:
        thread.join(120)
    assert not failures, failures
    with engine_on(demo_copy) as engine:
        engine.catch_up()  # the writes that came after both racers finished
        total = stored_events(engine)
        raced = all_tables(engine)
        for name in engine.projections:
            assert status_of(engine, name).events == total, name
            engine.rebuild(name)
            assert table_rows(engine, name) == raced[name], name


# ------------------------------------------------------------ read your writes


def _follow_in_thread(
    url: str, poll_interval: float
) -> tuple[threading.Thread, threading.Event, list[BaseException]]:
    stop = threading.Event()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            with engine_on(url) as engine:
                engine.follow(stop=stop.is_set, poll_interval=poll_interval)
        except BaseException as e:
            failures.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, stop, failures


def _paid_total(engine: ProjectionEngine, account: UUID) -> int:
    accounts = engine.tables("account_summary")["accounts"]
    with engine.store.transaction(write=False) as tx:
        return int(
            tx.scalar(f"SELECT paid_total FROM {accounts} WHERE account_id = ?", (str(account),))
        )


def test_wait_for_returns_once_a_follower_reached_the_write(store_url: str) -> None:
    """With ``follow`` running in another thread, ``wait_for(position)`` of a write made after
    the call's engine started returns True, and the write is then visible."""
    thread, stop, failures = _follow_in_thread(store_url, poll_interval=0.05)
    ledger = open_ledger(store_url)
    try:
        with engine_on(store_url) as reader:
            writer = Writer(ledger)
            account = writer.fresh[0]
            assert reader.wait_for(reader.head(), timeout=60)
            paid = _paid_total(reader, account)
            writer.service.post_payment(account, Money(1234, "USD"), method="card")
            position = reader.head()
            # (No claim that the follower is still behind here: on PostgreSQL the
            # NOTIFY wake-up can beat this line.)
            assert reader.wait_for(position, ["account_summary"], timeout=10)
            assert _paid_total(reader, account) == paid + 1234
            assert reader.wait_for(position)  # every read model
    finally:
        stop.set()
        thread.join(10)
        ledger.close()
    assert not failures, failures
    assert not thread.is_alive()


def test_wait_for_times_out_when_nothing_follows(demo_copy: str) -> None:
    """No follower: ``wait_for`` gives up after its timeout and says so."""
    with engine_on(demo_copy) as engine:
        started = time.monotonic()
        assert not engine.wait_for(1, timeout=0.3)  # nothing catches up from 0
        assert 0.3 <= time.monotonic() - started < 3
        assert engine.wait_for(0, timeout=0.3)
        engine.catch_up(["account_summary"])
        assert engine.wait_for(engine.head(), ["account_summary"], timeout=0.3)
        assert not engine.wait_for(engine.head(), timeout=0.3)  # the others did not move


@requires_postgres
def test_follow_on_postgres_wakes_on_notify_not_on_its_poll_interval(
    pg_schema_url: str,
) -> None:
    """With a 30 s poll interval a write is in the read model within about a second: the
    follower is woken by the library's LISTEN/NOTIFY subscription."""
    url = pg_schema_url
    ledger = open_ledger(url)
    try:
        service = LedgerService(ledger, MovableClock(LATER, tick=timedelta(seconds=1)))
        account = service.place_account(placement("NOTIFY-1"), debtor=JANE).id
        thread, stop, failures = _follow_in_thread(url, poll_interval=30)
        try:
            with engine_on(url) as reader:
                assert reader.wait_for(reader.head(), timeout=30)
                for amount in ("10.00", "20.00"):
                    started = time.monotonic()
                    service.post_payment(account, Money.parse(amount, "USD"), method="card")
                    assert reader.wait_for(reader.head(), timeout=10)
                    assert time.monotonic() - started < 2.0
                assert _paid_total(reader, account) == 3000
        finally:
            stop.set()
            thread.join(10)
        assert not failures, failures
        assert not thread.is_alive()
    finally:
        ledger.close()


# ------------------------------------------------------------------------ CLI


def test_cli_status_json_and_rebuild(demo_copy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``arrears projections status --json`` shows position, lag and rate of every read
    model; ``rebuild NAME`` says what it did, and status then shows the new generation."""
    monkeypatch.setattr(
        cli.core, "build_service", lambda store=None, **_: LedgerService(open_ledger(store))
    )
    runner = CliRunner()

    def status() -> dict[str, dict[str, Any]]:
        result = runner.invoke(cli.main, ["projections", "status", "--json", "--store", demo_copy])
        assert result.exit_code == 0, result.output
        return {row["name"]: row for row in json.loads(result.stdout)}

    names = {p.name for p in default_projections()}
    fresh = status()
    assert set(fresh) == names
    head = fresh["account_summary"]["head"]
    for row in fresh.values():
        assert row["position"] == 0 and row["lag"] == head > 0 and row["rate"] is None
    with engine_on(demo_copy) as engine:
        events = stored_events(engine)

    result = runner.invoke(
        cli.main, ["projections", "rebuild", "account_summary", "--store", demo_copy]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == (  # (after any log line)
        f"rebuilt account_summary: {events} events, generation 2, position {head}"
    )
    rebuilt = status()["account_summary"]
    assert rebuilt["generation"] == 2 and rebuilt["position"] == head and rebuilt["lag"] == 0
    assert rebuilt["rate"] > 0 and rebuilt["rebuilding_position"] is None

    table = runner.invoke(cli.main, ["projections", "status", "--store", demo_copy])
    assert table.exit_code == 0, table.output
    line = next(x for x in table.stdout.splitlines() if x.startswith("account_summary"))
    assert f" {head} " in line and " 0 " in line

    unknown = runner.invoke(cli.main, ["projections", "rebuild", "nope", "--store", demo_copy])
    assert unknown.exit_code == 2 and "unknown read model nope" in unknown.stderr


# ---------------------------------------------------------------------- units


def test_state_encoder_and_fast_decoder_match_the_transcoder(demo_source: str) -> None:
    """The memoising state encoder gives exactly the ledger transcoder's bytes, and the
    fast decoder exactly its values (same types, same offsets), for every stored event,
    account states and the same instant in two offsets."""
    ledger = open_ledger(demo_source)
    try:
        transcoder = ledger.mapper.transcoder
        encoder, decode = StateEncoder(transcoder), fast_decoder(transcoder)
        for row in ledger.rows().iter_rows():
            fast, slow = decode(row.state), transcoder.decode(row.state)
            assert fast == slow and repr(fast) == repr(slow), row.position
        service = LedgerService(ledger)
        for account_id in service.list_account_ids()[:200]:
            state = dict(service.get_account(account_id).__dict__)
            state.pop("_pending_events")
            assert encoder(state) == transcoder.encode(state)
            assert encoder(state) == transcoder.encode(state)  # from the memo this time
            assert repr(decode(encoder(state))) == repr(transcoder.decode(encoder(state)))
        from datetime import timezone

        utc = datetime(2026, 5, 1, 12, tzinfo=UTC)
        plus2 = utc.astimezone(timezone(timedelta(hours=2)))
        value = {"a": utc, "b": plus2, "c": (date(2026, 5, 1), plus2), "d": [utc, plus2]}
        assert encoder(value) == transcoder.encode(value)
        assert transcoder.decode(encoder(value)) == value
        assert transcoder.decode(encoder(value))["b"].utcoffset() == timedelta(hours=2)
        assert repr(decode(encoder(value))) == repr(transcoder.decode(encoder(value)))
    finally:
        ledger.close()


def test_unknown_read_model_is_a_validation_error(sqlite_url: str) -> None:
    with engine_on(sqlite_url) as engine:
        with pytest.raises(errors.ValidationError, match="unknown read model nope"):
            engine.catch_up(["nope"])
        assert engine.catch_up() == 0
        assert all(s.position == 0 and s.lag == 0 for s in engine.status())


def test_read_model_built_by_older_code_is_rebuilt_before_catching_up(
    store_url: str, clock: MovableClock
) -> None:
    """A read model stored by older projection code is rebuilt: new generation, same rows."""
    ledger = open_ledger(store_url)
    try:
        service = LedgerService(ledger, clock)
        account = service.place_account(placement("STALE-1"), debtor=JANE)
        service.post_payment(account.id, Money.parse("25.00", "USD"), method="card")
    finally:
        ledger.close()
    with engine_on(store_url) as engine:
        engine.catch_up()
        before = {name: table_rows(engine, name) for name in engine.projections}
        with engine.store.transaction() as tx:
            tx.execute("UPDATE projection_state SET version = 0 WHERE name = 'account_summary'")
    with engine_on(store_url) as engine:
        (stale,) = [s for s in engine.status() if s.name == "account_summary"]
        assert stale.stale and stale.generation == 1
        engine.catch_up()
        (fresh,) = [s for s in engine.status() if s.name == "account_summary"]
        assert not fresh.stale and fresh.generation == 2
        assert fresh.position == stale.position
        assert {name: table_rows(engine, name) for name in engine.projections} == before
