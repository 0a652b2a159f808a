"""Raw reads of the events table, for the verifier, seals and auditor exports.

Verification must look at what is stored, not at what the domain model makes
of it, so these readers return the rows as they are, chain columns included.
Reads are keyset-paginated so memory stays flat on any ledger size.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder


@dataclass(frozen=True, slots=True)
class ChainRow:
    position: int
    originator_id: UUID | str
    version: int
    topic: str
    state: bytes
    prev_hash: bytes | None
    hash: bytes | None


class RowReader:
    """Backend-neutral paginated reads of ``stored_events`` with its chain columns."""

    def __init__(self, recorder: ApplicationRecorder, batch_size: int = 5000) -> None:
        self.recorder = recorder
        self.batch_size = batch_size
        rec: Any = recorder
        self.table: str = rec.events_table_name
        self.is_postgres = type(recorder).__module__.startswith("ledger.store.postgres")
        if self.is_postgres:
            schema = rec.datastore.schema
            self.qualified = f'"{schema}"."{self.table}"'
            self.position_column = "notification_id"
            self.mark = "%s"
        else:
            self.qualified = self.table
            self.position_column = "rowid"
            self.mark = "?"

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        rec: Any = self.recorder
        if self.is_postgres:
            with rec.datastore.get_connection() as conn, conn.cursor() as curs:
                yield curs
        else:
            with rec.datastore.transaction(commit=False) as curs:
                yield curs

    def _oid(self, value: Any) -> UUID | str:
        if isinstance(value, UUID):
            return value
        try:
            return UUID(value)
        except (ValueError, TypeError, AttributeError):
            return str(value)

    def _oid_param(self, value: UUID | str) -> Any:
        if isinstance(value, UUID) and not self.is_postgres:
            return value.hex
        return value

    def _row(self, r: Any) -> ChainRow:
        return ChainRow(
            position=r[0],
            originator_id=self._oid(r[1]),
            version=r[2],
            topic=r[3],
            state=bytes(r[4]) if r[4] is not None else b"",
            prev_hash=bytes(r[5]) if r[5] is not None else None,
            hash=bytes(r[6]) if r[6] is not None else None,
        )

    def _select(self) -> str:
        return (
            f"SELECT {self.position_column} AS position, originator_id, originator_version, "
            f"topic, state, prev_hash, hash FROM {self.qualified} "
        )

    def _fetch(self, sql: str, params: list[Any]) -> list[ChainRow]:
        with self._cursor() as curs:
            curs.execute(sql, params)
            rows = curs.fetchall()
        if rows and isinstance(rows[0], dict):
            return [self._row(list(r.values())) for r in rows]
        return [self._row(tuple(r)) for r in rows]

    def iter_rows(
        self,
        order: Literal["global", "stream"] = "global",
        *,
        after: int = 0,
        upto: int | None = None,
    ) -> Iterator[ChainRow]:
        """Every row, in notification order or grouped by stream in version order."""
        m, limit = self.mark, self.batch_size
        if order == "global":
            last = after
            while True:
                sql = self._select() + f"WHERE {self.position_column} > {m} "
                params: list[Any] = [last]
                if upto is not None:
                    sql += f"AND {self.position_column} <= {m} "
                    params.append(upto)
                sql += f"ORDER BY {self.position_column} LIMIT {m}"
                batch = self._fetch(sql, [*params, limit])
                yield from batch
                if len(batch) < limit:
                    return
                last = batch[-1].position
        else:
            key: tuple[Any, int] | None = None
            while True:
                sql = self._select()
                params = []
                if key is not None:
                    sql += f"WHERE (originator_id, originator_version) > ({m}, {m}) "
                    params = [self._oid_param(key[0]), key[1]]
                sql += f"ORDER BY originator_id, originator_version LIMIT {m}"
                batch = self._fetch(sql, [*params, limit])
                yield from batch
                if len(batch) < limit:
                    return
                key = (batch[-1].originator_id, batch[-1].version)

    def stream(self, originator_id: UUID | str) -> list[ChainRow]:
        m = self.mark
        sql = self._select() + f"WHERE originator_id = {m} ORDER BY originator_version"
        return self._fetch(sql, [self._oid_param(originator_id)])

    def max_position(self) -> int:
        with self._cursor() as curs:
            curs.execute(f"SELECT MAX({self.position_column}) AS m FROM {self.qualified}")
            row = curs.fetchone()
        value = row["m"] if isinstance(row, dict) else row[0]
        return int(value or 0)

    def find_by_hash(self, digest: bytes) -> list[tuple[UUID | str, int]]:
        """Where else a hash occurs: tells a copied (inserted) row from an edited one."""
        sql = (
            f"SELECT originator_id, originator_version FROM {self.qualified} "
            f"WHERE hash = {self.mark}"
        )
        with self._cursor() as curs:
            curs.execute(sql, [digest])
            rows = curs.fetchall()
        out = []
        for r in rows:
            values = list(r.values()) if isinstance(r, dict) else tuple(r)
            out.append((self._oid(values[0]), int(values[1])))
        return out

    def iter_events(self) -> Iterator[tuple[Any, int, str, bytes]]:
        """(raw originator id, version, topic, state) in stream order: the replay fast path.

        Ids come back as the driver gives them (hex text on SQLite, UUID on
        PostgreSQL) so the caller converts once per stream, not once per event.
        """
        m, limit = self.mark, self.batch_size
        head = f"SELECT originator_id, originator_version, topic, state FROM {self.qualified} "
        key: tuple[Any, int] | None = None
        while True:
            if key is None:
                sql, params = head, []
            else:
                sql = head + f"WHERE (originator_id, originator_version) > ({m}, {m}) "
                params = [key[0], key[1]]
            sql += f"ORDER BY originator_id, originator_version LIMIT {m}"
            with self._cursor() as curs:
                curs.execute(sql, [*params, limit])
                rows = curs.fetchall()
            if rows and isinstance(rows[0], dict):
                batch = [
                    (r["originator_id"], r["originator_version"], r["topic"], bytes(r["state"]))
                    for r in rows
                ]
            else:
                batch = [(r[0], r[1], r[2], r[3]) for r in rows]
            yield from batch
            if len(batch) < limit:
                return
            key = (batch[-1][0], batch[-1][1])
