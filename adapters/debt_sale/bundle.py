"""One account's self-verifying history bundle, read from the rows exactly as stored.

The bundle carries each stored event's bytes (base64), topic, version,
``prev_hash`` and ``hash`` as the ledger's chain holds them, and the head that
the latest seal recorded for the account, so ``verify.py`` can recompute the
chain with the standard library alone.  The account state, the itemization and
the decoded events are all rebuilt from those same rows, so what the CSV says
and what the bundle proves can never come from two different moments.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from adapters.debt_sale.verify import BUNDLE_FORMAT, GENESIS
from ledger import errors
from ledger.application import Ledger
from ledger.clock import rfc3339
from ledger.domain.account import Account
from ledger.history import History, HistoryEntry, account_state, balance_view, event_fields
from ledger.itemization import Itemization, itemize
from ledger.store.rows import ChainRow
from ledger.tamper.seal import format_digest, seal_events

CHAIN_RULE = (
    "hash = SHA-256(b'arrears.event.v1\\x00' || u32be(len(id)) || id || u64be(version) || "
    "u32be(len(topic)) || topic || u64be(len(state)) || state || prev_hash), where id is "
    "b'u' + the 16 bytes of the UUID; prev_hash of version 1 is 32 zero bytes"
)
DECODED_NOTE = "for reading only: not covered by the hashes, the verifier ignores it"


@dataclass(frozen=True)
class SealHead:
    """What the latest seal naming an account recorded: its head and the seal's digest."""

    position: int
    digest: str
    recorded_at: str
    seal_log_version: int
    version: int
    hash: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "digest": self.digest,
            "recorded_at": self.recorded_at,
            "seal_log_version": self.seal_log_version,
            "account_head": {"version": self.version, "hash": self.hash},
        }


def sealed_heads(ledger: Ledger) -> dict[UUID, SealHead]:
    """Each stream's head as the most recent seal naming it recorded it."""
    heads: dict[UUID, SealHead] = {}
    for seal in seal_events(ledger):
        digest = format_digest(seal.position, bytes.fromhex(seal.digest))
        recorded_at = rfc3339(seal.timestamp)
        for oid, (version, head) in seal.heads.items():
            try:
                key = UUID(oid)
            except ValueError:
                continue
            heads[key] = SealHead(
                seal.position, digest, recorded_at, seal.originator_version, version, head
            )
    return heads


@dataclass(frozen=True)
class AccountExport:
    account: Account
    itemization: Itemization
    bundle: dict[str, Any]
    head_version: int
    head_hash: str


def _decode(ledger: Ledger, rows: list[ChainRow]) -> list[Any]:
    return [
        ledger.mapper.to_domain_event(StoredEvent(r.originator_id, r.version, r.topic, r.state))
        for r in rows
    ]


def _replay(
    account_id: UUID, events: list[Any], hashes: dict[int, str]
) -> tuple[Account | None, History]:
    """The account after ``events`` and the human-readable history of them."""
    history = History(account_id=account_id, as_of=None)
    account: Account | None = None
    for event in events:
        account = event.mutate(account)
        assert account is not None
        history.entries.append(
            HistoryEntry(
                version=event.originator_version,
                recorded_at=event.timestamp,
                type=type(event).__name__,
                fields=event_fields(event, account.currency),
                balance=balance_view(account),
                hash=hashes.get(event.originator_version),
            )
        )
    history.state = account_state(account) if account is not None else None
    return account, history


def export_account(ledger: Ledger, account_id: UUID, seal: SealHead) -> AccountExport:
    """The account as the seal covers it; raises ``ConcurrencyConflict`` if it moved on since."""
    rows = ledger.rows().stream(account_id)
    if (
        not rows
        or rows[-1].hash is None
        or (rows[-1].version, rows[-1].hash.hex())
        != (
            seal.version,
            seal.hash,
        )
    ):
        raise errors.ConcurrencyConflict(
            f"account {account_id} changed after the seal was recorded; export again",
            account_id=str(account_id),
        )
    events_out = []
    hashes: dict[int, str] = {}
    for row in rows:
        if row.hash is None or row.prev_hash is None:
            raise errors.LedgerError(
                f"account {account_id} version {row.version} carries no chain hash; "
                "run 'arrears verify'",
                account_id=str(account_id),
            )
        hashes[row.version] = row.hash.hex()
        events_out.append(
            {
                "position": row.position,
                "version": row.version,
                "originator_id": str(row.originator_id),
                "topic": row.topic,
                "state": base64.b64encode(row.state).decode("ascii"),
                "prev_hash": row.prev_hash.hex(),
                "hash": row.hash.hex(),
            }
        )
    account, history = _replay(account_id, _decode(ledger, rows), hashes)
    if not isinstance(account, Account):
        raise errors.AccountNotFound(f"{account_id} is not an account", account_id=str(account_id))
    bundle = {
        "format": BUNDLE_FORMAT,
        "account_id": str(account_id),
        "creditor": account.creditor,
        "reference": account.reference,
        "currency": account.currency,
        "hash_chain": {"rule": CHAIN_RULE, "genesis": GENESIS.hex()},
        "events": events_out,
        "seal": seal.as_dict(),
        "decoded": {"note": DECODED_NOTE, **history.as_dict()},
    }
    return AccountExport(
        account=account,
        itemization=itemize(account_id, _decode(ledger, rows), None),
        bundle=bundle,
        head_version=rows[-1].version,
        head_hash=hashes[rows[-1].version],
    )
