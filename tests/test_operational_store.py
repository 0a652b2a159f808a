"""The operational tables beside the events share one connection per thread.

A busy API server on PostgreSQL opened one connection per thread *per store*
(tokens, idempotency keys, outbox, import claims, callback log) and ran out of
server connections ("too many clients"); they now share the ledger's one store.
"""

from __future__ import annotations

import threading
from typing import Any

from adapters.outbox.store import OutboxStore
from ledger.access import TokenStore
from ledger.application import open_ledger
from ledger.clock import MovableClock
from ledger.idempotency import IdempotencyStore


def test_operational_stores_share_one_connection_per_thread(
    store_url: str, clock: MovableClock
) -> None:
    ledger = open_ledger(store_url)
    try:
        tokens = TokenStore(ledger, clock)
        keys = IdempotencyStore(ledger, clock)
        outbox = OutboxStore(ledger)
        shared = ledger.operational_store()
        assert tokens._db.store is shared and keys._db.store is shared
        assert outbox.db.store is shared
        connections: list[Any] = []

        def work(n: int) -> None:
            tokens.create("auditor", label=f"t{n}")
            assert keys.begin("scope", f"key-{n}", "hash").outcome == "proceed"
            outbox.entries()
            connections.append(ledger.operational_store().connection)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(connections) == 4 and len({id(c) for c in connections}) == 4
        assert len(tokens.list()) == 4
    finally:
        ledger.close()
