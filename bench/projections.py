"""``python -m bench projections``: read-model catch-up speed and rebuild memory.

(1) Catch-up of every default read model from zero over the demo portfolio,
    events/s per read model and for all of them together (each event folded
    by every read model), beside the raw scan + msgpack unpack of the same
    events measured in the same run, on SQLite and (with a URL) PostgreSQL.
    Wall time is the headline; CPU time of this process is shown too, since
    it is steadier on a busy machine (on PostgreSQL it leaves out the server).

(2) A ledger of at least 1,000,000 events, written in big batches (many
    aggregates per ``Ledger.save``), then every default read model rebuilt
    in a fresh process that samples its resident memory (VmRSS) as it goes:
    the samples must stay flat, whatever the ledger's size.

Options: ``--accounts N`` (demo size, default 2000), ``--postgres URL``
(default $ARREARS_TEST_POSTGRES_URL), ``--events N`` (default 1,000,000),
``--million-on sqlite|postgres|both`` (default sqlite), ``--skip-million``,
``--skip-catch-up``,
``--repeat N`` (best of N runs, default 3), ``--batch-size N``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.__main__ import fresh_pg_schema, raw_scan
from ledger.application import open_ledger
from ledger.demo import build_demo
from ledger.domain.account import Account
from ledger.domain.debtor import Debtor
from ledger.logs import configure_logging
from ledger.readmodels import default_projections
from ledger.readmodels.engine import DEFAULT_BATCH_SIZE, ProjectionEngine, physical_names
from ledger.readmodels.sqlstore import ReadStore
from ledger.services import LedgerService

# ------------------------------------------------------------------ helpers


def measure(func: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Best wall and best CPU seconds of ``repeat`` runs."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        func()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def open_engine(url: str, batch_size: int) -> ProjectionEngine:
    ledger = open_ledger(url)
    assert ledger.store_config is not None
    return ProjectionEngine(
        ledger, ReadStore(ledger.store_config), default_projections(), batch_size=batch_size
    )


def close_engine(engine: ProjectionEngine) -> None:
    engine.store.close()
    engine.ledger.close()


def forget(engine: ProjectionEngine, names: list[str]) -> None:
    """Drop the named read models (tables and positions), so the next catch-up starts at zero."""
    with engine.store.transaction() as tx:
        for name in names:
            projection = engine.projections[name]
            rows = tx.query("SELECT generation FROM projection_state WHERE name = ?", (name,))
            for generation in {1, *(int(r["generation"]) for r in rows)}:
                for table in physical_names(projection, generation).values():
                    tx.execute(f"DROP TABLE IF EXISTS {table}")
            tx.execute("DELETE FROM projection_state WHERE name = ?", (name,))


def engine_catch_up(engine: ProjectionEngine, names: list[str]) -> Callable[[], int]:
    return lambda: engine.catch_up(names)


def stored_events(engine: ProjectionEngine) -> int:
    with engine.store.transaction(write=False) as tx:
        return int(tx.scalar("SELECT count(*) FROM stored_events"))


# --------------------------------------------------------------- (1) catch-up


def catch_up_figures(
    name: str, url: str, accounts: int, repeat: int, batch_size: int
) -> dict[str, Any]:
    print(f"\n== {name}: demo portfolio of {accounts} accounts ...", flush=True)
    ledger = open_ledger(url)
    build_demo(LedgerService(ledger), accounts=accounts, seed=11)
    ledger.close()

    engine = open_engine(url, batch_size)
    events = stored_events(engine)
    projections = list(engine.projections)
    raw_wall, raw_cpu = measure(lambda: raw_scan(url), repeat)
    results: dict[str, tuple[float, float]] = {}
    for label, names in [*((p, [p]) for p in projections), ("all read models", projections)]:
        runs: list[tuple[float, float]] = []
        for _ in range(repeat):
            forget(engine, names)
            close_engine(engine)
            engine = open_engine(url, batch_size)  # cold: no cached states
            wall, cpu = measure(engine_catch_up(engine, names), 1)
            runs.append((wall, cpu))
            assert all(s.lag == 0 for s in engine.status() if s.name in names)
        results[label] = (min(r[0] for r in runs), min(r[1] for r in runs))
    # The raw scan once more, after: the machine's speed may drift during the run.
    again = measure(lambda: raw_scan(url), repeat)
    raw_wall, raw_cpu = min(raw_wall, again[0]), min(raw_cpu, again[1])
    close_engine(engine)

    raw_rate, raw_cpu_rate = events / raw_wall, events / raw_cpu
    print(f"   {events} events; batch size {batch_size}; best of {repeat}")
    print(
        f"   {'':24} {'events/s':>10} {'ratio':>7}   {'cpu ev/s':>10} {'ratio':>7}"
    )
    print(f"   {'raw scan+unpack':24} {raw_rate:10.0f} {'':>7}   {raw_cpu_rate:10.0f}")
    out: dict[str, Any] = {"events": events, "raw": raw_rate}
    for label, (wall, cpu) in results.items():
        rate, cpu_rate = events / wall, events / cpu
        print(
            f"   {'catch-up ' + label:24} {rate:10.0f} {rate / raw_rate:7.3f}   "
            f"{cpu_rate:10.0f} {cpu_rate / raw_cpu_rate:7.3f}"
        )
        out[label] = rate / raw_rate
    return out


# ------------------------------------------------------------- (2) 1M events

T0 = datetime(2024, 1, 2, 9, 0, tzinfo=UTC)
CREDITORS = [("northwind-bank", "USD"), ("thames-energy", "GBP"), ("huaxia-credit", "CNY")]
AGENTS = [f"agent-{n:02d}" for n in range(1, 21)]


def build_million(url: str, target: int, accounts: int, chunk: int = 2000) -> int:
    """``target`` events or more: a debtor and an account each, then rounds of commands.

    Every round gives each account one more event (a contact, a payment, interest,
    a fee, a promise made or kept) and writes ``chunk`` aggregates' events in one
    recorder call (one transaction, hash-chained as always), so the global
    sequence interleaves all accounts, as months of work would.
    """
    ledger = open_ledger(url)
    rng = random.Random(7)
    ids: list[uuid.UUID] = []
    accounts_by_id: dict[uuid.UUID, Account] = {}  # kept here: reloading would dominate
    written = 0
    at = T0
    started = time.perf_counter()
    for start in range(0, accounts, chunk):
        batch: list[Any] = []
        for n in range(start, min(accounts, start + chunk)):
            creditor, currency = CREDITORS[n % len(CREDITORS)]
            debtor = Debtor.register(
                at=at, debtor_id=uuid.UUID(int=rng.getrandbits(128)), name=f"Debtor {n}"
            )
            account = Account.place(
                at=at,
                creditor=creditor,
                original_creditor=creditor.title(),
                reference=f"M-{n:07d}",
                currency=currency,
                principal=rng.randint(50_000, 5_000_000),
                interest=rng.randint(0, 50_000),
                fees=rng.randint(0, 5_000),
                itemization_date=date(2023, 12, 1),
                itemization_kind="charge_off",
                charge_off_date=date(2023, 12, 1),
                last_payment_date=None,
                last_payment_amount=None,
                debtor_id=debtor.id,
            )
            batch += [debtor, account]
            ids.append(account.id)
        written += save(ledger, batch)
        accounts_by_id.update((a.id, a) for a in batch if isinstance(a, Account))
    rounds = -(-(target - written) // accounts)
    for round_no in range(rounds):
        at = T0 + timedelta(days=1 + round_no)
        for start in range(0, accounts, chunk):
            batch = []
            for account_id in ids[start : start + chunk]:
                account = accounts_by_id[account_id]
                _one_command(account, at, rng)
                batch.append(account)
            written += save(ledger, batch)
        elapsed = time.perf_counter() - started
        print(f"   written {written:>9} events ({written / elapsed:,.0f}/s)", flush=True)
    ledger.close()
    return written


def save(ledger: Any, aggregates: list[Any]) -> int:
    """What ``Ledger.save`` does for new events, for many aggregates at once, minus the
    per-aggregate bookkeeping (caching, snapshot checks) a bulk load has no use for."""
    to_stored = ledger.mapper.to_stored_event
    stored = [to_stored(e) for a in aggregates for e in a.collect_events()]
    ledger.recorder.insert_events(stored)
    return len(stored)


def _one_command(account: Account, at: datetime, rng: random.Random) -> None:
    currency = account.currency
    roll = rng.random()
    if account.open_promise_id is not None and roll < 0.3:
        account.keep_promise(at=at)
    elif roll < 0.6:
        account.record_contact(
            at=at,
            contact_id=uuid.UUID(int=rng.getrandbits(128)).hex,
            channel=rng.choice(["phone", "sms", "email", "letter"]),
            direction="outbound",
            outcome=rng.choice(["right_party_contact", "no_answer", "left_message", "sent"]),
            occurred_at=at - timedelta(minutes=5),
            agent=rng.choice(AGENTS),
        )
    elif roll < 0.75:
        account.receive_payment(
            at=at,
            payment_id=uuid.UUID(int=rng.getrandbits(128)).hex,
            amount=rng.randint(100, 20_000),
            currency=currency,
            method="card",
            received_at=at,
        )
    elif roll < 0.85 and account.open_promise_id is None and account.total_balance > 1000:
        account.make_promise(
            at=at,
            promise_id=uuid.UUID(int=rng.getrandbits(128)).hex,
            amount=min(account.total_balance, rng.randint(500, 10_000)),
            currency=currency,
            due_date=at.date() + timedelta(days=14),
            agent=rng.choice(AGENTS),
        )
    elif roll < 0.95:
        account.accrue_interest(at=at, amount=rng.randint(1, 2_000), currency=currency)
    else:
        account.assess_fee(at=at, amount=2_500, currency=currency, fee_type="late")


def vm_rss_mb(field: str = "VmRSS") -> float:
    """Resident memory now (VmRSS) or at its peak (VmHWM), in MiB.

    (``ru_maxrss`` is no use for the peak here: Linux carries it across
    ``fork``/``exec``, so a child would report its parent's peak.)
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Sampler:
    """A rebuild's progress callback: VmRSS every ``every`` events."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.done = 0
        self.points: list[tuple[int, float]] = []

    def __call__(self, count: int) -> None:
        before, self.done = self.done, self.done + count
        if self.done // self.every != before // self.every:
            self.points.append((self.done, vm_rss_mb()))


def rebuild_sampling(url: str, batch_size: int, samples: int = 10) -> dict[str, Any]:
    """Rebuild every default read model, sampling VmRSS; runs in its own process."""
    configure_logging(level="WARNING")
    engine = open_engine(url, batch_size)
    head = engine.head()
    every = max(1, head // samples)
    out: dict[str, Any] = {"start_rss": vm_rss_mb(), "models": {}}
    for name in engine.projections:
        sampler = Sampler(every)
        started = time.perf_counter()
        total = engine.rebuild(name, progress=sampler)
        seconds = time.perf_counter() - started
        out["models"][name] = {"events": total, "seconds": seconds, "samples": sampler.points}
    out["peak_rss"] = vm_rss_mb("VmHWM")
    close_engine(engine)
    return out


def million(name: str, url: str, target: int, batch_size: int) -> None:
    accounts = max(1000, target // 20)
    print(
        f"\n== {name}: a ledger of {target:,} events ({accounts:,} accounts, "
        "events written in batches of many aggregates) ...",
        flush=True,
    )
    started = time.perf_counter()
    written = build_million(url, target, accounts)
    print(f"   {written:,} events in {time.perf_counter() - started:.0f} s", flush=True)
    print("   rebuilding every read model in a fresh process, sampling VmRSS ...", flush=True)
    result = subprocess.run(
        [sys.executable, "-m", "bench.projections", "--rebuild-sample", url, str(batch_size)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        print(result.stderr[-3000:])
        raise SystemExit("rebuild failed")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"   RSS before the rebuilds: {report['start_rss']:.0f} MiB")
    for model, figures in report["models"].items():
        rss = [mb for _, mb in figures["samples"]]
        print(
            f"   rebuild {model}: {figures['events']:,} events in {figures['seconds']:.0f} s "
            f"({figures['events'] / figures['seconds']:,.0f}/s)"
        )
        print(
            "     VmRSS MiB at "
            + ", ".join(f"{n // 1000}k: {mb:.0f}" for n, mb in figures["samples"])
        )
        if rss:
            half = rss[len(rss) // 2 :]
            print(
                f"     min {min(rss):.0f}, max {max(rss):.0f}; second half "
                f"{min(half):.0f}..{max(half):.0f} MiB"
            )
    print(f"   peak RSS of the rebuilding process (VmHWM): {report['peak_rss']:.0f} MiB")


# ---------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["--rebuild-sample"]:
        print(json.dumps(rebuild_sampling(args_in[1], int(args_in[2]))))
        return
    parser = argparse.ArgumentParser(
        prog="python -m bench projections", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--postgres", default=os.environ.get("ARREARS_TEST_POSTGRES_URL"))
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--million-on", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--skip-million", action="store_true")
    parser.add_argument("--skip-catch-up", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    args = parser.parse_args(args_in)
    configure_logging(level="WARNING")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not args.skip_catch_up:
            catch_up_figures(
                "sqlite", f"sqlite:///{work / 'demo.db'}", args.accounts, args.repeat,
                args.batch_size,
            )
            if args.postgres:
                url, drop = fresh_pg_schema(args.postgres)
                try:
                    catch_up_figures("postgres", url, args.accounts, args.repeat, args.batch_size)
                finally:
                    drop()
            else:
                print("\n(postgres skipped: pass --postgres URL or set ARREARS_TEST_POSTGRES_URL)")
        if args.skip_million:
            return
        if args.million_on in ("sqlite", "both"):
            million("sqlite", f"sqlite:///{work / 'million.db'}", args.events, args.batch_size)
        if args.million_on in ("postgres", "both"):
            if not args.postgres:
                raise SystemExit("--million-on postgres needs --postgres URL")
            url, drop = fresh_pg_schema(args.postgres)
            try:
                million("postgres", url, args.events, args.batch_size)
            finally:
                drop()


if __name__ == "__main__":
    main()
