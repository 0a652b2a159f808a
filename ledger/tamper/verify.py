"""Verification of the stored ledger against its chains, seals and an outside digest.

Reads the rows exactly as stored (never the aggregates or their snapshots) so
that it catches someone with direct database access who disabled the triggers
and then edited, deleted, inserted or reordered rows, and names each place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any
from uuid import UUID

from ledger import errors
from ledger.application import Ledger
from ledger.domain.ids import seal_log_id
from ledger.store.rows import ChainRow, RowReader
from ledger.tamper.chain import GENESIS, event_hash
from ledger.tamper.seal import advance, format_digest, parse_digest, seal_events

MODIFIED = "modified"
REMOVED = "removed"
INSERTED = "inserted"
REORDERED = "reordered"
SEAL_MISMATCH = "seal_mismatch"
DIGEST_MISMATCH = "digest_mismatch"


@dataclass(frozen=True)
class Problem:
    kind: str
    stream_id: str
    stream_type: str
    version: int | None
    detail: str

    def describe(self) -> str:
        where = f"{self.stream_type} {self.stream_id}"
        if self.version is not None:
            where += f" version {self.version}"
        return f"{self.kind.upper()}: {where}: {self.detail}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "stream_id": self.stream_id,
            "stream_type": self.stream_type,
            "version": self.version,
            "detail": self.detail,
        }


@dataclass
class VerifyReport:
    events_checked: int = 0
    streams_checked: int = 0
    seals_checked: int = 0
    latest_seal: str | None = None
    digest_checked: bool = False
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events_checked": self.events_checked,
            "streams_checked": self.streams_checked,
            "seals_checked": self.seals_checked,
            "latest_seal": self.latest_seal,
            "digest_checked": self.digest_checked,
            "problems": [p.as_dict() for p in self.problems],
        }


def stream_type(topic: str) -> str:
    if ":Account." in topic:
        return "account"
    if ":Debtor." in topic:
        return "debtor"
    if ":SealLog." in topic:
        return "seal log"
    return "stream"


def _content_ok(row: ChainRow, version: int) -> bool:
    assert row.prev_hash is not None
    return row.hash == event_hash(row.originator_id, version, row.topic, row.state, row.prev_hash)


class _StreamChecker:
    def __init__(self, reader: RowReader) -> None:
        self.reader = reader

    def check(self, rows: list[ChainRow], required: list[tuple[int, str]]) -> Iterator[Problem]:
        """Problems of one stream, at most one per version, in version order."""
        found: dict[int | None, Problem] = {}
        for p in self._check(rows, required):
            found.setdefault(p.version, p)
        yield from sorted(found.values(), key=lambda p: p.version or 0)

    def _check(self, rows: list[ChainRow], required: list[tuple[int, str]]) -> Iterator[Problem]:
        oid = str(rows[0].originator_id)
        kind = stream_type(rows[0].topic)
        by_version = {r.version: r for r in rows}
        max_version = max(by_version)

        def problem(what: str, version: int | None, detail: str) -> Problem:
            return Problem(what, oid, kind, version, detail)

        expected = 1
        for row in rows:
            for missing in range(expected, row.version):
                yield problem(REMOVED, missing, "event missing from the stream (versions jump)")
            expected = row.version + 1
            if row.hash is None or row.prev_hash is None:
                yield problem(
                    INSERTED, row.version, "row carries no chain hash: not written by Arrears"
                )
                continue
            if not _content_ok(row, row.version):
                yield self._explain_bad_content(row, by_version, max_version, problem)
                continue
            previous = by_version.get(row.version - 1)
            if row.version > 1 and previous is None:
                continue  # already reported as removed
            wanted = GENESIS if previous is None else previous.hash
            if (
                row.prev_hash != wanted
                and previous is not None
                and previous.prev_hash is not None
                and _content_ok(previous, previous.version)
            ):
                yield problem(
                    MODIFIED,
                    previous.version,
                    "event was rewritten with a recomputed hash (the next event's link to "
                    "it is broken)",
                )
        sealed_top = max((version for version, _ in required), default=0)
        for missing in range(max_version + 1, sealed_top + 1):
            yield problem(
                REMOVED,
                missing,
                f"sealed event missing (stream ends at version {max_version}, a seal recorded "
                f"version {sealed_top})",
            )
        for version, digest in required:
            sealed = by_version.get(version)
            if sealed is not None and sealed.hash is not None and sealed.hash.hex() != digest:
                yield problem(MODIFIED, version, "event differs from the one a seal recorded")

    def _explain_bad_content(
        self,
        row: ChainRow,
        by_version: dict[int, ChainRow],
        max_version: int,
        problem: Callable[[str, int | None, str], Problem],
    ) -> Problem:
        for candidate in range(1, max_version + 2):
            if candidate != row.version and _content_ok(row, candidate):
                twin = by_version.get(candidate)
                if twin is not None and twin.hash == row.hash:
                    return problem(INSERTED, row.version, f"duplicate of version {candidate}")
                return problem(
                    REORDERED, row.version, f"event recorded as version {candidate} now sits here"
                )
        assert row.hash is not None
        elsewhere = [
            (o, v)
            for o, v in self.reader.find_by_hash(row.hash)
            if (str(o), v) != (str(row.originator_id), row.version)
        ]
        if elsewhere:
            o, v = elsewhere[0]
            return problem(INSERTED, row.version, f"copy of {o} version {v}")
        return problem(MODIFIED, row.version, "content does not match its hash")


def _streams(rows: Iterable[ChainRow]) -> Iterator[list[ChainRow]]:
    """Rows grouped by stream.  Rows arrive ordered by the id *as stored*, so two spellings
    of one id (possible in SQLite's text column) sort as neighbours: a version that does
    not increase starts a new group, which ``verify_ledger`` then sees as a split stream."""
    for _, group in groupby(rows, key=lambda r: r.originator_id):
        current: list[ChainRow] = []
        for row in group:
            if current and row.version <= current[-1].version:
                yield current
                current = []
            current.append(row)
        if current:
            yield current


def verify_ledger(
    ledger: Ledger, *, account_id: UUID | None = None, digest: str | None = None
) -> VerifyReport:
    reader = ledger.rows()
    report = VerifyReport()
    checker = _StreamChecker(reader)
    seals = []
    try:
        seals = seal_events(ledger)
    except Exception as e:  # a tampered seal row may not even decode
        # Said outright: a seal log re-chained around an undecodable row would
        # otherwise pass its chain check, and with no seals nothing would be compared.
        report.problems.append(
            Problem(
                MODIFIED,
                str(seal_log_id()),
                "seal log",
                None,
                f"the recorded seals cannot be decoded ({type(e).__name__}); "
                "no seal could be checked",
            )
        )
    required: dict[str, list[tuple[int, str]]] = {}
    for seal in seals:
        for oid, (version, head) in seal.heads.items():
            required.setdefault(_norm(oid), []).append((version, head))
    if seals:
        report.latest_seal = format_digest(seals[-1].position, bytes.fromhex(seals[-1].digest))

    if account_id is not None:
        rows = reader.stream(account_id)
        if not rows and _norm(str(account_id)) not in required:
            raise errors.AccountNotFound(
                f"no account {account_id}: nothing is stored or sealed under that id",
                account_id=str(account_id),
            )
        seal_log = reader.stream(seal_log_id()) if account_id != seal_log_id() else []
        streams: Iterable[list[ChainRow]] = [s for s in (rows, seal_log) if s]
    else:
        streams = _streams(reader.iter_rows("stream"))
    seen: set[str] = set()
    by_stream: dict[str, list[Problem]] = {}  # only streams with problems
    split: set[str] = set()
    for rows in streams:
        oid = _norm(str(rows[0].originator_id))
        report.events_checked += len(rows)
        if oid in seen:
            split.add(oid)  # the same id stored in two spellings: sorted apart, see below
            continue
        seen.add(oid)
        report.streams_checked += 1
        problems = list(checker.check(rows, required.get(oid, [])))
        if problems:
            by_stream[oid] = problems
    if split:
        seen -= _recheck_split_streams(reader, checker, split, required, by_stream)
    for problems in by_stream.values():
        report.problems.extend(problems)
    for oid, heads in required.items():
        if oid in seen or (account_id is not None and oid != _norm(str(account_id))):
            continue
        top = max(v for v, _ in heads)
        report.problems.append(
            Problem(
                REMOVED, oid, "stream", None, f"whole stream missing (sealed up to version {top})"
            )
        )
    if account_id is None or digest is not None:
        _check_global(reader, seals, digest, report)
    return report


def _recheck_split_streams(
    reader: RowReader,
    checker: _StreamChecker,
    split: set[str],
    required: dict[str, list[tuple[int, str]]],
    by_stream: dict[str, list[Problem]],
) -> set[str]:
    """Rows filed under another spelling of a stream's id (SQLite keeps ids as text).

    The ledger reads a stream by its canonical id only, so a row stored as, say, a
    dashed UUID is never replayed: it was inserted behind the ledger's back.  Check
    the canonical rows as the stream and name every other row as inserted.  Returns
    the ids that have no canonical rows at all (their stream is missing).
    """
    rows_of: dict[str, list[ChainRow]] = {oid: [] for oid in split}
    for row in reader.iter_rows("stream"):
        oid = _norm(str(row.originator_id))
        if oid in rows_of:
            rows_of[oid].append(row)
    absent: set[str] = set()
    for oid, rows in rows_of.items():
        canonical = reader.stream(UUID(oid))
        if not canonical:
            absent.add(oid)
        positions = {r.position for r in canonical}
        problems = list(checker.check(canonical, required.get(oid, []))) if canonical else []
        problems.extend(
            Problem(
                INSERTED,
                oid,
                stream_type(row.topic),
                row.version,
                "row filed under another spelling of the stream's id: the ledger never reads it",
            )
            for row in rows
            if row.position not in positions
        )
        by_stream[oid] = problems
    return absent


def _norm(oid: str) -> str:
    try:
        return str(UUID(oid))
    except ValueError:
        return oid


def _check_global(
    reader: RowReader, seals: list[Any], digest: str | None, report: VerifyReport
) -> None:
    """Recompute the running digest and compare it at every seal and at the outside digest."""
    targets: dict[int, list[tuple[str, bytes]]] = {}
    for seal in seals:
        targets.setdefault(seal.position, []).append(("seal", bytes.fromhex(seal.digest)))
    outside: tuple[int | None, bytes] | None = None
    if digest is not None:
        outside = parse_digest(digest)
        report.digest_checked = True
        if outside[0] is not None:
            targets.setdefault(outside[0], []).append(("digest", outside[1]))
    pending = sorted(targets)
    running = GENESIS
    last_position = 0
    matched_bare = False

    def settle(position: int) -> None:
        for what, expected in targets[position]:
            if what == "seal":
                report.seals_checked += 1
            if running != expected:
                kind = SEAL_MISMATCH if what == "seal" else DIGEST_MISMATCH
                report.problems.append(
                    Problem(
                        kind,
                        "ledger",
                        "ledger",
                        None,
                        f"events up to position {position} no longer produce the "
                        f"{'recorded seal' if what == 'seal' else 'digest kept outside'}: "
                        "an event covered by it was removed, inserted, altered or reordered",
                    )
                )

    for row in reader.iter_rows("global"):
        while pending and row.position > pending[0]:
            settle(pending.pop(0))
        running = advance(running, row.position, row.hash or GENESIS)
        last_position = row.position
        if outside is not None and outside[0] is None and running == outside[1]:
            matched_bare = True
    for position in pending:
        if position > last_position:
            report.problems.append(
                Problem(
                    SEAL_MISMATCH
                    if any(w == "seal" for w, _ in targets[position])
                    else DIGEST_MISMATCH,
                    "ledger",
                    "ledger",
                    None,
                    f"sealed position {position} is beyond the last stored event "
                    f"({last_position}): events were removed",
                )
            )
            continue
        settle(position)
    if outside is not None and outside[0] is None and not matched_bare:
        report.problems.append(
            Problem(
                DIGEST_MISMATCH,
                "ledger",
                "ledger",
                None,
                "no prefix of the ledger produces this digest",
            )
        )
