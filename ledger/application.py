"""The event-sourced application: one store, msgpack events, snapshots, hash chain."""

from __future__ import annotations

from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import (
    Mapper,
    MapperDeserialisationError,
    PersistenceError,
    StoredEvent,
    Transcoder,
)

from ledger import errors
from ledger.domain.account import Account
from ledger.domain.debtor import Debtor
from ledger.errors import StoreError
from ledger.store.rows import RowReader
from ledger.store.transcoder import MsgpackTranscoder
from ledger.store.url import StoreConfig, parse_store_url


class LedgerMapper(Mapper[UUID]):
    """The library's mapper, but an event whose bytes do not decode is reported as the
    ledger's ``StoredEventUnreadable`` naming the stream and version, not a library error."""

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        try:
            return super().to_domain_event(stored_event)
        except MapperDeserialisationError as e:
            if isinstance(e.__cause__, errors.StoredEventUnreadable):
                raise errors.StoredEventUnreadable(
                    f"stored event version {stored_event.originator_version} of "
                    f"{stored_event.originator_id} cannot be read: its bytes were altered "
                    "or damaged; verification shows what changed",
                    account_id=str(stored_event.originator_id),
                    version=stored_event.originator_version,
                ) from e
            raise


class Ledger(Application[UUID]):
    """Snapshots every 50 events keep a long-lived account fast to load."""

    name = "arrears"
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {Account: 50, Debtor: 50}
    env: ClassVar[dict[str, str]] = {
        "AGGREGATE_CACHE_MAXSIZE": "5000",
        # The service evicts an aggregate whenever a command fails, so the cached
        # object is never left half-changed; copying it on every load cost more
        # than the durable commit itself.
        "DEEPCOPY_FROM_AGGREGATE_CACHE": "n",
        # Commands need no fast-forward: a stale cached aggregate can only produce
        # a version conflict, which the service answers by reloading and retrying.
        # Reads that must be fresh go through ``Ledger.fresh``.
        "AGGREGATE_CACHE_FASTFORWARD": "n",
        "COMPRESSOR_TOPIC": "",
    }

    store_config: StoreConfig | None = None

    def construct_mapper(self) -> Mapper[UUID]:
        return self.factory.mapper(
            transcoder=self.construct_transcoder(), mapper_class=LedgerMapper
        )

    def construct_transcoder(self) -> Transcoder:
        return MsgpackTranscoder()

    def fresh(self, aggregate_id: UUID) -> Any:
        """The aggregate with every event stored so far, also those written by other processes."""
        aggregate: Any = self.repository.get(aggregate_id)
        newer: list[Any] = list(self.events.get(aggregate_id, gt=aggregate.version))
        for event in newer:
            aggregate = event.mutate(aggregate)
        return aggregate

    def rows(self) -> RowReader:
        return RowReader(self.recorder)

    def operational_store(self) -> Any:
        """The one ``ReadStore`` every table of operational state beside the events
        shares (API tokens, idempotency keys, the outbox, import claims, callback log):
        one connection per thread for all of them, not one per store — on PostgreSQL
        a busy server would otherwise open more connections than the server allows."""
        from ledger.readmodels.sqlstore import ReadStore

        store = self.__dict__.get("_operational_store")
        if store is None:
            if self.store_config is None:
                raise StoreError("operational tables need a ledger opened with open_ledger()")
            store = self.__dict__["_operational_store"] = ReadStore(self.store_config)
        return store


def open_ledger(store: str | StoreConfig, **env: str) -> Ledger:
    """Open (and create if needed) the ledger at a store URL, with a one-line error on failure."""
    config = parse_store_url(store) if isinstance(store, str) else store
    try:
        ledger = Ledger(env={**config.env, **env})
        ledger.store_config = config
        return ledger
    except (PersistenceError, OSError) as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise StoreError(
            f"cannot open store {config.display}: {first_line}", url=config.display
        ) from e
