"""``python -m bench api``: the HTTP API under load, against a hello-world route of the same app.

One server process, run as ``arrears serve`` runs it (``server.create_app`` on a
single Sanic process, the worker on a background thread), over a store holding a
few hundred placed accounts, with one route added: ``GET /bench/hello`` answering
``{"ok": true}`` through the same app and middleware (request id, metrics, the
request log line).  Measured in the same run, at ``--connections`` connections,
each for ``--seconds`` after a warm-up:

(1) ``GET /bench/hello``, the baseline (run first and last; the better run counts);
(2) ``GET /v1/accounts/{id}``, the account summary, across the accounts;
(3) ``POST /v1/accounts/{id}/payments``, each with its own ``Idempotency-Key`` and
    payment ``reference``, across the accounts.

Printed: requests/s, p50 and p99 latency, non-2xx answers, and each route's
requests/s as a ratio of the hello-world route's (the aim for payments: >= 0.3).

The load comes from ``wrk`` when it is installed, else from a load generator in a
separate process: plain asyncio streams with keep-alive (uvloop when importable),
because a full HTTP client library spends more CPU per request than the hello-world
route does and would measure itself.

Options: ``--seconds N`` (default 10), ``--connections N`` (default 64),
``--store URL`` (default: a new SQLite file; a PostgreSQL URL gets a fresh schema),
``--accounts N`` (default 300), ``--warmup N`` seconds (default 2),
``--no-worker``, ``--generator wrk|python``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

HELLO = "/bench/hello"
AMOUNT = "0.01"

# --------------------------------------------------------------- the server


def serve_with_hello(store: str, port: int, worker: bool) -> None:
    """What ``server.serve`` does, plus the hello-world route; runs until SIGINT."""
    from sanic import Request, response

    from bootstrap import build_service, load_config
    from plugins.manager import build_plugin_manager
    from server import BackgroundWorker, create_app, server_config

    settings = load_config()
    config = server_config(settings=settings).with_overrides(port=port)
    pm = build_plugin_manager()
    level = os.environ.get("ARREARS_LOG_LEVEL", "INFO")
    service = build_service(store, log_level=level, plugins=pm, config=settings)
    background = BackgroundWorker.start(service, pm, config.worker_tick) if worker else None
    try:
        app = create_app(service, config, plugins=pm, name="arrears_bench")

        async def hello(request: Request) -> response.HTTPResponse:
            return response.json({"ok": True})

        app.add_route(hello, HELLO, methods=["GET"], name="bench_hello")
        app.run(
            host=config.host, port=config.port, single_process=True, access_log=False, motd=False
        )
    finally:
        if background is not None:
            background.stop()
        service.ledger.close()


def prepare(store: str, accounts: int) -> tuple[list[str], str]:
    """Place ``accounts`` accounts (USD, active) and mint an admin token; the ids and token."""
    from bootstrap import build_service
    from ledger.money import Money
    from ledger.services import DebtorDetails, Placement

    service = build_service(store, log_level="WARNING")
    try:
        ids = []
        for n in range(accounts):
            placement = Placement(
                creditor="bench-bank",
                reference=f"BENCH-{n:06d}",
                currency="USD",
                principal=Money.parse("5000.00", "USD"),
                interest=Money.parse("300.00", "USD"),
                fees=Money.parse("25.00", "USD"),
                itemization_date=date(2025, 12, 31),
                itemization_kind="charge_off",
                original_creditor="Bench Bank",
                charge_off_date=date(2025, 12, 31),
            )
            debtor = DebtorDetails(
                name=f"Debtor {n}", time_zone="America/New_York", jurisdiction="US-NY"
            )
            ids.append(str(service.place_account(placement, debtor=debtor).id))
        _, token = service.tokens().create("admin", label="bench api")
    finally:
        service.ledger.close()
    return ids, token


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(store: str, workdir: Path, worker: bool) -> Iterator[int]:
    """The server in its own process; its port.  Its output goes to ``server.log``."""
    import httpx

    port = free_port()
    log = workdir / "server.log"
    command = [sys.executable, "-m", "bench.api", "--serve", store, str(port)]
    command += [] if worker else ["--no-worker"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the server exited:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"the server did not answer:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield port
    finally:
        process.send_signal(signal.SIGINT)  # as Ctrl-C: a clean stop
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


# ------------------------------------------------------------ the workloads


@dataclass(frozen=True)
class Workload:
    """One route under load: how its requests are made."""

    label: str
    kind: str  # hello | summary | payment
    token: str
    account_ids: tuple[str, ...] = ()

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "token": self.token, "account_ids": list(self.account_ids)}


def request_maker(spec: dict[str, Any], host: str, worker_id: int) -> Callable[[], bytes]:
    """A function giving the next request's bytes (HTTP/1.1, keep-alive)."""
    ids = spec["account_ids"]
    auth = f"Authorization: Bearer {spec['token']}\r\n"
    state = {"n": 0}
    rng = random.Random(worker_id)
    run = uuid.uuid4().hex[:8]

    def hello() -> bytes:
        return f"GET {HELLO} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()

    def summary() -> bytes:
        account = ids[rng.randrange(len(ids))]
        return f"GET /v1/accounts/{account} HTTP/1.1\r\nHost: {host}\r\n{auth}\r\n".encode()

    def payment() -> bytes:
        state["n"] += 1
        unique = f"{run}-{worker_id}-{state['n']}"
        account = ids[rng.randrange(len(ids))]
        body = json.dumps(
            {"amount": AMOUNT, "method": "card", "reference": f"bench-{unique}"}
        ).encode()
        head = (
            f"POST /v1/accounts/{account}/payments HTTP/1.1\r\nHost: {host}\r\n{auth}"
            f"Idempotency-Key: {unique}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    return {"hello": hello, "summary": summary, "payment": payment}[spec["kind"]]


@dataclass
class Figures:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


# ------------------------------------------------ the python load generator


async def _connection(
    host: str,
    port: int,
    make: Callable[[], bytes],
    start: float,
    measure_from: float,
    stop: float,
    latencies: list[float],
    statuses: Counter[int],
) -> int:
    """One keep-alive connection sending requests back to back; its transport errors."""
    errors = 0
    reader, writer = await asyncio.open_connection(host, port)
    await asyncio.sleep(max(0.0, start - time.perf_counter()))
    while time.perf_counter() < stop:
        sent = time.perf_counter()
        try:
            writer.write(make())
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            errors += 1
            writer.close()
            reader, writer = await asyncio.open_connection(host, port)
            continue
        done = time.perf_counter()
        if sent >= measure_from and done <= stop:
            latencies.append(done - sent)
            statuses[int(head[9:12])] += 1
    writer.close()
    return errors


async def _generate(spec: dict[str, Any]) -> dict[str, Any]:
    host, port = "127.0.0.1", int(spec["port"])
    start = time.perf_counter() + 0.5  # every connection open before the first request
    measure_from = start + float(spec["warmup"])
    stop = measure_from + float(spec["seconds"])
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors = await asyncio.gather(
        *(
            _connection(
                host,
                port,
                request_maker(spec, f"{host}:{port}", n),
                start,
                measure_from,
                stop,
                latencies,
                statuses,
            )
            for n in range(int(spec["connections"]))
        )
    )
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": float(spec["seconds"]),
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "non_2xx": sum(c for s, c in statuses.items() if not 200 <= s < 300),
        "errors": sum(errors),
    }


def percentile(ordered: list[float], pct: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def generate_main(spec_json: str) -> None:
    """The load generator's process: run the spec, print its figures as JSON."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(_generate(json.loads(spec_json)))))


def python_load(spec: dict[str, Any]) -> Figures:
    result = subprocess.run(
        [sys.executable, "-m", "bench.api", "--generate", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"the load generator failed:\n{result.stderr[-3000:]}")
    return Figures(**json.loads(result.stdout.strip().splitlines()[-1]))


# ---------------------------------------------------------------- wrk

#: wrk's Lua: each thread makes its requests from the spec, and ``done`` prints the
#: figures as one JSON line (latencies in microseconds).
WRK_SCRIPT = r"""
local spec = %(spec)s
local created = 0
function setup(thread)  -- in the main state: number the threads
  created = created + 1
  thread:set("tid", created)
end
function init(args)  -- in each thread's state, where setup set tid
  counter = 0
  math.randomseed(tid * 7919 + os.time())
  run = string.format("%%x", math.random(1, 2147483647))
end
local function account() return spec.account_ids[math.random(1, #spec.account_ids)] end
function request()
  local auth = {["Authorization"] = "Bearer " .. spec.token}
  if spec.kind == "hello" then
    return wrk.format("GET", "%(hello)s")
  elseif spec.kind == "summary" then
    return wrk.format("GET", "/v1/accounts/" .. account(), auth)
  end
  counter = counter + 1
  local unique = run .. "-" .. tid .. "-" .. counter
  auth["Idempotency-Key"] = unique
  auth["Content-Type"] = "application/json"
  local body = '{"amount": "%(amount)s", "method": "card", "reference": "bench-' .. unique .. '"}'
  return wrk.format("POST", "/v1/accounts/" .. account() .. "/payments", auth, body)
end
function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %%d, "seconds": %%f, "p50_ms": %%f, "p99_ms": %%f, '
      .. '"non_2xx": %%d, "errors": %%d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout))
end
"""


def _lua(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_lua(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "{" + ", ".join(_lua(v) for v in value) + "}"
    return json.dumps(value)


def wrk_load(wrk: str, spec: dict[str, Any], workdir: Path) -> Figures:
    script = workdir / f"bench-{spec['kind']}.lua"
    lua_spec = {k: spec[k] for k in ("kind", "token", "account_ids")}
    script.write_text(WRK_SCRIPT % {"spec": _lua(lua_spec), "hello": HELLO, "amount": AMOUNT})
    url = f"http://127.0.0.1:{spec['port']}"
    threads = str(max(1, min(int(spec["connections"]), os.cpu_count() or 1)))
    base = [wrk, "-t", threads, "-c", str(spec["connections"]), "-s", str(script)]
    if spec["warmup"]:
        warm = [*base, "-d", f"{max(1, round(float(spec['warmup'])))}s", url]
        subprocess.run(warm, capture_output=True, check=False)
    measured = [*base, "-d", f"{max(1, round(float(spec['seconds'])))}s", "--timeout", "30s"]
    result = subprocess.run([*measured, url], capture_output=True, text=True, check=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith('{"requests"')]
    if result.returncode != 0 or not lines:
        raise SystemExit(f"wrk failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return Figures(**json.loads(lines[-1]))


# ---------------------------------------------------------------------- main


def fresh_store(store: str | None, workdir: Path) -> tuple[str, Callable[[], None]]:
    if store is None:
        return f"sqlite:///{workdir / 'bench-api.db'}", lambda: None
    if store.startswith("postgres"):
        from bench.__main__ import fresh_pg_schema

        return fresh_pg_schema(store)
    return store, lambda: None


def run(args: argparse.Namespace, workdir: Path) -> None:
    store, drop = fresh_store(args.store, workdir)
    try:
        wrk = shutil.which("wrk") if args.generator in (None, "wrk") else None
        if args.generator == "wrk" and wrk is None:
            raise SystemExit("--generator wrk: wrk is not installed")
        backend = "sqlite" if store.startswith("sqlite") else "postgres"
        print(f"\n== {backend}: placing {args.accounts} accounts ...", flush=True)
        ids, token = prepare(store, args.accounts)
        with running_server(store, workdir, worker=not args.no_worker) as port:
            generator = "wrk" if wrk else "python asyncio streams"
            if not wrk and args.generator is None:
                generator += " (wrk is not installed)"
            print(
                f"   one server process (worker {'off' if args.no_worker else 'on'}); "
                f"load: {generator}, {args.connections} connections, "
                f"{args.seconds:g} s per route after {args.warmup:g} s warm-up",
                flush=True,
            )
            workloads = [
                Workload(f"GET {HELLO} (hello world)", "hello", token),
                Workload("GET /v1/accounts/{id} (summary)", "summary", token, tuple(ids)),
                Workload("POST /v1/accounts/{id}/payments", "payment", token, tuple(ids)),
                Workload(f"GET {HELLO} (hello world, again)", "hello", token),
            ]
            figures: list[tuple[Workload, Figures]] = []
            for workload in workloads:
                spec = {
                    **workload.spec(),
                    "port": port,
                    "connections": args.connections,
                    "seconds": args.seconds,
                    "warmup": args.warmup,
                }
                result = wrk_load(wrk, spec, workdir) if wrk else python_load(spec)
                figures.append((workload, result))
        report(figures)
    finally:
        drop()


def report(figures: list[tuple[Workload, Figures]]) -> None:
    hello = max(f.rate for w, f in figures if w.kind == "hello")
    print(
        f"   {'route':40} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'non-2xx':>8} {'errors':>7} {'ratio':>7}"
    )
    for workload, f in figures:
        ratio = f"{f.rate / hello:7.3f}" if workload.kind != "hello" else ""
        print(
            f"   {workload.label:40} {f.rate:8.0f} {f.p50_ms:8.1f} {f.p99_ms:8.1f} "
            f"{f.non_2xx:8d} {f.errors:7d} {ratio:>7}"
        )
    rates = {w.kind: f.rate for w, f in figures if w.kind != "hello"}
    payments, summary = rates["payment"] / hello, rates["summary"] / hello
    verdict = "met" if payments >= 0.3 else "not met"
    print(
        f"   ratios to hello world: payments {payments:.3f} (aim >= 0.3: {verdict}), "
        f"summary {summary:.3f}"
    )


def main(argv: list[str] | None = None) -> None:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["--serve"]:
        serve_with_hello(args_in[1], int(args_in[2]), worker="--no-worker" not in args_in)
        return
    if args_in[:1] == ["--generate"]:
        generate_main(args_in[1])
        return
    parser = argparse.ArgumentParser(
        prog="python -m bench api", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--store", default=None, help="default: a new SQLite file")
    parser.add_argument("--accounts", type=int, default=300)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--no-worker", action="store_true")
    parser.add_argument("--generator", choices=["wrk", "python"], default=None)
    args = parser.parse_args(args_in)
    from ledger.logs import configure_logging

    configure_logging(level="WARNING")
    with tempfile.TemporaryDirectory() as tmp:
        run(args, Path(tmp))


if __name__ == "__main__":
    main()
