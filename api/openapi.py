"""The OpenAPI 3.1 document, generated from the route declarations (``api.endpoints``).

Nothing here is written by hand per route: paths, parameters, bodies, responses
and errors all come from the same declarations that route and validate requests,
so the document cannot drift from the server.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any

from api.config import ServerConfig
from api.endpoints import Endpoint
from api.idempotency import HEADER as IDEMPOTENCY_HEADER
from api.plugin_routes import PluginRoute
from api.schemas import COMPONENTS, Schema, ref
from plugins.manager import arrears_version

REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:/+=@-]{1,128}$"

ERRORS: dict[int, str] = {
    400: "Bad input: malformed_json, missing_field, unknown_field, invalid_type, "
    "invalid_amount, invalid_date, invalid_choice, invalid_value, invalid_cursor, "
    "invalid_idempotency_key",
    401: "unauthorized: no valid bearer token (missing, malformed, unknown or revoked)",
    403: "forbidden: the token's role may not do this",
    404: "not_found: no such account, or one outside the token's scope (they look the same)",
    409: "Conflict: idempotency_key_reused (same key, different request), "
    "idempotency_key_in_flight, concurrency_conflict",
    413: "payload_too_large: the body is over the server's limit",
    422: "A domain rule refused the request; the code is the rule's stable code",
    503: "store_error: the store does not answer",
}

INFO = {
    "title": "Arrears API",
    "description": "Contract v1 of Arrears, the event-sourced, tamper-evident ledger for "
    "debt collection. JSON in and out; money as decimal strings with a currency; times "
    'RFC 3339 in UTC; dates ISO 8601. Errors are {"error": {"code", "message", '
    '"details"}}. Later versions may add fields; they never rename or remove these. '
    "Every POST accepts an Idempotency-Key: a retry with the same key and body returns "
    "the original response and records nothing twice.",
}


def _request_id_header() -> dict[str, Any]:
    return {
        "description": "The request's id: the one given in X-Request-ID, else a new one",
        "schema": {"type": "string"},
    }


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {"X-Request-ID": {"$ref": "#/components/headers/RequestId"}},
        "content": {"application/json": {"schema": ref("Error")}},
    }


def _limited(schema: Schema, name: str, config: ServerConfig) -> Schema:
    if name == "limit" and "maximum" in schema:
        schema = dict(schema, maximum=config.max_page_size)
    return schema


def _status_codes(endpoint: Endpoint) -> dict[int, str]:
    codes: dict[int, str] = {}
    if endpoint.query or endpoint.body is not None:
        codes[400] = ERRORS[400]
    if endpoint.action is not None:
        codes.update({c: ERRORS[c] for c in (400, 401, 403, 404, 422)})
        if endpoint.method == "POST":
            codes.update({c: ERRORS[c] for c in (409, 413)})
    codes[503] = ERRORS[503]
    for status, why in endpoint.extra_errors.items():
        codes[status] = f"{codes[status]}; {why}" if status in codes else why
    return dict(sorted(codes.items()))


def operation(endpoint: Endpoint, config: ServerConfig) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": "The account id returned at placement" if name == "id" else name,
            "schema": {"type": "string", "minLength": 1, "maxLength": 200},
        }
        for name in endpoint.path_params
    ]
    parameters += [
        {
            "name": p.name,
            "in": "query",
            "required": p.required,
            "description": p.description,
            "schema": _limited(p.schema, p.name, config),
        }
        for p in endpoint.query
    ]
    if endpoint.method == "POST":
        parameters.append(
            {
                "name": IDEMPOTENCY_HEADER,
                "in": "header",
                "required": False,
                "description": "Makes the request safe to retry: the same key and body "
                "returns the original response and records nothing twice",
                "schema": {"type": "string", "pattern": r"^[!-~]{1,255}$"},
            }
        )
    parameters.append(
        {
            "name": "X-Request-ID",
            "in": "header",
            "required": False,
            "description": "Your id for the request, echoed back and logged when it "
            "matches " + REQUEST_ID_PATTERN + " (else a new one is made)",
            "schema": {"type": "string"},
        }
    )
    responses: dict[str, Any] = {}
    for status, (description, schema) in sorted(endpoint.responses.items()):
        response: dict[str, Any] = {
            "description": description,
            "headers": {"X-Request-ID": {"$ref": "#/components/headers/RequestId"}},
        }
        if schema is not None:
            media = endpoint.content_type.split(";")[0].strip()
            response["content"] = {media: {"schema": copy.deepcopy(schema)}}
        responses[str(status)] = response
    for status, description in _status_codes(endpoint).items():
        responses[str(status)] = _error_response(description)
    op: dict[str, Any] = {
        "operationId": endpoint.operation_id,
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
        "parameters": parameters,
        "responses": responses,
        "security": [] if endpoint.action is None else [{"bearer": []}],
    }
    if endpoint.description:
        op["description"] = endpoint.description
    if endpoint.action is not None:
        op["x-action"] = endpoint.action
    if endpoint.body is not None:
        op["requestBody"] = {
            "required": bool(endpoint.body.get("required")),
            "content": {"application/json": {"schema": copy.deepcopy(endpoint.body)}},
        }
    return op


def plugin_operation(route: PluginRoute) -> dict[str, Any]:
    return {
        "operationId": route.name,
        "summary": route.summary,
        "tags": ["plugins"],
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in route.path_params
        ],
        "responses": {
            "200": {"description": "The plugin's answer"},
            "401": _error_response(ERRORS[401]),
        },
        "security": [{"bearer": []}],
        "x-plugin": route.plugin,
    }


def document(
    endpoints: Sequence[Endpoint],
    config: ServerConfig,
    plugin_routes: Iterable[PluginRoute] = (),
) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document of this server."""
    plugin_routes = list(plugin_routes)
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation(endpoint, config)
    for route in plugin_routes:
        paths.setdefault(route.openapi_path, {})[route.method.lower()] = plugin_operation(route)
    tags = sorted({e.tag for e in endpoints} | ({"plugins"} if plugin_routes else set()))
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {**INFO, "version": f"1.0 (arrears {arrears_version()})"},
        "tags": [{"name": t} for t in tags],
        "paths": paths,
        "components": {
            "schemas": copy.deepcopy(COMPONENTS),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from 'arrears tokens create --role ROLE'",
                }
            },
            "headers": {"RequestId": _request_id_header()},
        },
        "security": [{"bearer": []}],
    }
