"""Composition root: the one place that wires store, clock, logging and plugins.

The CLI, the worker and the HTTP server all get their ``LedgerService`` here, so
they share one configuration and one set of rules.  The core never sees the
plugin manager: it is handed plain callables built from the hooks.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import pluggy

from ledger.application import open_ledger
from ledger.clock import Clock, SystemClock
from ledger.domain.allocation import DEFAULT_ORDER, check_order
from ledger.logs import configure_logging
from ledger.services import AllocationOrder, LedgerService
from ledger.store.url import parse_store_url, store_url_from_env
from plugins.errors import PluginError
from plugins.manager import build_plugin_manager, call_hook


def allocation_order_from(pm: pluggy.PluginManager) -> AllocationOrder:
    """``arrears_allocation_order`` as the core's callable: first result wins, else default."""

    def allocation_order(creditor: str) -> Sequence[str]:
        order = call_hook(pm, "arrears_allocation_order", creditor=creditor)
        if order is None:
            return DEFAULT_ORDER
        try:
            return check_order(order)
        except (TypeError, ValueError) as e:
            implementers = ", ".join(
                i.plugin_name for i in pm.hook.arrears_allocation_order.get_hookimpls()
            )
            raise PluginError(implementers or "<unknown>", "arrears_allocation_order", e) from e

    return allocation_order


def build_service(
    store: str | None = None,
    *,
    clock: Clock | None = None,
    log_level: str = "WARNING",
    plugins: pluggy.PluginManager | None = None,
) -> LedgerService:
    configure_logging(level=os.environ.get("ARREARS_LOG_LEVEL", log_level))
    pm = plugins if plugins is not None else build_plugin_manager()  # before opening the store
    config = parse_store_url(store_url_from_env(store))
    return LedgerService(
        open_ledger(config), clock or SystemClock(), allocation_order=allocation_order_from(pm)
    )
