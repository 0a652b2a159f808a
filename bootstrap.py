"""Composition root: the one place that wires store, clock, logging and plugins.

The CLI, the worker and the HTTP server all get their ``LedgerService`` here, so
they share one configuration and one set of rules.  The core never sees the
plugin manager: it is handed plain callables built from the hooks.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pluggy

from ledger.application import open_ledger
from ledger.clock import Clock, SystemClock
from ledger.domain.allocation import DEFAULT_ORDER, check_order
from ledger.logs import configure_logging
from ledger.services import AllocationOrder, LedgerService
from ledger.store.url import parse_store_url, store_url_from_env
from plugins.errors import PluginError
from plugins.gate import ContactRulesCaller, PackMap, configure_packs
from plugins.manager import build_plugin_manager, call_hook

CONFIG_ENV = "ARREARS_CONFIG"


def load_config(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The TOML config file (``--config`` / ``ARREARS_CONFIG``); none given means defaults.

    Secrets never live in it: it names the environment variables that hold them."""
    chosen = path if path is not None else os.environ.get(CONFIG_ENV)
    if not chosen:
        return {}
    file = Path(chosen)
    try:
        with file.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise SystemExit(f"error: config file {file} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise SystemExit(f"error: config file {file} is not valid TOML: {e}") from None


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
    config: Mapping[str, Any] | None = None,
) -> LedgerService:
    configure_logging(level=os.environ.get("ARREARS_LOG_LEVEL", log_level))
    settings = load_config() if config is None else config
    pm = plugins if plugins is not None else build_plugin_manager()  # before opening the store
    try:
        configure_packs(pm, settings.get("rule_pack_parameters"))
        pack_map = PackMap.from_env(settings.get("rule_packs"))
        pack_map.check_loaded(pm)
    except ValueError as e:
        # A compliance setting that cannot be honoured stops start-up, in one line.
        raise SystemExit(f"error: {e}") from None
    store_config = parse_store_url(store_url_from_env(store))
    return LedgerService(
        open_ledger(store_config),
        clock or SystemClock(),
        allocation_order=allocation_order_from(pm),
        contact_rules=ContactRulesCaller(pm, pack_map),
    )
