"""Errors at the HTTP edge: one body shape, and the one table from error class to status.

Every error answers ``{"error": {"code", "message", "details"}}``.  Domain errors
(``ledger.errors.LedgerError``) keep their stable code; the status comes from
``STATUS_BY_ERROR``, the most specific class listed winning.  Anything else
is a bug: 500 ``internal_error``, logged with its traceback, never shown.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from uuid import UUID

from ledger import errors
from plugins.errors import PluginError, PluginLoadError

#: Domain error class -> HTTP status.  Looked up along the exception's MRO, so a class
#: not listed takes its nearest listed ancestor's status.
STATUS_BY_ERROR: dict[type[errors.LedgerError], int] = {
    errors.TokenInvalid: 401,
    errors.Forbidden: 403,
    # Missing, or outside the caller's scope: the two must look the same.
    errors.NotFound: 404,
    # A debtor_id in a placement body names no debtor: the URL exists, the body is wrong.
    errors.DebtorNotFound: 422,
    errors.AccountExists: 409,
    errors.IdempotencyConflict: 409,  # also idempotency_key_reused
    errors.ConcurrencyConflict: 409,
    # Bad money, dates and choices are bad input, wherever they are noticed.
    errors.InvalidAmount: 400,
    errors.InvalidDate: 400,
    errors.UnknownCurrency: 400,
    errors.InvalidChoice: 400,
    # Input that can never succeed as given (a missing reason, an unknown time zone):
    # the request is wrong, not the account's state.
    errors.ValidationError: 400,
    # A well-formed amount in another currency than the account's: the account says no.
    errors.CurrencyMismatch: 422,
    errors.RuleViolation: 422,  # contact_blocked and every other rule, with its code
    errors.StoreError: 503,
    errors.StoredEventUnreadable: 500,  # the ledger's own bytes: said plainly, not hidden
    PluginError: 500,
    PluginLoadError: 500,
    errors.LedgerError: 422,
}

#: Codes the edge reports in place of the domain's, so that cases which must look
#: alike do (an account outside an agency's scope is simply ``not_found``).
CODE_BY_ERROR: dict[type[errors.LedgerError], str] = {
    errors.DebtorNotFound: "debtor_not_found",  # in a body: nothing to hide
    errors.NotFound: "not_found",
}


class ApiError(Exception):
    """An error noticed by the HTTP layer itself (malformed JSON, unknown fields, ...)."""

    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def bad_request(code: str, message: str, **details: Any) -> ApiError:
    return ApiError(400, code, message, **details)


def status_of(error: errors.LedgerError) -> int:
    for cls in type(error).__mro__:
        status = STATUS_BY_ERROR.get(cls)
        if status is not None:
            return status
    return 422


def code_of(error: errors.LedgerError) -> str:
    for cls in type(error).__mro__:
        override = CODE_BY_ERROR.get(cls)
        if override is not None:
            return override
    return error.code


def jsonable(value: Any) -> Any:
    """Details as plain JSON: verdict records, dates and ids included."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    as_dict = getattr(value, "as_dict", None)
    if callable(as_dict):
        return jsonable(as_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    return str(value)


def error_body(code: str, message: str, details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": jsonable(dict(details or {}))}}


def render(error: BaseException) -> tuple[int, dict[str, Any]]:
    """(status, body) for any exception; unknown ones become a bare 500."""
    if isinstance(error, ApiError):
        return error.status, error_body(error.code, error.message, error.details)
    if isinstance(error, errors.LedgerError):
        status = status_of(error)
        code = code_of(error)
        if code == "not_found":
            # The same words for a missing account and one outside the caller's scope.
            return status, error_body(code, error.message, _not_found_details(error))
        return status, error_body(code, error.message, error.details)
    return 500, error_body(
        "internal_error", "the server failed to handle the request; it has been logged"
    )


def _not_found_details(error: errors.LedgerError) -> dict[str, Any]:
    keep = ("account_id", "debtor_id", "payment_id", "plan_id", "dispute_id", "complaint_id")
    return {k: v for k, v in error.details.items() if k in keep}
