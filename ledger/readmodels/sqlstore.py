"""A small SQL layer for read models, in the same database as the events.

Read models live beside the events (the SQLite file, or the PostgreSQL schema)
so that a projection can commit its rows and its position in one transaction.
SQL is written once with ``?`` placeholders and portable types (TEXT, BIGINT);
times are stored as fixed-width UTC ISO strings so they compare as text.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import struct
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import msgpack
from eventsourcing.persistence import Transcoder

from ledger.errors import StoreError
from ledger.store.sqlite import while_locked
from ledger.store.transcoder import EXT_DATE, EXT_DATETIME, EXT_UUID, MsgpackTranscoder
from ledger.store.url import StoreConfig
from ledger.store.writelock import sqlite_writer

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

_DATETIME_STRUCT = struct.Struct(">qi")  # as ledger.store.transcoder stores them
_DATE_STRUCT = struct.Struct(">I")
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)

_TEXTS: dict[datetime, str] = {}
_TEXTS_MAX = 20_000


def to_text(moment: datetime) -> str:
    """Fixed-width UTC text: lexical order equals time order on both backends.

    Projections format the same instants over and over (an account's placement
    and last contact on every save), so recent results are remembered; equal
    instants in different offsets share one entry, and so one text.
    """
    text = _TEXTS.get(moment)
    if text is None:
        m = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
        text = (
            f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:"
            f"{m.second:02d}.{m.microsecond:06d}Z"
        )
        if len(_TEXTS) >= _TEXTS_MAX:
            _TEXTS.clear()
        _TEXTS[moment] = text
    return text


def from_text(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


def day_text(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None


class StateEncoder:
    """Encodes state exactly as the ledger's transcoder does, byte for byte, only faster.

    A projection that keeps an aggregate's state beside its row re-encodes it
    on every save, and most of that time goes to the same few datetimes, dates
    and UUIDs (an account's id, debtor, placement and due dates), each turned
    into a msgpack ext value by Python code.  This encoder remembers those ext
    values (bounded); everything else goes to the transcoder's own hook, so the
    bytes are the transcoder's and decode with it.  Any other transcoder is
    simply called.
    """

    _MAX = 20_000

    def __init__(self, transcoder: Transcoder) -> None:
        self.transcoder = transcoder
        self._fallback: Callable[[Any], Any] | None = None
        self._datetimes: dict[datetime, tuple[tzinfo | None, Any]] = {}
        self._others: dict[Any, Any] = {}
        self._packb: Callable[[Any], bytes] = transcoder.encode
        if type(transcoder) is MsgpackTranscoder:
            self._fallback = transcoder._default
            self._packb = functools.partial(
                msgpack.packb,
                default=self._default,
                use_bin_type=True,
                datetime=False,
                strict_types=True,
            )

    def __call__(self, obj: Any) -> bytes:
        return self._packb(obj)

    def _default(self, obj: Any) -> Any:
        assert self._fallback is not None
        kind = type(obj)
        if kind is datetime:
            # Equal instants in different offsets are equal keys: the offset is
            # part of the encoding, so the entry only counts for the same tzinfo.
            found = self._datetimes.get(obj)
            if found is not None and found[0] is obj.tzinfo:
                return found[1]
            ext = self._fallback(obj)
            if len(self._datetimes) >= self._MAX:
                self._datetimes.clear()
            self._datetimes[obj] = (obj.tzinfo, ext)
            return ext
        if kind is date or kind is UUID:
            # A date never equals a UUID, and ``date == datetime`` is False.
            ext = self._others.get(obj)
            if ext is None:
                ext = self._fallback(obj)
                if len(self._others) >= self._MAX:
                    self._others.clear()
                self._others[obj] = ext
            return ext
        return self._fallback(obj)


def fast_decoder(transcoder: Transcoder) -> Callable[[bytes], Any]:
    """``transcoder.decode``, with UUIDs, UTC datetimes and dates decoded inline.

    Those three are nearly every ext value in an event or a state; each is built
    exactly as the transcoder builds it (same type, same tzinfo), and every other
    ext value goes to the transcoder's own hook.  Any other transcoder is simply
    called.
    """
    if type(transcoder) is not MsgpackTranscoder:
        return transcoder.decode
    fallback = transcoder._ext_hook
    unpack_datetime, unpack_date = _DATETIME_STRUCT.unpack, _DATE_STRUCT.unpack
    epoch, delta, from_ordinal = _EPOCH_UTC, timedelta, date.fromordinal

    def ext_hook(code: int, data: bytes) -> Any:
        if code == EXT_UUID:
            return UUID(bytes=data)
        if code == EXT_DATETIME:
            micros, offset = unpack_datetime(data)
            if offset == 0:
                return epoch + delta(0, 0, micros)
        elif code == EXT_DATE:
            return from_ordinal(unpack_date(data)[0])
        return fallback(code, data)

    return functools.partial(msgpack.unpackb, ext_hook=ext_hook, raw=False, strict_map_key=False)


_PG_SQL: dict[str, str] = {}


def _pg_sql(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled), remembered."""
    translated = _PG_SQL.get(sql)
    if translated is None:
        translated = sql.replace("%", "%%").replace("?", "%s")
        if len(_PG_SQL) < 10_000:
            _PG_SQL[sql] = translated
    return translated


class Tx:
    """One read-model transaction: ``?`` placeholders on both backends."""

    def __init__(self, cursor: Any, postgres: bool) -> None:
        self.cursor = cursor
        self.postgres = postgres

    def _sql(self, sql: str) -> str:
        return _pg_sql(sql) if self.postgres else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.cursor.execute(self._sql(sql), tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.cursor.executemany(self._sql(sql), rows)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        self.cursor.execute(self._sql(sql), tuple(params))
        if self.cursor.description is None:
            return []
        names = [d[0] for d in self.cursor.description]
        return [dict(zip(names, row, strict=True)) for row in self.cursor.fetchall()]

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Plain tuples, for hot paths that would only unpack the dicts again."""
        self.cursor.execute(self._sql(sql), tuple(params))
        if self.cursor.description is None:
            return []
        return list(self.cursor.fetchall())

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = self.query(sql, params)
        return next(iter(rows[0].values())) if rows else None

    def upsert(
        self,
        table: str,
        columns: Sequence[str],
        key: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        update: bool = True,
    ) -> None:
        """Insert ``rows``; a row whose ``key`` exists replaces it (``update``) or is skipped.

        The result is that of inserting the rows one by one: with ``update`` the
        last row of a key wins, without it the first (or the stored one).  On
        PostgreSQL a large batch is copied (``COPY``) into a session-private
        staging table and merged with one ``INSERT ... SELECT``, instead of one
        statement per row.
        """
        if not rows:
            return
        names = ", ".join(columns)
        conflict = f"ON CONFLICT ({', '.join(key)}) DO "
        if update:
            conflict += "UPDATE SET " + ", ".join(
                f"{c} = excluded.{c}" for c in columns if c not in key
            )
        else:
            conflict += "NOTHING"
        if not self.postgres or len(rows) < _COPY_MIN_ROWS:
            marks = ", ".join("?" for _ in columns)
            self.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks}) {conflict}", rows)
            return
        positions = [columns.index(k) for k in key]
        unique: dict[tuple[Any, ...], Sequence[Any]] = {}
        for row in rows:
            found = tuple(row[i] for i in positions)
            if update or found not in unique:
                unique[found] = row
        stage = self._stage(table)
        with self.cursor.copy(f"COPY {stage} ({names}) FROM STDIN") as copy:
            for row in unique.values():
                copy.write_row(row)
        self.cursor.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {stage} {conflict}")
        self.cursor.execute(f"TRUNCATE {stage}")

    def _stage(self, table: str) -> str:
        """A temporary table shaped like ``table``, created once per connection."""
        stage = f"rm_stage_{table}"[:63]
        made = _STAGES.setdefault(self.cursor.connection, set())
        if stage not in made:
            self.cursor.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} (LIKE {table}) ON COMMIT DELETE ROWS"
            )
            made.add(stage)
        return stage


_COPY_MIN_ROWS = 64
_STAGES: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


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
                    # Every statement runs inside ``transaction()``; autocommit keeps a
                    # stray read from opening an implicit transaction that would hold
                    # its locks (and turn the next ``transaction()`` into a savepoint).
                    autocommit=True,
                )
            except psycopg.Error as e:
                raise StoreError(f"cannot open read models at {self.config.display}: {e}") from e
            return conn
        path = self.config.env["SQLITE_DBNAME"]
        uri = path.startswith("file:")
        lite = sqlite3.connect(
            path, uri=uri, timeout=30, isolation_level=None, check_same_thread=False
        )
        while_locked(lambda: lite.execute("PRAGMA journal_mode=WAL"))
        # NORMAL, not FULL: a read model commits its rows and its position together,
        # so a power cut can only take both back to an earlier commit, which the
        # next catch-up redoes.  It never loses a ledger write: WAL frames are
        # ordered, and the ledger's own FULL commits sync every frame before theirs.
        lite.execute("PRAGMA synchronous=NORMAL")
        return lite

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
            try:
                with conn.transaction(), conn.cursor() as cursor:
                    yield Tx(cursor, True)
            except BaseException:
                _STAGES.pop(conn, None)  # staging tables made in this transaction are gone
                raise
            return
        writer = sqlite_writer(self.config.env["SQLITE_DBNAME"]) if write else None
        with writer or contextlib.nullcontext():
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
