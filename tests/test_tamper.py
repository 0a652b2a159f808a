"""Tamper evidence: ``service.verify()`` and ``arrears verify`` against an attacker with raw SQL.

The attacker has direct database access: they drop the append-only triggers and
then edit, delete, insert or reorder rows of ``stored_events`` with plain SQL
(``sqlite3`` on the file, ``psycopg`` on the PostgreSQL schema).  Every attack
runs on both backends through the ``store_url`` fixture, and each must be
named by kind, stream and version -- in the service's report and on the
command line, which exits 1 (0 when the ledger is intact).
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import pytest
from click.testing import CliRunner
from conftest import JANE, placement, usd

import cli
import cli.core
from ledger.application import open_ledger
from ledger.clock import MovableClock
from ledger.domain.ids import seal_log_id
from ledger.services import Installment, LedgerService
from ledger.tamper.chain import GENESIS, event_hash
from ledger.tamper.verify import (
    DIGEST_MISMATCH,
    INSERTED,
    MODIFIED,
    REMOVED,
    REORDERED,
    SEAL_MISMATCH,
    Problem,
    VerifyReport,
)

ARREARS = str(Path(sys.executable).with_name("arrears"))


# ---------------------------------------------------------------- the ledger


@dataclass(frozen=True)
class Book:
    """A small sealed ledger: three accounts with payments, a promise, a plan and fees."""

    a: UUID  # acme-bank/ACC-0001: 6 events
    b: UUID  # acme-bank/ACC-0002: 5 events
    c: UUID  # globex-retail/GLX-77: 4 events
    seal_digest: str


def build_book(service: LedgerService, clock: MovableClock) -> Book:
    a = service.place_account(placement("ACC-0001"), debtor=JANE).id  # v1
    b = service.place_account(placement("ACC-0002", principal=usd("400.00")), debtor=JANE).id
    c = service.place_account(
        placement("GLX-77", creditor="globex-retail", principal=usd("2500.00")), debtor=JANE
    ).id
    clock.advance(timedelta(days=1))
    service.record_contact(a, channel="phone", direction="outbound", outcome="right_party_contact")
    service.make_promise(a, usd("300.00"), date(2026, 3, 20))  # a v3
    clock.advance(timedelta(days=2))
    service.post_payment(a, usd("300.00"), method="card", external_reference="pay-a-1")  # a v4
    service.keep_promise(a)  # a v5
    service.post_payment(a, usd("120.00"), method="ach", external_reference="pay-a-2")  # a v6
    service.assess_fee(b, usd("25.00"), "returned_check")  # b v2
    service.post_payment(b, usd("75.00"), method="check", external_reference="pay-b-1")  # b v3
    service.agree_plan(
        b,
        kind="settlement",
        total=usd("300.00"),
        installments=[
            Installment(date(2026, 4, 1), usd("150.00")),
            Installment(date(2026, 5, 1), usd("150.00")),
        ],
    )  # b v4
    service.post_payment(b, usd("150.00"), method="ach", external_reference="pay-b-2")  # b v5
    service.record_contact(c, channel="letter", direction="outbound", outcome="delivered")  # c v2
    service.post_payment(c, usd("500.00"), method="wire", external_reference="pay-c-1")  # c v3
    service.add_note(c, "debtor asked for a statement")  # c v4
    sealed = service.seal()
    return Book(a, b, c, sealed.digest)


@pytest.fixture
def book(service: LedgerService, clock: MovableClock) -> Book:
    built = build_book(service, clock)
    assert service.verify().ok
    return built


# ---------------------------------------------------------------- the attacker


class Attacker:
    """Raw SQL on the events table after dropping the append-only triggers."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.postgres = url.startswith("postgres")

    def oid(self, originator_id: UUID) -> Any:
        """How each backend stores originator_id: 32-char hex text (SQLite), uuid (PG)."""
        return originator_id if self.postgres else originator_id.hex

    @contextmanager
    def connect(self) -> Iterator[Any]:
        if self.postgres:
            import psycopg

            parts = urlsplit(self.url)
            schema = parse_qs(parts.query)["schema"][0]
            with psycopg.connect(parts._replace(query="").geturl()) as conn:
                conn.execute(f'SET search_path TO "{schema}"')
                conn.execute(
                    "DROP TRIGGER IF EXISTS stored_events_no_update_delete ON stored_events"
                )
                conn.execute("DROP TRIGGER IF EXISTS stored_events_no_truncate ON stored_events")
                yield conn
            return
        conn = sqlite3.connect(self.url.removeprefix("sqlite:///"))
        try:
            triggers = conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger'"
            ).fetchall()
            for (name,) in triggers:
                conn.execute(f'DROP TRIGGER "{name}"')
            yield conn
            conn.commit()
        finally:
            conn.close()

    def run(self, sql: str, *params: Any) -> list[Any]:
        if self.postgres:
            sql = sql.replace("?", "%s")
        with self.connect() as conn:
            cursor = conn.execute(sql, params)
            return list(cursor.fetchall()) if cursor.description else []

    def row(self, aid: UUID, version: int) -> tuple[str, bytes, bytes, bytes]:
        rows = self.run(
            "SELECT topic, state, prev_hash, hash FROM stored_events "
            "WHERE originator_id = ? AND originator_version = ?",
            self.oid(aid),
            version,
        )
        topic, state, prev, digest = rows[0]
        return topic, bytes(state), bytes(prev), bytes(digest)

    def versions(self, aid: UUID) -> list[int]:
        rows = self.run(
            "SELECT originator_version FROM stored_events WHERE originator_id = ? "
            "ORDER BY originator_version",
            self.oid(aid),
        )
        return [int(r[0]) for r in rows]

    def set_state(self, aid: UUID, version: int, state: bytes) -> None:
        self.run(
            "UPDATE stored_events SET state = ? WHERE originator_id = ? AND originator_version = ?",
            state,
            self.oid(aid),
            version,
        )

    def set_chain(self, aid: UUID, version: int, state: bytes, prev: bytes, digest: bytes) -> None:
        self.run(
            "UPDATE stored_events SET state = ?, prev_hash = ?, hash = ? "
            "WHERE originator_id = ? AND originator_version = ?",
            state,
            prev,
            digest,
            self.oid(aid),
            version,
        )

    def delete(self, aid: UUID, version: int | None = None) -> None:
        if version is None:
            self.run("DELETE FROM stored_events WHERE originator_id = ?", self.oid(aid))
        else:
            self.run(
                "DELETE FROM stored_events WHERE originator_id = ? AND originator_version = ?",
                self.oid(aid),
                version,
            )

    def insert(
        self,
        aid: UUID,
        version: int,
        topic: str,
        state: bytes,
        prev: bytes | None,
        digest: bytes | None,
    ) -> None:
        self.run(
            "INSERT INTO stored_events (originator_id, originator_version, topic, state, prev_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            self.oid(aid),
            version,
            topic,
            state,
            prev,
            digest,
        )

    def swap(self, aid: UUID, first: int, second: int) -> None:
        """Give two rows each other's version numbers (their contents move, positions stay)."""
        with self.connect() as conn:
            mark = "%s" if self.postgres else "?"
            sql = (
                f"UPDATE stored_events SET originator_version = {mark} "
                f"WHERE originator_id = {mark} AND originator_version = {mark}"
            )
            oid = self.oid(aid)
            conn.execute(sql, (-1, oid, first))
            conn.execute(sql, (first, oid, second))
            conn.execute(sql, (second, oid, -1))


@pytest.fixture
def attacker(store_url: str) -> Attacker:
    return Attacker(store_url)


# ---------------------------------------------------------------- helpers


def found(report: VerifyReport) -> set[tuple[str, str, int | None]]:
    return {(p.kind, p.stream_id, p.version) for p in report.problems}


def problems_of(report: VerifyReport, kind: str) -> list[Problem]:
    return [p for p in report.problems if p.kind == kind]


def arrears(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ARREARS_LOG_LEVEL": "WARNING"}
    env.pop("ARREARS_STORE", None)
    return subprocess.run(
        [ARREARS, *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture(autouse=True)
def _cli_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process CLI runs open the store without configuring this process's logging."""
    monkeypatch.setattr(
        cli.core, "build_service", lambda store=None, **_: LedgerService(open_ledger(store))
    )


def cli_run(*args: str) -> Ran:
    """``arrears ARGS`` in this process (subprocess runs cover the installed entry point)."""
    result = CliRunner().invoke(cli.main, list(args), catch_exceptions=False)
    return Ran(result.exit_code, result.stdout, result.stderr)


def cli_verify(url: str, *extra: str) -> Ran:
    return cli_run("verify", "--store", url, *extra)


def assert_cli_names(url: str, kind: str, aid: UUID, version: int | None, *extra: str) -> str:
    """``arrears verify`` exits 1 and prints a KIND line naming the stream (and version)."""
    result = cli_verify(url, *extra)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    where = f"{aid}" + (f" version {version}" if version is not None else "")
    lines = [line for line in result.stdout.splitlines() if line.startswith(kind.upper() + ":")]
    assert any(where in line for line in lines), result.stdout
    assert "TAMPERED" in result.stdout
    return result.stdout


def decode(service: LedgerService, state: bytes) -> dict[str, Any]:
    value = service.ledger.mapper.transcoder.decode(state)
    assert isinstance(value, dict)
    return value


def encode(service: LedgerService, value: dict[str, Any]) -> bytes:
    return service.ledger.mapper.transcoder.encode(value)


# ---------------------------------------------------------------- intact


def test_intact_ledger_verifies_on_service_and_cli(
    service: LedgerService, book: Book, store_url: str
) -> None:
    """An untouched sealed ledger is intact: no problems, every event and the seal checked, exit 0."""
    report = service.verify()
    assert report.ok and report.problems == []
    assert report.events_checked == 6 + 5 + 4 + 3 + 2  # three accounts, three debtors, seal log
    assert report.streams_checked == 7
    assert report.seals_checked == 1
    assert report.latest_seal == book.seal_digest
    result = arrears("verify", "--store", store_url)  # the installed entry point
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verify: INTACT: 20 events in 7 streams, 1 seals checked" in result.stdout
    assert f"latest seal: {book.seal_digest}" in result.stdout


def test_triggers_refuse_update_and_delete_without_the_attacker(book: Book, store_url: str) -> None:
    """While the triggers are in place a plain UPDATE or DELETE is refused by the database itself."""
    if store_url.startswith("postgres"):
        import psycopg

        parts = urlsplit(store_url)
        schema = parse_qs(parts.query)["schema"][0]
        with psycopg.connect(parts._replace(query="").geturl(), autocommit=True) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(f'UPDATE "{schema}".stored_events SET state = state')
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(f'DELETE FROM "{schema}".stored_events')
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(f'TRUNCATE "{schema}".stored_events')
    else:
        conn = sqlite3.connect(store_url.removeprefix("sqlite:///"))
        try:
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute("UPDATE stored_events SET state = state")
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute("DELETE FROM stored_events")
        finally:
            conn.close()


# ---------------------------------------------------------------- modified


def test_edited_state_is_reported_modified(
    service: LedgerService, book: Book, attacker: Attacker, store_url: str
) -> None:
    """Editing a payment's stored amount (hash left alone) is MODIFIED at that account and version."""
    _, state, _, _ = attacker.row(book.a, 4)
    payment = decode(service, state)
    assert payment["amount"] == 30000
    payment["amount"] = 3000
    attacker.set_state(book.a, 4, encode(service, payment))

    report = service.verify()
    assert not report.ok
    assert found(report) == {(MODIFIED, str(book.a), 4)}
    assert problems_of(report, MODIFIED)[0].stream_type == "account"
    installed = arrears("verify", "--store", store_url)
    assert installed.returncode == 1, installed.stdout + installed.stderr
    assert (
        f"MODIFIED: account {book.a} version 4: content does not match its hash" in installed.stdout
    )
    assert "verify: TAMPERED (1 problems)" in installed.stdout
    assert_cli_names(store_url, MODIFIED, book.a, 4)
    assert_cli_names(store_url, MODIFIED, book.a, 4, "--account", "acme-bank/ACC-0001")
    # The other accounts are untouched: checking one of them alone is intact.
    assert service.verify(account_id=book.c).ok
    assert cli_verify(store_url, "--account", str(book.c)).returncode == 0


def test_edit_with_recomputed_hash_breaks_the_next_link(
    service: LedgerService, book: Book, attacker: Attacker, store_url: str
) -> None:
    """Editing a row and recomputing its own hash is still MODIFIED: the next event's link breaks."""
    topic, state, prev, _ = attacker.row(book.a, 4)
    payment = decode(service, state)
    payment["amount"] = 3000
    forged = encode(service, payment)
    attacker.set_chain(book.a, 4, forged, prev, event_hash(book.a, 4, topic, forged, prev))

    report = service.verify()
    assert (MODIFIED, str(book.a), 4) in found(report)
    assert {p.stream_id for p in report.problems if p.kind not in (SEAL_MISMATCH,)} == {str(book.a)}
    # The seal committed to the original hash of every sealed event.
    assert SEAL_MISMATCH in {p.kind for p in report.problems}
    out = assert_cli_names(store_url, MODIFIED, book.a, 4)
    assert "next event's link" in out


def test_edit_of_newest_event_with_recomputed_hash_is_caught_by_the_seal(
    service: LedgerService, book: Book, attacker: Attacker, store_url: str
) -> None:
    """Rewriting the newest (sealed) event of an account with a valid hash differs from the seal."""
    topic, state, prev, _ = attacker.row(book.c, 4)
    note = decode(service, state)
    note["text"] = "debtor agreed the debt is not theirs"
    forged = encode(service, note)
    attacker.set_chain(book.c, 4, forged, prev, event_hash(book.c, 4, topic, forged, prev))

    report = service.verify()
    assert (MODIFIED, str(book.c), 4) in found(report)
    assert SEAL_MISMATCH in {p.kind for p in report.problems}
    assert_cli_names(store_url, MODIFIED, book.c, 4)
    assert_cli_names(store_url, MODIFIED, book.c, 4, "--account", "GLX-77")


# ---------------------------------------------------------------- removed


def test_deleted_middle_event_is_reported_removed(
    service: LedgerService, book: Book, attacker: Attacker, store_url: str
) -> None:
    """Deleting a middle event (the first payment) is REMOVED at exactly that version."""
    attacker.delete(book.a, 4)
    assert attacker.versions(book.a) == [1, 2, 3, 5, 6]

    report = service.verify()
    assert (REMOVED, str(book.a), 4) in found(report)
    assert {(p.kind, p.version) for p in report.problems if p.stream_id == str(book.a)} == {
        (REMOVED, 4)
    }
    assert SEAL_MISMATCH in {p.kind for p in report.problems}
    assert_cli_names(store_url, REMOVED, book.a, 4)
    assert_cli_names(store_url, REMOVED, book.a, 4, "--account", str(book.a))
    # The account no longer replays: other commands say so on one line instead of a traceback.
    broken = cli_run("history", "ACC-0001", "--store", store_url)
    assert broken.returncode == 2
    assert broken.stderr.startswith("error [store_error]: stored events cannot be replayed")
    assert "run 'arrears verify'" in broken.stderr and len(broken.stderr.splitlines()) == 1


def test_deleted_newest_sealed_event_is_reported_removed(
    service: LedgerService, book: Book, attacker: Attacker, store_url: str
) -> None:
    """Deleting the newest event of an account after a seal is REMOVED: the seal recorded that head."""
    attacker.delete(book.a, 6)
    report = service.verify()
    assert (REMOVED, str(book.a), 6) in found(report)
    removed = [p for p in problems_of(report, REMOVED) if p.stream_id == str(book.a)]
    assert [p.version for p in removed] == [6]
    assert "stream ends at version 5" in removed[0].detail
    assert_cli_names(store_url, REMOVED, book.a, 6)
    assert_cli_names(store_url, REMOVED, book.a, 6, "--account", "ACC-0001")


def test_deleted_newest_events_are_each_named(
    service: LedgerService, book: Book, attacker: Attacker, store_url: str
) -> None:
    """Cutting the last three sealed events of an account names each removed version, 4 to 6."""
    for version in (4, 5, 6):
        attacker.delete(book.a, version)
    report = service.verify()
    removed = sorted(
        p.version or 0 for p in problems_of(report, REMOVED) if p.stream_id == str(book.a)
    )
    assert removed == [4, 5, 6]
    out = assert_cli_names(store_url, REMOVED, book.a, 4)
    assert f"{book.a} version 5" in out and f"{book.a} version 6" in out


def test_deleted_whole_stream_is_reported_removed(
    service: LedgerService, book: Book, attacker: Attacker, store_url: str
) -> None:
    """Deleting every event of a sealed account is REMOVED naming that stream, on both CLI forms."""
    attacker.delete(book.b)
    assert attacker.versions(book.b) == []

    report = service.verify()
    whole = [p for p in problems_of(report, REMOVED) if p.stream_id == str(book.b)]
    assert len(whole) == 1 and whole[0].version is None
    assert "sealed up to version 5" in whole[0].detail
    assert SEAL_MISMATCH in {p.kind for p in report.problems}
    assert not service.verify(account_id=book.b).ok
    assert_cli_names(store_url, REMOVED, book.b, None)
    # The account no longer exists, but an auditor can still name it to verify it.
    assert_cli_names(store_url, REMOVED, book.b, None, "--account", str(book.b))
    assert_cli_names(store_url, REMOVED, book.b, None, "--account", "acme-bank/ACC-0002")


def test_deleting_unsealed_newest_event_goes_unseen_until_sealed(
    service: LedgerService, book: Book, attacker: Attacker, store_url: str
) -> None:
    """An event written after the last seal is covered once sealed: deleting it then is REMOVED."""
    service.add_note(book.c, "second statement sent")  # c v5, after the seal
    second = service.seal()
    assert second.new and second.streams == 2  # account C and the seal log (the first seal)
    attacker.delete(book.c, 5)
    report = service.verify()
    assert (REMOVED, str(book.c), 5) in found(report)
    assert_cli_names(store_url, REMOVED, book.c, 5)


# ---------------------------------------------------------------- inserted


def test_copied_row_with_new_version_is_reported_inserted(
    service: LedgerService, book: Book, attacker: Attacker, store_url: str
) -> None:
    """A copy of a payment row appended as a new version is INSERTED at that version."""
    topic, state, prev, digest = attacker.row(book.a, 6)
    attacker.insert(book.a, 7, topic, state, prev, digest)

    report = service.verify()
    assert found(report) == {(INSERTED, str(book.a), 7)}
    assert "duplicate of version 6" in problems_of(report, INSERTED)[0].detail
    assert_cli_names(store_url, INSERTED, book.a, 7)


def test_row_copied_from_another_account_is_reported_inserted(
    service: LedgerService, book: Book, attacker: Attacker, store_url: str
) -> None:
    """A payment row of account A copied into account C is INSERTED, naming where it came from."""
    topic, state, prev, digest = attacker.row(book.a, 4)
    attacker.insert(book.c, 5, topic, state, prev, digest)

    report = service.verify()
    assert (INSERTED, str(book.c), 5) in found(report)
    assert f"copy of {book.a} version 4" in problems_of(report, INSERTED)[0].detail
    assert_cli_names(store_url, INSERTED, book.c, 5)


def test_fabricated_row_without_hashes_is_reported_inserted(
    service: LedgerService, book: Book, attacker: Attacker, store_url: str
) -> None:
    """A fabricated payment row with NULL prev_hash and hash is INSERTED at that version."""
    topic, state, _, _ = attacker.row(book.b, 5)
    payment = decode(service, state)
    payment["amount"] = 15000_00
    attacker.insert(book.b, 6, topic, encode(service, payment), None, None)

    report = service.verify()
    assert found(report) == {(INSERTED, str(book.b), 6)}
    assert "no chain hash" in problems_of(report, INSERTED)[0].detail
    assert_cli_names(store_url, INSERTED, book.b, 6)
    assert_cli_names(store_url, INSERTED, book.b, 6, "--account", "ACC-0002")


# ---------------------------------------------------------------- reordered


def test_swapped_versions_are_reported_reordered(
    service: LedgerService, book: Book, attacker: Attacker, store_url: str
) -> None:
    """Swapping the version numbers of two payments of an account is REORDERED at both versions."""
    attacker.swap(book.a, 4, 6)
    report = service.verify()
    reordered = {(p.stream_id, p.version) for p in problems_of(report, REORDERED)}
    assert reordered == {(str(book.a), 4), (str(book.a), 6)}
    details = {p.version: p.detail for p in problems_of(report, REORDERED)}
    assert "recorded as version 6" in details[4]
    assert "recorded as version 4" in details[6]
    out = assert_cli_names(store_url, REORDERED, book.a, 4)
    assert f"REORDERED: account {book.a} version 6" in out


def test_swapped_row_contents_are_reported_reordered(
    service: LedgerService, book: Book, attacker: Attacker, store_url: str
) -> None:
    """Moving two adjacent events' contents into each other's rows is REORDERED at both versions."""
    second = attacker.row(book.b, 2)
    third = attacker.row(book.b, 3)
    attacker.run(
        "UPDATE stored_events SET topic = ?, state = ?, prev_hash = ?, hash = ? "
        "WHERE originator_id = ? AND originator_version = ?",
        *third,
        attacker.oid(book.b),
        2,
    )
    attacker.run(
        "UPDATE stored_events SET topic = ?, state = ?, prev_hash = ?, hash = ? "
        "WHERE originator_id = ? AND originator_version = ?",
        *second,
        attacker.oid(book.b),
        3,
    )
    report = service.verify()
    assert {(p.stream_id, p.version) for p in problems_of(report, REORDERED)} == {
        (str(book.b), 2),
        (str(book.b), 3),
    }
    assert_cli_names(store_url, REORDERED, book.b, 3)


# ---------------------------------------------------------------- seals and outside digest


def _rewrite_stream(
    service: LedgerService, attacker: Attacker, aid: UUID, edit: dict[int, dict[str, Any]]
) -> None:
    """Rewrite a stream's rows and recompute every hash so its own chain is consistent."""
    prev = GENESIS
    for version in attacker.versions(aid):
        topic, state, _, _ = attacker.row(aid, version)
        if version in edit:
            value = decode(service, state)
            value.update(edit[version])
            state = encode(service, value)
        digest = event_hash(aid, version, topic, state, prev)
        attacker.set_chain(aid, version, state, prev, digest)
        prev = digest


def test_consistently_rewritten_stream_is_caught_by_the_seal(
    service: LedgerService, book: Book, attacker: Attacker, store_url: str
) -> None:
    """A stream rewritten with a consistent chain passes its chain check but not the seal."""
    _rewrite_stream(
        service, attacker, book.c, {3: {"amount": 50_00, "allocation": {"fees": 50_00}}}
    )
    report = service.verify()
    kinds = {p.kind for p in report.problems}
    assert SEAL_MISMATCH in kinds
    assert (MODIFIED, str(book.c), 4) in found(report)  # the sealed head no longer matches
    assert not any(p.kind in (REMOVED, INSERTED, REORDERED) for p in report.problems)
    result = cli_verify(store_url)
    assert result.returncode == 1
    assert "SEAL_MISMATCH: ledger ledger" in result.stdout
    result = cli_verify(store_url, "--digest", book.seal_digest)
    assert result.returncode == 1
    assert "DIGEST_MISMATCH" in result.stdout


def test_rewritten_stream_and_seal_log_is_caught_only_by_the_outside_digest(
    service: LedgerService, book: Book, attacker: Attacker, store_url: str
) -> None:
    """An attacker who also re-forges the seal log fools the seals, but not a digest kept outside."""
    _rewrite_stream(
        service, attacker, book.c, {3: {"amount": 50_00, "allocation": {"fees": 50_00}}}
    )
    # Recompute the running digest and the heads exactly as record_seal does, then re-chain the log.
    from ledger.tamper.seal import advance

    rows = service.ledger.rows()
    log_rows = rows.stream(seal_log_id())
    sealed_at = decode(service, log_rows[1].state)["position"]
    running = GENESIS
    heads: dict[str, list[Any]] = {}
    for row in rows.iter_rows("global", upto=sealed_at):
        assert row.hash is not None
        running = advance(running, row.position, row.hash)
        heads[str(row.originator_id)] = [row.version, row.hash.hex()]
    _rewrite_stream(
        service, attacker, seal_log_id(), {2: {"digest": running.hex(), "heads": heads}}
    )

    fooled = service.verify()
    assert fooled.ok, fooled.problems  # chains and seals are all self-consistent now
    assert cli_verify(store_url).returncode == 0

    caught = service.verify(digest=book.seal_digest)
    assert [p.kind for p in caught.problems] == [DIGEST_MISMATCH]
    assert caught.digest_checked
    result = cli_verify(store_url, "--digest", book.seal_digest)
    assert result.returncode == 1
    assert "DIGEST_MISMATCH: ledger ledger" in result.stdout
    assert "outside digest checked" in result.stdout
    bare = cli_verify(store_url, "--digest", book.seal_digest.split(":")[1])
    assert bare.returncode == 1 and "no prefix of the ledger produces this digest" in bare.stdout


def test_deleted_seal_log_is_caught_by_the_outside_digest(
    service: LedgerService, book: Book, attacker: Attacker, store_url: str
) -> None:
    """Deleting the seal log and the newest event leaves no seal to compare, but the digest catches it."""
    attacker.delete(seal_log_id())
    attacker.delete(book.c, 4)
    assert service.verify().ok  # nothing inside the ledger remembers either
    report = service.verify(digest=book.seal_digest)
    assert [p.kind for p in report.problems] == [DIGEST_MISMATCH]
    result = cli_verify(store_url, "--digest", book.seal_digest)
    assert result.returncode == 1 and "DIGEST_MISMATCH" in result.stdout


# ---------------------------------------------------------------- CLI seal / digest


def test_cli_seal_prints_digest_that_verifies(
    service: LedgerService, book: Book, store_url: str
) -> None:
    """`arrears seal` prints POSITION:HEX; `verify --digest` with it exits 0, a wrong one exits 1."""
    service.post_payment(book.b, usd("10.00"), method="card", external_reference="pay-b-3")
    result = arrears("seal", "--store", store_url)
    assert result.returncode == 0, result.stderr
    match = re.search(r"^digest: (\d+:[0-9a-f]{64})$", result.stdout, re.M)
    assert match, result.stdout
    assert re.match(r"sealed: 21 events up to position \d+$", result.stdout.splitlines()[0])
    digest = match.group(1)
    assert digest != book.seal_digest

    again = arrears("seal", "--store", store_url)
    assert again.returncode == 0
    assert "already sealed" in again.stdout and f"digest: {digest}" in again.stdout

    ok = arrears("verify", "--store", store_url, "--digest", digest)
    assert ok.returncode == 0, ok.stdout
    assert (
        "INTACT" in ok.stdout
        and "outside digest checked" in ok.stdout
        and "2 seals checked" in ok.stdout
    )
    # The earlier digest is a prefix of the ledger: it still verifies.
    assert cli_verify(store_url, "--digest", book.seal_digest).returncode == 0
    assert cli_verify(store_url, "--account", "ACC-0002", "--digest", digest).returncode == 0

    position, hex_digest = digest.split(":")
    wrong = f"{position}:{'0' * 64}"
    bad = cli_verify(store_url, "--digest", wrong)
    assert bad.returncode == 1
    assert "DIGEST_MISMATCH" in bad.stdout and f"up to position {position}" in bad.stdout
    beyond = cli_verify(store_url, "--digest", f"{int(position) + 50}:{hex_digest}")
    assert beyond.returncode == 1 and "beyond the last stored event" in beyond.stdout

    garbage = cli_verify(store_url, "--digest", "not-a-digest")
    assert garbage.returncode == 2
    assert garbage.stderr.startswith("error [invalid_input]:") and "Traceback" not in garbage.stderr


def test_cli_verify_json_report(book: Book, attacker: Attacker, store_url: str) -> None:
    """`verify --json` lists each problem with kind, stream id and version, and exits 1."""
    import json

    attacker.delete(book.a, 4)
    result = cli_verify(store_url, "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert {
        "kind": REMOVED,
        "stream_id": str(book.a),
        "stream_type": "account",
        "version": 4,
    }.items() <= next(p for p in report["problems"] if p["kind"] == REMOVED).items()


def test_seal_refuses_to_cover_a_tampered_event(
    service: LedgerService, book: Book, attacker: Attacker
) -> None:
    """A new seal never blesses an event that no longer matches its hash."""
    from ledger import errors

    service.add_note(book.a, "call back Monday")  # a v7, not sealed yet
    _, state, _, _ = attacker.row(book.a, 7)
    note = decode(service, state)
    note["text"] = "debtor paid in cash"
    attacker.set_state(book.a, 7, encode(service, note))
    with pytest.raises(errors.LedgerError, match="refusing to seal"):
        service.seal()
    assert (MODIFIED, str(book.a), 7) in found(service.verify())


def test_cli_verify_unknown_account_is_an_error(book: Book, store_url: str) -> None:
    """`verify --account` with an id that was never stored or sealed exits 2 with account_not_found."""
    unknown = "00000000-0000-4000-8000-000000000001"
    result = cli_verify(store_url, "--account", unknown)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error [account_not_found]: no account {unknown}: nothing is stored or sealed under that id"
    )
    assert cli_verify(store_url, "--account", "NO-SUCH-REF").returncode == 2


def test_undecodable_seal_row_is_reported_even_when_rechained(
    service: LedgerService, book: Book, attacker: Attacker, store_url: str
) -> None:
    """A seal event replaced by garbage (and the log re-chained around it) is still not intact."""
    garbage = b"\xc1 not a seal"  # 0xc1 is never valid msgpack
    topic, _, prev, _ = attacker.row(seal_log_id(), 2)
    attacker.set_chain(
        seal_log_id(), 2, garbage, prev, event_hash(seal_log_id(), 2, topic, garbage, prev)
    )

    for report in (service.verify(), service.verify(account_id=book.a)):
        assert (MODIFIED, str(seal_log_id()), None) in found(report)
        assert "cannot be decoded" in problems_of(report, MODIFIED)[0].detail
    result = cli_verify(store_url, "--account", "ACC-0001")
    assert result.returncode == 1
    assert (
        f"MODIFIED: seal log {seal_log_id()}: the recorded seals cannot be decoded" in result.stdout
    )
    assert cli_verify(store_url, "--digest", book.seal_digest).returncode == 1


def test_garbage_state_is_modified_and_other_commands_fail_on_one_line(
    service: LedgerService, book: Book, attacker: Attacker, store_url: str
) -> None:
    """A row whose state is no longer even msgpack is MODIFIED; `history` of it is a one-line error."""
    attacker.set_state(book.b, 3, b"\xc1\xc1\xc1")
    assert found(service.verify(account_id=book.b)) == {(MODIFIED, str(book.b), 3)}
    assert_cli_names(store_url, MODIFIED, book.b, 3, "--account", "ACC-0002")
    broken = cli_run("history", "ACC-0002", "--store", store_url)
    assert broken.returncode == 2
    assert broken.stderr.startswith(
        f"error [stored_event_unreadable]: stored event version 3 of {book.b} cannot be read"
    )
    assert len(broken.stderr.splitlines()) == 1


def test_row_under_another_spelling_of_the_id_is_inserted(
    service: LedgerService, book: Book, attacker: Attacker, store_url: str
) -> None:
    """SQLite: a well-hashed row filed under the dashed form of an account id is INSERTED, not a gap."""
    if attacker.postgres:
        pytest.skip("PostgreSQL stores originator_id as uuid: there is only one spelling")
    topic, state, _, head = attacker.row(book.c, 4)
    forged = state.replace(b"statement", b"waiver!!!")
    attacker.run(
        "INSERT INTO stored_events (originator_id, originator_version, topic, state, prev_hash, hash) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        str(book.c),  # dashed, not the 32-char hex the ledger writes and reads
        5,
        topic,
        forged,
        head,
        event_hash(book.c, 5, topic, forged, head),
    )
    report = service.verify()
    assert found(report) == {(INSERTED, str(book.c), 5)}
    assert "another spelling" in report.problems[0].detail
    assert report.streams_checked == 7 and report.events_checked == 21
    assert_cli_names(store_url, INSERTED, book.c, 5)
