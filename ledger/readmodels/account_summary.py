"""Account summary read model: one row per account, plus its contacts and plan schedule.

Rows are derived by folding events through the very ``Account.apply`` code the
ledger uses (the aggregate's state is kept beside the row, encoded with the
ledger's transcoder), so the summary can never disagree with the ledger about
what an event means.  Time-relative fields (next installment, arrears, contacts
in the last 7 days) are computed when read, from stored facts, for "now".
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any, ClassVar
from uuid import UUID

from ledger.domain.account import Account
from ledger.domain.allocation import COMPONENTS
from ledger.domain.plans import plan_position
from ledger.readmodels.engine import EventRecord, Projection, ProjectionTx
from ledger.readmodels.sqlstore import StateEncoder, day_text, fast_decoder, to_text

CHANNELS = ("phone", "sms", "email", "letter", "visit")

# Built once: ``isinstance(x, A | B | ...)`` would build the union again for every event.
_ACCOUNT_EVENTS = (Account.Event, Account.Placed)
_SCHEDULE_EVENTS = (
    Account.PlanAgreed,
    Account.PlanAmended,
    Account.PlanCancelled,
    Account.PlanDefaulted,
    Account.PlanCompleted,
    Account.SoldToDebtBuyer,
    Account.Closed,
)


class AccountSummaryProjection(Projection):
    name = "account_summary"
    #: v2 added dispute_awaiting, promise_paid and last_agent (worklist and cash forecast).
    version = 2
    tables: ClassVar[dict[str, str]] = {
        "accounts": (
            "CREATE TABLE IF NOT EXISTS {name} ("
            "account_id TEXT PRIMARY KEY, creditor TEXT, reference TEXT, original_creditor TEXT, "
            "currency TEXT, status TEXT, principal BIGINT, interest BIGINT, fees BIGINT, "
            "total BIGINT, credit BIGINT, paid_total BIGINT, placed_total BIGINT, "
            "waived_total BIGINT, placed_at TEXT, charge_off_date TEXT, debtor_id TEXT, "
            "open_promise_id TEXT, promise_amount BIGINT, promise_due TEXT, promise_made_at TEXT, "
            "plan_id TEXT, plan_kind TEXT, plan_total BIGINT, plan_paid BIGINT, "
            "plan_missed BIGINT, "
            "last_contact_at TEXT, last_rpc_at TEXT, contact_count BIGINT, "
            "flags TEXT, holder_kind TEXT, holder_name TEXT, agency TEXT, law_firm TEXT, "
            "buyer TEXT, legal_status TEXT, close_reason TEXT, "
            "last_broken_promise_at TEXT, last_missed_installment_at TEXT, callback_at TEXT, "
            "dispute_awaiting BIGINT, promise_paid BIGINT, last_agent TEXT, "
            "version BIGINT, updated_at TEXT, state BYTEA)"
        ),
        "contacts": (
            "CREATE TABLE IF NOT EXISTS {name} ("
            "account_id TEXT NOT NULL, version BIGINT NOT NULL, occurred_at TEXT NOT NULL, "
            "channel TEXT, direction TEXT, outcome TEXT, agent TEXT, purpose TEXT, "
            "PRIMARY KEY (account_id, version))"
        ),
        "installments": (
            "CREATE TABLE IF NOT EXISTS {name} ("
            "account_id TEXT NOT NULL, plan_id TEXT NOT NULL, seq BIGINT NOT NULL, "
            "due_date TEXT NOT NULL, amount BIGINT NOT NULL, cumulative BIGINT NOT NULL, "
            "PRIMARY KEY (account_id, seq))"
        ),
    }
    indexes: ClassVar[dict[str, list[str]]] = {
        "accounts": ["creditor, status", "agency", "status"],
        "contacts": ["occurred_at", "agent"],
        "installments": ["due_date"],
    }

    def handle(self, tx: ProjectionTx, events: Sequence[EventRecord]) -> None:
        account_events = [e for e in events if isinstance(e.event, _ACCOUNT_EVENTS)]
        if not account_events:
            return
        accounts = self._load(tx, account_events)
        touched_plans: set[str] = set()
        contacts: list[tuple[Any, ...]] = []
        for record in account_events:
            key = _id_text(record.originator_id)
            account = record.event.mutate(accounts.get(key))
            accounts[key] = account
            event = record.event
            if isinstance(event, Account.ContactRecorded):
                contacts.append(
                    (
                        key,
                        record.version,
                        to_text(event.occurred_at),
                        event.channel,
                        event.direction,
                        event.outcome,
                        event.agent,
                        event.purpose,
                    )
                )
                callback = getattr(event, "callback_at", None)
                account.__dict__["_rm_callback_at"] = to_text(callback) if callback else None
                if event.agent:
                    account.__dict__["_rm_last_agent"] = event.agent
            elif isinstance(event, Account.PromiseBroken):
                account.__dict__["_rm_broken_at"] = to_text(record.timestamp)
            elif isinstance(event, Account.PromiseMade | Account.PaymentReceived):
                account.__dict__["_rm_broken_at"] = None
                if isinstance(event, Account.PromiseMade) and event.agent:
                    account.__dict__["_rm_last_agent"] = event.agent
            elif isinstance(event, Account.InstallmentMissed):
                account.__dict__["_rm_missed_at"] = to_text(record.timestamp)
            if isinstance(event, _SCHEDULE_EVENTS):
                touched_plans.add(key)
                if not isinstance(event, Account.PlanAgreed | Account.PlanAmended):
                    account.__dict__["_rm_missed_at"] = None
        tx.upsert("contacts", CONTACT_COLUMNS, ("account_id", "version"), contacts, update=False)
        self._write_schedules(tx, touched_plans, accounts)
        self._save(tx, accounts, set(accounts))  # every one of them was touched

    # ---------------------------------------------------------------- state

    #: Decoded account states kept between batches, per table (generation), at most
    #: this many and this many bytes of encoded state (in memory, several times
    #: that), so memory stays flat however many accounts the ledger has and however
    #: long their histories; a miss costs one decode of the state kept in the row.
    cache_size = 20_000
    cache_bytes = 8 << 20

    def __init__(self) -> None:
        self._caches: dict[str, _StateCache] = {}

    def reset(self) -> None:
        self._caches = {}

    _state_encoder: StateEncoder | None = None
    _state_decoder: tuple[Any, Callable[[bytes], Any]] | None = None

    def _decoder(self, tx: ProjectionTx) -> Callable[[bytes], Any]:
        transcoder = tx.ledger.mapper.transcoder
        if self._state_decoder is None or self._state_decoder[0] is not transcoder:
            self._state_decoder = (transcoder, fast_decoder(transcoder))
        return self._state_decoder[1]

    def _encoder(self, tx: ProjectionTx) -> StateEncoder:
        transcoder = tx.ledger.mapper.transcoder
        encoder = self._state_encoder
        if encoder is None or encoder.transcoder is not transcoder:
            encoder = self._state_encoder = StateEncoder(transcoder)
        return encoder

    def _cache(self, tx: ProjectionTx) -> _StateCache:
        table = tx.t("accounts")
        cache = self._caches.get(table)
        if cache is None:
            # Only the active generation and a rebuild's are ever written.
            while len(self._caches) >= 2:
                del self._caches[next(iter(self._caches))]
            cache = self._caches[table] = _StateCache(self.cache_size, self.cache_bytes)
        return cache

    def _load(self, tx: ProjectionTx, events: Sequence[EventRecord]) -> dict[str, Account]:
        """The state of every account the batch touches, as of just before its first event.

        A cached state is used when its version is the one just before the
        account's first event in the batch.  That is exact, with no need to look at
        the row: the batch starts at the position committed under the lock, a
        stream's versions follow the global order, so the row holds precisely
        that version, and folding the same events always gives the same state.
        (A batch that fails may have changed cached states: the engine then calls
        ``reset``.)  Accounts whose first event is their placement need nothing.
        """
        cache = self._cache(tx)
        found: dict[str, Account] = {}
        missing: list[str] = []
        seen: set[UUID] = set()
        for record in events:
            if record.originator_id in seen:
                continue
            seen.add(record.originator_id)
            if record.version == 1:
                continue
            key = _id_text(record.originator_id)
            cached = cache.get(key)
            if cached is not None and cached.version == record.version - 1:
                found[key] = cached
            else:
                missing.append(key)
        decode = self._decoder(tx)
        for start in range(0, len(missing), 512):
            chunk, marks = _in_list(missing[start : start + 512])
            for account_id, blob in tx.rows(
                f"SELECT account_id, state FROM {{accounts}} WHERE account_id IN ({marks})", chunk
            ):
                account = object.__new__(Account)
                state = decode(bytes(blob))
                state["_pending_events"] = []
                object.__setattr__(account, "__dict__", state)
                found[account_id] = account
        return found

    def _save(self, tx: ProjectionTx, accounts: dict[str, Account], keys: set[str]) -> None:
        encode = self._encoder(tx)
        cache = self._cache(tx)
        rows = []
        for key in sorted(keys):
            account = accounts[key]
            state = account.__dict__.copy()
            del state["_pending_events"]
            blob = encode(state)
            rows.append((*summary_columns(account), blob))
            cache.put(key, account, len(blob))
        cache.trim()
        tx.upsert("accounts", (*SUMMARY_COLUMNS, "state"), ("account_id",), rows)

    def _write_schedules(
        self, tx: ProjectionTx, keys: set[str], accounts: dict[str, Account]
    ) -> None:
        """Each account's installment schedule replaced by its plan's (none without a plan)."""
        ordered = sorted(keys)
        for start in range(0, len(ordered), 512):
            chunk, marks = _in_list(ordered[start : start + 512])
            tx.execute(f"DELETE FROM {{installments}} WHERE account_id IN ({marks})", chunk)
        rows = []
        for key in ordered:
            plan = accounts[key].plan
            if plan is None:
                continue
            cumulative = 0
            for seq, item in enumerate(plan["installments"], start=1):
                cumulative += item["amount"]
                rows.append(
                    (key, plan["id"], seq, day_text(item["due_date"]), item["amount"], cumulative)
                )
        tx.upsert("installments", INSTALLMENT_COLUMNS, ("account_id", "seq"), rows)


class _StateCache:
    """Account states by id, least recently saved first, bounded by count and encoded size."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        # An OrderedDict, not a dict: popping a plain dict's first key again and
        # again leaves its front full of dead slots that every ``next(iter())`` walks.
        self.entries: OrderedDict[str, tuple[Account, int]] = OrderedDict()
        self.bytes = 0

    def get(self, key: str) -> Account | None:
        found = self.entries.get(key)
        return found[0] if found is not None else None

    def put(self, key: str, account: Account, size: int) -> None:
        old = self.entries.pop(key, None)  # re-inserted last: the oldest go first
        if old is not None:
            self.bytes -= old[1]
        self.entries[key] = (account, size)
        self.bytes += size

    def trim(self) -> None:
        entries = self.entries
        while entries and (len(entries) > self.max_entries or self.bytes > self.max_bytes):
            self.bytes -= entries.popitem(last=False)[1][1]


def _in_list(keys: list[str]) -> tuple[list[str], str]:
    """``keys`` padded to a power of two (with a key no row has), and its ``?`` marks.

    A statement per list length would fill the drivers' statement caches with
    hundreds of large prepared statements; this way there are ten at most.
    """
    size = 1 << max(0, len(keys) - 1).bit_length()
    return [*keys, *([""] * (size - len(keys)))], ", ".join("?" * size)


_ID_TEXTS: dict[UUID, str] = {}


def _id_text(value: UUID) -> str:
    """``str(value)``, remembered: a busy account's id is formatted on every event."""
    text = _ID_TEXTS.get(value)
    if text is None:
        if len(_ID_TEXTS) >= 20_000:
            _ID_TEXTS.clear()
        text = _ID_TEXTS[value] = str(value)
    return text


CONTACT_COLUMNS = (
    "account_id",
    "version",
    "occurred_at",
    "channel",
    "direction",
    "outcome",
    "agent",
    "purpose",
)
INSTALLMENT_COLUMNS = ("account_id", "plan_id", "seq", "due_date", "amount", "cumulative")


SUMMARY_COLUMNS = (
    "account_id",
    "creditor",
    "reference",
    "original_creditor",
    "currency",
    "status",
    "principal",
    "interest",
    "fees",
    "total",
    "credit",
    "paid_total",
    "placed_total",
    "waived_total",
    "placed_at",
    "charge_off_date",
    "debtor_id",
    "open_promise_id",
    "promise_amount",
    "promise_due",
    "promise_made_at",
    "plan_id",
    "plan_kind",
    "plan_total",
    "plan_paid",
    "plan_missed",
    "last_contact_at",
    "last_rpc_at",
    "contact_count",
    "flags",
    "holder_kind",
    "holder_name",
    "agency",
    "law_firm",
    "buyer",
    "legal_status",
    "close_reason",
    "last_broken_promise_at",
    "last_missed_installment_at",
    "callback_at",
    "dispute_awaiting",
    "promise_paid",
    "last_agent",
    "version",
    "updated_at",
)


def summary_columns(account: Account) -> tuple[Any, ...]:
    promise = account.open_promise
    plan = account.plan
    holder = account.holder
    extra = account.__dict__
    return (
        str(account.id),
        account.creditor,
        account.reference,
        account.original_creditor,
        account.currency,
        account.status,
        *(account.balance[c] for c in COMPONENTS),
        account.total_balance,
        account.credit_balance,
        account.paid_total,
        account.placed_total,
        account.waived_total,
        to_text(account.placed_at) if account.placed_at else None,
        day_text(account.charge_off_date),
        str(account.debtor_id) if account.debtor_id else None,
        promise["id"] if promise else None,
        promise["amount"] if promise else None,
        day_text(promise["due_date"]) if promise else None,
        to_text(promise["made_at"]) if promise else None,
        plan["id"] if plan else None,
        plan["kind"] if plan else None,
        plan["total"] if plan else None,
        plan["paid"] if plan else None,
        plan["missed"] if plan else None,
        to_text(account.last_contact_at) if account.last_contact_at else None,
        to_text(account.last_rpc_at) if account.last_rpc_at else None,
        account.contact_count,
        ",".join(account.flags),
        holder["kind"],
        holder["name"],
        account.agency["name"] if account.agency else None,
        account.law_firm["name"] if account.law_firm else None,
        account.buyer,
        account.legal_status,
        account.close_reason,
        extra.get("_rm_broken_at"),
        extra.get("_rm_missed_at"),
        extra.get("_rm_callback_at"),
        sum(1 for d in account.disputes.values() if d["status"] == "awaiting_verification"),
        promise["paid"] if promise else None,
        extra.get("_rm_last_agent"),
        account.version,
        to_text(account.modified_on),
    )


def _plan_view(
    row: dict[str, Any], schedule: list[dict[str, Any]], today: date
) -> dict[str, Any] | None:
    if row["plan_id"] is None:
        return None
    installments = [(date.fromisoformat(i["due_date"]), int(i["amount"])) for i in schedule]
    position = plan_position(installments, int(row["plan_paid"] or 0), today)
    # A waiver or a credit can leave less owed than the schedule still asks for: the
    # plan never asks for more than the balance (and nothing once it is cleared).
    owed = max(0, sum(int(row[c] or 0) for c in ("principal", "interest", "fees")))
    return {
        "id": row["plan_id"],
        "kind": row["plan_kind"],
        "total": row["plan_total"],
        "paid": row["plan_paid"],
        "missed": row["plan_missed"],
        "next_due_date": position.next_due_date if owed > 0 else None,
        "next_amount": min(position.next_amount, owed),
        "arrears": min(position.arrears, owed),
    }


def read_summary(
    tx: Any, names: dict[str, str], account_id: UUID | str, now: datetime
) -> dict[str, Any] | None:
    """The summary of one account, with its time-relative fields computed for ``now``."""
    key = str(account_id)
    rows = tx.query(f"SELECT * FROM {names['accounts']} WHERE account_id = ?", (key,))
    if not rows:
        return None
    row: dict[str, Any] = rows[0]
    row.pop("state", None)
    schedule = tx.query(
        f"SELECT due_date, amount FROM {names['installments']} WHERE account_id = ? ORDER BY seq",
        (key,),
    )
    since = to_text(now - timedelta(days=7))
    counts = tx.query(
        f"SELECT channel, count(*) AS n FROM {names['contacts']} WHERE account_id = ? "
        "AND direction = 'outbound' AND occurred_at > ? GROUP BY channel",
        (key, since),
    )
    attempts = {channel: 0 for channel in CHANNELS}
    attempts.update({r["channel"]: int(r["n"]) for r in counts})
    row["plan"] = _plan_view(row, schedule, now.date())
    row["contacts_last_7_days"] = attempts
    row["flags"] = [f for f in (row["flags"] or "").split(",") if f]
    return row


def live_summary(account: Account, now: datetime) -> dict[str, Any]:
    """What ``read_summary`` would return once the read model has caught up with
    ``account``, computed from the aggregate itself.

    A write's response must reflect the write; waiting for the projection to fold
    it (a write transaction of its own, contended by every writer) costs more than
    the write.  Fields only the projection tracks for the worklist (``_rm_*``: when
    a promise broke, the last agent) are those of the live aggregate, usually None.
    """
    row: dict[str, Any] = dict(zip(SUMMARY_COLUMNS, summary_columns(account), strict=True))
    plan = account.plan
    schedule = (
        [{"due_date": day_text(i["due_date"]), "amount": i["amount"]} for i in plan["installments"]]
        if plan
        else []
    )
    since = now - timedelta(days=7)
    attempts = {channel: 0 for channel in CHANNELS}
    for contact in account.recent_contacts:
        if contact["direction"] == "outbound" and contact["occurred_at"] > since:
            attempts[contact["channel"]] = attempts.get(contact["channel"], 0) + 1
    row["plan"] = _plan_view(row, schedule, now.date())
    row["contacts_last_7_days"] = attempts
    row["flags"] = [f for f in (row["flags"] or "").split(",") if f]
    return row
