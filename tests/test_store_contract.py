"""The eventsourcing library's own recorder contract suites, run against OUR recorders.

``eventsourcing.tests.persistence`` ships the abstract suites that the library's
SQLite and PostgreSQL recorders must pass (its ``test_sqlite.py`` and
``test_postgres.py`` are not shipped).  Here the same suites construct Arrears'
chained recorders through Arrears' factories, so they run with everything that
differs from the library: the hash-chain columns, ``BEGIN IMMEDIATE`` writes,
``synchronous=FULL``, the append-only triggers and the fixed table names.

The inherited test methods are the library's own (its names, no docstrings of
ours); each class docstring says which contract it runs.  No library test is
overridden or skipped.  After every test the rows the suite wrote are checked to be correctly chained
(each ``prev_hash`` is its predecessor's ``hash``, each ``hash`` is the
SHA-256 of the stored bytes), so "passes the contract" also means "the chain
survived every insert pattern the library exercises": batches, conflicts,
rollbacks, text and UUID ids, concurrent writers.

SQLite runs on a temporary file (and, for the concurrency tests, also on a
shared-cache in-memory database); PostgreSQL on a fresh schema per test,
dropped afterwards.  The PostgreSQL cases skip, saying why, when
``ARREARS_TEST_POSTGRES_URL`` is unset.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import unittest
import uuid
from typing import Any
from uuid import UUID, uuid4

import psycopg
from eventsourcing.persistence import (
    InfrastructureFactory,
    Notification,
    ProcessRecorder,
    StoredEvent,
    TrackingRecorder,
)
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresDatastore,
    PostgresTrackingRecorder,
)
from eventsourcing.sqlite import SQLiteAggregateRecorder, SQLiteTrackingRecorder
from eventsourcing.tests.persistence import (
    ApplicationRecorderTestCase,
    InfrastructureFactoryTestCase,
    NonInterleavingNotificationIDsBaseCase,
    ProcessRecorderTestCase,
    TrackingRecorderTestCase,
)
from eventsourcing.utils import Environment

from ledger.store.postgres import (
    ArrearsPostgresFactory,
    ChainedPostgresApplicationRecorder,
    ChainedPostgresProcessRecorder,
)
from ledger.store.rows import RowReader
from ledger.store.sqlite import (
    ArrearsSQLiteFactory,
    ChainedSQLiteApplicationRecorder,
    ChainedSQLiteProcessRecorder,
    DurableSQLiteConnectionPool,
)
from ledger.store.url import parse_store_url
from ledger.tamper.chain import GENESIS, event_hash

PG_URL = os.environ.get("ARREARS_TEST_POSTGRES_URL")
PG_SKIP_REASON = (
    "ARREARS_TEST_POSTGRES_URL is not set (CI sets it; export it to run PostgreSQL tests)"
)
requires_postgres = unittest.skipUnless(PG_URL, PG_SKIP_REASON)


# ------------------------------------------------------------------ helpers


def assert_chained(test: unittest.TestCase, recorder: Any) -> int:
    """Every stored row links to its stream predecessor and hashes its own bytes."""
    heads: dict[str, bytes] = {}
    count = 0
    for row in RowReader(recorder).iter_rows("stream"):
        key = str(row.originator_id)
        test.assertEqual(
            row.prev_hash,
            heads.get(key, GENESIS),
            f"{key} v{row.version}: prev_hash is not the previous version's hash",
        )
        assert row.prev_hash is not None
        test.assertEqual(
            row.hash,
            event_hash(row.originator_id, row.version, row.topic, row.state, row.prev_hash),
            f"{key} v{row.version}: hash does not cover the stored bytes",
        )
        assert row.hash is not None
        heads[key] = row.hash
        count += 1
    return count


class _ChainCheck:
    """Mixin: remember the recorders a suite creates; check their chains in tearDown."""

    _recorders: list[Any]

    def _remember(self, recorder: Any) -> Any:
        self._recorders.append(recorder)
        return recorder

    def _check_chains(self) -> None:
        for recorder in self._recorders:
            if isinstance(
                recorder, (ChainedSQLiteApplicationRecorder, ChainedPostgresApplicationRecorder)
            ):
                assert_chained(self, recorder)  # type: ignore[arg-type]


class WithTextOriginatorID:
    """The library's variant: originator ids are arbitrary text, not UUIDs."""

    originator_id_type = "text"

    def new_originator_id(self) -> UUID | str:
        return "test-" + str(uuid4())


# ------------------------------------------------------------------- SQLite


class SQLiteSetup(_ChainCheck, unittest.TestCase):
    """A fresh SQLite database per test, opened through ``ArrearsSQLiteFactory``."""

    originator_id_type = "uuid"
    in_memory = False

    def setUp(self) -> None:
        super().setUp()
        self._recorders = []
        self._tmpdir = tempfile.mkdtemp(prefix="arrears-contract-")
        self.db_name = os.path.join(self._tmpdir, "contract.db")
        self.factory = self._factory()

    def _factory(self) -> ArrearsSQLiteFactory:
        name = (
            f"file:arrears-contract-{uuid.uuid4().hex}?mode=memory&cache=shared"
            if self.in_memory
            else self.db_name
        )
        env = {
            "SQLITE_DBNAME": name,
            "SQLITE_LOCK_TIMEOUT": "30",
            "ORIGINATOR_ID_TYPE": self.originator_id_type,
        }
        factory = ArrearsSQLiteFactory(Environment(env=env))
        assert isinstance(factory.datastore.pool, DurableSQLiteConnectionPool)
        return factory

    def tearDown(self) -> None:
        try:
            self._check_chains()
        finally:
            self.factory.close()
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            super().tearDown()


class TestChainedSQLiteApplicationRecorder(
    SQLiteSetup, ApplicationRecorderTestCase[ChainedSQLiteApplicationRecorder]
):
    """The library's application-recorder contract, on our chained SQLite recorder."""

    def create_recorder(self) -> ChainedSQLiteApplicationRecorder:
        recorder = self.factory.application_recorder()
        assert type(recorder) is ChainedSQLiteApplicationRecorder
        return self._remember(recorder)  # type: ignore[no-any-return]

    def test_concurrent_no_conflicts_in_memory_db(self) -> None:
        """The library's concurrent-writers contract also holds on a shared in-memory db."""
        self.factory.close()
        self.in_memory = True
        self.factory = self._factory()
        self.test_concurrent_no_conflicts()

    def test_concurrent_throughput_in_memory_db(self) -> None:
        """The library's throughput contract also holds on a shared in-memory db."""
        self.factory.close()
        self.in_memory = True
        self.factory = self._factory()
        self.test_concurrent_throughput()

    def test_out_of_order_batch_is_still_chained(self) -> None:
        """A batch given newest-first is chained in version order and numbered in the given order."""
        recorder = self.create_recorder()
        oid = self.new_originator_id()
        events = [StoredEvent(oid, v, f"topic{v}", f"state{v}".encode()) for v in (3, 1, 2)]
        ids = recorder.insert_events(events)
        notifications = recorder.select_notifications(start=None, limit=10)
        self.assertEqual(ids, [n.id for n in notifications])
        self.assertEqual([n.originator_version for n in notifications], [3, 1, 2])
        self.assertEqual(assert_chained(self, recorder), 3)


class TestChainedSQLiteApplicationRecorderWithTextOriginatorID(
    WithTextOriginatorID, TestChainedSQLiteApplicationRecorder
):
    """The same, with text originator ids (ORIGINATOR_ID_TYPE=text)."""


class TestChainedSQLiteProcessRecorder(SQLiteSetup, ProcessRecorderTestCase):
    """The library's process-recorder contract (events + tracking in one transaction), on SQLite."""

    def create_recorder(self) -> ProcessRecorder:
        recorder = self.factory.process_recorder()
        assert type(recorder) is ChainedSQLiteProcessRecorder
        return self._remember(recorder)  # type: ignore[no-any-return]


class TestChainedSQLiteProcessRecorderWithTextOriginatorID(
    WithTextOriginatorID, TestChainedSQLiteProcessRecorder
):
    """The same, with text originator ids (ORIGINATOR_ID_TYPE=text)."""


class TestChainedSQLiteProcessRecorderAsTrackingRecorder(SQLiteSetup, TrackingRecorderTestCase):
    """The library's tracking-recorder contract, on our SQLite process recorder."""

    def create_recorder(self) -> TrackingRecorder:
        return self._remember(self.factory.process_recorder())  # type: ignore[no-any-return]


class TestChainedSQLiteNonInterleavingNotificationIDs(
    SQLiteSetup, NonInterleavingNotificationIDsBaseCase
):
    """Two concurrent batches get contiguous, non-interleaved notification ids (SQLite)."""

    def create_recorder(self) -> ChainedSQLiteApplicationRecorder:
        return self._remember(self.factory.application_recorder())  # type: ignore[no-any-return]


class _SQLiteTrackingSubclass(SQLiteTrackingRecorder):
    pass


class TestArrearsSQLiteFactory(InfrastructureFactoryTestCase[ArrearsSQLiteFactory]):
    """The library's factory contract, for the factory Arrears' SQLite store URL selects."""

    def expected_factory_class(self) -> type[ArrearsSQLiteFactory]:
        return ArrearsSQLiteFactory

    def expected_aggregate_recorder_class(self) -> type[SQLiteAggregateRecorder]:
        return SQLiteAggregateRecorder

    def expected_application_recorder_class(self) -> type[ChainedSQLiteApplicationRecorder]:
        return ChainedSQLiteApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[SQLiteTrackingRecorder]:
        return SQLiteTrackingRecorder

    def tracking_recorder_subclass(self) -> type[SQLiteTrackingRecorder]:
        return _SQLiteTrackingSubclass

    def expected_process_recorder_class(self) -> type[ChainedSQLiteProcessRecorder]:
        return ChainedSQLiteProcessRecorder

    def setUp(self) -> None:
        self._tmpdir = tempfile.mkdtemp(prefix="arrears-contract-")
        config = parse_store_url(f"sqlite:///{self._tmpdir}/factory.db")
        self.env = Environment("TestCase", config.env)
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        shutil.rmtree(self._tmpdir, ignore_errors=True)

    def test_process_recorder_by_topic(self) -> None:
        """Naming our process recorder by topic passes the library factory's subclass check."""
        self.env[self.factory.PROCESS_RECORDER_TOPIC] = (
            "ledger.store.sqlite:ChainedSQLiteProcessRecorder"
        )
        self.assertIs(type(self.factory.process_recorder()), ChainedSQLiteProcessRecorder)

    def test_unchained_recorder_topic_is_refused(self) -> None:
        """An environment naming the library's unchained recorder cannot open the store."""
        self.env[self.factory.APPLICATION_RECORDER_TOPIC] = (
            "eventsourcing.sqlite:SQLiteApplicationRecorder"
        )
        with self.assertRaisesRegex(OSError, "not a hash-chained recorder"):
            self.factory.application_recorder()


# --------------------------------------------------------------- PostgreSQL


@requires_postgres
class PostgresSetup(_ChainCheck, unittest.TestCase):
    """A fresh schema per test, opened through ``ArrearsPostgresFactory``; dropped after."""

    originator_id_type = "uuid"

    def setUp(self) -> None:
        super().setUp()
        assert PG_URL
        self._recorders = []
        self.schema = f"c_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{self.schema}"')
        sep = "&" if "?" in PG_URL else "?"
        env = dict(parse_store_url(f"{PG_URL}{sep}schema={self.schema}").env)
        env["ORIGINATOR_ID_TYPE"] = self.originator_id_type
        self.factory = ArrearsPostgresFactory(Environment(env=env))
        self.datastore: PostgresDatastore = self.factory.datastore

    def tearDown(self) -> None:
        try:
            self._check_chains()
        finally:
            self.factory.close()
            assert PG_URL
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
            super().tearDown()


class TestChainedPostgresApplicationRecorder(
    PostgresSetup, ApplicationRecorderTestCase[ChainedPostgresApplicationRecorder]
):
    """The library's application-recorder contract, on our chained PostgreSQL recorder."""

    def create_recorder(self) -> ChainedPostgresApplicationRecorder:
        recorder = self.factory.application_recorder()
        assert type(recorder) is ChainedPostgresApplicationRecorder
        return self._remember(recorder)  # type: ignore[no-any-return]

    def test_insert_subscribe(self) -> None:
        """The library's LISTEN/NOTIFY subscription contract holds for the chained recorder."""
        self.optional_test_insert_subscribe()

    def test_out_of_order_batch_is_still_chained(self) -> None:
        """A batch given newest-first is chained in version order and numbered in the given order."""
        recorder = self.create_recorder()
        oid = self.new_originator_id()
        events = [StoredEvent(oid, v, f"topic{v}", f"state{v}".encode()) for v in (3, 1, 2)]
        ids = recorder.insert_events(events)
        notifications: list[Notification] = list(
            recorder.select_notifications(start=None, limit=10)
        )
        self.assertEqual(ids, [n.id for n in notifications])
        self.assertEqual([n.originator_version for n in notifications], [3, 1, 2])
        self.assertEqual(assert_chained(self, recorder), 3)


class TestChainedPostgresApplicationRecorderWithTextOriginatorID(
    WithTextOriginatorID, TestChainedPostgresApplicationRecorder
):
    """The same, with text originator ids (ORIGINATOR_ID_TYPE=text)."""


class TestChainedPostgresProcessRecorder(PostgresSetup, ProcessRecorderTestCase):
    """The library's process-recorder contract (events + tracking in one transaction), on PostgreSQL."""

    def create_recorder(self) -> ProcessRecorder:
        recorder = self.factory.process_recorder()
        assert type(recorder) is ChainedPostgresProcessRecorder
        return self._remember(recorder)  # type: ignore[no-any-return]


class TestChainedPostgresProcessRecorderWithTextOriginatorID(
    WithTextOriginatorID, TestChainedPostgresProcessRecorder
):
    """The same, with text originator ids (ORIGINATOR_ID_TYPE=text)."""


class TestChainedPostgresProcessRecorderAsTrackingRecorder(PostgresSetup, TrackingRecorderTestCase):
    """The library's tracking-recorder contract, on our PostgreSQL process recorder."""

    def create_recorder(self) -> TrackingRecorder:
        return self._remember(self.factory.process_recorder())  # type: ignore[no-any-return]


class TestChainedPostgresNonInterleavingNotificationIDs(
    PostgresSetup, NonInterleavingNotificationIDsBaseCase
):
    """Two concurrent batches get contiguous, non-interleaved notification ids (PostgreSQL)."""

    def create_recorder(self) -> ChainedPostgresApplicationRecorder:
        return self._remember(self.factory.application_recorder())  # type: ignore[no-any-return]


class _PostgresTrackingSubclass(PostgresTrackingRecorder):
    pass


class _ChainedPostgresProcessSubclass(ChainedPostgresProcessRecorder):
    pass


@requires_postgres
class TestArrearsPostgresFactory(InfrastructureFactoryTestCase[ArrearsPostgresFactory]):
    """The library's factory contract, for the factory Arrears' PostgreSQL store URL selects."""

    def expected_factory_class(self) -> type[ArrearsPostgresFactory]:
        return ArrearsPostgresFactory

    def expected_aggregate_recorder_class(self) -> type[PostgresAggregateRecorder]:
        return PostgresAggregateRecorder

    def expected_application_recorder_class(self) -> type[ChainedPostgresApplicationRecorder]:
        return ChainedPostgresApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[PostgresTrackingRecorder]:
        return PostgresTrackingRecorder

    def tracking_recorder_subclass(self) -> type[PostgresTrackingRecorder]:
        return _PostgresTrackingSubclass

    def expected_process_recorder_class(self) -> type[ChainedPostgresProcessRecorder]:
        return ChainedPostgresProcessRecorder

    def setUp(self) -> None:
        assert PG_URL
        self.schema = f"f_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{self.schema}"')
        sep = "&" if "?" in PG_URL else "?"
        config = parse_store_url(f"{PG_URL}{sep}schema={self.schema}")
        self.env = Environment("TestCase", config.env)
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        assert PG_URL
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')

    def test_tables_are_named_as_on_sqlite(self) -> None:
        """Whatever the application is called, the tables are stored_events/stored_snapshots."""
        self.assertEqual(self.factory.application_recorder().events_table_name, "stored_events")  # type: ignore[attr-defined]
        self.assertEqual(
            self.factory.aggregate_recorder("snapshots").events_table_name,  # type: ignore[attr-defined]
            "stored_snapshots",
        )
        self.assertEqual(self.env.name, "TestCase")  # the shared environment keeps its name

    def test_db_functions_cannot_bypass_the_chain(self) -> None:
        """POSTGRES_ENABLE_DB_FUNCTIONS in the environment cannot switch to unchained inserts."""
        self.env["POSTGRES_ENABLE_DB_FUNCTIONS"] = "y"
        factory = InfrastructureFactory.construct(self.env)
        try:
            recorder = factory.application_recorder()
            recorder.insert_events([StoredEvent(uuid4(), 1, "t", b"s")])
            self.assertEqual(assert_chained(self, recorder), 1)
        finally:
            factory.close()

    def test_process_recorder_by_topic(self) -> None:
        """Naming a chained process recorder by topic is honoured."""
        self.env[self.factory.PROCESS_RECORDER_TOPIC] = (
            f"{__name__}:_ChainedPostgresProcessSubclass"
        )
        self.assertIs(type(self.factory.process_recorder()), _ChainedPostgresProcessSubclass)

    def test_unchained_recorder_topic_is_refused(self) -> None:
        """An environment naming the library's unchained recorder cannot open the store."""
        self.env[self.factory.APPLICATION_RECORDER_TOPIC] = (
            "eventsourcing.postgres:PostgresApplicationRecorder"
        )
        with self.assertRaisesRegex(OSError, "not a hash-chained recorder"):
            self.factory.application_recorder()
