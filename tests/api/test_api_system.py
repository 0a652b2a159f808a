"""Health, metrics, the OpenAPI document and its page, request ids, logs, limits, plugin routes."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from api_helpers import *  # noqa: F403  (the API fixtures)
from api_helpers import Api, placement_body, token
from sanic import Sanic
from sanic_testing.testing import SanicASGITestClient

from api.config import ConfigError, ServerConfig
from ledger.logs import configure_logging
from ledger.services import LedgerService
from plugins import hookimpl
from plugins.types import Route
from server import create_app
from server import server_config as read_server_config


async def test_healthz_needs_no_token(client: SanicASGITestClient) -> None:
    """/healthz answers 200 while the store answers, without a token."""
    _, response = await client.get("/healthz")
    assert response.status == 200
    assert response.json["status"] == "ok"


async def test_metrics_in_prometheus_text_format(admin: Api, account: dict[str, Any]) -> None:
    """Requests by route template and status, latency buckets, events, projection lag."""
    await admin.get(f"/v1/accounts/{account['id']}")
    _, response = await admin.client.get("/metrics")
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    assert (
        'arrears_http_requests_total{method="GET",route="/v1/accounts/{id}",status="200"} 1' in text
    )
    bucket = 'arrears_http_request_duration_seconds_bucket{method="POST",route="/v1/accounts"'
    assert f'{bucket},le="+Inf"}} 1' in text
    assert re.search(r"^arrears_events_appended_total [1-9]", text, re.M)
    assert 'arrears_projection_lag_events{projection="account_summary"}' in text
    assert account["id"] not in text


async def test_openapi_documents_every_route(
    app: Sanic[Any, Any], client: SanicASGITestClient
) -> None:
    """Every route the server has is in /openapi.json, with responses and errors."""
    _, response = await client.get("/openapi.json")
    document = response.json
    assert document["openapi"] == "3.1.0"
    served = {
        (method, "/" + re.sub(r"<(\w+):str>", r"{\1}", route.path).lstrip("/"))
        for route in app.router.routes
        for method in route.methods
    }
    documented = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    assert served == documented
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    for path, item in document["paths"].items():
        for method, op in item.items():
            assert op["summary"], (method, path)
            assert any(code.startswith("2") for code in op["responses"]), (method, path)
            if op["security"]:
                assert {"401", "403"} <= set(op["responses"]), (method, path)
            if method == "post":
                assert "requestBody" in op, path
                assert {"400", "409", "413", "422"} <= set(op["responses"]), path
                assert "Idempotency-Key" in [p["name"] for p in op["parameters"]]
    refs = re.findall(r'"\$ref": ?"#/components/(\w+)/(\w+)"', response.text)
    assert refs
    for section, name in refs:
        assert name in document["components"][section]


async def test_docs_page_is_self_contained(client: SanicASGITestClient) -> None:
    """/docs renders the document with nothing fetched from elsewhere (no CDN)."""
    _, response = await client.get("/docs")
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "/v1/accounts/{id}/payments" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<link" not in page and "@import" not in page and "<script src" not in page


async def test_request_id_is_echoed_or_generated(client: SanicASGITestClient) -> None:
    """X-Request-ID comes back as given, or a new one when none (or a bad one) was given."""
    _, given = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    _, fresh = await client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", fresh.headers["x-request-id"])
    _, bad = await client.get("/healthz", headers={"X-Request-ID": "x" * 300})
    assert bad.headers["x-request-id"] != "x" * 300


@pytest.fixture
def info_logs() -> Iterator[None]:
    configure_logging(level="INFO", force=True)
    try:
        yield
    finally:
        configure_logging(level="WARNING", force=True)


async def test_one_structured_log_line_per_request_without_personal_data(
    admin: Api, info_logs: None
) -> None:
    """Each request logs one line: method, route, status, duration, request id, token id."""
    with structlog.testing.capture_logs() as logs:
        response = await admin.post(
            "/v1/accounts", placement_body(), headers={"X-Request-ID": "req-1"}
        )
    assert response.status == 201
    lines = [entry for entry in logs if entry["event"] == "http_request"]
    assert len(lines) == 1
    line = lines[0]
    assert line["method"] == "POST" and line["route"] == "/v1/accounts"
    assert line["status"] == 201 and line["request_id"] == "req-1"
    assert line["token_id"] and isinstance(line["duration_ms"], float)
    assert "Jane" not in repr(logs) and "415 555" not in repr(logs)


async def test_service_calls_run_off_the_event_loop(
    admin: Api, account: dict[str, Any], api_service: LedgerService, monkeypatch: Any
) -> None:
    """Handlers call the (synchronous) service from the thread pool, never the loop."""
    threads: list[str] = []
    original = api_service.account_summary

    def spy(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(api_service, "account_summary", spy)
    assert (await admin.get(f"/v1/accounts/{account['id']}")).status == 200
    assert threads and all(name.startswith("arrears-api") for name in threads)


def test_server_config_from_toml(tmp_path: Path) -> None:
    """The [server] table sets limits; unknown keys and unsafe values are refused."""
    path = tmp_path / "arrears.toml"
    path.write_text("[server]\nmax_body_size = 4096\nmax_page_size = 50\npage_size = 20\n")
    config = read_server_config(str(path))
    assert (config.max_body_size, config.max_page_size, config.page_size) == (4096, 50, 20)
    assert config.host == "127.0.0.1" and config.port == 8000
    for table in ({"max_body_szie": 1}, {"max_page_size": 501}, {"max_header_size": 99999}):
        with pytest.raises(ConfigError):
            ServerConfig.from_table(table)


def test_limits_reach_sanic(api_service: LedgerService, plugin_manager: Any) -> None:
    """Body and header limits and timeouts are Sanic's settings too."""
    config = ServerConfig(max_body_size=4096, max_header_size=4000, request_timeout=7)
    app = create_app(api_service, config, plugins=plugin_manager, name="limits_app")
    assert app.config.REQUEST_MAX_SIZE == 4096
    assert app.config.REQUEST_MAX_HEADER_SIZE == 4000
    assert app.config.REQUEST_TIMEOUT == 7


class HelloPlugin:
    @hookimpl
    def arrears_http_routes(self) -> list[Route]:
        def hello(request: Any, name: str) -> dict[str, Any]:
            """Say hello."""
            return {"hello": name, "role": request.ctx.principal.role}

        return [Route("GET", "/hello/<name>", hello, name="hello")]


async def test_plugin_routes_are_mounted_behind_authentication(
    api_service: LedgerService,
) -> None:
    """A plugin's route is served under /v1/plugins/<plugin>/, only with a token."""
    from plugins.manager import build_plugin_manager

    pm = build_plugin_manager(entry_points=False, extra=[("hello", HelloPlugin())])
    app = create_app(api_service, ServerConfig(), plugins=pm, name="plugin_app")
    client = app.asgi_client
    _, anonymous = await client.get("/v1/plugins/hello/hello/world")
    assert anonymous.status == 401
    api = Api(client, token(api_service, "auditor"))
    response = await api.get("/v1/plugins/hello/hello/world")
    assert response.status == 200
    assert response.json == {"hello": "world", "role": "auditor"}
    _, document = await client.get("/openapi.json")
    assert "get" in document.json["paths"]["/v1/plugins/hello/hello/{name}"]
