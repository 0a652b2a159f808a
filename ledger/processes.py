"""Time processes: the passage of time turned into events, exactly once.

On each clock tick, for ``today`` (the UTC date of the service clock) and a
policy of ``grace_days`` (G) and ``default_after`` (N):

* **promise kept** -- an open promise whose payments since it was made reach its
  amount is recorded as kept (at once: it need not wait for its due date);
* **promise broken** -- an open promise still short of its amount when its due
  date plus G days has passed (``today > due + G``) is recorded as broken;
* **installment missed** -- each installment of the active plan whose due date
  plus G days has passed and that the payments towards the plan do not cover
  (``plan_position``: payments fill installments in due-date order) is recorded
  as missed, once per due date;
* **plan defaulted** -- an active plan with N or more missed installments on its
  current schedule is recorded as defaulted;
* **plan completed** -- an active plan whose payments reach its total, or whose
  account owes nothing any more (a waiver covered the rest), is recorded as
  completed; for a *settlement* plan the remaining balance is then waived (kind
  ``settlement``) and the account closed as ``settled``.

Everything time says about one account is recorded in **one save**, so a crash
never leaves a settlement completed but not waived, or a default without its
misses.  Outcomes are judged on the state when the worker looks: a payment that
arrives after the grace period but before the worker looks still counts.

Exactly once, also with two workers at once or a rerun after a crash:

1. candidates come from the account summary read model (cheap SQL, a superset
   of the accounts with something due; it may lag, which costs a no-op);
2. each candidate goes through ``LedgerService.advance_account``, which decides
   again on the account's fresh state (``due``) inside the service's retry loop;
3. two workers deciding the same thing race on the account's version: the loser
   reloads, finds it already done, and records nothing.  Domain refusals that
   mean "already done" (no open promise, plan no longer active, installment
   already missed) are no-ops, never errors.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

import structlog

from ledger import errors
from ledger.domain.account import Account
from ledger.domain.lifecycle import OPEN_STATUSES, Status
from ledger.domain.plans import grace_cutoff, newly_missed
from ledger.readmodels.sqlstore import from_text

if TYPE_CHECKING:
    from ledger.readmodels import ReadModels
    from ledger.services import LedgerService

log = structlog.get_logger("arrears.processes")

#: Refusals meaning "someone already recorded this": a no-op for a time process.
ALREADY_DONE: tuple[type[errors.LedgerError], ...] = (
    errors.NoOpenPromise,
    errors.NoActivePlan,
    errors.InstallmentAlreadyMissed,
)

Order = Literal["shuffle", "sorted"]


@dataclass(frozen=True)
class TimePolicy:
    """How long past a due date before it counts, and how many misses default a plan."""

    grace_days: int = 3
    default_after: int = 2

    def __post_init__(self) -> None:
        if type(self.grace_days) is not int or self.grace_days < 0:
            raise errors.ValidationError(
                f"grace days must be a whole number, 0 or more (got {self.grace_days!r})",
                field="grace_days",
            )
        if type(self.default_after) is not int or self.default_after < 1:
            raise errors.ValidationError(
                f"default after must be a whole number of missed installments, 1 or more "
                f"(got {self.default_after!r})",
                field="default_after",
            )


@dataclass(frozen=True)
class Due:
    """What time says should be recorded on one account now."""

    promise_id: str | None = None
    promise_outcome: Literal["kept", "broken"] | None = None
    plan_id: str | None = None
    missed: tuple[date, ...] = ()
    plan_outcome: Literal["completed", "defaulted"] | None = None
    settlement: bool = False

    def __bool__(self) -> bool:
        return bool(self.promise_outcome or self.missed or self.plan_outcome)


def due(account: Account, today: date, policy: TimePolicy) -> Due:
    """Decide, from the account's state alone, what the passage of time requires."""
    if Status(account.status) not in OPEN_STATUSES:
        return Due()  # a sale or close already ended every promise and plan
    cutoff = grace_cutoff(today, policy.grace_days)
    promise_id: str | None = None
    promise_outcome: Literal["kept", "broken"] | None = None
    promise = account.open_promise
    if promise is not None:
        if promise["paid"] >= promise["amount"]:
            promise_id, promise_outcome = promise["id"], "kept"
        elif promise["due_date"] < cutoff:
            promise_id, promise_outcome = promise["id"], "broken"
    plan = account.plan
    if plan is None:
        return Due(promise_id, promise_outcome)
    if account.total_balance <= 0:
        # Nothing is owed any more (a waiver or a credit covered the rest): no
        # installment can be missed, and the plan has done its work.
        return Due(
            promise_id,
            promise_outcome,
            plan["id"],
            (),
            "completed",
            settlement=plan["kind"] == "settlement",
        )
    missed = newly_missed(
        [(i["due_date"], i["amount"]) for i in plan["installments"]],
        plan["paid"],
        today,
        policy.grace_days,
        account.missed_dates,
        plan["missed"],
    )
    plan_outcome: Literal["completed", "defaulted"] | None = None
    if plan["paid"] >= plan["total"]:
        plan_outcome = "completed"
    elif plan["missed"] + len(missed) >= policy.default_after:
        plan_outcome = "defaulted"
    return Due(
        promise_id,
        promise_outcome,
        plan["id"],
        missed,
        plan_outcome,
        settlement=plan_outcome == "completed" and plan["kind"] == "settlement",
    )


def advance(account: Account, at: datetime, policy: TimePolicy) -> list[str]:
    """Apply to ``account`` (unsaved) what is due at ``at``; the names of the events added.

    Two groups: the promise, then the plan (its misses, then its end with the
    waiver and close).  An "already done" refusal ends its group and the other goes
    on; any other refusal propagates, and the caller then saves nothing at all.
    """
    before = len(account.pending_events)
    todo = due(account, at.date(), policy)
    if todo.promise_id is not None:
        try:
            if todo.promise_outcome == "kept":
                account.keep_promise(at=at, promise_id=todo.promise_id)
            else:
                account.break_promise(at=at, promise_id=todo.promise_id)
        except ALREADY_DONE as e:
            log.info("time_process_already_done", account_id=str(account.id), code=e.code)
    if todo.plan_id is not None:
        try:
            for due_date in todo.missed:
                account.miss_installment(at=at, due_date=due_date, plan_id=todo.plan_id)
            if todo.plan_outcome == "completed":
                account.complete_plan(at=at, plan_id=todo.plan_id)
                if todo.settlement:
                    if account.total_balance > 0:
                        account.waive(
                            at=at,
                            kind="settlement",
                            currency=account.currency,
                            reason="settlement plan paid in full",
                        )
                    account.close(at=at, reason="settled", note="settlement plan paid in full")
            elif todo.plan_outcome == "defaulted":
                account.default_plan(at=at, plan_id=todo.plan_id)
        except ALREADY_DONE as e:
            log.info("time_process_already_done", account_id=str(account.id), code=e.code)
    return [type(e).__name__ for e in account.pending_events[before:]]


# ------------------------------------------------------------------ candidates


def candidate_accounts(models: ReadModels, today: date, policy: TimePolicy) -> list[UUID]:
    """Accounts that may have something due, from the account summary read model.

    A superset (the decision is made again on fresh state), kept small: an open
    promise once it is paid up or past its grace period; an active plan once it is
    paid up, has N misses, or has an overdue uncovered installment that was not yet
    judged (its grace period ended after the plan's last recorded miss, or there
    are more such installments than recorded misses).
    """
    names = models.engine.tables("account_summary")
    accounts, installments = names["accounts"], names["installments"]
    cutoff = grace_cutoff(today, policy.grace_days)
    found: set[str] = set()
    with models.store.transaction(write=False) as tx:
        for row in tx.query(
            f"SELECT account_id FROM {accounts} WHERE open_promise_id IS NOT NULL "
            "AND (promise_due < ? OR promise_paid >= promise_amount)",
            (cutoff.isoformat(),),
        ):
            found.add(row["account_id"])
        for row in tx.query(
            f"SELECT account_id FROM {accounts} WHERE plan_id IS NOT NULL "
            "AND (plan_paid >= plan_total OR plan_missed >= ? "
            "OR principal + interest + fees <= 0)",
            (policy.default_after,),
        ):
            found.add(row["account_id"])
        for row in tx.query(
            f"SELECT a.account_id, a.plan_missed, a.last_missed_installment_at AS last_missed, "
            f"MAX(i.due_date) AS latest, COUNT(*) AS overdue FROM {installments} i "
            f"JOIN {accounts} a ON a.account_id = i.account_id AND a.plan_id = i.plan_id "
            "WHERE i.due_date < ? AND i.cumulative > a.plan_paid "
            "GROUP BY a.account_id, a.plan_missed, a.last_missed_installment_at",
            (cutoff.isoformat(),),
        ):
            if _not_yet_judged(row, policy):
                found.add(row["account_id"])
    return sorted(UUID(account_id) for account_id in found)


def _not_yet_judged(row: dict[str, Any], policy: TimePolicy) -> bool:
    """Whether an account's latest overdue uncovered installment may still need a miss.

    A tick that records misses records every installment overdue that day, so an
    installment whose grace period had ended by the last recorded miss was judged
    then (covered at the time, or missed).  A reversal can uncover one later: more
    overdue installments than recorded misses catches that.
    """
    if row["last_missed"] is None:
        return True
    if int(row["overdue"]) > int(row["plan_missed"] or 0):
        return True
    judged_through = from_text(row["last_missed"]).date() - timedelta(days=policy.grace_days)
    return date.fromisoformat(row["latest"]) >= judged_through


# -------------------------------------------------------------------- the tick


@dataclass
class TickReport:
    """What one tick of the time processes did."""

    at: datetime
    policy: TimePolicy
    candidates: int = 0
    accounts_changed: int = 0
    events: Counter[str] = field(default_factory=Counter)
    failures: dict[str, str] = field(default_factory=dict)  # account id -> error code
    stopped_early: bool = False
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "grace_days": self.policy.grace_days,
            "default_after": self.policy.default_after,
            "candidates": self.candidates,
            "accounts_changed": self.accounts_changed,
            "events": dict(sorted(self.events.items())),
            "failures": dict(self.failures),
            "stopped_early": self.stopped_early,
            "seconds": round(self.seconds, 3),
        }

    def describe(self) -> str:
        events = ", ".join(f"{name} {n}" for name, n in sorted(self.events.items())) or "none"
        text = (
            f"tick at {self.at.strftime('%Y-%m-%d %H:%M:%S')} UTC: {self.candidates} candidates, "
            f"{self.accounts_changed} accounts changed ({events}) in {self.seconds:.1f}s"
        )
        if self.failures:
            text += f"; {len(self.failures)} failed, retried next tick"
        if self.stopped_early:
            text += "; stopped early"
        return text


def run_tick(
    service: LedgerService,
    now: datetime,
    policy: TimePolicy,
    *,
    order: Order = "shuffle",
    stop: Callable[[], bool] | None = None,
    catch_up: bool = True,
) -> TickReport:
    """One tick: find the candidates as of ``now`` and advance each, one save per account.

    The account summary read model is caught up first unless ``catch_up=False``
    (the worker has just done it).  ``order="shuffle"`` spreads two concurrent
    workers over different accounts instead of colliding at every one; ``"sorted"``
    is deterministic.  ``stop`` is checked between accounts (each account is
    all-or-nothing).  A failing account is reported and left for the next tick; it
    never stops the others.
    """
    started = time.perf_counter()
    report = TickReport(at=now, policy=policy)
    models = service.read_models()
    if catch_up:
        models.engine.catch_up(["account_summary"])
    ids = candidate_accounts(models, now.date(), policy)
    if order == "shuffle":
        random.shuffle(ids)
    report.candidates = len(ids)
    for account_id in ids:
        if stop is not None and stop():
            report.stopped_early = True
            break
        try:
            recorded = service.advance_account(account_id, policy)
        except errors.LedgerError as e:
            report.failures[str(account_id)] = e.code
            log.warning("time_process_failed", account_id=str(account_id), code=e.code)
            continue
        if recorded:
            report.accounts_changed += 1
            report.events.update(recorded)
    report.seconds = time.perf_counter() - started
    log.info("time_processes_ran", **report.as_dict())
    return report
