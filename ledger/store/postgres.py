"""PostgreSQL recorders: the library's, plus the hash chain and append-only triggers.

Inserts already run under the library's EXCLUSIVE table lock (so notification
ids follow commit order); the predecessor hashes are read inside that same
transaction, after the lock, so the chain cannot fork.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ProcessRecorder, ProgrammingError, StoredEvent
from eventsourcing.postgres import (
    PostgresApplicationRecorder,
    PostgresFactory,
    PostgresTrackingRecorder,
)
from psycopg.sql import SQL, Identifier

from ledger.tamper.chain import GENESIS, event_hash

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


class ChainedPostgresProcessRecorder(
    PostgresTrackingRecorder, ChainedPostgresApplicationRecorder, ProcessRecorder
):
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

    def _insert_events(self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        tracking = kwargs.get("tracking")
        if tracking is not None:
            self._insert_tracking(curs, tracking=tracking)
        super()._insert_events(curs, stored_events, **kwargs)


class ArrearsPostgresFactory(PostgresFactory):
    application_recorder_class = ChainedPostgresApplicationRecorder
    process_recorder_class = ChainedPostgresProcessRecorder


