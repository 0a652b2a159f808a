"""The Arrears plugin API.

A plugin author needs one import::

    from plugins import hookimpl
"""

from __future__ import annotations

from plugins.hookspecs import hookimpl, hookspec
from plugins.types import (
    Channel,
    Delivery,
    Disclosure,
    MessageTemplate,
    OutboundMessage,
    Route,
    Verdict,
)

__all__ = [
    "Channel",
    "Delivery",
    "Disclosure",
    "MessageTemplate",
    "OutboundMessage",
    "Route",
    "Verdict",
    "hookimpl",
    "hookspec",
]
