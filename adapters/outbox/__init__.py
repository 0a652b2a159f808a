"""The outbox: adapters deliver what the ledger's events call for, at least once.

``base`` is the contract an adapter implements, ``engine`` collects and
delivers jobs, ``store`` keeps them beside the events.
"""

from __future__ import annotations

from adapters.outbox.base import Adapter, DeliveryError, Job, PermanentDeliveryError, event_key
from adapters.outbox.engine import DEFAULT_POLICY, OutboxEngine, OutboxReport
from adapters.outbox.store import STATES, OutboxEntry, OutboxStore, outbox_store

__all__ = [
    "DEFAULT_POLICY",
    "STATES",
    "Adapter",
    "DeliveryError",
    "Job",
    "OutboxEngine",
    "OutboxEntry",
    "OutboxReport",
    "OutboxStore",
    "PermanentDeliveryError",
    "event_key",
    "outbox_store",
]
