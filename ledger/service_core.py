"""The service layer's plumbing: loading aggregates, one writer per aggregate, retries.

``LedgerService`` is assembled from use-case classes by area (``ledger.services``,
``ledger.contact_use_cases``); they all stand on this: the clock, fresh or cached
loads, and ``_change``, which runs a command on fresh state and saves, re-running
it from scratch when another writer won the race (never merging).
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
import weakref
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import structlog
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from ledger import errors
from ledger.application import Ledger
from ledger.clock import Clock, ensure_utc
from ledger.contact_gate import ContactRules
from ledger.domain.account import Account
from ledger.domain.debtor import Debtor
from ledger.domain.ids import account_id as derive_account_id

log = structlog.get_logger("arrears.service")

T = TypeVar("T")


class ServiceCore:
    """What every use case needs; the fields are declared by ``LedgerService``."""

    ledger: Ledger
    clock: Clock
    contact_rules: ContactRules
    max_attempts: int
    new_id: Callable[[], str]
    _locks: weakref.WeakValueDictionary[UUID, threading.RLock]
    _locks_guard: threading.Lock

    def _now(self) -> datetime:
        return ensure_utc(self.clock.now())

    def _load(self, aggregate_id: UUID, kind: type[T], *, fresh: bool) -> T:
        try:
            if fresh:
                with self._lock_for(aggregate_id):
                    aggregate = self.ledger.fresh(aggregate_id)
            else:
                aggregate = self.ledger.repository.get(aggregate_id)
        except AggregateNotFoundError:
            aggregate = None
        if not isinstance(aggregate, kind):
            error = errors.DebtorNotFound if kind is Debtor else errors.AccountNotFound
            noun = "debtor" if kind is Debtor else "account"
            raise error(f"no {noun} {aggregate_id}", **{f"{noun}_id": str(aggregate_id)})
        return aggregate

    def get_account(self, account_id: UUID) -> Account:
        """The account with everything recorded so far, by any process."""
        return self._load(account_id, Account, fresh=True)

    def get_debtor(self, debtor_id: UUID) -> Debtor:
        return self._load(debtor_id, Debtor, fresh=True)

    def _account_for_command(self, account_id: UUID) -> Account:
        # Possibly stale: a stale aggregate can only lose the version race, and then
        # ``_change`` reloads it and runs the command again.
        return self._load(account_id, Account, fresh=False)

    def _debtor_for_command(self, debtor_id: UUID) -> Debtor:
        return self._load(debtor_id, Debtor, fresh=False)

    def _lock_for(self, aggregate_id: UUID) -> threading.RLock:
        """One writer per aggregate per process: cached aggregates are shared, not copied."""
        with self._locks_guard:
            lock = self._locks.get(aggregate_id)
            if lock is None:
                lock = self._locks[aggregate_id] = threading.RLock()
            return lock

    def _forget(self, aggregate_id: UUID) -> None:
        cache = self.ledger.repository.cache
        if cache is not None:
            with contextlib.suppress(KeyError):
                cache.get(aggregate_id, evict=True)

    def _change(
        self, aggregate_id: UUID, load: Callable[[UUID], Any], command: Callable[[Any], T]
    ) -> T:
        """Run ``command`` on fresh state and save; on a version conflict, start again."""
        with self._lock_for(aggregate_id):
            for attempt in range(1, self.max_attempts + 1):
                aggregate = load(aggregate_id)
                try:
                    result = command(aggregate)
                    if aggregate.pending_events:
                        self.ledger.save(aggregate)
                except IntegrityError:
                    self._forget(aggregate_id)
                    log.info(
                        "version_conflict_retry", aggregate_id=str(aggregate_id), attempt=attempt
                    )
                    # Full jitter: the writer that just won holds a warm cache and would
                    # otherwise win every race; a random pause lets the loser through.
                    time.sleep(random.uniform(0, min(0.2, 0.002 * 2**attempt)))
                    continue
                except BaseException:
                    # The cached object may hold a half-applied command: drop it.
                    self._forget(aggregate_id)
                    raise
                return result
        raise errors.ConcurrencyConflict(
            f"{aggregate_id} kept changing under us; gave up after {self.max_attempts} attempts",
            aggregate_id=str(aggregate_id),
        )

    def _account(self, account_id: UUID, command: Callable[[Account], Any]) -> Account:
        def run(account: Account) -> Account:
            command(account)
            return account

        account = self._change(account_id, self._account_for_command, run)
        log.info("account_changed", account_id=str(account_id), version=account.version)
        return account

    def resolve_account(self, ref: str) -> UUID:
        """An account id, ``CREDITOR/REFERENCE``, or a creditor's reference if it is unique."""
        try:
            return self.get_account(UUID(ref)).id
        except ValueError:
            pass
        if "/" in ref:
            creditor, _, reference = ref.partition("/")
            candidate = derive_account_id(creditor, reference)
            try:
                return self.get_account(candidate).id
            except errors.AccountNotFound:
                pass
        matches = [aid for aid, reference in self.iter_account_references() if reference == ref]
        if not matches:
            raise errors.AccountNotFound(f"no account with id or reference {ref!r}", reference=ref)
        if len(matches) > 1:
            raise errors.ValidationError(
                f"reference {ref!r} is used by {len(matches)} creditors; give CREDITOR/{ref} "
                "or the account id",
                reference=ref,
            )
        return matches[0]

    def iter_account_references(self) -> list[tuple[UUID, str]]:
        topic = f"{Account.Placed.__module__}:{Account.Placed.__qualname__}"
        found: list[tuple[UUID, str]] = []
        start = 1
        while True:
            batch = self.ledger.recorder.select_notifications(
                start=start, limit=1000, topics=[topic]
            )
            for n in batch:
                state = self.ledger.mapper.transcoder.decode(n.state)
                found.append((UUID(str(n.originator_id)), state["reference"]))
            if len(batch) < 1000:
                return found
            start = batch[-1].id + 1

    def _debtor_or_none(self, debtor_id: UUID, *, fresh: bool = False) -> Debtor | None:
        try:
            return self._load(debtor_id, Debtor, fresh=fresh)
        except errors.DebtorNotFound:
            return None

    def debtor_of(self, account: Account, *, fresh: bool = False) -> Debtor | None:
        """The account's debtor; None when it names none or the debtor is not in the store.

        ``fresh`` for what leaves the ledger (a sale file, a placement file): it then
        includes changes other processes made since this one cached the debtor.
        """
        if account.debtor_id is None:
            return None
        return self._debtor_or_none(account.debtor_id, fresh=fresh)
