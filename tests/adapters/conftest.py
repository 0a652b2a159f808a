"""Fixtures of the adapter tests: a ledger with a debtor to reach, at 14:00 the debtor's
time, and partners on loopback (``outbox_helpers``)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator, MutableMapping
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from uuid import UUID

import pytest
import structlog
from aiosmtpd.controller import Controller
from outbox_helpers import (
    AFTERNOON,
    Gateway,
    Mailbox,
    email_settings,
    free_port,
    make_renderer,
    open_account,
    sms_settings,
)

from adapters.email import EmailAdapter
from adapters.sms import SmsAdapter
from bootstrap import build_service
from ledger.clock import MovableClock
from ledger.services import LedgerService
from plugins.manager import ArrearsPluginManager, build_plugin_manager


def pytest_configure(config: pytest.Config) -> None:
    """Give the module name ``conftest`` back to tests/conftest.py.

    pytest imports every conftest.py outside a package as the module ``conftest``
    and keeps the one imported last in ``sys.modules``.  This directory's is
    imported before the modules in tests/, which ``from conftest import JANE``:
    pytest calls this hook as soon as this conftest is registered, before those
    imports, so they find the root conftest again.
    """
    root = Path(__file__).resolve().parent.parent / "conftest.py"
    for name, plugin in config.pluginmanager.list_name_plugin():
        if isinstance(plugin, ModuleType) and Path(name).resolve() == root:
            sys.modules["conftest"] = plugin


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(AFTERNOON, tick=timedelta(milliseconds=10))


@pytest.fixture
def pm() -> ArrearsPluginManager:
    return build_plugin_manager(entry_points=False)


@pytest.fixture
def svc(sqlite_url: str, clock: MovableClock, pm: ArrearsPluginManager) -> Iterator[LedgerService]:
    service = build_service(sqlite_url, clock=clock, plugins=pm, config={})
    yield service
    service.ledger.close()


@pytest.fixture
def account_id(svc: LedgerService) -> UUID:
    return open_account(svc)


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    g = Gateway()
    yield g
    g.stop()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: connections are refused."""
    return free_port()


@pytest.fixture
def make_sms(pm: ArrearsPluginManager) -> Iterator[Callable[..., SmsAdapter]]:
    made: list[SmsAdapter] = []

    def make(url: str, *, environ: dict[str, str] | None = None, **overrides: Any) -> SmsAdapter:
        adapter = SmsAdapter(sms_settings(url, **overrides), make_renderer(pm), environ=environ)
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        adapter.close()


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    """An aiosmtpd SMTP server on loopback: (what it received, its port)."""
    box = Mailbox()
    port = free_port()
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)
    controller = Controller(box, hostname="127.0.0.1", port=port, ready_timeout=5)
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture
def make_email(pm: ArrearsPluginManager) -> Callable[..., EmailAdapter]:
    def make(port: int, **overrides: Any) -> EmailAdapter:
        return EmailAdapter(email_settings(port, **overrides), make_renderer(pm))

    return make


@pytest.fixture
def captured_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[MutableMapping[str, Any]]]:
    """Every event dict the adapters and the service log, at every level, before any
    redaction: what a log line would be made of."""
    import adapters.email
    import adapters.outbox.engine
    import adapters.outbox.messages
    import adapters.sms
    import ledger.services

    saved = structlog.get_config()
    capture = structlog.testing.LogCapture()
    structlog.configure(
        processors=[capture],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        cache_logger_on_first_use=False,
    )
    for module in (
        adapters.email,
        adapters.outbox.engine,
        adapters.outbox.messages,
        adapters.sms,
        ledger.services,
    ):
        monkeypatch.setattr(module, "log", structlog.get_logger(module.__name__))
    try:
        yield capture.entries
    finally:
        structlog.configure(**saved)
