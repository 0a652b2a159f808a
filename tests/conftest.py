"""Shared fixtures: a movable clock, and ledgers on each backend.

PostgreSQL tests get a schema of their own, dropped afterwards, so runs never
see each other's events.  They skip, saying why, when ARREARS_TEST_POSTGRES_URL
is unset.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from ledger.application import Ledger, open_ledger
from ledger.clock import MovableClock
from ledger.money import Money
from ledger.services import DebtorDetails, LedgerService, Placement

# The example plugin (examples/) is installed in the dev venv: the suite tests Arrears alone.
os.environ.setdefault("ARREARS_DISABLE_PLUGINS", "holidays")
PG_URL = os.environ.get("ARREARS_TEST_POSTGRES_URL")


@pytest.fixture(scope="session", autouse=True)
def _quiet_logs() -> None:
    """Info lines for every command would dominate the suite's time; tests that check
    logging configure their own streams."""
    from ledger.logs import configure_logging

    configure_logging(level=os.environ.get("ARREARS_TEST_LOG_LEVEL", "WARNING"))


PG_SKIP_REASON = (
    "ARREARS_TEST_POSTGRES_URL is not set (CI sets it; export it to run PostgreSQL tests)"
)
requires_postgres = pytest.mark.skipif(not PG_URL, reason=PG_SKIP_REASON)

START = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


def usd(text: str) -> Money:
    return Money.parse(text, "USD")


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(START, tick=timedelta(seconds=1))


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL store URL pointing at a fresh schema, dropped after the test."""
    if not PG_URL:
        pytest.skip(PG_SKIP_REASON)
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}schema={schema}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'arrears.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=requires_postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store URL for each backend: every test using it runs on both."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'arrears.db'}"
    return str(request.getfixturevalue("pg_schema_url"))


@pytest.fixture
def ledger(store_url: str) -> Iterator[Ledger]:
    app = open_ledger(store_url)
    yield app
    app.close()


@pytest.fixture
def service(ledger: Ledger, clock: MovableClock) -> LedgerService:
    return LedgerService(ledger, clock)


@pytest.fixture
def memory_service(clock: MovableClock) -> Iterator[LedgerService]:
    """A fast in-memory SQLite ledger for pure domain-rule tests."""
    app = open_ledger("sqlite:///:memory:")
    yield LedgerService(app, clock)
    app.close()


def placement(
    reference: str = "ACC-0001", creditor: str = "acme-bank", **overrides: object
) -> Placement:
    fields: dict[str, object] = {
        "creditor": creditor,
        "reference": reference,
        "currency": "USD",
        "principal": usd("1000.00"),
        "interest": usd("150.00"),
        "fees": usd("50.00"),
        "itemization_date": date(2025, 11, 30),
        "itemization_kind": "charge_off",
        "original_creditor": "Acme Bank N.A.",
        "charge_off_date": date(2025, 11, 30),
    }
    fields.update(overrides)
    return Placement(**fields)  # type: ignore[arg-type]


JANE = DebtorDetails(
    name="Jane Q. Debtor",
    phones=["+1 415 555 0134"],
    emails=["jane.debtor@example.com"],
    addresses=[
        {"line1": "12 Elm Street", "city": "Springfield", "postcode": "62701", "country": "US"}
    ],
    time_zone="America/Chicago",
    jurisdiction="US-IL",
)


# ------------------------------------------------------------ demo portfolios

DEMO_ACCOUNTS = int(os.environ.get("ARREARS_TEST_DEMO_ACCOUNTS", "2000"))
DEMO_SEED = 2026


def _new_pg_schema() -> str:
    import psycopg

    assert PG_URL
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return schema


def _drop_pg_schema(schema: str) -> None:
    import psycopg

    assert PG_URL
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _pg_url(schema: str) -> str:
    assert PG_URL
    return f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={schema}"


@pytest.fixture(
    scope="session", params=["sqlite", pytest.param("postgres", marks=requires_postgres)]
)
def demo_source(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A store holding the demo portfolio (DEMO_ACCOUNTS accounts), built once per session.

    Treat it as read-only: tests that write (projections, worker) take ``demo_copy``.
    """
    from ledger.demo import build_demo

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}"
        schema = None
    else:
        schema = _new_pg_schema()
        url = _pg_url(schema)
    app = open_ledger(url)
    try:
        build_demo(LedgerService(app), accounts=DEMO_ACCOUNTS, seed=DEMO_SEED)
    finally:
        app.close()
    try:
        yield url
    finally:
        if schema is not None:
            _drop_pg_schema(schema)


def clone_store(source: str, tmp_path: Path) -> tuple[str, str | None]:
    """A byte-for-byte copy of a store's events (and snapshots); returns (url, pg schema)."""
    if source.startswith("sqlite"):
        import sqlite3

        target = tmp_path / "copy.db"
        src = sqlite3.connect(source.removeprefix("sqlite:///"))
        dst = sqlite3.connect(target)
        src.backup(dst)
        src.close()
        dst.close()
        return f"sqlite:///{target}", None
    import psycopg

    old = source.rsplit("schema=", 1)[1]
    schema = _new_pg_schema()
    url = _pg_url(schema)
    open_ledger(url).close()  # creates tables, types, triggers and the append function
    assert PG_URL
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        for table, columns in (
            (
                "stored_events",
                "originator_id, originator_version, topic, state, notification_id, prev_hash, hash",
            ),
            ("stored_snapshots", "originator_id, originator_version, topic, state"),
        ):
            conn.execute(
                f'INSERT INTO "{schema}".{table} ({columns}) SELECT {columns} FROM "{old}".{table}'
            )
        conn.execute(
            f"SELECT setval(pg_get_serial_sequence('\"{schema}\".stored_events', "
            f"'notification_id'), (SELECT max(notification_id) FROM \"{schema}\".stored_events))"
        )
    return url, schema


@pytest.fixture
def demo_copy(demo_source: str, tmp_path: Path) -> Iterator[str]:
    """A private, writable copy of the session's demo portfolio, on each backend."""
    url, schema = clone_store(demo_source, tmp_path)
    try:
        yield url
    finally:
        if schema is not None:
            _drop_pg_schema(schema)
