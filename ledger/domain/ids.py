"""Deterministic identifiers.

An account's id is a UUIDv5 of (creditor, creditor's reference): placing the
same debt twice lands on the same stream, so the store's uniqueness constraint
detects the duplicate instead of the ledger quietly holding two copies.
"""

from __future__ import annotations

from uuid import UUID, uuid5

ARREARS_NAMESPACE = UUID("6f1c2a4e-3b7d-5c9e-8a0f-1d2e3f4a5b6c")
_SEPARATOR = "\x1f"  # unit separator: cannot appear in either part by accident


def account_id(creditor: str, reference: str) -> UUID:
    key = f"account{_SEPARATOR}{creditor.strip()}{_SEPARATOR}{reference.strip()}"
    return uuid5(ARREARS_NAMESPACE, key)


def seal_log_id() -> UUID:
    return uuid5(ARREARS_NAMESPACE, "seal-log")


def child_id(parent: UUID, kind: str, key: str) -> str:
    """Stable id for a fact keyed by a caller's idempotency key (e.g. a payment reference)."""
    return uuid5(parent, f"{kind}{_SEPARATOR}{key}").hex
