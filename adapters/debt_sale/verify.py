"""Check an Arrears sale file: ``python -m adapters.debt_sale.verify DIR [--key-env NAME]``.

Standard library only, and nothing imported from Arrears, so that a debt buyer
can copy this one file and run ``python verify.py DIR`` on any Python 3.11+.
It checks, and names the file (and event) of every problem it finds:

* ``manifest.json``: written byte for byte as its canonical rendering, and its
  ``digest`` is the SHA-256 of the canonical JSON of everything else in it;
* ``manifest.sig`` (with ``--key-env``): HMAC-SHA256 of ``manifest.json``'s bytes
  under the key held in that environment variable;
* every listed file has the listed SHA-256 and size, and no file was added;
* every history bundle: versions contiguous from 1, each ``prev_hash`` the hash
  of the event before it (zeros for the first), each ``hash`` recomputed from
  the stored bytes exactly as the ledger computes it (``event_hash`` below),
  and the bundle ends at the head the ledger's seal recorded for the account;
* ``accounts.csv``: one row per bundle, naming its head, and totals per currency
  that add up to the manifest's.

The ``decoded`` part of a bundle is a convenience for reading and is not trusted.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import csv
import hashlib
import hmac
import io
import json
import os
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path, PurePosixPath
from typing import Any
from uuid import UUID

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
ACCOUNTS_CSV = "accounts.csv"
REFUSED_CSV = "refused.csv"
BUNDLE_DIR = "accounts"
MANIFEST_FORMAT = "arrears.sale.manifest.v1"
BUNDLE_FORMAT = "arrears.sale.history.v1"
DEFAULT_KEY_ENV = "ARREARS_SALE_SIGNING_KEY"

# The ledger's per-stream hash chain (ledger/tamper/chain.py), re-implemented here.
GENESIS = bytes(32)
_DOMAIN = b"arrears.event.v1\x00"
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


def originator_bytes(originator_id: str) -> bytes:
    """A stream id as hashed: ``u`` + the 16 UUID bytes, or ``s`` + UTF-8 for other ids."""
    try:
        return b"u" + UUID(originator_id).bytes
    except ValueError:
        return b"s" + originator_id.encode("utf-8")


def event_hash(
    originator_id: str, version: int, topic: str, state: bytes, prev_hash: bytes
) -> bytes:
    """SHA-256 over a domain tag and the length-prefixed stored fields, then ``prev_hash``."""
    oid = originator_bytes(originator_id)
    topic_bytes = topic.encode("utf-8")
    h = hashlib.sha256(_DOMAIN)
    h.update(_U32.pack(len(oid)))
    h.update(oid)
    h.update(_U64.pack(version))
    h.update(_U32.pack(len(topic_bytes)))
    h.update(topic_bytes)
    h.update(_U64.pack(len(state)))
    h.update(state)
    h.update(prev_hash)
    return h.digest()


# ------------------------------------------------------------ manifest rules


def canonical_json(value: Any) -> bytes:
    """The bytes a digest is taken over: sorted keys, no whitespace, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def render_json(value: Any) -> bytes:
    """How the sale's JSON files are written (so any byte changed in them shows)."""
    return json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False).encode() + b"\n"


def manifest_digest(manifest: dict[str, Any]) -> str:
    body = {k: v for k, v in manifest.items() if k != "digest"}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def signature(manifest_bytes: bytes, key: bytes) -> str:
    return hmac.new(key, manifest_bytes, hashlib.sha256).hexdigest()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_json(data: bytes) -> Any:
    """JSON that refuses duplicate keys: a second key could hide what the first says."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise ValueError(f"duplicate key {key!r}")
            out[key] = value
        return out

    return json.loads(data.decode("utf-8"), object_pairs_hook=pairs)


# ------------------------------------------------------------------ report


@dataclass(frozen=True)
class Problem:
    file: str
    detail: str
    event: str | None = None

    def describe(self) -> str:
        where = f"{self.file}: {self.event}" if self.event else self.file
        return f"{where}: {self.detail}"


@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    sale_id: str | None = None
    buyer: str | None = None
    accounts: int = 0
    events: int = 0
    files: int = 0
    signature: str = "not checked"

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, file: str, detail: str, event: str | None = None) -> None:
        self.problems.append(Problem(file, detail, event))


@dataclass(frozen=True)
class Head:
    account_id: str
    version: int
    hash: str


# ----------------------------------------------------------------- bundles


def _int(value: Any) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _hash32(value: Any) -> bytes:
    raw = bytes.fromhex(_str(value))
    if len(raw) != 32:
        raise ValueError(f"{value!r} is not a SHA-256 hex digest")
    return raw


def check_bundle(name: str, data: bytes, report: Report) -> Head | None:
    """Check one account's history bundle; returns its head, or None if it has none."""
    try:
        bundle = load_json(data)
    except (UnicodeDecodeError, ValueError) as e:
        report.add(name, f"not valid JSON ({e})")
        return None
    if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
        report.add(name, f"not an Arrears history bundle (format is not {BUNDLE_FORMAT})")
        return None
    account_id = bundle.get("account_id")
    events = bundle.get("events")
    if not isinstance(account_id, str) or not isinstance(events, list) or not events:
        report.add(name, "bundle has no account_id or no events")
        return None
    previous: bytes | None = GENESIS
    highest, last_position = 0, 0
    head: tuple[int, bytes] | None = None
    for index, event in enumerate(events, start=1):
        where = f"event #{index}"
        try:
            if not isinstance(event, dict):
                raise TypeError("not an object")
            version = _int(event["version"])
            where = f"event version {version}"
            position = _int(event["position"])
            oid = _str(event["originator_id"])
            topic = _str(event["topic"])
            state = base64.b64decode(_str(event["state"]), validate=True)
            prev_hash = _hash32(event["prev_hash"])
            digest = _hash32(event["hash"])
        except (KeyError, TypeError, ValueError, binascii.Error) as e:
            report.add(name, f"malformed event ({e})", where)
            previous, highest = None, highest + 1
            continue
        report.events += 1
        if oid != account_id:
            report.add(name, f"belongs to stream {oid}, not to account {account_id}", where)
        if version > highest + 1:
            gap = f"{highest + 1}" if version == highest + 2 else f"{highest + 1}-{version - 1}"
            after = f"follows version {highest}" if highest else "starts the bundle"
            report.add(name, f"{after}: version {gap} is missing or out of place", where)
        elif version <= highest:
            report.add(
                name, f"comes after version {highest}: events reordered or duplicated", where
            )
        if previous is not None and prev_hash != previous:
            before = "the genesis hash" if index == 1 else "the hash of the event before it"
            report.add(name, f"prev_hash is not {before}: the chain is broken here", where)
        if event_hash(oid, version, topic, state, prev_hash) != digest:
            report.add(
                name,
                "hash does not match the stored bytes (state, topic or version altered)",
                where,
            )
        if position <= last_position:
            report.add(name, "global position is not after the previous event's", where)
        previous, highest, last_position = digest, max(highest, version), position
        head = (version, digest)
    if head is None:
        return None
    _check_seal(name, bundle.get("seal"), head, last_position, report)
    return Head(account_id, head[0], head[1].hex())


def _check_seal(
    name: str, seal: Any, head: tuple[int, bytes], last_position: int, report: Report
) -> None:
    try:
        if not isinstance(seal, dict) or not isinstance(seal.get("account_head"), dict):
            raise TypeError("no seal")
        position = _int(seal["position"])
        sealed_version = _int(seal["account_head"]["version"])
        sealed_hash = _hash32(seal["account_head"]["hash"])
        digest_position, _, digest_hex = _str(seal["digest"]).partition(":")
        if int(digest_position) != position or len(bytes.fromhex(digest_hex)) != 32:
            raise ValueError(f"digest {seal['digest']!r} is not POSITION:HEX for {position}")
    except (KeyError, TypeError, ValueError) as e:
        report.add(name, f"seal missing or malformed ({e})", "seal")
        return
    if (sealed_version, sealed_hash) != head:
        report.add(
            name,
            f"the seal recorded version {sealed_version} ({sealed_hash.hex()[:12]}...) as the "
            f"account's head, the bundle ends at version {head[0]} ({head[1].hex()[:12]}...)",
            "seal",
        )
    if position < last_position:
        report.add(name, f"seal at position {position} does not cover the last event", "seal")


# ---------------------------------------------------------------- the sale


def _safe_path(text: Any) -> str | None:
    if not isinstance(text, str) or not text:
        return None
    path = PurePosixPath(text)
    if path.is_absolute() or ".." in path.parts or "\\" in text:
        return None
    return str(path)


class _SaleChecker:
    def __init__(self, directory: Path, key: bytes | None, report: Report) -> None:
        self.dir = directory
        self.key = key
        self.report = report

    def run(self) -> None:
        manifest = self._manifest()
        listed = self._files(manifest) if manifest is not None else None
        if listed is None:  # no usable file list: still check every bundle on disk
            listed = {
                f"{BUNDLE_DIR}/{p.name}": p.read_bytes()
                for p in sorted((self.dir / BUNDLE_DIR).glob("*.json"))
            }
        heads: dict[str, Head] = {}
        for name, data in sorted(listed.items()):
            if name.startswith(f"{BUNDLE_DIR}/") and name.endswith(".json"):
                self.report.accounts += 1
                head = check_bundle(name, data, self.report)
                if head is not None:
                    heads[name] = head
        if manifest is not None and ACCOUNTS_CSV in listed:
            self._accounts_csv(listed[ACCOUNTS_CSV], heads, manifest)

    def _manifest(self) -> dict[str, Any] | None:
        report, path = self.report, self.dir / MANIFEST
        if not path.is_file():
            report.add(MANIFEST, "missing: this is not a sale file, or it is incomplete")
            return None
        data = path.read_bytes()
        try:
            manifest = load_json(data)
        except (UnicodeDecodeError, ValueError) as e:
            report.add(MANIFEST, f"not valid JSON ({e})")
            manifest = None
        if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
            if manifest is not None:
                report.add(MANIFEST, f"not an Arrears sale manifest ({MANIFEST_FORMAT})")
            self._signature(data)
            return None
        report.sale_id = str(manifest.get("sale_id"))
        report.buyer = str(manifest.get("buyer"))
        if render_json(manifest) != data:
            report.add(MANIFEST, "bytes differ from the manifest's canonical rendering (edited)")
        if manifest.get("digest") != manifest_digest(manifest):
            report.add(MANIFEST, "digest does not match the manifest's contents")
        self._signature(data)
        return manifest

    def _signature(self, manifest_bytes: bytes) -> None:
        path = self.dir / SIGNATURE
        if self.key is None:
            self.report.signature = "not checked" if path.is_file() else "unsigned"
            return
        if not path.is_file():
            self.report.add(SIGNATURE, "missing: the sale file is not signed")
            return
        given = path.read_text(encoding="ascii", errors="replace").strip()
        if not hmac.compare_digest(given, signature(manifest_bytes, self.key)):
            self.report.add(
                SIGNATURE, "HMAC-SHA256 does not match (wrong key, or manifest.json altered)"
            )
            self.report.signature = "does not match"
            return
        self.report.signature = "verified"

    def _files(self, manifest: dict[str, Any]) -> dict[str, bytes] | None:
        entries = manifest.get("files")
        if not isinstance(entries, list):
            self.report.add(MANIFEST, "has no list of files")
            return None
        listed: dict[str, bytes] = {}
        for entry in entries:
            name = _safe_path(entry.get("path") if isinstance(entry, dict) else None)
            if name is None or not isinstance(entry, dict):
                self.report.add(MANIFEST, f"file entry {entry!r} is not a safe relative path")
                continue
            if name in listed:
                self.report.add(MANIFEST, f"lists {name} twice")
                continue
            path = self.dir / name
            if not path.is_file():
                self.report.add(name, "listed in the manifest but missing")
                continue
            data = path.read_bytes()
            listed[name] = data
            self.report.files += 1
            if entry.get("sha256") != sha256_hex(data) or entry.get("bytes") != len(data):
                self.report.add(name, "SHA-256 differs from the manifest's: the file was altered")
        for required in (ACCOUNTS_CSV, REFUSED_CSV):
            if required not in listed and not any(p.file == required for p in self.report.problems):
                self.report.add(required, "not listed in the manifest")
        for path in sorted(p for p in self.dir.rglob("*") if p.is_file()):
            name = path.relative_to(self.dir).as_posix()
            if name not in listed and name not in (MANIFEST, SIGNATURE):
                self.report.add(name, "not listed in the manifest (added after the export)")
        return listed

    def _accounts_csv(self, data: bytes, heads: dict[str, Head], manifest: dict[str, Any]) -> None:
        report = self.report
        try:
            rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))
        except (UnicodeDecodeError, csv.Error) as e:
            report.add(ACCOUNTS_CSV, f"not a readable CSV file ({e})")
            return
        totals: dict[str, list[Decimal]] = {}
        seen: set[str] = set()
        for number, row in enumerate(rows, start=2):
            where = f"line {number}"
            bundle = row.get("history_file") or ""
            seen.add(bundle)
            head = heads.get(bundle)
            if head is None:
                report.add(ACCOUNTS_CSV, f"history file {bundle!r} is missing or invalid", where)
            elif (
                row.get("account_id"),
                row.get("history_head_version"),
                row.get("history_head_hash"),
            ) != (head.account_id, str(head.version), head.hash):
                report.add(ACCOUNTS_CSV, f"account or head differs from {bundle}", where)
            try:
                amounts = totals.setdefault(str(row.get("currency")), [Decimal(0), Decimal(0)])
                amounts[0] += 1
                amounts[1] += Decimal(row.get("total") or "")
            except InvalidOperation:
                report.add(ACCOUNTS_CSV, f"total {row.get('total')!r} is not a number", where)
        for bundle in sorted(set(heads) - seen):
            report.add(bundle, f"history bundle has no row in {ACCOUNTS_CSV}")
        if manifest.get("account_count") != len(rows):
            report.add(
                MANIFEST,
                f"account_count {manifest.get('account_count')} but {ACCOUNTS_CSV} has "
                f"{len(rows)} rows",
            )
        stated = manifest.get("totals")
        if not isinstance(stated, dict):
            report.add(MANIFEST, "has no totals per currency")
            return
        for currency in sorted(set(stated) | set(totals)):
            mine = totals.get(currency, [Decimal(0), Decimal(0)])
            theirs = stated.get(currency)
            try:
                ok = isinstance(theirs, dict) and (
                    Decimal(theirs["accounts"]) == mine[0] and Decimal(theirs["balance"]) == mine[1]
                )
            except (KeyError, TypeError, InvalidOperation):
                ok = False
            if not ok:
                report.add(
                    MANIFEST,
                    f"totals for {currency} do not add up to {ACCOUNTS_CSV} "
                    f"({mine[0]} accounts, {mine[1]})",
                )


def verify_sale(directory: Path, *, key: bytes | None = None) -> Report:
    """Every problem of the sale file in ``directory``; the signature only with ``key``."""
    report = Report()
    if not directory.is_dir():
        report.add(str(directory), "not a directory")
        return report
    _SaleChecker(directory, key, report).run()
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m adapters.debt_sale.verify",
        description="Check an Arrears sale file (digests, hash chains, seal heads, signature).",
    )
    parser.add_argument("directory", help="the sale directory (holding manifest.json)")
    parser.add_argument(
        "--key-env",
        metavar="NAME",
        default=None,
        help="check manifest.sig with the HMAC key held in environment variable NAME",
    )
    args = parser.parse_args(argv)
    key: bytes | None = None
    missing_key: Problem | None = None
    if args.key_env is not None:
        value = os.environ.get(args.key_env)
        if value:
            key = value.encode("utf-8")
        else:
            missing_key = Problem(
                SIGNATURE, f"cannot check: environment variable {args.key_env} is not set"
            )
    report = verify_sale(Path(args.directory), key=key)
    if missing_key is not None:
        report.problems.append(missing_key)
    for problem in report.problems:
        print(f"FAIL {problem.describe()}")
    summary = (
        f"sale {report.sale_id} for {report.buyer}: {report.accounts} accounts, "
        f"{report.events} events, {report.files} files; signature {report.signature}"
    )
    if report.ok:
        print(f"OK: {summary}")
        return 0
    print(f"FAILED ({len(report.problems)} problems): {summary}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
