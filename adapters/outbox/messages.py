"""What the message channels (SMS, e-mail) share: which events they act on, and how a
queued message becomes a rendered one addressed to the debtor, at delivery time.

A ``MessageQueued`` event of the adapter's channel is one job, whose payload holds
the message's id, template, purpose, locale and recipient label, never the
recipient.  The number or address is looked up on the debtor when the job is
delivered, so a corrected number is used and an erased debtor is not contacted.

Before rendering, the contact gate is asked again (it records nothing): a cease
request, a dispute or an attorney notice recorded since the message was queued
stops it.  A refusal is final; the message is recorded as failed with the rules
that refused it.  Outcomes come back as ``MessageSent`` (with the provider's
reference) or ``MessageFailed`` through ``record_message_outcome``, which records
each once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from adapters.outbox.base import DeliveryError, Job, PermanentDeliveryError, event_key
from adapters.render import Rendered, Renderer, TemplateError
from ledger import errors
from ledger.domain.account import Account
from ledger.domain.debtor import Debtor
from ledger.services import LedgerService
from plugins.errors import PluginError

log = structlog.get_logger("arrears.outbox")


@dataclass(frozen=True)
class Outgoing:
    """A message ready to hand to the partner; ``recipient`` is personal data."""

    message_id: str
    recipient: str
    rendered: Rendered
    account: Account
    #: ISO 3166 country of the debtor's jurisdiction (``US`` for ``US-IL``): the region
    #: a number written without ``+country`` is read in.
    region: str | None = None


def region_of(jurisdiction: str | None) -> str | None:
    """``GB`` for ``GB-SCT``, ``US`` for ``US-IL``; None when there is none to read."""
    country = (jurisdiction or "").split("-")[0].strip().upper()
    return country if len(country) == 2 and country.isalpha() else None


def pick_recipient(values: Sequence[str], to: str | None, kind: str) -> str:
    """The debtor's ``kind`` (phone, email) that ``to`` names: ``"phone:1"`` is the second,
    no label the first, and a value is accepted only if it is one of the debtor's."""
    if not to:
        if not values:
            raise PermanentDeliveryError(f"the debtor has no {kind} on file")
        return values[0]
    label, sep, index = to.partition(":")
    if sep and label == kind and index.isdigit():
        if int(index) >= len(values):
            raise PermanentDeliveryError(f"the debtor has no {kind} number {index}")
        return values[int(index)]
    if to in values:
        return to
    raise PermanentDeliveryError(f"the message's recipient is not one of the debtor's {kind}s")


class MessageAdapter:
    """Base of the SMS and e-mail adapters (``channel`` and ``recipient_kind`` differ)."""

    name: str = "message"
    channel: str = ""
    recipient_kind: str = ""

    def __init__(
        self, renderer: Renderer, *, opt_out_text: str = "", recheck_gate: bool = True
    ) -> None:
        self.renderer = renderer
        self.opt_out_text = opt_out_text
        self.recheck_gate = recheck_gate

    # ------------------------------------------------------------- the jobs

    def jobs(self, event: Any, position: int) -> Sequence[Job]:
        if not isinstance(event, Account.MessageQueued) or event.channel != self.channel:
            return ()
        payload = {
            "message_id": event.message_id,
            "template": event.template,
            "purpose": event.purpose,
            "locale": event.locale,
            "to": event.to,
        }
        return (
            Job(event_key(event, self.name), self.name, event.originator_id, position, payload),
        )

    # ------------------------------------------------------------ preparing

    def recipients(self, debtor: Debtor) -> Sequence[str]:
        raise NotImplementedError

    def unsubscribe(self, job: Job) -> str | None:
        return None

    def prepare(self, job: Job, service: LedgerService) -> Outgoing | None:
        """The message to send, or None when the ledger says it already went out."""
        message_id = str(job.payload["message_id"])
        account = service.get_account(job.account_id)
        message = account.messages.get(message_id)
        if message is None:
            raise PermanentDeliveryError(f"the account has no message {message_id}")
        if message["status"] in ("sent", "delivered"):
            return None
        if account.debtor_id is None:
            raise PermanentDeliveryError("the account has no debtor to send to")
        try:
            debtor = service.get_debtor(account.debtor_id)
        except errors.DebtorNotFound as e:
            raise PermanentDeliveryError("the account's debtor is not in the ledger") from e
        if debtor.erased:
            raise PermanentDeliveryError("the debtor's personal data was erased")
        purpose = str(job.payload.get("purpose") or "collection")
        to = job.payload.get("to")
        if self.recheck_gate:
            decision = service.check_contact(
                job.account_id, self.channel, purpose=purpose, to=None if to is None else str(to)
            )
            if not decision.allowed:
                raise PermanentDeliveryError(
                    f"the contact gate now blocks this message: {decision.summary()}"
                )
        recipient = pick_recipient(
            self.recipients(debtor), None if to is None else str(to), self.recipient_kind
        )
        locale = str(job.payload.get("locale") or "en-US")
        try:
            rendered = self.renderer.render(
                account=account,
                jurisdiction=debtor.jurisdiction,
                at=service.clock.now(),
                channel=self.channel,
                template=str(job.payload["template"]),
                locale=locale,
                purpose=purpose,
                context=self.renderer.context(
                    account, name=debtor.name, extra={"message_id": message_id}
                ),
                opt_out_text=self.opt_out_text,
                unsubscribe=self.unsubscribe(job),
            )
        except TemplateError as e:
            raise PermanentDeliveryError(str(e)) from e
        except PluginError as e:  # a disclosure could not be had: never send without it
            raise DeliveryError(e.message) from e
        return Outgoing(message_id, recipient, rendered, account, region_of(debtor.jurisdiction))

    # ------------------------------------------------------------- outcomes

    def succeeded(self, job: Job, reference: str, service: LedgerService) -> None:
        """Sent: recorded once (also after a failure, when a dead job was retried)."""
        message_id = str(job.payload["message_id"])
        service.record_message_outcome(job.account_id, message_id, "sent", reference)

    def dead(self, job: Job, error: str, service: LedgerService) -> None:
        message_id = str(job.payload["message_id"])
        service.record_message_outcome(job.account_id, message_id, "failed", error)
