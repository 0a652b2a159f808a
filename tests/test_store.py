"""The event store as a user of Arrears meets it, on both backends.

* the database itself keeps events append-only (not just our code);
* every row carries a hash chain from 32 zero bytes;
* SQLite commits are durable (WAL, ``synchronous=FULL``) and visible to any
  other process as soon as a command returns;
* a bad store URL or an unreachable database is one line, never a traceback;
* snapshots and upcasters give the same state as replaying the stored events.

Tests that take ``store_url`` run on SQLite and, when
``ARREARS_TEST_POSTGRES_URL`` is set, on a fresh PostgreSQL schema.
"""

from __future__ import annotations

import copy
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import pytest
from eventsourcing.persistence import PersistenceError, StoredEvent

from conftest import JANE, PG_URL, placement, requires_postgres, usd
from ledger.application import Ledger, open_ledger
from ledger.clock import MovableClock
from ledger.domain.account import Account
from ledger.errors import StoreError
from ledger.services import LedgerService
from ledger.store.sqlite import APPEND_ONLY_MESSAGE
from ledger.store.url import parse_store_url
from ledger.tamper.chain import GENESIS, event_hash
from ledger.tamper.verify import verify_ledger

ROOT = Path(__file__).resolve().parents[1]
ARREARS = str(Path(sys.executable).with_name("arrears"))


# ------------------------------------------------------------------ helpers


@pytest.fixture
def book(service: LedgerService) -> tuple[LedgerService, UUID]:
    """A ledger with one placed account (and its debtor) and two payments."""
    account = service.place_account(placement(), debtor=JANE)
    service.post_payment(account.id, usd("25.00"), method="card")
    service.post_payment(account.id, usd("10.00"), method="ach")
    return service, account.id


@contextmanager
def raw_sql(ledger: Ledger) -> Iterator[tuple[Any, str, str]]:
    """A plain driver connection to the ledger's database (no Arrears code in between).

    Yields (connection, qualified events table, parameter mark).
    """
    recorder: Any = ledger.recorder
    table = recorder.events_table_name
    if type(recorder).__module__.startswith("ledger.store.sqlite"):
        conn = sqlite3.connect(recorder.datastore.pool.db_name, isolation_level=None)
        try:
            yield conn, table, "?"
        finally:
            conn.close()
    else:
        import psycopg

        assert PG_URL
        with psycopg.connect(PG_URL, autocommit=True) as pg:
            yield pg, f'"{recorder.datastore.schema}"."{table}"', "%s"


def select_rows(ledger: Ledger) -> list[tuple[Any, ...]]:
    """(originator_id, version, topic, state, prev_hash, hash) of every row, by stream."""
    with raw_sql(ledger) as (conn, table, _):
        rows = conn.execute(
            f"SELECT originator_id, originator_version, topic, state, prev_hash, hash "
            f"FROM {table} ORDER BY originator_id, originator_version"
        ).fetchall()
    return [
        (
            r[0] if isinstance(r[0], UUID) else UUID(r[0]),
            r[1],
            r[2],
            bytes(r[3]),
            None if r[4] is None else bytes(r[4]),
            None if r[5] is None else bytes(r[5]),
        )
        for r in rows
    ]


def without_pending(aggregate: Any) -> dict[str, Any]:
    return {k: v for k, v in aggregate.__dict__.items() if k != "_pending_events"}


def replay(ledger: Ledger, aggregate_id: UUID) -> Any:
    """The aggregate folded from every stored event, no snapshot, no cache."""
    aggregate = None
    for event in ledger.events.get(aggregate_id):
        aggregate = event.mutate(aggregate)  # type: ignore[attr-defined]
    return aggregate


def one_line(message: str) -> None:
    assert message.strip(), "empty error message"
    assert "\n" not in message.strip(), f"not one line: {message!r}"
    assert "Traceback" not in message


# --------------------------------------------------------------- append-only


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param("UPDATE {table} SET state = {m} WHERE originator_version = 2", id="update"),
        pytest.param("UPDATE {table} SET hash = NULL, prev_hash = NULL", id="update-all"),
        pytest.param("DELETE FROM {table} WHERE originator_version = 3", id="delete"),
        pytest.param("DELETE FROM {table}", id="delete-all"),
    ],
)
def test_database_refuses_update_and_delete(
    book: tuple[LedgerService, UUID], statement: str
) -> None:
    """The database itself (raw SQL, no Arrears code) refuses to change or remove a stored event."""
    service, _ = book
    before = select_rows(service.ledger)
    with raw_sql(service.ledger) as (conn, table, m):
        sql = statement.format(table=table, m=m)
        params = [b"forged"] if m in sql else []
        with pytest.raises(Exception, match="events are append-only") as caught:
            conn.execute(sql, params)
    assert APPEND_ONLY_MESSAGE in str(caught.value)
    assert select_rows(service.ledger) == before
    assert verify_ledger(service.ledger).ok


@requires_postgres
def test_postgres_refuses_truncate(pg_schema_url: str, clock: MovableClock) -> None:
    """On PostgreSQL, TRUNCATE of the events table is refused too (row triggers don't see it)."""
    ledger = open_ledger(pg_schema_url)
    try:
        service = LedgerService(ledger, clock)
        service.place_account(placement(), debtor=JANE)
        before = select_rows(ledger)
        with (
            raw_sql(ledger) as (conn, table, _),
            pytest.raises(Exception, match="append-only") as caught,
        ):
            conn.execute(f"TRUNCATE {table}")
        assert "TRUNCATE refused" in str(caught.value)
        assert select_rows(ledger) == before != []
    finally:
        ledger.close()


# ---------------------------------------------------------------- hash chain


def test_every_row_is_hash_chained(book: tuple[LedgerService, UUID], clock: MovableClock) -> None:
    """Each stored row has prev_hash/hash; a stream starts at 32 zero bytes and links version to version."""
    service, account_id = book
    other = service.place_account(placement("ACC-0002"), debtor=JANE)
    service.post_payment(other.id, usd("5.00"), method="cash")
    rows = select_rows(service.ledger)
    assert len(rows) == 7  # two accounts (3 + 2 events), two debtors (1 each)
    streams: dict[UUID, list[tuple[Any, ...]]] = {}
    for row in rows:
        streams.setdefault(row[0], []).append(row)
    assert {account_id, other.id} <= streams.keys()
    for oid, stream in streams.items():
        assert [r[1] for r in stream] == list(range(1, len(stream) + 1))
        previous = GENESIS
        for _, version, topic, state, prev_hash, digest in stream:
            assert prev_hash is not None and digest is not None, f"{oid} v{version} unchained"
            assert len(digest) == 32
            assert prev_hash == previous, f"{oid} v{version} does not link to v{version - 1}"
            assert digest == event_hash(oid, version, topic, state, prev_hash)
            previous = digest
        assert stream[0][4] == bytes(32)


# ---------------------------------------------------------------- durability


def test_sqlite_connections_are_wal_with_synchronous_full(sqlite_url: str) -> None:
    """Every connection the SQLite recorder's pool hands out runs in WAL mode with synchronous=FULL."""
    ledger = open_ledger(sqlite_url)
    try:
        pool: Any = ledger.recorder.datastore  # type: ignore[attr-defined]
        pool = pool.pool
        writer = pool.get_connection(is_writer=True)
        reader = pool.get_connection(is_writer=False)
        try:
            assert writer is not reader
            for conn in (writer, reader):
                raw = conn._sqlite_conn
                assert raw.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
                assert raw.execute("PRAGMA synchronous").fetchone()[0] == 2
        finally:
            pool.put_connection(reader)
            pool.put_connection(writer)
    finally:
        ledger.close()


def test_committed_event_is_visible_to_a_new_process(sqlite_url: str, clock: MovableClock) -> None:
    """As soon as a command returns, a brand-new process opening the SQLite file sees its event."""
    ledger = open_ledger(sqlite_url)
    try:
        service = LedgerService(ledger, clock)
        account = service.place_account(placement(), debtor=JANE)
        result = service.post_payment(account.id, usd("42.17"), method="card")
        # The writer stays open: what the other process sees was committed, not flushed on close.
        script = textwrap.dedent(
            f"""
            from uuid import UUID
            from ledger.application import open_ledger
            ledger = open_ledger({sqlite_url!r})
            events = list(ledger.events.get(UUID({str(account.id)!r})))
            last = events[-1]
            print(len(events), type(last).__name__, last.payment_id, last.amount)
            """
        )
        out = subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.split()
        assert out == [str(result.account.version), "PaymentReceived", result.payment_id, "4217"]
    finally:
        ledger.close()


def test_sqlite_vacuum_keeps_positions_and_seals(sqlite_url: str, clock: MovableClock) -> None:
    """VACUUM never renumbers SQLite positions, even across a gap: seals and trackers rely on them."""
    ledger = open_ledger(sqlite_url)
    try:
        service = LedgerService(ledger, clock)
        ids = [service.place_account(placement(f"VAC-{n}"), debtor=JANE).id for n in range(4)]
        for account_id in ids:
            service.post_payment(account_id, usd("10.00"), method="card")
        before = [(r.position, r.originator_id, r.version) for r in ledger.rows().iter_rows()]
        digest = service.seal().digest
    finally:
        ledger.close()
    path = urlsplit(sqlite_url).path[1:]
    raw = sqlite3.connect(path, isolation_level=None)
    # SQLite only promises stable rowids for an explicit INTEGER PRIMARY KEY.
    columns = {row[1]: (row[2], row[5]) for row in raw.execute("PRAGMA table_info(stored_events)")}
    assert columns["rowid"] == ("INTEGER", 1)
    # Leave a gap in the positions (only a tamperer could), then VACUUM: without an
    # explicit INTEGER PRIMARY KEY SQLite would close the gap by renumbering rows.
    raw.execute("DROP TRIGGER stored_events_no_delete")
    gone = before[3]
    raw.execute("DELETE FROM stored_events WHERE rowid = ?", (gone[0],))
    raw.execute("VACUUM")
    raw.close()
    ledger = open_ledger(sqlite_url)
    try:
        after = [(r.position, r.originator_id, r.version) for r in ledger.rows().iter_rows()]
        assert after[: len(before) - 1] == [row for row in before if row != gone]
    finally:
        ledger.close()


def test_sqlite_write_lock_timeout_is_a_store_error(sqlite_url: str, clock: MovableClock) -> None:
    """A write blocked past the lock timeout fails as a PersistenceError, records nothing, and the next write succeeds."""
    ledger = open_ledger(sqlite_url, SQLITE_LOCK_TIMEOUT="1")
    try:
        service = LedgerService(ledger, clock)
        account = service.place_account(placement(), debtor=JANE)
        blocker = sqlite3.connect(ledger.recorder.datastore.pool.db_name, isolation_level=None)  # type: ignore[attr-defined]
        try:
            blocker.execute("BEGIN IMMEDIATE")
            started = time.monotonic()
            with pytest.raises(PersistenceError, match="locked"):
                service.post_payment(account.id, usd("1.00"), method="card")
            assert time.monotonic() - started < 10
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert service.get_account(account.id).version == 1
        service.post_payment(account.id, usd("1.00"), method="card")
        assert service.get_account(account.id).version == 2
    finally:
        ledger.close()


# ------------------------------------------------------------------ store URL


def test_unknown_scheme_is_a_one_line_store_error() -> None:
    """A store URL with an unknown scheme is refused with one line naming the accepted forms."""
    with pytest.raises(StoreError) as caught:
        open_ledger("mysql://x")
    one_line(caught.value.message)
    assert "mysql" in caught.value.message
    assert "sqlite:///" in caught.value.message and "postgresql://" in caught.value.message


def test_sqlite_in_missing_directory_is_a_one_line_store_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sqlite:///nonexistent-dir/x.db gives one line saying the store cannot be opened."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreError) as caught:
        open_ledger("sqlite:///nonexistent-dir/x.db")
    one_line(caught.value.message)
    assert "cannot open store sqlite:///nonexistent-dir/x.db" in caught.value.message
    assert not (tmp_path / "nonexistent-dir").exists()


def test_unreachable_postgres_is_a_quick_one_line_store_error() -> None:
    """Nothing on the PostgreSQL port: one line within 15 s saying why, no password, no threads left behind."""
    threads_before = {t.ident for t in threading.enumerate()}
    started = time.monotonic()
    with pytest.raises(StoreError) as caught:
        open_ledger("postgresql://postgres:s3cret-pw@127.0.0.1:1/test")
    elapsed = time.monotonic() - started
    assert elapsed < 15, f"took {elapsed:.1f}s"
    message = caught.value.message
    one_line(message)
    assert message.startswith("cannot open store postgresql://postgres:***@127.0.0.1:1/test: ")
    assert "refused" in message.lower()  # the server's reason, not just "couldn't get a connection"
    assert "s3cret-pw" not in message
    deadline = time.monotonic() + 5
    while {t.ident for t in threading.enumerate()} - threads_before and time.monotonic() < deadline:
        time.sleep(0.05)
    leftover = [t.name for t in threading.enumerate() if t.ident not in threads_before]
    assert not leftover, f"connection-pool workers still retrying: {leftover}"


@requires_postgres
def test_missing_postgres_database_names_the_problem() -> None:
    """A database that does not exist is reported as such, in one line."""
    assert PG_URL
    parts = urlsplit(PG_URL)
    url = parts._replace(path="/arrears_no_such_db", query="connect_timeout=1").geturl()
    with pytest.raises(StoreError) as caught:
        open_ledger(url)
    one_line(caught.value.message)
    assert 'database "arrears_no_such_db" does not exist' in caught.value.message


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:s3cret-pw@db.example:notaport/arrears",
        "postgresql://u:s3cret-pw@db.example:99999/arrears",
        "postgresq://u:s3cret-pw@db.example/arrears",
        "postgresql://u:s3cret-pw@/arrears",
    ],
)
def test_malformed_store_url_is_a_one_line_store_error_without_password(url: str) -> None:
    """A malformed URL (bad port, misspelt scheme, no host) is one StoreError line that hides the password."""
    with pytest.raises(StoreError) as caught:
        parse_store_url(url)
    one_line(caught.value.message)
    assert "s3cret-pw" not in caught.value.message
    assert "s3cret-pw" not in str(caught.value.details)


@pytest.mark.parametrize("url", ["mysql://x", "postgresql://u:s3cret-pw@h:notaport/db"])
def test_cli_with_bad_store_url_prints_one_line(url: str, tmp_path: Path) -> None:
    """`arrears verify --store <bad url>` prints one line on stderr, no traceback, and exits nonzero."""
    proc = subprocess.run(
        [ARREARS, "verify", "--store", url],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert proc.stdout == ""
    one_line(proc.stderr)
    assert "store" in proc.stderr
    assert "s3cret-pw" not in proc.stderr


# ----------------------------------------------------------------- snapshots


def test_snapshot_load_equals_full_replay(store_url: str, clock: MovableClock) -> None:
    """An account with 131 events loads from its v100 snapshot to exactly the state a full replay gives."""
    ledger = open_ledger(store_url)
    try:
        service = LedgerService(ledger, clock)
        account = service.place_account(placement(), debtor=JANE)
        for _ in range(130):
            service.post_payment(account.id, usd("1.00"), method="card")
        live = service.get_account(account.id)
        assert live.version == 131
        with raw_sql(ledger) as (conn, events_table, m):
            snapshots_table = events_table.replace("stored_events", "stored_snapshots")
            oid = account.id if m == "%s" else account.id.hex
            versions = [
                r[0]
                for r in conn.execute(
                    f"SELECT originator_version FROM {snapshots_table} WHERE originator_id = {m} "
                    "ORDER BY originator_version",
                    [oid],
                ).fetchall()
            ]
        assert versions == [50, 100]
    finally:
        ledger.close()

    fresh = open_ledger(store_url)  # empty cache: the repository must reconstruct
    try:
        reads: list[dict[str, Any]] = []
        original_get = fresh.repository.event_store.get

        def spy(*args: Any, **kwargs: Any) -> Any:
            reads.append(kwargs)
            return original_get(*args, **kwargs)

        fresh.repository.event_store.get = spy  # type: ignore[method-assign]
        from_snapshot = fresh.repository.get(account.id)
        fresh.repository.event_store.get = original_get  # type: ignore[method-assign]
        assert reads and reads[0].get("gt") == 100, f"not loaded from the snapshot: {reads}"

        replayed = replay(fresh, account.id)
        assert isinstance(from_snapshot, Account) and isinstance(replayed, Account)
        assert without_pending(from_snapshot) == without_pending(replayed)
        assert without_pending(from_snapshot) == without_pending(live)
        assert from_snapshot.total_balance == replayed.total_balance == usd("1070.00").minor
        assert len(from_snapshot.payments) == 130
    finally:
        fresh.close()


# ----------------------------------------------------------------- upcasting


def test_v1_legal_status_event_reads_with_empty_details(
    book: tuple[LedgerService, UUID], store_url: str, clock: MovableClock
) -> None:
    """A LegalStatusChanged stored before ``details`` existed reads back with details ""."""
    service, account_id = book
    ledger = service.ledger
    service.refer_to_law_firm(account_id, "Law & Partners")
    account = copy.deepcopy(service.get_account(account_id))
    clock.advance(timedelta(minutes=5))
    account.change_legal_status(
        at=clock.now(),
        legal_status="suit_filed",
        effective_on=clock.now().date(),
        details="filed in Cook County",
    )
    (event,) = account.collect_events()
    v2 = ledger.mapper.to_stored_event(event)
    state = ledger.mapper.transcoder.decode(v2.state)
    assert state.pop("class_version") == 2
    assert state.pop("details") == "filed in Cook County"
    ledger.recorder.insert_events(
        [
            StoredEvent(
                originator_id=account_id,
                originator_version=v2.originator_version,
                topic=v2.topic,
                state=ledger.mapper.transcoder.encode(state),
            )
        ]
    )
    reader = open_ledger(store_url)
    try:
        change = list(reader.events.get(account_id))[-1]
        assert isinstance(change, Account.LegalStatusChanged)
        assert (change.legal_status, change.details) == ("suit_filed", "")
        assert reader.repository.get(account_id).legal_status == "suit_filed"
    finally:
        reader.close()


def test_v1_contact_event_is_upcast_and_still_verifies(
    book: tuple[LedgerService, UUID], store_url: str, clock: MovableClock
) -> None:
    """A stored v1 ContactRecorded (no purpose, callback, party or contact point) is upcast
    through v2 and v3 to v4 and verifies."""
    service, account_id = book
    ledger = service.ledger
    assert Account.ContactRecorded.class_version == 4

    # Make the event a command would record today, then store it as v1 would have been.
    account = copy.deepcopy(service.get_account(account_id))
    clock.advance(timedelta(minutes=5))
    now = clock.now()
    account.record_contact(
        at=now,
        contact_id="legacy-contact-1",
        channel="phone",
        direction="outbound",
        outcome="right_party_contact",
        occurred_at=now,
        agent="agent-7",
    )
    (event,) = account.collect_events()
    v2 = ledger.mapper.to_stored_event(event)
    state = ledger.mapper.transcoder.decode(v2.state)
    assert state.pop("class_version") == 4
    assert state.pop("purpose") == "collection"
    assert state.pop("callback_at") is None
    assert state.pop("party") == "debtor"
    assert state.pop("to") is None
    v1_state = ledger.mapper.transcoder.encode(state)
    v1 = StoredEvent(
        originator_id=account_id,
        originator_version=v2.originator_version,
        topic=v2.topic,
        state=v1_state,
    )
    ledger.recorder.insert_events([v1])

    stored = [r for r in select_rows(ledger) if r[0] == account_id][-1]
    assert stored[3] == v1_state  # the row really is v1: no purpose, no class_version
    assert "purpose" not in ledger.mapper.transcoder.decode(stored[3])

    reader = open_ledger(store_url)
    try:
        events = list(reader.events.get(account_id))
        contact = events[-1]
        assert isinstance(contact, Account.ContactRecorded)
        assert contact.purpose == "collection"
        assert contact.callback_at is None
        assert (contact.party, contact.to) == ("debtor", None)
        assert contact.contact_id == "legacy-contact-1"
        loaded = reader.repository.get(account_id)
        assert loaded.version == v2.originator_version
        assert loaded.contact_count == 1
        assert loaded.last_rpc_at == contact.occurred_at
        report = verify_ledger(reader)
        assert report.ok, report.problems
        assert report.events_checked == len(select_rows(reader))
    finally:
        reader.close()
