"""Stripe-style request signatures between Arrears and a partner (law firms, agencies).

The header is ``Arrears-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]``,
each ``v1`` being the lowercase hex HMAC-SHA256, under one shared secret, of
the bytes ``f"{t}.".encode() + body``.  Signing the timestamp with the body is
what makes a captured request useless after ``TOLERANCE_SECONDS``: changing
``t`` breaks the signature.

Key rotation: a sender that holds two secrets (the new one and the one being
retired) signs with both and sends one ``v1`` per secret; a receiver accepts
the request when any ``v1`` matches any secret it holds.  So either side can
switch first.  Every comparison is constant-time (``hmac.compare_digest``), and
the signature is checked before the timestamp, so ``stale_signature`` is only
ever said of a genuine request that is too old or too far ahead (clock skew).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from ledger import errors

HEADER = "Arrears-Signature"
SCHEME = "v1"
#: How far a signature's timestamp may be from the receiver's clock, either way.
TOLERANCE_SECONDS = 300
#: A header carrying more signatures than this is not a rotation, it is a search.
MAX_SIGNATURES = 8


class InvalidSignature(errors.TokenInvalid):
    """The request is not signed with a secret shared with this partner (or not signed)."""

    code = "invalid_signature"


class StaleSignature(InvalidSignature):
    """The signature is genuine but its timestamp is outside the tolerance."""

    code = "stale_signature"


@dataclass(frozen=True)
class SignatureHeader:
    timestamp: int
    signatures: tuple[str, ...]


def _key(secret: str | bytes) -> bytes:
    return secret if isinstance(secret, bytes) else secret.encode()


def compute(secret: str | bytes, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``f"{timestamp}." + body`` under ``secret``."""
    return hmac.new(_key(secret), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(body: bytes, secrets: Sequence[str | bytes] | str | bytes, timestamp: int) -> str:
    """The header value for ``body``: one ``v1`` per secret (several while rotating)."""
    keys = [secrets] if isinstance(secrets, str | bytes) else list(secrets)
    if not keys:
        raise ValueError("signing needs at least one secret")
    return ",".join([f"t={timestamp}", *(f"{SCHEME}={compute(k, timestamp, body)}" for k in keys)])


def parse(header: str | None) -> SignatureHeader:
    """The timestamp and the ``v1`` signatures of a header; ``InvalidSignature`` if it has
    none of either.  Other schemes are ignored, as Stripe's receivers do."""
    if not header:
        raise InvalidSignature(
            f"the request has no {HEADER} header; sign it with the shared secret"
        )
    timestamp: int | None = None
    found: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if name == "t" and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif name == SCHEME and value:
            found.append(value.strip().lower())
    if timestamp is None or not found:
        raise InvalidSignature(f"the {HEADER} header must be t=<unix seconds>,v1=<hex hmac>")
    if len(found) > MAX_SIGNATURES:
        raise InvalidSignature(f"the {HEADER} header carries more than {MAX_SIGNATURES} signatures")
    return SignatureHeader(timestamp, tuple(found))


def verify(
    header: str | None,
    body: bytes,
    secrets: Sequence[str | bytes],
    *,
    now: float,
    tolerance: float = TOLERANCE_SECONDS,
) -> int:
    """Check ``header`` against ``body`` at unix time ``now``; returns the signed timestamp.

    ``InvalidSignature`` unless some ``v1`` matches some secret; ``StaleSignature``
    when it does but ``t`` is more than ``tolerance`` seconds before or after ``now``.
    """
    parsed = parse(header)
    matched = False
    for secret in secrets:
        expected = compute(secret, parsed.timestamp, body).encode()
        for given in parsed.signatures:
            # No early exit: the time taken does not say which secret or which v1 matched.
            # Bytes, not str: compare_digest refuses non-ASCII text, which a forger may send.
            matched |= hmac.compare_digest(expected, given.encode())
    if not matched:
        raise InvalidSignature("the request's signature does not match the shared secret")
    if abs(now - parsed.timestamp) > tolerance:
        raise StaleSignature(
            f"the signature's timestamp is more than {tolerance:g} seconds from our clock; "
            "sign each request when sending it (and keep the sender's clock in sync)",
            tolerance_seconds=tolerance,
        )
    return parsed.timestamp
