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

PG_URL = os.environ.get("ARREARS_TEST_POSTGRES_URL")
PG_SKIP_REASON = "ARREARS_TEST_POSTGRES_URL is not set (CI sets it; export it to run PostgreSQL tests)"
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


def placement(reference: str = "ACC-0001", creditor: str = "acme-bank", **overrides: object) -> Placement:
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
    addresses=[{"line1": "12 Elm Street", "city": "Springfield", "postcode": "62701", "country": "US"}],
    time_zone="America/Chicago",
    jurisdiction="US-IL",
)
