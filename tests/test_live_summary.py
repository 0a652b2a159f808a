"""The summary a write's response shows (computed from the aggregate) equals what the
account summary read model shows once it has caught up, for every demo account."""

from __future__ import annotations

from datetime import UTC, datetime

from ledger.application import open_ledger
from ledger.clock import MovableClock
from ledger.readmodels.account_summary import live_summary
from ledger.services import LedgerService

#: Kept by the projection for the worklist only; no response shows them.
WORKLIST_ONLY = {
    "last_broken_promise_at",
    "last_missed_installment_at",
    "callback_at",
    "last_agent",
}


def test_live_summary_equals_the_caught_up_read_model(demo_copy: str) -> None:
    app = open_ledger(demo_copy)
    try:
        now = datetime(2026, 6, 1, 12, tzinfo=UTC)
        service = LedgerService(app, MovableClock(now))
        models = service.read_models()
        models.engine.catch_up(["account_summary"])
        ids = service.list_account_ids()
        assert len(ids) > 100
        differ = []
        for account_id in ids:
            stored = models.summary(account_id, now)
            assert stored is not None
            live = live_summary(service.get_account(account_id), now)
            for key in WORKLIST_ONLY:
                stored.pop(key), live.pop(key)
            if live != stored:
                differ.append((account_id, {k for k in live if live[k] != stored.get(k)}))
        assert differ == []
    finally:
        app.close()
