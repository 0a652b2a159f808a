"""Composition root: the one place that wires store, clock, logging and (later) plugins.

The CLI, the worker and the HTTP server all get their ``LedgerService`` here, so
they share one configuration and one set of rules.
"""

from __future__ import annotations

import os

from ledger.application import open_ledger
from ledger.clock import Clock, SystemClock
from ledger.logs import configure_logging
from ledger.services import LedgerService
from ledger.store.url import parse_store_url, store_url_from_env


def build_service(
    store: str | None = None, *, clock: Clock | None = None, log_level: str = "WARNING"
) -> LedgerService:
    configure_logging(level=os.environ.get("ARREARS_LOG_LEVEL", log_level))
    config = parse_store_url(store_url_from_env(store))
    return LedgerService(open_ledger(config), clock or SystemClock())
