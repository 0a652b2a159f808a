"""Read models: derived, rebuildable views of the ledger (see ``engine``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID

from ledger.application import Ledger
from ledger.errors import StoreError
from ledger.readmodels.account_summary import AccountSummaryProjection, read_summary
from ledger.readmodels.contactability import ExclusionPolicy, default_exclusion
from ledger.readmodels.engine import Projection, ProjectionEngine
from ledger.readmodels.forecast import CashForecast, cash_forecast
from ledger.readmodels.portfolio import PortfolioProjection, PortfolioReport, portfolio_report
from ledger.readmodels.sqlstore import ReadStore
from ledger.readmodels.worklist import Worklist, scan_worklist


def default_projections() -> list[Projection]:
    return [
        AccountSummaryProjection(),
        PortfolioProjection(),
    ]


class ReadModels:
    """The read side of one ledger: the engine that maintains it and the queries over it."""

    def __init__(
        self,
        ledger: Ledger,
        projections: Sequence[Projection] | None = None,
        batch_size: int | None = None,
    ) -> None:
        if ledger.store_config is None:
            raise StoreError("read models need a ledger opened with open_ledger()")
        self.ledger = ledger
        self.store = ReadStore(ledger.store_config)
        options = {} if batch_size is None else {"batch_size": batch_size}
        self.engine = ProjectionEngine(
            ledger, self.store, list(projections or default_projections()), **options
        )

    def summary(self, account_id: UUID | str, now: datetime) -> dict[str, Any] | None:
        with self.engine.reading("account_summary") as (tx, names):
            return read_summary(tx, names, account_id, now)

    # queries: one method per read model, below this line

    def portfolio(
        self, as_of: datetime, *, creditor: str | None = None, agency: str | None = None
    ) -> PortfolioReport:
        """The portfolio report as of ``as_of`` (recorded time), every section from one snapshot."""
        with self.engine.reading("portfolio", snapshot=True) as (tx, names):
            return portfolio_report(tx, names, as_of=as_of, creditor=creditor, agency=agency)

    def worklist(
        self,
        now: datetime,
        *,
        agent: str | None = None,
        limit: int | None = None,
        exclude: ExclusionPolicy | None = None,
        grace_days: int = 0,
    ) -> Worklist:
        """Accounts that need action at ``now``, ranked, and those the policy left out."""
        # accounts and schedules from one snapshot
        with self.engine.reading("account_summary", snapshot=True) as (tx, names):
            return scan_worklist(
                tx,
                names,
                now=now,
                agent=agent,
                limit=limit,
                exclude=exclude or default_exclusion,
                grace_days=grace_days,
            )

    def forecast(self, today: date, *, weeks: int = 8) -> CashForecast:
        """Installments and promises falling due, by ISO week from ``today``'s."""
        with self.engine.reading("account_summary", snapshot=True) as (tx, names):
            return cash_forecast(tx, names, today=today, weeks=weeks)

    def close(self) -> None:
        self.store.close()
