"""Value types shared by hook specifications and plugins.

Plugins import these (and ``hookimpl``) from ``plugins``; nothing here imports
the ledger core.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

Outcome = Literal["allow", "block", "warn"]
OUTCOMES: tuple[Outcome, ...] = ("allow", "block", "warn")

DeliveryStatus = Literal["queued", "sent", "delivered", "failed"]


@dataclass(frozen=True)
class Verdict:
    """One contact rule's answer about one proposed contact."""

    outcome: Outcome
    rule_id: str
    rule_version: str
    reason: str
    citation: str

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"verdict outcome must be one of {OUTCOMES}, got {self.outcome!r}")
        if not self.rule_id or not self.rule_version:
            raise ValueError("a verdict needs a rule id and a rule version")


@dataclass(frozen=True)
class OutboundMessage:
    """A rendered message ready for a channel."""

    message_id: str
    channel: str
    to: str
    body: str
    subject: str | None = None
    locale: str = "en-US"


@dataclass(frozen=True)
class Delivery:
    """What a channel knows about a message it was given."""

    message_id: str
    status: DeliveryStatus
    at: datetime | None = None
    detail: str = ""


@runtime_checkable
class Channel(Protocol):
    """A named way to reach a debtor (sms, email, letter, voice, ...)."""

    name: str

    def send(self, message: OutboundMessage) -> Delivery:
        """Hand ``message`` over for delivery; return its status right after."""
        ...

    def delivery(self, message_id: str) -> Delivery:
        """The latest known delivery status of a message this channel sent."""
        ...


@dataclass(frozen=True)
class MessageTemplate:
    """A message body for one channel and locale; ``{placeholders}`` in str.format style."""

    name: str
    channel: str
    locale: str
    body: str
    subject: str | None = None


@dataclass(frozen=True)
class Disclosure:
    """Text a rule requires in a message, with the rule and source that require it."""

    rule_id: str
    text: str
    citation: str


@dataclass(frozen=True)
class Route:
    """An HTTP route a plugin contributes (served by the HTTP server, once it exists)."""

    method: str
    path: str
    handler: Callable[..., Any]
    name: str = ""
