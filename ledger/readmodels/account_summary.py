"""Account summary read model: one row per account, plus its contacts and plan schedule.

Rows are derived by folding events through the very ``Account.apply`` code the
ledger uses (the aggregate's state is kept beside the row, encoded with the
ledger's transcoder), so the summary can never disagree with the ledger about
what an event means.  Time-relative fields (next installment, arrears, contacts
in the last 7 days) are computed when read, from stored facts, for "now".
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from ledger.domain.account import Account
from ledger.domain.allocation import COMPONENTS
from ledger.domain.plans import plan_position
from ledger.readmodels.engine import EventRecord, Projection, ProjectionTx
from ledger.readmodels.sqlstore import day_text, to_text

CHANNELS = ("phone", "sms", "email", "letter", "visit")


class AccountSummaryProjection(Projection):
    name = "account_summary"
    version = 1
    tables = {
        "accounts": (
            "CREATE TABLE IF NOT EXISTS {name} ("
            "account_id TEXT PRIMARY KEY, creditor TEXT, reference TEXT, original_creditor TEXT, "
            "currency TEXT, status TEXT, principal BIGINT, interest BIGINT, fees BIGINT, "
            "total BIGINT, credit BIGINT, paid_total BIGINT, placed_total BIGINT, "
            "waived_total BIGINT, placed_at TEXT, charge_off_date TEXT, debtor_id TEXT, "
            "open_promise_id TEXT, promise_amount BIGINT, promise_due TEXT, promise_made_at TEXT, "
            "plan_id TEXT, plan_kind TEXT, plan_total BIGINT, plan_paid BIGINT, plan_missed BIGINT, "
            "last_contact_at TEXT, last_rpc_at TEXT, contact_count BIGINT, "
            "flags TEXT, holder_kind TEXT, holder_name TEXT, agency TEXT, law_firm TEXT, "
            "buyer TEXT, legal_status TEXT, close_reason TEXT, "
            "last_broken_promise_at TEXT, last_missed_installment_at TEXT, callback_at TEXT, "
            "version BIGINT, updated_at TEXT, state BLOB)"
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
    indexes = {
        "accounts": ["creditor, status", "agency", "status"],
        "contacts": ["occurred_at", "agent"],
        "installments": ["due_date"],
    }

    def handle(self, tx: ProjectionTx, events: Sequence[EventRecord]) -> None:
        account_events = [e for e in events if isinstance(e.event, Account.Event | Account.Placed)]
        if not account_events:
            return
        ids = list(dict.fromkeys(str(e.originator_id) for e in account_events))
        accounts = self._load(tx, ids)
        touched_plans: set[str] = set()
        contacts: list[tuple[Any, ...]] = []
        for record in account_events:
            key = str(record.originator_id)
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
            elif isinstance(event, Account.PromiseBroken):
                account.__dict__["_rm_broken_at"] = to_text(record.timestamp)
            elif isinstance(event, Account.PromiseMade | Account.PaymentReceived):
                account.__dict__["_rm_broken_at"] = None
            elif isinstance(event, Account.InstallmentMissed):
                account.__dict__["_rm_missed_at"] = to_text(record.timestamp)
            if isinstance(
                event,
                Account.PlanAgreed
                | Account.PlanAmended
                | Account.PlanCancelled
                | Account.PlanDefaulted
                | Account.PlanCompleted
                | Account.SoldToDebtBuyer
                | Account.Closed,
            ):
                touched_plans.add(key)
                if not isinstance(event, Account.PlanAgreed | Account.PlanAmended):
                    account.__dict__["_rm_missed_at"] = None
        tx.executemany(
            "INSERT INTO {contacts} (account_id, version, occurred_at, channel, direction, "
            "outcome, agent, purpose) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (account_id, version) DO NOTHING",
            contacts,
        )
        for key in touched_plans:
            self._write_schedule(tx, key, accounts[key])
        self._save(tx, accounts, {str(e.originator_id) for e in account_events})

    # ---------------------------------------------------------------- state

    def _load(self, tx: ProjectionTx, ids: list[str]) -> dict[str, Account]:
        decode = tx.ledger.mapper.transcoder.decode
        found: dict[str, Account] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            for row in tx.query(
                f"SELECT account_id, state FROM {{accounts}} WHERE account_id IN ({marks})", chunk
            ):
                account = object.__new__(Account)
                state = decode(bytes(row["state"]))
                state["_pending_events"] = []
                object.__setattr__(account, "__dict__", state)
                found[row["account_id"]] = account
        return found

    def _save(self, tx: ProjectionTx, accounts: dict[str, Account], keys: set[str]) -> None:
        encode = tx.ledger.mapper.transcoder.encode
        rows = []
        for key in sorted(keys):
            account = accounts[key]
            state = {k: v for k, v in account.__dict__.items() if k != "_pending_events"}
            rows.append((*summary_columns(account), encode(state)))
        columns = [*SUMMARY_COLUMNS, "state"]
        marks = ", ".join("?" for _ in columns)
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != "account_id")
        tx.executemany(
            f"INSERT INTO {{accounts}} ({', '.join(columns)}) VALUES ({marks}) "
            f"ON CONFLICT (account_id) DO UPDATE SET {updates}",
            rows,
        )

    def _write_schedule(self, tx: ProjectionTx, key: str, account: Account) -> None:
        tx.execute("DELETE FROM {installments} WHERE account_id = ?", (key,))
        plan = account.plan
        if plan is None:
            return
        cumulative = 0
        rows = []
        for seq, item in enumerate(plan["installments"], start=1):
            cumulative += item["amount"]
            rows.append(
                (key, plan["id"], seq, day_text(item["due_date"]), item["amount"], cumulative)
            )
        tx.executemany(
            "INSERT INTO {installments} (account_id, plan_id, seq, due_date, amount, cumulative) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )


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
    return {
        "id": row["plan_id"],
        "kind": row["plan_kind"],
        "total": row["plan_total"],
        "paid": row["plan_paid"],
        "missed": row["plan_missed"],
        "next_due_date": position.next_due_date,
        "next_amount": position.next_amount,
        "arrears": position.arrears,
    }


def read_summary(
    tx: Any, names: dict[str, str], account_id: UUID | str, now: datetime
) -> dict[str, Any] | None:
    """The summary of one account, with its time-relative fields computed for ``now``."""
    key = str(account_id)
    rows = tx.query(f"SELECT * FROM {names['accounts']} WHERE account_id = ?", (key,))
    if not rows:
        return None
    row = rows[0]
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
