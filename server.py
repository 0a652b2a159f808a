"""The HTTP server: the Sanic app factory, and what ``arrears serve`` runs.

``create_app(service, config)`` is the app over a ledger service (tests, benchmarks
and ``sanic server:create_app --factory``, which builds the service from
``ARREARS_STORE`` / ``ARREARS_CONFIG`` when the server starts).  ``serve`` runs it
in one process together with the worker (read models, observers, time
processes) on a background thread, so the service object is shared.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pluggy
import structlog
from sanic import Sanic

from api.app import build_app
from api.config import ServerConfig
from bootstrap import build_service, load_config
from ledger.logs import configure_logging
from ledger.services import LedgerService
from ledger.worker import Worker
from plugins.manager import build_plugin_manager
from plugins.observers import observers_from

log = structlog.get_logger("arrears.server")


def server_config(path: str | None = None, settings: dict[str, Any] | None = None) -> ServerConfig:
    """The ``[server]`` table of the config file (``--config`` / ``ARREARS_CONFIG``)."""
    table = (settings if settings is not None else load_config(path)).get("server")
    return ServerConfig.from_table(table)


def create_app(
    service: LedgerService | None = None,
    config: ServerConfig | None = None,
    *,
    plugins: pluggy.PluginManager | None = None,
    name: str = "arrears",
    settings: Mapping[str, Any] | None = None,
) -> Sanic[Any, Any]:
    """The API over ``service``; without one, the service is opened when the server starts
    (from ``ARREARS_STORE`` and ``ARREARS_CONFIG``) and closed when it stops."""
    if settings is None:
        settings = load_config()  # the file ARREARS_CONFIG names, if any
    config = config or server_config(settings=dict(settings))
    pm = plugins if plugins is not None else build_plugin_manager()

    def open_service() -> LedgerService:
        return build_service(None, log_level="INFO", plugins=pm, config=settings)

    return build_app(
        service,
        config,
        plugins=pm,
        open_service=None if service is not None else open_service,
        name=name,
        settings=settings,
    )


@dataclass
class BackgroundWorker:
    """The worker loop on a daemon thread of the server process."""

    worker: Worker
    thread: threading.Thread

    @classmethod
    def start(
        cls,
        service: LedgerService,
        pm: pluggy.PluginManager,
        tick: float,
        settings: Mapping[str, Any] | None = None,
    ) -> BackgroundWorker:
        worker = Worker(
            service,
            tick_seconds=tick,
            observers=observers_from(pm),
            deliveries=outbox_passes(service, settings or {}, pm),
        )
        thread = threading.Thread(target=worker.run, name="arrears-worker", daemon=True)
        thread.start()
        return cls(worker, thread)

    def stop(self, timeout: float = 10.0) -> None:
        self.worker.stop()
        self.thread.join(timeout)
        self.worker.close()


def outbox_passes(
    service: LedgerService, settings: Mapping[str, Any], pm: pluggy.PluginManager
) -> list[Callable[[Callable[[], bool]], object]]:
    """The outbox over the adapters configured in ``[adapters.*]`` (none: no pass), so a
    message the API queues is delivered by the same process that serves it."""
    from adapters.outbox.wiring import build_outbox

    engine = build_outbox(service, settings, pm)
    if not engine.adapters:
        return []

    def deliver(stop: Callable[[], bool]) -> None:
        engine.run(stop)

    return [deliver]


def load_demo(service: LedgerService, accounts: int, echo: Callable[[str], None]) -> None:
    """The demo portfolio, if the store has no accounts yet."""
    from tqdm import tqdm

    from ledger.demo import build_demo

    if service.ledger.recorder.max_notification_id():
        echo("demo: the store already holds events; not loading the demo portfolio")
        return
    result = build_demo(
        service,
        accounts=accounts,
        seed=7,
        progress=lambda steps: tqdm(steps, desc="demo", unit="step", file=sys.stderr),
    )
    echo(f"demo: {result.accounts_created} accounts placed, {result.steps} steps recorded")


def serve(
    *,
    store: str | None,
    config: ServerConfig,
    settings: dict[str, Any],
    demo: bool = False,
    demo_accounts: int = 300,
    worker: bool = True,
    echo: Callable[[str], None] = print,
) -> None:
    """Run the API (and the worker, unless ``worker`` is false) until SIGINT or SIGTERM."""
    pm = build_plugin_manager()
    level = os.environ.get("ARREARS_LOG_LEVEL", "INFO")
    # The demo records thousands of events: build it quietly, then log at ``level``.
    service = build_service(
        store, log_level="ERROR" if demo else level, plugins=pm, config=settings
    )
    background: BackgroundWorker | None = None
    try:
        if demo:
            load_demo(service, demo_accounts, echo)
            configure_logging(level=level, force=True)
            _, token = service.tokens().create("admin", label="demo")
            echo(f"admin token (shown once): {token}")
            echo(
                f'try: curl -H "Authorization: Bearer {token}" '
                f"http://{config.host}:{config.port}/v1/accounts?limit=3"
            )
        if worker and config.worker:
            background = BackgroundWorker.start(service, pm, config.worker_tick, settings)
        app = create_app(service, config, plugins=pm, settings=settings)
        store_config = service.ledger.store_config
        echo(
            f"serving {store_config.display if store_config else 'the ledger'} on "
            f"http://{config.host}:{config.port} (docs: /docs); Ctrl-C stops"
        )
        app.run(
            host=config.host,
            port=config.port,
            single_process=True,
            access_log=False,
            motd=False,
        )
    finally:
        if background is not None:
            background.stop()
        service.ledger.close()
