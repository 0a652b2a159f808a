"""``python -m bench``: Arrears against raw baselines, measured in the same run.

Every figure is printed beside its baseline and the ratio, because absolute
numbers depend on the machine's disk and CPU while ratios travel.

(a) sequential "load account, post payment, durable commit" vs raw single-row
    durable commits of msgpack payloads of the same size (same backend);
(b) full replay of every account, events/s, vs a raw scan of the events table
    with msgpack unpacking;
(c) ``verify`` events/s (with the raw scan rate for scale).

Options: ``--accounts N`` (default 1000), ``--payments N`` (default 2000),
``--postgres URL`` to also run on PostgreSQL (default: $ARREARS_TEST_POSTGRES_URL).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgpack

from ledger.application import Ledger, open_ledger
from ledger.clock import MovableClock
from ledger.demo import build_demo
from ledger.logs import configure_logging
from ledger.money import Money
from ledger.replay import replay_all
from ledger.services import LedgerService
from ledger.tamper.verify import verify_ledger


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def timed(func: Callable[[], int], repeat: int = 1) -> tuple[int, float]:
    """Best of ``repeat`` runs: scans are short, and the fastest run is the least disturbed."""
    best: tuple[int, float] | None = None
    for _ in range(repeat):
        start = time.perf_counter()
        count = func()
        elapsed = time.perf_counter() - start
        if best is None or elapsed < best[1]:
            best = (count, elapsed)
    assert best is not None
    return best


def payment_payload_size(ledger: Ledger) -> int:
    rows = [r for r in ledger.rows().iter_rows("global") if r.topic.endswith("PaymentReceived")]
    return int(sum(len(r.state) for r in rows) / max(1, len(rows))) if rows else 200


# ----------------------------------------------------------------- (a)


def arrears_commands(service: LedgerService, account_ids: list[Any], payments: int) -> int:
    currencies = {a: service.get_account(a).currency for a in account_ids}
    for n in range(payments):
        account_id = account_ids[n % len(account_ids)]
        amount = Money(1, currencies[account_id])
        service.post_payment(account_id, amount, method="card", external_reference=f"bench-{n}")
    return payments


def raw_sqlite_commits(path: Path, payload: bytes, count: int) -> int:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS raw (id INTEGER PRIMARY KEY, payload BLOB)")
    for _ in range(count):
        conn.execute("BEGIN")
        conn.execute("INSERT INTO raw (payload) VALUES (?)", (payload,))
        conn.execute("COMMIT")
    conn.close()
    return count


def raw_postgres_commits(url: str, payload: bytes, count: int) -> int:
    import psycopg

    table = f"bench_raw_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (id bigserial PRIMARY KEY, payload bytea)")
        try:
            for _ in range(count):
                conn.execute(f"INSERT INTO {table} (payload) VALUES (%s)", (payload,), prepare=True)
        finally:
            conn.execute(f"DROP TABLE {table}")
    return count


# ----------------------------------------------------------------- (b)


def arrears_replay(ledger: Ledger) -> int:
    events = 0
    for aggregate in replay_all(ledger):
        events += aggregate.version
    return events


def raw_scan(url: str) -> int:
    """The floor: read every stored payload with the plain driver and unpack it."""
    unpack = msgpack.unpackb
    events = 0
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        for (state,) in conn.execute(
            "SELECT state FROM stored_events ORDER BY originator_id, originator_version"
        ):
            unpack(state, raw=False, strict_map_key=False)
            events += 1
        conn.close()
        return events
    import psycopg

    base, _, query = url.partition("?")
    schema = query.partition("schema=")[2] or "public"
    with psycopg.connect(base) as conn, conn.cursor(name="scan") as cur:
        cur.itersize = 5000
        cur.execute(
            f'SELECT state FROM "{schema}".stored_events ORDER BY originator_id, originator_version'
        )
        for (state,) in cur:
            unpack(state, raw=False, strict_map_key=False)
            events += 1
    return events


def run_backend(
    name: str, url: str, workdir: Path, accounts: int, payments: int
) -> dict[str, float]:
    ledger = open_ledger(url)
    clock = MovableClock(datetime(2026, 1, 5, 9, tzinfo=UTC), tick=timedelta(milliseconds=1))
    service = LedgerService(ledger, clock)
    print(f"\n== {name}: building a demo portfolio of {accounts} accounts ...", flush=True)
    build_demo(service, accounts=accounts, seed=11)
    clock.set(datetime(2026, 12, 1, tzinfo=UTC))
    account_ids = service.list_account_ids()
    payload = os.urandom(payment_payload_size(ledger))

    done, secs = timed(lambda: arrears_commands(service, account_ids, payments))
    ours_a = rate(done, secs)
    if name == "sqlite":
        done, secs = timed(lambda: raw_sqlite_commits(workdir / "raw.db", payload, payments))
    else:
        done, secs = timed(lambda: raw_postgres_commits(url.split("?")[0], payload, payments))
    raw_a = rate(done, secs)

    ledger = open_ledger(url)  # cold: no cached aggregates
    scan_events, scan_secs = timed(lambda: raw_scan(url), repeat=3)
    replay_events, replay_secs = timed(lambda: arrears_replay(ledger), repeat=3)
    raw_b, ours_b = rate(scan_events, scan_secs), rate(replay_events, replay_secs)

    report: dict[str, Any] = {}

    def run_verify() -> int:
        result = verify_ledger(ledger)
        report["ok"] = result.ok
        return result.events_checked

    verified, verify_secs = timed(run_verify, repeat=3)
    ours_c = rate(verified, verify_secs)

    line = "{} {:<8} arrears {:10.0f}   {:<19} {:10.0f}   ratio {:5.2f}   {}"
    print(line.format("(a)", "cmd/s", ours_a, "raw durable commits", raw_a, ours_a / raw_a, ""))
    print(
        line.format(
            "(b)",
            "replay/s",
            ours_b,
            "raw scan+unpack",
            raw_b,
            ours_b / raw_b,
            f"({replay_events} events)",
        )
    )
    print(
        line.format(
            "(c)",
            "verify/s",
            ours_c,
            "raw scan+unpack",
            raw_b,
            ours_c / raw_b,
            f"(intact: {report['ok']})",
        )
    )
    ledger.close()
    return {"a": ours_a / raw_a, "b": ours_b / raw_b, "c": ours_c / raw_b}


def fresh_pg_schema(url: str) -> tuple[str, Callable[[], None]]:
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')

    def drop() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    sep = "&" if "?" in url else "?"
    return f"{url}{sep}schema={schema}", drop


def main() -> None:
    if sys.argv[1:2] == ["projections"]:  # read-model catch-up and rebuild memory
        from bench.projections import main as projections_main

        projections_main(sys.argv[2:])
        return
    if sys.argv[1:2] == ["api"]:  # the HTTP API against a hello-world route of the same app
        from bench.api import main as api_main

        api_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--payments", type=int, default=2000)
    parser.add_argument("--postgres", default=os.environ.get("ARREARS_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    configure_logging(level="WARNING")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run_backend("sqlite", f"sqlite:///{work / 'bench.db'}", work, args.accounts, args.payments)
        if args.postgres:
            url, drop = fresh_pg_schema(args.postgres)
            try:
                run_backend("postgres", url, work, args.accounts, args.payments)
            finally:
                drop()
        else:
            print("\n(postgres skipped: pass --postgres URL or set ARREARS_TEST_POSTGRES_URL)")


if __name__ == "__main__":
    main()
