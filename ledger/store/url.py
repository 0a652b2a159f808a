"""One store URL selects the backend.

``sqlite:///relative.db``, ``sqlite:////absolute/path.db``, ``sqlite:///:memory:``
or ``postgresql://user[:password]@host[:port]/db[?schema=name]``.  The URL is
turned into the environment the ``eventsourcing`` factories read.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from ledger.errors import StoreError

DEFAULT_STORE_URL = "sqlite:///arrears.db"


@dataclass(frozen=True)
class StoreConfig:
    url: str
    backend: str  # "sqlite" | "postgres"
    env: dict[str, str]

    @property
    def display(self) -> str:
        """The URL without any password, safe to print and log."""
        return redact(self.url)


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``, safe to print and log."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if password:
        userinfo, _, hostinfo = parts.netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        return parts._replace(netloc=f"{user}:***@{hostinfo}").geturl()
    return url


def store_url_from_env(explicit: str | None = None) -> str:
    return explicit or os.environ.get("ARREARS_STORE") or DEFAULT_STORE_URL


def parse_store_url(url: str) -> StoreConfig:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        return _sqlite(url, parts.path)
    if scheme in ("postgresql", "postgres"):
        return _postgres(url)
    shown = redact(url)
    raise StoreError(
        f"unknown store URL scheme {parts.scheme or '(none)'!r} in {shown!r}: use "
        "sqlite:///path/arrears.db or postgresql://user@host:port/db",
        url=shown,
    )


def _sqlite(url: str, path: str) -> StoreConfig:
    # urlsplit keeps the leading "/" of the path: "sqlite:///x.db" -> "/x.db".
    path = unquote(path[1:] if path.startswith("/") else path)
    if not path:
        raise StoreError(f"store URL {redact(url)!r} names no database file", url=redact(url))
    if path == ":memory:":
        path = f"file:arrears-{uuid.uuid4().hex}?mode=memory&cache=shared"
    env = {
        "PERSISTENCE_MODULE": "ledger.store.sqlite:ArrearsSQLiteFactory",
        "SQLITE_DBNAME": path,
        "SQLITE_LOCK_TIMEOUT": "30",
    }
    return StoreConfig(url=url, backend="sqlite", env=env)


def _postgres(url: str) -> StoreConfig:
    parts = urlsplit(url)
    dbname = unquote(parts.path.lstrip("/"))
    shown = redact(url)
    if not dbname or not parts.hostname:
        raise StoreError(
            f"store URL {shown!r} needs a host and a database: postgresql://user@host:port/db",
            url=shown,
        )
    try:
        port = parts.port or 5432
    except ValueError as e:  # urllib: non-numeric or out of range
        raise StoreError(f"store URL {shown!r} has a bad port: {e}", url=shown) from None
    query = parse_qs(parts.query)
    env = {
        "PERSISTENCE_MODULE": "ledger.store.postgres:ArrearsPostgresFactory",
        "POSTGRES_DBNAME": dbname,
        "POSTGRES_HOST": parts.hostname,
        "POSTGRES_PORT": str(port),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        "POSTGRES_CONNECT_TIMEOUT": query.get("connect_timeout", ["5"])[0],
        "POSTGRES_POOL_SIZE": "2",
        "POSTGRES_MAX_OVERFLOW": "8",
        "POSTGRES_LOCK_TIMEOUT": "30",
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "60",
    }
    if "schema" in query:
        env["POSTGRES_SCHEMA"] = query["schema"][0]
    return StoreConfig(url=url, backend="postgres", env=env)
