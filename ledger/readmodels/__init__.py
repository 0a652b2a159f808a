"""Read models: derived, rebuildable views of the ledger (see ``engine``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from ledger.application import Ledger
from ledger.errors import StoreError
from ledger.readmodels.account_summary import AccountSummaryProjection, read_summary
from ledger.readmodels.engine import Projection, ProjectionEngine
from ledger.readmodels.sqlstore import ReadStore


def default_projections() -> list[Projection]:
    return [
        AccountSummaryProjection(),
        # further projections are registered here, one line each
    ]


class ReadModels:
    """The read side of one ledger: the engine that maintains it and the queries over it."""

    def __init__(
        self, ledger: Ledger, projections: Sequence[Projection] | None = None, batch_size: int = 500
    ) -> None:
        if ledger.store_config is None:
            raise StoreError("read models need a ledger opened with open_ledger()")
        self.ledger = ledger
        self.store = ReadStore(ledger.store_config)
        self.engine = ProjectionEngine(
            ledger, self.store, list(projections or default_projections()), batch_size=batch_size
        )

    def summary(self, account_id: UUID | str, now: datetime) -> dict[str, Any] | None:
        names = self.engine.tables("account_summary")
        with self.store.transaction(write=False) as tx:
            return read_summary(tx, names, account_id, now)

    # queries: one method per read model, below this line

    def close(self) -> None:
        self.store.close()
