"""Bulk replay: rebuild every aggregate from the stored events in one ordered scan.

Loading accounts one by one costs a query per account; an auditor's full replay
(and the portfolio summary) reads the events table once, grouped by stream, and
folds each stream through the same ``apply`` code the live system uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from ledger.application import Ledger


def replay_all(ledger: Ledger, *, batch_size: int = 5000) -> Iterator[Any]:
    """Yield each aggregate (accounts, debtors, seal log) as rebuilt from its events."""
    to_domain_event = ledger.mapper.to_domain_event
    current: Any = None
    current_id: UUID | str | None = None
    for row in ledger.rows().iter_rows("stream"):
        if row.originator_id != current_id:
            if current is not None:
                yield current
            current, current_id = None, row.originator_id
        event: Any = to_domain_event(
            StoredEvent(row.originator_id, row.version, row.topic, row.state)
        )
        current = event.mutate(current)
    if current is not None:
        yield current
