"""Route modules of contract v1; importing this package declares every route on ``V1``."""

from __future__ import annotations

from api.routes import (
    accounts,
    actions,
    audit,
    callbacks,
    compliance_facts,
    portfolio,
    system,
)

__all__ = [
    "accounts",
    "actions",
    "audit",
    "callbacks",
    "compliance_facts",
    "portfolio",
    "system",
]
