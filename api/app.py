"""The Sanic application: routing, the request pipeline, errors, request ids, logs, metrics.

The event loop only moves bytes.  Everything that touches the store — the token
check, the idempotency key, the handler and its service calls — runs as one
``pipeline`` call in a thread pool (``run_sync``), so a slow database never
blocks other requests.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pluggy
import structlog
from sanic import HTTPResponse, Request, Sanic
from sanic.exceptions import RequestCancelled, SanicException
from sanic.handlers import ErrorHandler
from sanic.response import BaseHTTPResponse

from api import routes  # noqa: F401  (declares every route on V1)
from api.auth import authenticate, authorize
from api.config import ServerConfig
from api.docs_page import docs_page
from api.endpoints import V1, Call, Endpoint, Reply
from api.errors import ApiError, bad_request, error_body, render
from api.idempotency import HEADER as IDEMPOTENCY_HEADER
from api.idempotency import once
from api.metrics import Metrics
from api.openapi import REQUEST_ID_PATTERN, document
from api.plugin_routes import PluginRoute, collect
from api.schemas import coerce_query, parse_json, validate
from ledger.access import Principal
from ledger.services import LedgerService

T = TypeVar("T")

_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)
JSON = "application/json"


@dataclass
class AppState:
    """What the handlers share: the service, the settings, and the per-process parts."""

    service: LedgerService | None
    config: ServerConfig
    plugins: pluggy.PluginManager | None
    endpoints: list[Endpoint]
    plugin_routes: list[PluginRoute]
    openapi: dict[str, Any]
    docs: str
    metrics: Metrics = field(default_factory=Metrics)
    executor: ThreadPoolExecutor | None = None
    #: Builds the service at start-up when none was given (``sanic server:create_app``).
    open_service: Callable[[], LedgerService] | None = None
    owns_service: bool = False
    #: The whole config file (``[adapters.*]`` for the partner callbacks).
    settings: Mapping[str, Any] = field(default_factory=dict)

    def pool(self) -> ThreadPoolExecutor:
        if self.executor is None:
            self.executor = ThreadPoolExecutor(
                max_workers=self.config.threads, thread_name_prefix="arrears-api"
            )
        return self.executor

    @property
    def ledger_service(self) -> LedgerService:
        if self.service is None:
            raise RuntimeError("the server has not started: no ledger service yet")
        return self.service


async def run_sync(state: AppState, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in the thread pool, with this request's log context."""
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    return await loop.run_in_executor(state.pool(), functools.partial(context.run, fn, *args))


# ------------------------------------------------------------------ pipeline


@dataclass(frozen=True)
class Incoming:
    """What the pipeline needs of a request, copied off the event loop's objects."""

    method: str
    path: str
    path_params: dict[str, str]
    query: dict[str, list[str]]
    body: bytes
    authorization: str | None
    idempotency_key: str | None
    request_id: str
    content_type: str = JSON


@dataclass
class Outgoing:
    status: int
    body: bytes
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)
    token_id: str | None = None


def _parse_query(endpoint: Endpoint, query: Mapping[str, list[str]]) -> dict[str, Any]:
    known = {p.name: p for p in endpoint.query}
    values: dict[str, Any] = {}
    for name, given in query.items():
        param = known.get(name)
        if param is None:
            raise bad_request(
                "unknown_field",
                f"unknown query parameter {name!r}; known: {', '.join(known) or 'none'}",
                field=name,
            )
        if len(given) != 1:
            raise bad_request("invalid_value", f"{name} given more than once", field=name)
        value = coerce_query(param.schema, given[0], name)
        validate(param.schema, value, name)
        values[name] = value
    for param in endpoint.query:
        if param.required and param.name not in values:
            raise bad_request("missing_field", f"{param.name} is required", field=param.name)
    return values


def _parse_body(endpoint: Endpoint, body: bytes, content_type: str = JSON) -> dict[str, Any]:
    if endpoint.body is None:
        return {}
    media_type = content_type.split(";")[0].strip().lower()
    if media_type in endpoint.raw_media_types:
        return {}  # the handler reads the raw body (a CSV file, a gateway's form post)
    if not body.strip():
        required = endpoint.body.get("required", ())
        if required:
            raise bad_request(
                "malformed_json",
                f"the request body is empty: send a JSON object with {', '.join(required)}",
            )
        return {}  # nothing to say (e.g. POST .../deceased): an empty object
    data = parse_json(body)
    if not isinstance(data, dict):
        raise bad_request("invalid_type", "the request body must be a JSON object", field="body")
    validate(endpoint.body, data, "body")
    return data


def _encode(reply: Reply) -> bytes:
    if isinstance(reply.body, bytes):
        return reply.body
    if isinstance(reply.body, str) and reply.content_type != JSON:
        return reply.body.encode()
    return json.dumps(reply.body, ensure_ascii=False, separators=(",", ":")).encode()


def pipeline(state: AppState, endpoint: Endpoint, incoming: Incoming) -> Outgoing:
    """Authenticate, validate, authorize, run (once per idempotency key), encode."""
    log = structlog.get_logger("arrears.http")
    principal: Principal | None = None
    try:
        service = state.ledger_service
        if endpoint.action is not None:
            principal = authenticate(service, incoming.authorization)
            if "id" not in endpoint.path_params:
                authorize(principal, endpoint.action)
        call = Call(
            endpoint=endpoint,
            service=service,
            config=state.config,
            plugins=state.plugins,
            principal=principal,
            path=incoming.path_params,
            query=_parse_query(endpoint, incoming.query),
            body=_parse_body(endpoint, incoming.body, incoming.content_type),
            request_id=incoming.request_id,
            extra={
                "metrics": state.metrics,
                "openapi": state.openapi,
                "docs": state.docs,
                "settings": state.settings,
            },
        )
        if "id" in endpoint.path_params:
            call.account()  # 404 unless the caller sees it, 403 unless the role may act on it
        if (
            endpoint.method == "POST"
            and incoming.idempotency_key is not None
            and principal is not None
        ):
            reply = once(
                service,
                scope=principal.token_id,
                key=incoming.idempotency_key,
                method=incoming.method,
                path=incoming.path,
                body=incoming.body,
                wait=state.config.idempotency_wait,
                run=lambda: endpoint.handler(call),
            )
        else:
            reply = endpoint.handler(call)
    except Exception as e:
        status, body = render(e)
        if status >= 500:
            log.error(
                "http_request_failed",
                route=endpoint.path,
                status=status,
                error=type(e).__name__,
                exc_info=not isinstance(e, ApiError),
            )
        reply = Reply(status, body)
        if status == 401:
            reply.headers["WWW-Authenticate"] = 'Bearer realm="arrears"'
    return Outgoing(
        status=reply.status,
        body=_encode(reply),
        content_type=reply.content_type,
        headers=reply.headers,
        token_id=principal.token_id if principal is not None else None,
    )


def _request_id(request: Request) -> str:
    given = request.headers.get("x-request-id")
    if given and _REQUEST_ID.match(given):
        return str(given)
    return uuid.uuid4().hex


def _handler(endpoint: Endpoint) -> Callable[..., Any]:
    async def handle(request: Request, **path: str) -> HTTPResponse:
        state: AppState = request.app.ctx.state
        request.ctx.route = endpoint.path
        if len(request.body) > state.config.max_body_size:
            return _error_response(request, 413, "payload_too_large", _too_large(state.config))
        incoming = Incoming(
            method=request.method,
            path=request.path,
            path_params={k: str(v) for k, v in path.items()},
            query=dict(request.get_args(keep_blank_values=True)),
            body=bytes(request.body),
            authorization=request.headers.get("authorization"),
            idempotency_key=request.headers.get(IDEMPOTENCY_HEADER),
            request_id=request.ctx.request_id,
            content_type=request.headers.get("content-type", JSON),
        )
        out = await run_sync(state, pipeline, state, endpoint, incoming)
        request.ctx.token_id = out.token_id
        return HTTPResponse(
            out.body, status=out.status, headers=out.headers, content_type=out.content_type
        )

    handle.__name__ = endpoint.operation_id
    return handle


def _too_large(config: ServerConfig) -> str:
    return f"the request body is over the limit of {config.max_body_size} bytes"


def _error_response(request: Request, status: int, code: str, message: str) -> HTTPResponse:
    body = json.dumps(error_body(code, message)).encode()
    return HTTPResponse(body, status=status, content_type=JSON)


# ------------------------------------------------------------ plugin routes


def _plugin_handler(route: PluginRoute) -> Callable[..., Any]:
    async def handle(request: Request, **params: Any) -> HTTPResponse:
        state: AppState = request.app.ctx.state
        request.ctx.route = route.openapi_path
        try:
            service = state.ledger_service
            principal = await run_sync(
                state, authenticate, service, request.headers.get("authorization")
            )
            request.ctx.token_id = principal.token_id
            request.ctx.principal = principal
            request.ctx.service = service
            if inspect.iscoroutinefunction(route.handler):
                result = await route.handler(request, **params)
            else:
                result = await run_sync(state, functools.partial(route.handler, request, **params))
        except Exception as e:
            status, body = render(e)
            if status >= 500:
                structlog.get_logger("arrears.http").error(
                    "plugin_route_failed", plugin=route.plugin, route=route.path, exc_info=True
                )
            headers = {"WWW-Authenticate": 'Bearer realm="arrears"'} if status == 401 else {}
            return HTTPResponse(
                json.dumps(body).encode(), status=status, headers=headers, content_type=JSON
            )
        if isinstance(result, HTTPResponse):
            return result
        status = 200
        if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], int):
            status, result = result
        return HTTPResponse(
            json.dumps(result, ensure_ascii=False).encode(), status=status, content_type=JSON
        )

    return handle


# --------------------------------------------------------------------- errors


_SANIC_CODES = {
    400: "malformed_request",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
    431: "headers_too_large",
    503: "service_unavailable",
}


class JsonErrorHandler(ErrorHandler):
    """Errors raised by Sanic itself (no such route, wrong method, body too large,
    timeouts) in the same ``{"error": ...}`` shape as everything else."""

    def default(self, request: Request, exception: Exception) -> HTTPResponse:
        status = 500
        headers: dict[str, str] = {}
        if isinstance(exception, RequestCancelled):
            # The client went away (a closed connection): nothing failed here, and
            # nobody is left to answer.  Logged as nginx does, 499, without a trace.
            response = HTTPResponse(b"", status=499)
            _finish(request, response)
            return response
        if isinstance(exception, SanicException):
            status = int(getattr(exception, "status_code", 500) or 500)
            if status == 413 and "header" in str(exception).lower():
                status = 431  # Sanic says 413 for headers too; the client must know which
            headers = {str(k): str(v) for k, v in (getattr(exception, "headers", {}) or {}).items()}
        if status >= 500:
            structlog.get_logger("arrears.http").error(
                "http_request_failed", error=type(exception).__name__, exc_info=exception
            )
            code, message = "internal_error", "the server failed to handle the request"
            if status == 503:
                code, message = "service_unavailable", "the server cannot answer now; retry"
        else:
            code = _SANIC_CODES.get(status, "bad_request")
            message = _sanic_message(request, status, exception)
        body = json.dumps(error_body(code, message)).encode()
        response = HTTPResponse(body, status=status, headers=headers, content_type=JSON)
        _finish(request, response)
        return response


def _sanic_message(request: Request, status: int, exception: Exception) -> str:
    if status == 404:
        return "no such route; see /openapi.json or /docs"
    if status == 405:
        return f"{request.method} is not allowed here"
    state = getattr(request.app.ctx, "state", None)
    if status == 413:
        return _too_large(state.config) if state is not None else "the request is too large"
    if status == 431:
        limit = f" of {state.config.max_header_size} bytes" if state is not None else ""
        return f"the request headers are over the limit{limit}"
    return str(exception).splitlines()[0][:200] if str(exception) else "bad request"


# ---------------------------------------------------------- request life cycle


def _start(request: Request) -> None:
    if getattr(request.ctx, "request_id", None) is not None:
        return
    request.ctx.request_id = _request_id(request)
    request.ctx.started = time.perf_counter()
    request.ctx.route = None
    request.ctx.token_id = None
    request.ctx.finished = False
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request.ctx.request_id)
    state = getattr(request.app.ctx, "state", None)
    if state is not None:
        state.metrics.started()


def _finish(request: Request, response: HTTPResponse) -> None:
    """Echo the request id, count the request, and log it: once per request."""
    _start(request)
    if request.ctx.finished:
        return
    request.ctx.finished = True
    response.headers["X-Request-ID"] = request.ctx.request_id
    seconds = time.perf_counter() - request.ctx.started
    route = request.ctx.route or "unmatched"
    state = getattr(request.app.ctx, "state", None)
    if state is not None:
        state.metrics.observe(request.method, route, response.status, seconds)
    structlog.get_logger("arrears.http").info(
        "http_request",
        method=request.method,
        route=route,
        status=response.status,
        duration_ms=round(seconds * 1000, 3),
        request_id=request.ctx.request_id,
        token_id=request.ctx.token_id,
    )


# ----------------------------------------------------------------- the app


def build_app(
    service: LedgerService | None,
    config: ServerConfig | None = None,
    *,
    plugins: pluggy.PluginManager | None = None,
    open_service: Callable[[], LedgerService] | None = None,
    name: str = "arrears",
    settings: Mapping[str, Any] | None = None,
) -> Sanic[Any, Any]:
    """A Sanic app serving contract v1 over ``service`` (or over the service
    ``open_service`` builds when the server starts)."""
    config = config or ServerConfig()
    plugin_routes = collect(plugins)
    endpoints = list(V1.endpoints)
    openapi = document(endpoints, config, plugin_routes)
    app = Sanic(name, error_handler=JsonErrorHandler())
    app.config.update(
        {
            "REQUEST_MAX_SIZE": config.max_body_size,
            "REQUEST_MAX_HEADER_SIZE": config.max_header_size,
            "REQUEST_TIMEOUT": config.request_timeout,
            "RESPONSE_TIMEOUT": config.response_timeout,
            "KEEP_ALIVE_TIMEOUT": config.keep_alive_timeout,
            "ACCESS_LOG": False,
            "MOTD": False,
            "FALLBACK_ERROR_FORMAT": "json",
        }
    )
    app.ctx.state = AppState(
        service=service,
        config=config,
        plugins=plugins,
        endpoints=endpoints,
        plugin_routes=plugin_routes,
        openapi=openapi,
        docs=docs_page(openapi),
        open_service=open_service,
        settings=dict(settings or {}),
    )
    for endpoint in endpoints:
        app.add_route(
            _handler(endpoint),
            endpoint.sanic_path,
            methods=[endpoint.method],
            name=endpoint.operation_id,
        )
    for route in plugin_routes:
        app.add_route(_plugin_handler(route), route.path, methods=[route.method], name=route.name)

    async def start(request: Request) -> None:
        _start(request)

    async def finish(request: Request, response: BaseHTTPResponse) -> None:
        if isinstance(response, HTTPResponse):
            _finish(request, response)

    app.register_middleware(start, "request")
    app.register_middleware(finish, "response")

    @app.before_server_start
    async def open_resources(app: Sanic[Any, Any]) -> None:
        state: AppState = app.ctx.state
        if state.service is None and state.open_service is not None:
            state.service = await run_sync(state, state.open_service)
            state.owns_service = True
        # Opened once, here: two threads opening the read side at once would open it twice.
        await run_sync(state, state.ledger_service.read_models)

    @app.after_server_stop
    async def close_resources(app: Sanic[Any, Any]) -> None:
        state: AppState = app.ctx.state
        executor, state.executor = state.executor, None
        if state.owns_service and state.service is not None:
            service, state.service = state.service, None
            service.ledger.close()
        if executor is not None:
            executor.shutdown(wait=False)

    return app
