"""The installed ``arrears`` command line, run as a subprocess like an operator would.

Covers the demo portfolio (summary line, determinism, idempotent reruns),
sealing and verifying against the printed digest, the per-creditor summary,
and one-line domain errors with exit code 2.  One run goes to PostgreSQL.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import cli
import cli.core
from ledger import errors
from ledger.application import open_ledger
from ledger.demo import CREDITORS, account_id_for
from ledger.money import format_minor
from ledger.services import LedgerService

ARREARS = str(Path(sys.executable).with_name("arrears"))
DEMO_LINE = re.compile(
    r"^demo: (\d+) accounts placed, (\d+) already present, (\d+) steps recorded, "
    r"(\d+) refused by the ledger's rules$"
)


def arrears(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ARREARS_LOG_LEVEL": "WARNING"}
    env.pop("ARREARS_STORE", None)
    return subprocess.run(
        [ARREARS, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120, check=False
    )


def demo(store: str, accounts: int = 30, seed: int = 3) -> tuple[int, int, int, int]:
    result = arrears("demo", "--accounts", str(accounts), "--seed", str(seed), "--store", store)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    match = DEMO_LINE.match(lines[0])
    assert match, lines[0]
    created, skipped, steps, refused = (int(g) for g in match.groups())
    return created, skipped, steps, refused


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: str) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error [{code}]: "), lines[0]
    assert result.stdout == ""
    return lines[0]


def history_in_process(monkeypatch: pytest.MonkeyPatch, store: str, account: str) -> str:
    """``arrears history ACCOUNT --json`` in this process (fast, for comparing every account)."""
    monkeypatch.setattr(
        cli.core, "build_service", lambda store=None, **_: LedgerService(open_ledger(store))
    )
    result = CliRunner().invoke(
        cli.main, ["history", account, "--json", "--store", store], catch_exceptions=False
    )
    assert result.exit_code == 0, result.stderr
    return result.stdout


DEMO_RUNS: dict[str, tuple[int, int, int, int]] = {}


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A 30-account demo portfolio (seed 3) on SQLite, built once for the read-only tests."""
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'arrears.db'}"
    DEMO_RUNS[url] = demo(url)
    return url


# ---------------------------------------------------------------- demo


def test_demo_prints_a_summary_line(demo_store: str) -> None:
    """`arrears demo` prints one line: 30 placed, none present, and as many steps as events recorded."""
    created, skipped, steps, refused = DEMO_RUNS[demo_store]
    assert (created, skipped) == (30, 0)
    assert steps >= 60 and refused >= 0
    # Every step records one account event; each placement also registers its debtor;
    # the demo's deliberately late calls (account 3 of every 50) are also flagged.
    audit = json.loads(
        arrears("compliance", "audit", "--format", "json", "--store", demo_store).stdout
    )
    flagged = len({f["contact_id"] for f in audit["findings"] if f["flagged_then"]})
    assert flagged >= 1 and {f["reference"] for f in audit["findings"]} == {"THA-100003"}
    verified = arrears("verify", "--store", demo_store)
    assert verified.returncode == 0
    assert verified.stdout.startswith(
        f"verify: INTACT: {steps + 30 + flagged} events in 60 streams, "
    )
    ledger = open_ledger(demo_store)
    try:
        service = LedgerService(ledger)
        assert sorted(service.list_account_ids()) == sorted(account_id_for(i) for i in range(30))
        assert [service.get_account(account_id_for(i)).reference for i in range(3)] == [
            "NOR-100000",
            "LAK-100001",
            "PAC-100002",
        ]
    finally:
        ledger.close()


def test_demo_same_seed_same_ledger(
    demo_store: str, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two stores (SQLite, and SQLite or PostgreSQL) built with the same seed have identical histories."""
    created, skipped, _, _ = demo(store_url)
    assert (created, skipped) == (30, 0)
    for index in (0, 7, 29):  # the installed entry point, byte for byte
        ref = str(account_id_for(index))
        first = arrears("history", ref, "--json", "--store", demo_store)
        second = arrears("history", ref, "--json", "--store", store_url)
        assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
        assert first.stdout == second.stdout
    for index in range(30):  # every account, hashes and generated ids included
        ref = str(account_id_for(index))
        assert history_in_process(monkeypatch, demo_store, ref) == history_in_process(
            monkeypatch, store_url, ref
        )
    # Same events at the same positions: sealing both gives the same digest.
    sealed = [arrears("seal", "--store", url) for url in (demo_store, store_url)]
    digests = [re.search(r"^digest: (\S+)$", s.stdout, re.M) for s in sealed]
    assert digests[0] and digests[1], [s.stdout + s.stderr for s in sealed]
    assert digests[0].group(1) == digests[1].group(1)


def test_demo_rerun_skips_existing_accounts_and_verifies(store_url: str) -> None:
    """Rerunning the demo on the same store places nothing new and leaves verify intact (exit 0)."""
    first = demo(store_url)
    assert first[:2] == (30, 0)
    intact = arrears("verify", "--store", store_url)
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert intact.stdout.startswith("verify: INTACT: ")
    again = demo(store_url)
    assert again == (0, 30, 0, 0)
    after = arrears("verify", "--store", store_url)
    assert after.returncode == 0 and after.stdout == intact.stdout


def test_seal_then_verify_digest(demo_store: str) -> None:
    """`arrears seal` prints a digest; `arrears verify --digest` with it exits 0, a wrong one 1."""
    sealed = arrears("seal", "--store", demo_store)
    assert sealed.returncode == 0, sealed.stderr
    match = re.search(r"^digest: (\d+):([0-9a-f]{64})$", sealed.stdout, re.M)
    assert match, sealed.stdout
    digest = f"{match.group(1)}:{match.group(2)}"
    ok = arrears("verify", "--digest", digest, "--store", demo_store)
    assert ok.returncode == 0, ok.stdout
    assert "INTACT" in ok.stdout and "outside digest checked" in ok.stdout
    assert f"latest seal: {digest}" in ok.stdout
    wrong = arrears("verify", "--digest", f"{match.group(1)}:{'f' * 64}", "--store", demo_store)
    assert wrong.returncode == 1
    assert "DIGEST_MISMATCH" in wrong.stdout and "TAMPERED" in wrong.stdout


def test_summary_prints_one_line_per_creditor(demo_store: str) -> None:
    """`arrears summary` prints a header and one line per creditor, with totals the ledger agrees with."""
    result = arrears("summary", "--store", demo_store)
    assert result.returncode == 0, result.stderr
    header, *lines = result.stdout.splitlines()
    assert header.split()[:7] == [
        "creditor",
        "cur",
        "accounts",
        "placed",
        "collected",
        "outstanding",
        "liq.",
    ]
    assert sorted(line.split()[0] for line in lines) == sorted(c[0] for c in CREDITORS)

    ledger = open_ledger(demo_store)
    try:
        service = LedgerService(ledger)
        expected: dict[str, dict[str, Any]] = defaultdict(lambda: defaultdict(int))
        for account_id in service.list_account_ids():
            account = service.get_account(account_id)
            row = expected[account.creditor]
            row["currency"] = account.currency
            row["accounts"] += 1
            row["placed"] += account.placed_total
            row["paid"] += account.paid_total
            if account.status not in ("sold", "closed"):  # no longer ours to collect
                row["outstanding"] += account.total_balance
    finally:
        ledger.close()
    for line in lines:
        creditor, currency, accounts, placed, paid, outstanding, _liq, *_ = line.split()
        want = expected[creditor]
        assert (currency, int(accounts)) == (want["currency"], want["accounts"])
        assert placed == format_minor(want["placed"], currency)
        assert paid == format_minor(want["paid"], currency)
        assert outstanding == format_minor(want["outstanding"], currency)
    assert sum(int(line.split()[2]) for line in lines) == 30


def test_history_json_of_demo_account(demo_store: str) -> None:
    """`arrears history CREDITOR/REFERENCE --json` of a demo account parses, with balances and state."""
    result = arrears("history", "northwind-bank/NOR-100000", "--json", "--store", demo_store)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["account_id"] == str(account_id_for(0))
    assert data["events"][0]["type"] == "Placed"
    assert all(
        set(e["balance_after"]) == {"principal", "interest", "fees", "total", "credit"}
        for e in data["events"]
    )
    assert data["state"]["reference"] == "NOR-100000"


# ---------------------------------------------------------------- errors


def test_domain_errors_are_one_line_with_exit_code_2(demo_store: str, tmp_path: Path) -> None:
    """Domain and store errors print `error [code]: message` on one line, exit 2, no traceback."""
    line = assert_one_line_error(
        arrears("history", "NO-SUCH-REF", "--store", demo_store), "account_not_found"
    )
    assert line == "error [account_not_found]: no account with id or reference 'NO-SUCH-REF'"
    assert_one_line_error(
        arrears("history", "NOR-100000", "--as-of", "yesterday", "--store", demo_store),
        "invalid_date",
    )
    assert_one_line_error(
        arrears("verify", "--digest", "12:xyz", "--store", demo_store), "invalid_input"
    )
    line = assert_one_line_error(
        arrears("demo", "--accounts", "0", "--store", demo_store), "invalid_input"
    )
    assert line == "error [invalid_input]: --accounts must be at least 1"
    line = assert_one_line_error(
        arrears("summary", "--store", "ftp://example.com/x"), "store_error"
    )
    assert "unknown store URL scheme 'ftp'" in line
    missing_dir = tmp_path / "no" / "such" / "dir" / "arrears.db"
    assert_one_line_error(arrears("verify", "--store", f"sqlite:///{missing_dir}"), "store_error")


def in_process_error(args: list[str], code: str, env: dict[str, str] | None = None) -> str:
    """``arrears ARGS`` in this process: exit 2 and one `error [code]: ...` line, no traceback."""
    result = CliRunner().invoke(cli.main, args, env=env)
    assert result.exit_code == 2, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error [{code}]: "), lines[0]
    assert result.stdout == ""
    return lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ["contact", "check", "ACC-1", "--channel", "sms", "--at", "2026-13-01"],
        ["contact", "check", "ACC-1", "--channel", "sms", "--at", "abcdefghij"],
        ["contact", "check", "ACC-1", "--channel", "sms", "--at", "2026-03-02T25:00:00Z"],
        ["compliance", "audit", "--from", "2026-13-01"],
        ["compliance", "audit", "--from", "abcdefghij"],
        ["compliance", "audit", "--from", "yesterday"],
        ["history", "ACC-1", "--as-of", "2026-02-30"],
        ["report", "portfolio", "--as-of", "2026-13-01"],
    ],
)
def test_unreadable_dates_are_one_line_errors(args: list[str], sqlite_url: str) -> None:
    """--at / --from / --as-of that are not dates or timestamps (ten characters or not)
    are `error [invalid_date]`, exit 2, before the store is even opened."""
    line = in_process_error([*args, "--store", sqlite_url], "invalid_date")
    assert repr(args[-1]) in line and "2026-03-02T14:00:00Z" in line


def test_impossible_calendar_date_says_why(sqlite_url: str) -> None:
    args = ["contact", "check", "ACC-1", "--channel", "sms", "--at", "2026-13-01"]
    line = in_process_error([*args, "--store", sqlite_url], "invalid_date")
    assert "'2026-13-01' is not a date (month must be in 1..12)" in line


@pytest.mark.parametrize(
    "args",
    [
        ["contact", "check", "ACC-1", "--channel", "sms", "--at", "2026-03-02T21:00"],
        ["compliance", "audit", "--from", "2026-03-02T21:00:00"],
        ["history", "ACC-1", "--as-of", "2026-04-01T12:00:00"],
        ["report", "portfolio", "--as-of", "2026-03-31 23:00"],
    ],
)
def test_timestamps_without_an_offset_are_refused(args: list[str], sqlite_url: str) -> None:
    """A time with no Z or offset is not guessed to be UTC: RFC 3339 needs the offset."""
    line = in_process_error([*args, "--store", sqlite_url], "invalid_date")
    assert f"{args[-1]!r} has no UTC offset" in line and "RFC 3339" in line


def test_parse_moment_forms() -> None:
    """Z, an offset, or a bare date: its end by default, its start with day_start."""
    from datetime import UTC, datetime, timedelta, timezone

    parse = cli.core.parse_moment
    assert parse("2026-03-02T14:00:00Z") == datetime(2026, 3, 2, 14, tzinfo=UTC)
    eastern = parse("2026-03-02T09:00:00-05:00")
    assert eastern == datetime(2026, 3, 2, 14, tzinfo=UTC)
    assert eastern.utcoffset() == timezone(timedelta(hours=-5)).utcoffset(None)
    assert parse("2026-03-02") == datetime(2026, 3, 2, 23, 59, 59, 999999, tzinfo=UTC)
    assert parse("2026-03-02", day_start=True) == datetime(2026, 3, 2, tzinfo=UTC)
    for bad in ("20260302", "2026-W10-1", "", "2026-03-02T14:00"):
        with pytest.raises(errors.InvalidDate):
            parse(bad)


def test_unknown_log_level_is_one_line_listing_the_levels(tmp_path: Path) -> None:
    """ARREARS_LOG_LEVEL=verbose is refused before the command runs, naming the valid levels."""
    env = {**os.environ, "ARREARS_LOG_LEVEL": "verbose"}
    env.pop("ARREARS_STORE", None)
    result = subprocess.run(
        [ARREARS, "summary", "--store", f"sqlite:///{tmp_path / 'a.db'}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    line = assert_one_line_error(result, "invalid_input")
    assert line == (
        "error [invalid_input]: ARREARS_LOG_LEVEL: unknown log level 'verbose'; "
        "expected one of CRITICAL, DEBUG, ERROR, FATAL, INFO, WARN, WARNING"
    )
    assert not (tmp_path / "a.db").exists()  # refused before the store was opened
    fine = CliRunner().invoke(
        cli.main,
        ["summary", "--store", f"sqlite:///{tmp_path / 'b.db'}"],
        env={"ARREARS_LOG_LEVEL": "warning"},
    )
    assert fine.exit_code == 0, fine.output


def test_chart_in_a_missing_directory_is_one_line(sqlite_url: str, tmp_path: Path) -> None:
    chart = tmp_path / "no" / "such" / "aging.svg"
    line = in_process_error(
        ["report", "portfolio", "--chart", str(chart), "--store", sqlite_url], "invalid_input"
    )
    assert str(chart) in line


def test_demo_rerun_with_more_accounts_adds_only_the_new_ones(sqlite_url: str) -> None:
    """Growing a demo store from 30 to 35 accounts places the 5 new ones and stays intact."""
    assert demo(sqlite_url)[:2] == (30, 0)
    grown = arrears("demo", "--accounts", "35", "--seed", "3", "--store", sqlite_url)
    assert grown.returncode == 0, grown.stderr.splitlines()[-1:]
    assert grown.stdout.startswith("demo: 5 accounts placed, 30 already present, ")
    assert arrears("verify", "--store", sqlite_url).returncode == 0


def test_demo_gives_the_service_back_real_time(tmp_path: Path) -> None:
    """`arrears serve --demo` keeps using the service after the demo: it must not stay
    on the demo's clock (payments "received in the future") or its id sequence."""
    from bootstrap import build_service
    from ledger.demo import build_demo

    service = build_service(f"sqlite:///{tmp_path / 'demo.db'}")
    try:
        clock, new_id = service.clock, service.new_id
        build_demo(service, accounts=3, seed=1)
        assert service.clock is clock and service.new_id is new_id
    finally:
        service.ledger.close()
