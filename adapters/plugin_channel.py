"""Messages delivered through a channel a plugin provides (``arrears_channels``).

A plugin's ``Channel`` named like one of the ledger's channels (``sms``, ``email``,
``letter``, ``phone``, ``visit``) delivers the messages queued on that channel,
unless a built-in adapter is configured for it (``[adapters.sms]``,
``[adapters.email]``), which wins.  It gets the same treatment as the built-in
ones: a job per ``MessageQueued`` keyed by the event, the gate asked again before
sending, the recipient resolved from the debtor at delivery time, the template
rendered with every disclosure the rule packs require, retries and dead letters
by the outbox.  The channel's ``Delivery`` answers: ``failed`` is final, anything
else is a send (recorded as ``MessageSent``); an exception is retried, and its
message names the plugin channel, not the recipient.
"""

from __future__ import annotations

from collections.abc import Sequence

from adapters.outbox.base import DeliveryError, Job, PermanentDeliveryError
from adapters.outbox.messages import MessageAdapter
from adapters.render import Renderer
from ledger.domain.debtor import Debtor
from ledger.services import LedgerService
from plugins.types import Channel, OutboundMessage

#: Which of the debtor's contact points a channel's messages go to.
RECIPIENTS = {
    "sms": "phone",
    "phone": "phone",
    "email": "email",
    "letter": "address",
    "visit": "address",
}


def _address(address: dict[str, str]) -> str:
    parts = ("line1", "line2", "city", "region", "postcode", "country")
    return ", ".join(address[p] for p in parts if address.get(p))


class PluginChannelAdapter(MessageAdapter):
    """The outbox adapter for one plugin-provided channel."""

    def __init__(self, channel: Channel, renderer: Renderer, *, recheck_gate: bool = True) -> None:
        super().__init__(renderer, recheck_gate=recheck_gate)
        self.plugin_channel = channel
        self.channel = channel.name
        self.name = f"channel:{channel.name}"
        self.recipient_kind = RECIPIENTS[channel.name]

    def recipients(self, debtor: Debtor) -> Sequence[str]:
        if self.recipient_kind == "phone":
            return debtor.phones
        if self.recipient_kind == "email":
            return debtor.emails
        return [_address(a) for a in debtor.addresses]

    def deliver(self, job: Job, service: LedgerService) -> str:
        outgoing = self.prepare(job, service)
        if outgoing is None:
            return "already-sent"
        message = OutboundMessage(
            message_id=outgoing.message_id,
            channel=self.channel,
            to=outgoing.recipient,
            body=outgoing.rendered.text,
            subject=outgoing.rendered.subject,
            locale=str(job.payload.get("locale") or "en-US"),
        )
        try:
            delivery = self.plugin_channel.send(message)
        except Exception as e:  # the plugin's failure: retried, named, no recipient
            raise DeliveryError(f"plugin channel {self.channel} failed ({type(e).__name__})") from e
        if delivery.status == "failed":
            raise PermanentDeliveryError(
                f"plugin channel {self.channel} refused the message: {delivery.detail[:200]}"
            )
        return delivery.message_id or outgoing.message_id


def plugin_channel_adapters(
    channels: Sequence[Channel], renderer: Renderer, *, served: set[str]
) -> list[PluginChannelAdapter]:
    """An adapter per plugin channel named like a ledger channel no built-in serves."""
    adapters: list[PluginChannelAdapter] = []
    for channel in channels:
        if channel.name in RECIPIENTS and channel.name not in served:
            adapters.append(PluginChannelAdapter(channel, renderer))
            served.add(channel.name)
    return adapters
