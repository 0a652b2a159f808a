"""PostgreSQL recorders: the library's, plus the hash chain and append-only triggers.

Inserts already run under the library's EXCLUSIVE table lock (so notification
ids follow commit order); the predecessor hashes are read inside that same
transaction, after the lock, so the chain cannot fork.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    OperationalError,
    ProcessRecorder,
    ProgrammingError,
    StoredEvent,
)
from eventsourcing.postgres import (
    PostgresApplicationRecorder,
    PostgresFactory,
    PostgresProcessRecorder,
    PostgresRecorder,
    PostgresTrackingRecorder,
)
from eventsourcing.utils import resolve_topic
from psycopg.sql import SQL, Identifier

from ledger.tamper.chain import GENESIS, event_hash

_R = TypeVar("_R", bound=PostgresRecorder)
_PROBE_TIMEOUT = 3  # seconds: only runs after the pool already gave up

APPEND_ONLY_MESSAGE = "arrears: events are append-only; record a correction event instead"


class ChainedPostgresApplicationRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore: Any, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        schema = Identifier(self.datastore.schema)
        table = Identifier(self.events_table_name)
        self.chained_type_name = f"arrears_chained_event_{self.datastore.originator_id_type}"
        self.datastore.db_type_names.add(self.chained_type_name)
        self.sql_create_statements[self.create_table_statement_index] = SQL(
            "CREATE TABLE IF NOT EXISTS {schema}.{table} ("
            "originator_id {oid_type} NOT NULL, "
            "originator_version bigint NOT NULL, "
            "topic text, "
            "state bytea, "
            "notification_id bigserial, "
            "prev_hash bytea, "
            "hash bytea, "
            "PRIMARY KEY (originator_id, originator_version))"
        ).format(
            schema=schema,
            table=table,
            oid_type=Identifier(self.datastore.originator_id_type),
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE TYPE {schema}.{name} AS (originator_id {oid_type}, "
                "originator_version bigint, topic text, state bytea, "
                "prev_hash bytea, hash bytea)"
            ).format(
                schema=schema,
                name=Identifier(self.chained_type_name),
                oid_type=Identifier(self.datastore.originator_id_type),
            )
        )
        function = Identifier(f"{self.events_table_name}_refuse_change")
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{function}() RETURNS trigger "
                "LANGUAGE plpgsql AS $$ BEGIN "
                "RAISE EXCEPTION '{message} (% refused)', TG_OP "
                "USING ERRCODE = 'insufficient_privilege'; END $$"
            ).format(schema=schema, function=function, message=SQL(APPEND_ONLY_MESSAGE))
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE TRIGGER {trigger} BEFORE UPDATE OR DELETE ON "
                "{schema}.{table} FOR EACH ROW EXECUTE FUNCTION {schema}.{function}()"
            ).format(
                trigger=Identifier(f"{self.events_table_name}_no_update_delete"),
                schema=schema,
                table=table,
                function=function,
            )
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE TRIGGER {trigger} BEFORE TRUNCATE ON "
                "{schema}.{table} FOR EACH STATEMENT EXECUTE FUNCTION {schema}.{function}()"
            ).format(
                trigger=Identifier(f"{self.events_table_name}_no_truncate"),
                schema=schema,
                table=table,
                function=function,
            )
        )
        self.insert_events_statement = SQL(
            "INSERT INTO {schema}.{table} AS t "
            "(originator_id, originator_version, topic, state, prev_hash, hash) "
            "SELECT originator_id, originator_version, topic, state, prev_hash, hash "
            "FROM unnest(%s::{schema}.{type}[]) RETURNING notification_id"
        ).format(schema=schema, table=table, type=Identifier(self.chained_type_name))
        self.select_heads_statement = SQL(
            "SELECT DISTINCT ON (e.originator_id) e.originator_id, e.hash "
            "FROM {schema}.{table} e JOIN unnest(%s::{oid_type}[], %s::bigint[]) "
            "AS w(oid, v) ON e.originator_id = w.oid AND e.originator_version < w.v "
            "ORDER BY e.originator_id, e.originator_version DESC"
        ).format(
            schema=schema,
            table=table,
            oid_type=Identifier(self.datastore.originator_id_type),
        )

    def _chained_rows(self, curs: Any, stored_events: Sequence[StoredEvent]) -> list[Any]:
        firsts: dict[UUID | str, int] = {}
        for s in stored_events:
            if s.originator_id not in firsts or s.originator_version < firsts[s.originator_id]:
                firsts[s.originator_id] = s.originator_version
        with curs.connection.cursor() as lookup:
            lookup.execute(
                self.select_heads_statement,
                (list(firsts), list(firsts.values())),
                prepare=True,
            )
            stored_heads = {row["originator_id"]: bytes(row["hash"] or GENESIS) for row in lookup}
        heads: dict[UUID | str, bytes] = {}
        try:
            make = self.datastore.psycopg_python_types[self.chained_type_name]
        except KeyError:
            msg = f"Composite type '{self.chained_type_name}' not found"
            raise ProgrammingError(msg) from None
        rows = []
        for s in sorted(stored_events, key=lambda e: e.originator_version):
            prev = heads.get(s.originator_id) or stored_heads.get(s.originator_id, GENESIS)
            digest = event_hash(s.originator_id, s.originator_version, s.topic, s.state, prev)
            heads[s.originator_id] = digest
            rows.append(make(s.originator_id, s.originator_version, s.topic, s.state, prev, digest))
        order = {(s.originator_id, s.originator_version): i for i, s in enumerate(stored_events)}
        rows.sort(key=lambda r: order[(r.originator_id, r.originator_version)])
        return rows

    def _insert_stored_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        self._lock_table(curs)
        self._notify_channel(curs)
        rows = self._chained_rows(curs, stored_events)
        curs.execute(self.insert_events_statement, (rows,))


class ChainedPostgresProcessRecorder(PostgresProcessRecorder, ChainedPostgresApplicationRecorder):
    """Events and tracking in one transaction.

    A subclass of the library's ``PostgresProcessRecorder`` (its factory insists on
    that when a recorder is chosen by topic); the MRO puts the chained
    ``_insert_stored_events`` under the library's tracking insert.
    """

    def __init__(
        self,
        datastore: Any,
        *,
        events_table_name: str = "stored_events",
        tracking_table_name: str = "notification_tracking",
    ) -> None:
        super().__init__(
            datastore,
            tracking_table_name=tracking_table_name,
            events_table_name=events_table_name,
        )


class ArrearsPostgresFactory(PostgresFactory):
    """Tables are named as on SQLite (``stored_events``, ``stored_snapshots``), whatever
    the application is called, so auditors' queries and runbooks work on both backends.

    The library derives table names from the application's name (``arrears_events``);
    the recorder methods below name them directly instead of renaming the
    application's environment, which the factory shares with the application (its
    name also selects ``ARREARS_``-prefixed settings).  Events always go through
    the chained recorders: a recorder named by topic in the environment must be
    one of them (or a subclass), never the library's unchained recorder.
    """

    application_recorder_class = ChainedPostgresApplicationRecorder
    process_recorder_class = ChainedPostgresProcessRecorder

    EVENTS_TABLE = "stored_events"
    TRACKING_TABLE = "notification_tracking"

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        # The library's optional insert function writes rows without chain hashes;
        # never let the environment (POSTGRES_ENABLE_DB_FUNCTIONS) switch it on.
        self.datastore.enable_db_functions = False

    def _chained_class(self, key: str, default: type[_R]) -> type[_R]:
        topic = self.env.get(key)
        if not topic:
            return default
        cls = resolve_topic(topic)
        if not (isinstance(cls, type) and issubclass(cls, default)):
            msg = f"{key}={topic!r} is not a hash-chained recorder (a {default.__name__})"
            raise OSError(msg)
        return cls

    def _created(self, recorder: _R) -> _R:
        if self.env_create_table():
            with self._schema_lock():
                recorder.create_table()
        return recorder

    def _connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for a direct ``psycopg.connect`` like the pool's."""
        configured = self.datastore.pool.kwargs
        kwargs: dict[str, Any] = dict(configured) if isinstance(configured, dict) else {}
        kwargs.pop("row_factory", None)
        kwargs["connect_timeout"] = max(1, int(self.datastore.pool.timeout))
        return kwargs

    @contextmanager
    def _schema_lock(self) -> Iterator[None]:
        """One process at a time runs the ``CREATE ...`` statements on this schema.

        Processes opening the store at once (server workers starting, two CLI
        runs) otherwise collide: concurrent ``CREATE TYPE``/``CREATE TABLE IF NOT
        EXISTS`` fail on the catalog's unique index, and two transactions that
        each re-create the triggers deadlock.  A session advisory lock, on a
        connection of its own (outside the pool), serialises them.
        """
        key = f"arrears-schema:{self.datastore.schema}"
        conn: psycopg.Connection[Any] | None = None
        try:
            conn = psycopg.connect(**self._connect_kwargs(), autocommit=True)
            conn.execute("SELECT pg_advisory_lock(hashtext(%s))", [key])
        except psycopg.Error as e:
            if conn is not None:
                conn.close()
            raise OperationalError(str(e)) from e
        try:
            yield
        finally:
            conn.close()  # ends the session, and with it the lock

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        return self._created(
            self.aggregate_recorder_class(
                datastore=self.datastore, events_table_name=f"stored_{purpose}"
            )
        )

    def application_recorder(self) -> ApplicationRecorder:
        try:
            cls = self._chained_class(
                self.APPLICATION_RECORDER_TOPIC, ChainedPostgresApplicationRecorder
            )
            return self._created(cls(datastore=self.datastore, events_table_name=self.EVENTS_TABLE))
        except BaseException as e:
            # The store could not be opened: stop the pool's connection workers
            # instead of leaving them retrying in the background.
            self.close()
            if isinstance(e, OperationalError):
                reason = self._why_unreachable()
                if reason:
                    raise OperationalError(reason) from e
            raise

    def _why_unreachable(self) -> str | None:
        """The server's own reason (refused, no such database, bad password...).

        The pool only says it "couldn't get a connection after N sec"; one direct
        attempt tells the person what to fix.
        """
        kwargs = {**self._connect_kwargs(), "connect_timeout": _PROBE_TIMEOUT}
        try:
            psycopg.connect(**kwargs).close()
        except psycopg.Error as e:
            lines = [line.strip() for line in str(e).splitlines() if line.strip()]
            return " ".join(lines) or type(e).__name__
        return None

    def tracking_recorder(self, tracking_recorder_class: Any = None) -> Any:
        if tracking_recorder_class is None:
            topic = self.env.get(self.TRACKING_RECORDER_TOPIC)
            tracking_recorder_class = (
                resolve_topic(topic) if topic else self.tracking_recorder_class
            )
        assert issubclass(tracking_recorder_class, PostgresTrackingRecorder)
        return self._created(
            tracking_recorder_class(
                datastore=self.datastore, tracking_table_name=self.TRACKING_TABLE
            )
        )

    def process_recorder(self) -> ProcessRecorder:
        cls = self._chained_class(self.PROCESS_RECORDER_TOPIC, ChainedPostgresProcessRecorder)
        return self._created(
            cls(
                datastore=self.datastore,
                events_table_name=self.EVENTS_TABLE,
                tracking_table_name=self.TRACKING_TABLE,
            )
        )
