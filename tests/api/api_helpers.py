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
