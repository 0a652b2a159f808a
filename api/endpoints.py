"""Routes declared once: method, path, access action, schemas, handler.

The declaration is the single source for routing (``api.app``), validation
(``api.schemas``) and the OpenAPI document (``api.openapi``).  A handler is a
plain synchronous function ``(Call) -> Reply``: it runs in the thread pool, so it
may call the (synchronous) service layer freely.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import pluggy

from api.config import ServerConfig
from api.errors import bad_request
from api.schemas import Schema
from ledger import errors
from ledger.access import Principal, require
from ledger.domain.account import Account
from ledger.services import LedgerService


@dataclass
class Reply:
    """A handler's answer: status and a JSON-able body (or text, for ``content_type``)."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass
class Call:
    """One request as a handler sees it: validated input and who is asking."""

    endpoint: Endpoint
    service: LedgerService
    config: ServerConfig
    plugins: pluggy.PluginManager | None
    principal: Principal | None
    path: dict[str, str]
    query: dict[str, Any]
    body: dict[str, Any]
    request_id: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def who(self) -> Principal:
        if self.principal is None:  # only public endpoints have none, and they never ask
            raise errors.TokenInvalid("a valid API token is required")
        return self.principal

    @property
    def account_id(self) -> UUID:
        """The ``{id}`` of the path; an id that is not one is simply not found."""
        text = self.path.get("id", "")
        try:
            return UUID(text)
        except ValueError:
            raise errors.AccountNotFound(f"no account {text}", account_id=text) from None

    def account(self) -> dict[str, Any]:
        """The account of the path as its summary, caught up with every write so far
        (read-your-writes), if the caller may do the endpoint's action on it; an
        account the caller does not see is ``not_found``.  Loaded once per request,
        before the handler runs (``api.app.pipeline``)."""
        loaded = self.extra.get("account")
        if loaded is None:
            if self.endpoint.method == "GET":
                loaded = self.service.account_summary(self.account_id, wait=True)
            else:
                # A write reads the account from its events: as fresh as the read
                # model caught up, without a projection transaction in the write path.
                loaded = self.service.live_account_summary(self.account_id)
            require(self.who, self.endpoint.action or "account.read", loaded)
            self.extra["account"] = loaded
        return dict(loaded)

    def limit(self) -> int:
        """The ``limit`` query parameter, or the configured page size; at most the maximum."""
        limit = int(self.query.get("limit", self.config.page_size))
        if limit > self.config.max_page_size:
            raise bad_request(
                "invalid_value",
                f"limit must be at most {self.config.max_page_size}",
                field="limit",
            )
        return limit

    def summary(self, after: Account | None = None) -> dict[str, Any]:
        """The account's summary again, after a write: the response reflects the write.

        ``after``, the account a command returned, saves reading it back from the store."""
        if after is not None:
            return self.service.summary_of(after)
        return self.service.live_account_summary(self.account_id)


Handler = Callable[[Call], Reply]


@dataclass(frozen=True)
class Param:
    name: str
    schema: Schema
    description: str
    required: bool = False


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # OpenAPI style: /v1/accounts/{id}
    handler: Handler
    tag: str
    #: ``ledger.access`` action the caller needs; ``None`` for public endpoints.
    action: str | None
    responses: Mapping[int, tuple[str, Schema | None]]
    body: Schema | None = None
    query: tuple[Param, ...] = ()
    content_type: str = "application/json"
    #: Domain-level answers besides the standard ones (e.g. 409 account_exists).
    extra_errors: Mapping[int, str] = field(default_factory=dict)
    #: Request media types handed to the handler unparsed (``text/csv``, form posts).
    raw_media_types: tuple[str, ...] = ()

    @property
    def operation_id(self) -> str:
        return self.handler.__name__

    @property
    def summary(self) -> str:
        doc = inspect.getdoc(self.handler) or self.operation_id
        return doc.strip().splitlines()[0]

    @property
    def description(self) -> str:
        doc = inspect.getdoc(self.handler) or ""
        parts = doc.strip().split("\n\n", 1)
        return parts[1].strip() if len(parts) > 1 else ""

    @property
    def path_params(self) -> list[str]:
        return [p.strip("{}") for p in self.path.split("/") if p.startswith("{")]

    @property
    def sanic_path(self) -> str:
        return "/".join(
            f"<{p.strip('{}')}:str>" if p.startswith("{") else p for p in self.path.split("/")
        )


class Registry:
    """The endpoints of one API version, in declaration order."""

    def __init__(self) -> None:
        self.endpoints: list[Endpoint] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        tag: str,
        action: str | None,
        responses: Mapping[int, tuple[str, Schema | None]],
        body: Schema | None = None,
        query: tuple[Param, ...] = (),
        content_type: str = "application/json",
        extra_errors: Mapping[int, str] | None = None,
        raw_media_types: tuple[str, ...] = (),
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            if any(e.method == method and e.path == path for e in self.endpoints):
                raise ValueError(f"{method} {path} is declared twice")
            self.endpoints.append(
                Endpoint(
                    method=method,
                    path=path,
                    handler=handler,
                    tag=tag,
                    action=action,
                    responses=responses,
                    body=body,
                    query=query,
                    content_type=content_type,
                    extra_errors=dict(extra_errors or {}),
                    raw_media_types=raw_media_types,
                )
            )
            return handler

        return register


#: Contract v1, every route.  The route modules add themselves when imported.
V1 = Registry()
