"""PostgreSQL recorders: the library's, plus the hash chain and append-only triggers.

Inserts run under the library's EXCLUSIVE table lock (so notification ids
follow commit order), pipelined into a single round trip.  Predecessor hashes
come from a per-process head cache, or one read when the cache misses.
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
    InterfaceError,
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
from eventsourcing.utils import resolve_topic, retry
from psycopg.sql import SQL, Identifier

from ledger.store.heads import HeadCache
from ledger.tamper.chain import GENESIS, event_hash

_R = TypeVar("_R", bound=PostgresRecorder)
_PROBE_TIMEOUT = 3  # seconds: only runs after the pool already gave up

APPEND_ONLY_MESSAGE = "arrears: events are append-only; record a correction event instead"


class ChainedPostgresApplicationRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore: Any, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self.heads = HeadCache()
        self._rendered: tuple[list[str], str, str, str] | None = None
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
        # Lock, notify and insert inside one server-side function: one prepared,
        # server-bound call per append.  Unlike the library's optional insert
        # function it takes the EXCLUSIVE lock, so notification ids still follow
        # commit order.
        self.append_function_name = f"{self.events_table_name}_append"
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{function}(events {schema}.{type}[]) "
                "RETURNS SETOF bigint LANGUAGE plpgsql AS $$ BEGIN "
                "SET LOCAL lock_timeout = '{lock_timeout}s'; "
                "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
                "NOTIFY {channel}; "
                "RETURN QUERY INSERT INTO {schema}.{table} "
                "(originator_id, originator_version, topic, state, prev_hash, hash) "
                "SELECT e.originator_id, e.originator_version, e.topic, e.state, "
                "e.prev_hash, e.hash FROM unnest(events) AS e RETURNING notification_id; "
                "END $$"
            ).format(
                schema=schema,
                function=Identifier(self.append_function_name),
                type=Identifier(self.chained_type_name),
                lock_timeout=SQL(str(int(self.datastore.lock_timeout))),
                table=table,
                channel=Identifier(self.channel_name),
            )
        )
        self.call_append_statement = SQL("SELECT * FROM {schema}.{function}(%s)").format(
            schema=schema, function=Identifier(self.append_function_name)
        )
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

    def _render(self) -> None:
        """Pre-render the per-write statements once: composing them cost more than sending them."""
        if self._rendered is not None:
            return
        with self.datastore.get_connection() as conn:
            lock = [
                statement if isinstance(statement, str) else statement.as_string(conn)  # type: ignore[union-attr]
                for statement in self.lock_table_statements
            ]
            notify = SQL("NOTIFY {0}").format(Identifier(self.channel_name)).as_string(conn)
            insert = self.insert_events_statement.as_string(conn)
            heads = self.select_heads_statement.as_string(conn)
            append = self.call_append_statement.as_string(conn)
        self._rendered = ([*lock, notify], insert, heads, append)

    def _chained_rows(
        self, stored_events: Sequence[StoredEvent]
    ) -> tuple[list[Any], list[tuple[object, int, bytes]]]:
        """Chain the batch; predecessors come from the head cache or one read.

        The read may run before the write transaction: the row before the first new
        version of a stream is already committed and immutable (a stale guess can
        only lose the primary-key race, never fork the chain).
        """
        assert self._rendered is not None
        firsts: dict[UUID | str, int] = {}
        for s in stored_events:
            if s.originator_id not in firsts or s.originator_version < firsts[s.originator_id]:
                firsts[s.originator_id] = s.originator_version
        known: dict[UUID | str, bytes] = {}
        missing: dict[UUID | str, int] = {}
        for oid, version in firsts.items():
            cached = GENESIS if version == 1 else self.heads.prev_hash(oid, version)
            if cached is None:
                missing[oid] = version
            else:
                known[oid] = cached
        if missing:
            with self.datastore.get_connection() as conn, conn.cursor() as lookup:
                lookup.execute(
                    self._rendered[2], (list(missing), list(missing.values())), prepare=True
                )
                for row in lookup.fetchall():
                    known[row["originator_id"]] = bytes(row["hash"] or GENESIS)
        try:
            make = self.datastore.psycopg_python_types[self.chained_type_name]
        except KeyError:
            msg = f"Composite type '{self.chained_type_name}' not found"
            raise ProgrammingError(msg) from None
        digests: dict[tuple[UUID | str, int], Any] = {}
        heads: dict[UUID | str, bytes] = {}
        for s in sorted(stored_events, key=lambda e: e.originator_version):
            prev = heads.get(s.originator_id) or known.get(s.originator_id, GENESIS)
            digest = event_hash(s.originator_id, s.originator_version, s.topic, s.state, prev)
            heads[s.originator_id] = digest
            digests[(s.originator_id, s.originator_version)] = make(
                s.originator_id, s.originator_version, s.topic, s.state, prev, digest
            )
        rows = [digests[(s.originator_id, s.originator_version)] for s in stored_events]
        return rows, [(r.originator_id, r.originator_version, r.hash) for r in rows]

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Lock, notify, insert and commit in as few round trips as possible.

        Plain appends are one call of the append function (one round trip).  With a
        tracking record (a process application's position) the statements are
        pipelined instead, because the library's tracking insert binds its own
        parameters.  Either way a unique violation surfaces as an IntegrityError
        and nothing of the transaction remains.
        """
        self._render()
        assert self._rendered is not None
        statements, insert, _, append = self._rendered
        rows, heads = self._chained_rows(stored_events) if stored_events else ([], [])
        ids: Sequence[int] | None = None
        if rows and kwargs.get("tracking") is None:
            # One call, one round trip, its own transaction (autocommit).
            with self.datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute(append, (rows,), prepare=True)
                ids = [next(iter(row.values())) for row in curs.fetchall()]
            self.heads.committed(heads)
            return ids
        with (
            self.datastore.get_connection() as conn,
            conn.cursor() as curs,
            conn.cursor() as insert_cursor,
        ):
            with conn.pipeline(), conn.transaction():
                self._insert_events(curs, stored_events, **kwargs)
                if rows:
                    for statement in statements:
                        curs.execute(statement, prepare=True)
                    insert_cursor.execute(insert, (rows,), prepare=True)
            if rows:
                ids = [row["notification_id"] for row in insert_cursor.fetchall()]
        self.heads.committed(heads)
        return ids


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
