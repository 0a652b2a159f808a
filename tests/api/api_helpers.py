"""Fixtures and helpers of the HTTP API tests.

A fresh app per test over a real SQLite ledger and a movable clock.  The service
is built by the composition root with the built-in plugins only (installed example
plugins would change what the contact rules say); tokens are minted through
``service.tokens()`` exactly as ``arrears tokens create`` does.

Test modules take the fixtures with ``from api_helpers import *``: a ``conftest.py``
here would be imported as the module ``conftest`` and shadow the suite's own,
which other test modules import helpers from.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from sanic import Sanic
from sanic_testing.testing import SanicASGITestClient, TestingResponse

from api.config import ServerConfig
from bootstrap import build_service
from ledger.clock import MovableClock
from ledger.services import LedgerService
from plugins.manager import build_plugin_manager
from server import create_app

#: What ``from api_helpers import *`` gives a test module: the fixtures.
__all__ = [
    "account",
    "admin",
    "api_service",
    "app",
    "client",
    "plugin_manager",
    "server_config",
]


def placement_body(
    reference: str = "ACC-0001", creditor: str = "acme-bank", **overrides: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "creditor": creditor,
        "reference": reference,
        "original_creditor": "Acme Bank N.A.",
        "currency": "USD",
        "principal": "1000.00",
        "interest": "150.00",
        "fees": "50.00",
        "itemization_date": "2025-11-30",
        "itemization_kind": "charge_off",
        "charge_off_date": "2025-11-30",
        "debtor": {
            "name": "Jane Q. Debtor",
            "phones": ["+1 415 555 0134"],
            "emails": ["jane.debtor@example.com"],
            "address": {"line1": "12 Elm Street", "city": "Springfield", "country": "US"},
            "time_zone": "America/Chicago",
            "jurisdiction": "US-IL",
        },
    }
    body.update(overrides)
    return body


class Api:
    """The client with a token: ``await api.get(path)`` returns the response."""

    def __init__(self, client: SanicASGITestClient, token: str | None) -> None:
        self.client = client
        self.token = token

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return {**headers, **(extra or {})}

    async def get(self, path: str, **kwargs: Any) -> TestingResponse:
        headers = self.headers(kwargs.pop("headers", None))
        request, response = await self.client.get(path, headers=headers, **kwargs)
        conforms(self.client.sanic_app, request, response)
        return response

    async def post(self, path: str, body: Any = None, **kwargs: Any) -> TestingResponse:
        headers = self.headers(kwargs.pop("headers", None))
        if "content" not in kwargs:
            kwargs["json"] = {} if body is None else body
        request, response = await self.client.post(path, headers=headers, **kwargs)
        conforms(self.client.sanic_app, request, response)
        return response

    def as_(self, token: str | None) -> Api:
        return Api(self.client, token)


def conforms(app: Sanic[Any, Any], request: Any, response: TestingResponse) -> None:
    """The response's status is documented for its route, and its body matches the
    documented schema: every contract test is also a check of ``/openapi.json``."""
    route = getattr(request.ctx, "route", None) if request is not None else None
    if route is None:
        return
    document = app.ctx.state.openapi
    operation = document["paths"][route][request.method.lower()]
    documented = operation["responses"].get(str(response.status))
    assert documented is not None, f"{request.method} {route}: {response.status} not documented"
    schema = documented.get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        return
    root = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
    root["components"] = document["components"]
    errors = [e.message for e in jsonschema_rs.validator_for(root).iter_errors(response.json)]
    assert not errors, f"{request.method} {route} {response.status}: {errors[:3]}"


def token(service: LedgerService, role: str = "admin", **scope: str) -> str:
    _, text = service.tokens().create(role, label="test", **scope)
    return text


def error_code(response: TestingResponse) -> str:
    body = response.json
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    return str(body["error"]["code"])


# ------------------------------------------------------------------ fixtures


@pytest.fixture
def plugin_manager() -> Any:
    return build_plugin_manager(entry_points=False)


@pytest.fixture
def api_service(
    tmp_path: Path, clock: MovableClock, plugin_manager: Any
) -> Iterator[LedgerService]:
    service = build_service(f"sqlite:///{tmp_path / 'api.db'}", clock=clock, plugins=plugin_manager)
    yield service
    service.ledger.close()


@pytest.fixture
def server_config() -> ServerConfig:
    return ServerConfig(worker=False)


@pytest.fixture
def app(
    api_service: LedgerService, server_config: ServerConfig, plugin_manager: Any
) -> Sanic[Any, Any]:
    return create_app(
        api_service, server_config, plugins=plugin_manager, name=f"arrears_{uuid.uuid4().hex[:8]}"
    )


@pytest.fixture
def client(app: Sanic[Any, Any]) -> SanicASGITestClient:
    return app.asgi_client


@pytest.fixture
def admin(client: SanicASGITestClient, api_service: LedgerService) -> Api:
    return Api(client, token(api_service, "admin"))


@pytest.fixture
async def account(admin: Api) -> dict[str, Any]:
    """A placed account (USD 1000.00 principal, 150.00 interest, 50.00 fees)."""
    response = await admin.post("/v1/accounts", placement_body())
    assert response.status == 201, response.text
    return dict(response.json)


# ------------------------------------------------------------ a real server process


def free_port() -> int:
    """A TCP port nobody listens on now (the server binds it a moment later)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """``arrears serve --no-worker`` in its own process on a free port, as a context manager.

    The store gets an admin token (``token``) and, if asked, the demo portfolio before
    the server starts; the server is stopped with SIGINT on exit.  Its output goes to a
    file (``output()``), not a pipe nobody reads, so a chatty server never blocks.
    """

    def __init__(
        self, store: str, workdir: Path, *, demo_accounts: int = 0, config: str = ""
    ) -> None:
        self.store = store
        self.workdir = workdir
        self.demo_accounts = demo_accounts
        self.config = config
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"server-{self.port}.log"
        self.token = ""
        self.process: Any = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def __enter__(self) -> LiveServer:
        import os
        import subprocess
        import sys

        from server import load_demo

        service = build_service(self.store)
        try:
            if self.demo_accounts:
                load_demo(service, self.demo_accounts, echo=lambda _: None)
            _, self.token = service.tokens().create("admin", label="live server")
        finally:
            service.ledger.close()
        config_file = self.workdir / f"server-{self.port}.toml"
        config_file.write_text(f"[server]\n{self.config}\n")
        arrears = Path(sys.executable).parent / "arrears"
        command = [str(arrears), "serve", "--no-worker", "--port", str(self.port)]
        command += ["--store", self.store, "--config", str(config_file)]
        env = {**os.environ, "NO_COLOR": "1", "ARREARS_LOG_LEVEL": "WARNING"}
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=self.workdir
            )
        try:
            self._wait_until_healthy(timeout=90)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_healthy(self, timeout: float) -> None:
        import time

        import httpx

        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"arrears serve exited:\n{self.output()[-3000:]}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"arrears serve did not answer:\n{self.output()[-3000:]}")
            time.sleep(0.1)

    def stop(self) -> int | None:
        """SIGINT, as Ctrl-C would; the exit status (killed after 30 s without one)."""
        import signal
        import subprocess

        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
