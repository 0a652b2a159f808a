"""Authentication: ``Authorization: Bearer <token>`` to a ``ledger.access.Principal``.

Authorization is ``ledger.access`` (``can`` / ``require``): the role matrix and which
accounts a principal sees live there, for every front end alike.
"""

from __future__ import annotations

from ledger.access import Principal, require
from ledger.services import LedgerService

#: Tokens are ``arr_<16 hex>_<secret>``; anything much longer is not one.
MAX_TOKEN_LENGTH = 512


def bearer_token(header: str | None) -> str | None:
    """The token of a ``Bearer`` authorization header, or None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    return token


def authenticate(service: LedgerService, header: str | None) -> Principal:
    """The caller, or ``unauthorized`` (401) for a missing, malformed, unknown or revoked token."""
    return service.tokens().require(bearer_token(header))


def authorize(principal: Principal, action: str) -> None:
    """Whether the role may do ``action`` at all (403 ``forbidden`` if not); the account,
    if there is one, is checked once it is loaded (``Call.account``)."""
    require(principal, action)
