"""A small SQL layer for read models, in the same database as the events.

Read models live beside the events (the SQLite file, or the PostgreSQL schema)
so that a projection can commit its rows and its position in one transaction.
SQL is written once with ``?`` placeholders and portable types (TEXT, BIGINT);
times are stored as fixed-width UTC ISO strings so they compare as text.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

from ledger.errors import StoreError
from ledger.store.url import StoreConfig

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def to_text(moment: datetime) -> str:
    """Fixed-width UTC text: lexical order equals time order on both backends."""
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def from_text(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


def day_text(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None


class Tx:
    """One read-model transaction: ``?`` placeholders on both backends."""

    def __init__(self, cursor: Any, postgres: bool) -> None:
        self.cursor = cursor
        self.postgres = postgres

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.cursor.execute(self._sql(sql), tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.cursor.executemany(self._sql(sql), [tuple(r) for r in rows])

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        self.cursor.execute(self._sql(sql), tuple(params))
        if self.cursor.description is None:
            return []
        names = [d[0] for d in self.cursor.description]
        return [dict(zip(names, row, strict=True)) for row in self.cursor.fetchall()]

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = self.query(sql, params)
        return next(iter(rows[0].values())) if rows else None


class ReadStore:
    """Connections for read models; one per thread, opened lazily."""

    def __init__(self, config: StoreConfig) -> None:
        self.config = config
        self.postgres = config.backend == "postgres"
        self._local = threading.local()
        self.schema = config.env.get("POSTGRES_SCHEMA", "public") if self.postgres else None

    def _connect(self) -> Any:
        if self.postgres:
            import psycopg

            env = self.config.env
            try:
                conn = psycopg.connect(
                    dbname=env["POSTGRES_DBNAME"],
                    host=env["POSTGRES_HOST"],
                    port=env["POSTGRES_PORT"],
                    user=env["POSTGRES_USER"],
                    password=env["POSTGRES_PASSWORD"] or None,
                    connect_timeout=int(env.get("POSTGRES_CONNECT_TIMEOUT", "5")),
                    options=f"-c search_path={self.schema}",
                )
            except psycopg.Error as e:
                raise StoreError(f"cannot open read models at {self.config.display}: {e}") from e
            return conn
        path = self.config.env["SQLITE_DBNAME"]
        uri = path.startswith("file:")
        conn = sqlite3.connect(
            path, uri=uri, timeout=30, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        return conn

    @property
    def connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Tx]:
        """A transaction; on SQLite a write one takes the write lock up front."""
        conn = self.connection
        if self.postgres:
            with conn.transaction(), conn.cursor() as cursor:
                yield Tx(cursor, True)
            return
        cursor = conn.cursor()
        cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield Tx(cursor, False)
        except BaseException:
            conn.rollback()
            raise
        else:
            conn.commit()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self.transaction(write=False) as tx:
            return tx.query(sql, params)

    def table_exists(self, tx: Tx, name: str) -> bool:
        if self.postgres:
            return bool(
                tx.scalar(
                    "SELECT count(*) FROM information_schema.tables "
                    "WHERE table_schema = ? AND table_name = ?",
                    (self.schema, name),
                )
            )
        return bool(
            tx.scalar("SELECT count(*) FROM sqlite_master WHERE type='table' AND name=?", (name,))
        )

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @property
    def display(self) -> str:
        return self.config.display


def sqlite_path(url: str) -> str:
    return urlsplit(url).path[1:]
