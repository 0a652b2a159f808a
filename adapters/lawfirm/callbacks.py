"""A law firm's signed status callbacks: verified, applied to the ledger once, remembered.

The firm POSTs JSON ``{"delivery_id", "account_id", "status", "effective_on",
"judgment_amount"?, "judgment_date"?, "court_reference"?, "firm_reference"?}``
signed like a referral (``signing``: ``Arrears-Signature: t=...,v1=...`` over
``"{t}.{body}"`` with the firm's secret).  ``LawFirmCallbacks.receive`` checks,
in this order, and each refusal records nothing:

1. the firm has an ``[adapters.lawfirm.NAME]`` table      else ``UnknownLawFirm`` (404)
2. some ``v1`` matches one of its secrets                 else ``invalid_signature`` (401)
3. ``t`` is within 5 minutes of the service's clock       else ``stale_signature`` (401)
4. the body is a valid update (read from the signed bytes) else 400/422
5. ``delivery_id`` was not applied before for this firm   else ``replayed_delivery`` (409)
6. the account is (or, for a retry, was) referred to this firm   else not found (404)

then records the status with ``service.change_legal_status`` and only after that
stores the delivery id in the ``lawfirm_callbacks`` operational table (primary
key ``(firm, delivery_id)``, with the account, status, outcome and times; no
personal data).

**The guarantee.**  A delivery id is applied at most once, and a status reported
again is never recorded twice: the ledger write and the id are two
transactions, so before writing, the account's events since its latest referral
to this firm (up to the next referral) are searched for a ``LegalStatusChanged``
with the same status, effective date, judgment and court reference.  If one is
there -- the process died between the write and the id, and the firm retried --
nothing is written, the id is stored, and the answer is 200 with
``recorded: false``.  Within one process, the search and the write for an
account are serialised by a lock.  What remains: two *processes* receiving the
same update at the same instant, neither having written yet, can both write it
(the second insert of the id is then logged as ``lawfirm_callback_raced``);
firms retry after a failure, not concurrently, so this needs a firm that sends
the same update twice at once to two servers.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

import structlog

from adapters.config import AdapterConfigError, LawFirmSettings
from adapters.lawfirm.adapter import firm_secrets
from adapters.signing import TOLERANCE_SECONDS, verify
from ledger import errors
from ledger.application import Ledger
from ledger.clock import ensure_utc
from ledger.domain.account import LEGAL_STATUSES, Account
from ledger.money import Money
from ledger.readmodels.sqlstore import to_text
from ledger.services import LedgerService
from ledger.store.operational import OperationalStore

log = structlog.get_logger("arrears.lawfirm")

CALLBACKS_TABLE = "lawfirm_callbacks"
MAX_ID_LENGTH = 200
FIELDS = frozenset(
    {
        "delivery_id",
        "account_id",
        "status",
        "effective_on",
        "judgment_amount",
        "judgment_date",
        "court_reference",
        "firm_reference",
        "details",
    }
)
#: The firm's own words on a step: free text, so longer than an id, and newlines allowed.
MAX_DETAILS_LENGTH = 2000


class UnknownLawFirm(errors.NotFound):
    code = "unknown_law_firm"


class ReplayedDelivery(errors.IdempotencyConflict):
    """This firm's ``delivery_id`` was applied before: a replay (or a retry of a success)."""

    code = "replayed_delivery"


class CallbacksUnavailable(errors.StoreError):
    """The server cannot check this firm's signatures now (its secret is not configured)."""

    code = "callbacks_unavailable"


# ------------------------------------------------------------------ the update


def _text(payload: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = payload.get(name)
    if value is None:
        if required:
            raise errors.ValidationError(f"{name} is required", field=name)
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID_LENGTH:
        raise errors.ValidationError(
            f"{name} must be a non-empty string of at most {MAX_ID_LENGTH} characters", field=name
        )
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise errors.ValidationError(f"{name} must not hold control characters", field=name)
    return value


def _details(payload: Mapping[str, Any]) -> str:
    value = payload.get("details")
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_DETAILS_LENGTH:
        raise errors.ValidationError(
            f"details must be a string of at most {MAX_DETAILS_LENGTH} characters",
            field="details",
        )
    if any((ord(c) < 32 and c not in "\n\t") or ord(c) == 127 for c in value):
        raise errors.ValidationError("details must not hold control characters", field="details")
    return value


def _day(payload: Mapping[str, Any], name: str, *, required: bool = False) -> date | None:
    text = _text(payload, name, required=required)
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise errors.InvalidDate(f"{name} must be a date (YYYY-MM-DD)", field=name) from None


@dataclass(frozen=True)
class StatusUpdate:
    """One callback's content, checked."""

    delivery_id: str
    account_id: UUID
    status: str
    effective_on: date
    judgment_amount: str | None = None
    judgment_date: date | None = None
    court_reference: str | None = None
    firm_reference: str | None = None
    details: str = ""

    @classmethod
    def from_payload(cls, payload: object) -> StatusUpdate:
        if not isinstance(payload, Mapping):
            raise errors.ValidationError("the callback body must be a JSON object", field="body")
        unknown = sorted(set(payload) - FIELDS)
        if unknown:
            raise errors.ValidationError(
                f"unknown fields: {', '.join(unknown)}", field=unknown[0], fields=unknown
            )
        delivery_id = _text(payload, "delivery_id", required=True)
        account_text = _text(payload, "account_id", required=True)
        status = _text(payload, "status", required=True)
        effective_on = _day(payload, "effective_on", required=True)
        assert delivery_id and account_text and status and effective_on
        try:
            account_id = UUID(account_text)
        except ValueError:
            raise errors.AccountNotFound(
                f"no account {account_text}", account_id=account_text
            ) from None
        if status not in LEGAL_STATUSES:
            raise errors.InvalidChoice(
                f"status must be one of {', '.join(sorted(LEGAL_STATUSES))}; got {status!r}",
                field="status",
            )
        return cls(
            delivery_id=delivery_id,
            account_id=account_id,
            status=status,
            effective_on=effective_on,
            judgment_amount=_text(payload, "judgment_amount"),
            judgment_date=_day(payload, "judgment_date"),
            court_reference=_text(payload, "court_reference"),
            firm_reference=_text(payload, "firm_reference"),
            details=_details(payload),
        )

    def amount(self, currency: str) -> Money | None:
        if self.judgment_amount is None:
            return None
        return Money.parse(self.judgment_amount, currency)

    def same_as(self, event: Account.LegalStatusChanged, currency: str) -> bool:
        """Whether ``event`` records exactly this update (it was applied before)."""
        amount = self.amount(currency)
        return (
            event.legal_status == self.status
            and event.effective_on == self.effective_on
            and event.judgment_amount == (amount.minor if amount is not None else None)
            and event.judgment_date == self.judgment_date
            and event.court_reference == self.court_reference
        )


@dataclass(frozen=True)
class CallbackResult:
    firm: str
    delivery_id: str
    account_id: UUID
    legal_status: str
    recorded: bool  # False: the ledger had this update already (a retry after a crash)
    version: int  # the account's version holding the update

    def as_dict(self) -> dict[str, Any]:
        return {
            "firm": self.firm,
            "delivery_id": self.delivery_id,
            "account_id": str(self.account_id),
            "legal_status": self.legal_status,
            "recorded": self.recorded,
            "version": self.version,
        }


# ------------------------------------------------------------ the delivery ids


def _tables(postgres: bool) -> Sequence[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS {CALLBACKS_TABLE} ("
        "firm TEXT NOT NULL, delivery_id TEXT NOT NULL, account_id TEXT NOT NULL, "
        "legal_status TEXT NOT NULL, outcome TEXT NOT NULL, account_version BIGINT NOT NULL, "
        "firm_reference TEXT, signed_at BIGINT NOT NULL, received_at TEXT NOT NULL, "
        "PRIMARY KEY (firm, delivery_id))"
    ]


class CallbackLog:
    """The ``lawfirm_callbacks`` table: each firm's delivery ids already applied."""

    def __init__(self, ledger: Ledger) -> None:
        self.db = OperationalStore(ledger, CALLBACKS_TABLE, _tables)

    def close(self) -> None:
        self.db.close()

    def seen(self, firm: str, delivery_id: str) -> bool:
        with self.db.transaction(write=False) as tx:
            rows = tx.query(
                f"SELECT 1 FROM {CALLBACKS_TABLE} WHERE firm = ? AND delivery_id = ?",
                (firm, delivery_id),
            )
        return bool(rows)

    def record(
        self,
        firm: str,
        update: StatusUpdate,
        *,
        outcome: str,
        version: int,
        signed_at: int,
        now: str,
    ) -> bool:
        """Remember the id; False if another request stored it first."""
        with self.db.transaction() as tx:
            tx.execute(
                f"INSERT INTO {CALLBACKS_TABLE} (firm, delivery_id, account_id, legal_status, "
                "outcome, account_version, firm_reference, signed_at, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (firm, delivery_id) DO NOTHING",
                (
                    firm,
                    update.delivery_id,
                    str(update.account_id),
                    update.status,
                    outcome,
                    version,
                    update.firm_reference,
                    signed_at,
                    now,
                ),
            )
            return bool(tx.cursor.rowcount == 1)

    def entries(self, firm: str | None = None) -> list[dict[str, Any]]:
        sql = f"SELECT * FROM {CALLBACKS_TABLE}"
        params: tuple[str, ...] = ()
        if firm is not None:
            sql += " WHERE firm = ?"
            params = (firm,)
        with self.db.transaction(write=False) as tx:
            return [dict(r) for r in tx.query(sql + " ORDER BY received_at, delivery_id", params)]


_SHARED: weakref.WeakKeyDictionary[Ledger, CallbackLog] = weakref.WeakKeyDictionary()
_SHARED_LOCK = threading.Lock()
_ACCOUNT_LOCKS: weakref.WeakValueDictionary[UUID, threading.Lock] = weakref.WeakValueDictionary()


def callback_log(ledger: Ledger) -> CallbackLog:
    """One ``CallbackLog`` per ledger (the API builds a receiver per request)."""
    with _SHARED_LOCK:
        found = _SHARED.get(ledger)
        if found is None:
            found = _SHARED[ledger] = CallbackLog(ledger)
        return found


def _account_lock(account_id: UUID) -> threading.Lock:
    with _SHARED_LOCK:
        lock = _ACCOUNT_LOCKS.get(account_id)
        if lock is None:
            lock = _ACCOUNT_LOCKS[account_id] = threading.Lock()
        return lock


# ---------------------------------------------------------------- the receiver


def _referral_events(
    events: Sequence[Any], firm: str
) -> tuple[Account.ReferredToLawFirm | None, list[Account.LegalStatusChanged]]:
    """The latest referral to ``firm`` and the status changes recorded under it."""
    referral: Account.ReferredToLawFirm | None = None
    changes: list[Account.LegalStatusChanged] = []
    for event in events:
        if isinstance(event, Account.ReferredToLawFirm):
            if event.law_firm == firm:
                referral, changes = event, []
            elif referral is not None:
                referral, changes = None, []  # another firm's referral: that one ended
        elif isinstance(event, Account.LegalStatusChanged) and referral is not None:
            changes.append(event)
    return referral, changes


class LawFirmCallbacks:
    """Receives the signed status callbacks of the firms in ``firms`` (see the module doc)."""

    def __init__(
        self,
        service: LedgerService,
        firms: Mapping[str, LawFirmSettings],
        *,
        environ: Mapping[str, str] | None = None,
        store: CallbackLog | None = None,
        tolerance: float = TOLERANCE_SECONDS,
    ) -> None:
        self.service = service
        self.firms = dict(firms)
        self.environ = environ
        self.store = store or callback_log(service.ledger)
        self.tolerance = tolerance

    def _secrets(self, firm: str) -> tuple[str, ...]:
        settings = self.firms.get(firm)
        if settings is None:
            raise UnknownLawFirm(f"no law firm {firm} is configured", firm=firm)
        try:
            return firm_secrets(settings, self.environ)
        except AdapterConfigError as e:
            log.error("lawfirm_callback_unconfigured", firm=firm, detail=e.message)
            raise CallbacksUnavailable(
                f"callbacks from {firm} cannot be checked now; retry later", firm=firm
            ) from e

    def receive(self, firm: str, body: bytes, signature: str | None) -> CallbackResult:
        """Verify and apply one callback (``body`` exactly as received)."""
        secrets = self._secrets(firm)
        now = ensure_utc(self.service.clock.now())
        try:
            signed_at = verify(
                signature, body, secrets, now=now.timestamp(), tolerance=self.tolerance
            )
        except errors.TokenInvalid as e:
            log.warning("lawfirm_callback_refused", firm=firm, code=e.code)
            raise
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise errors.ValidationError("the callback body is not JSON", field="body") from None
        update = StatusUpdate.from_payload(payload)
        with _account_lock(update.account_id):
            if self.store.seen(firm, update.delivery_id):
                log.warning("lawfirm_callback_replayed", firm=firm, delivery_id=update.delivery_id)
                raise ReplayedDelivery(
                    f"delivery {update.delivery_id} from {firm} was already applied",
                    delivery_id=update.delivery_id,
                )
            recorded, version = self._apply(firm, update)
            stored = self.store.record(
                firm,
                update,
                outcome="recorded" if recorded else "already_in_ledger",
                version=version,
                signed_at=signed_at,
                now=to_text(ensure_utc(self.service.clock.now())),
            )
        if not stored:
            log.warning("lawfirm_callback_raced", firm=firm, delivery_id=update.delivery_id)
        log.info(
            "lawfirm_callback_applied",
            firm=firm,
            delivery_id=update.delivery_id,
            account_id=str(update.account_id),
            legal_status=update.status,
            recorded=recorded,
        )
        return CallbackResult(
            firm, update.delivery_id, update.account_id, update.status, recorded, version
        )

    def _apply(self, firm: str, update: StatusUpdate) -> tuple[bool, int]:
        """(recorded now, the version holding the update)."""
        account = self.service.get_account(update.account_id)
        events = list(self.service.ledger.events.get(update.account_id, lte=account.version))
        referral, changes = _referral_events(events, firm)
        if referral is None:
            raise errors.AccountNotFound(
                f"no account {update.account_id} referred to {firm}",
                account_id=str(update.account_id),
            )
        for change in changes:
            if update.same_as(change, account.currency):
                return False, int(change.originator_version)
        current = account.law_firm
        if current is None or current["name"] != firm:
            raise errors.AccountNotFound(
                f"no account {update.account_id} referred to {firm}",
                account_id=str(update.account_id),
            )
        changed = self.service.change_legal_status(
            update.account_id,
            update.status,
            effective_on=update.effective_on,
            judgment_amount=update.amount(account.currency),
            judgment_date=update.judgment_date,
            court_reference=update.court_reference,
            details=update.details,
        )
        return True, int(changed.version)
