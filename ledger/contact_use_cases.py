"""Use cases of the contact gate: ask, send or refuse, record after the fact, audit; and
the facts the rule packs decide on (breathing space, preferences, limitation, consent).

The decisions themselves are ``ledger.contact_gate``'s (views and verdicts) and the
rules' (plugins, handed in as ``contact_rules``); these methods add the clock, the
retry loop and the events that prove what was decided.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as clock_time
from uuid import UUID

from ledger import errors
from ledger.clock import ensure_utc
from ledger.compliance import AuditReport, audit_contacts
from ledger.contact_gate import ContactDecision, VerdictRecord, decide
from ledger.domain.account import Account
from ledger.service_core import ServiceCore, log

#: The channels a collector can work an account through, in the worklist's order.
WORK_CHANNELS = ("phone", "sms", "email", "letter", "visit")


@dataclass(frozen=True)
class RecordedContact:
    account: Account
    contact_id: str
    violations: tuple[VerdictRecord, ...]


@dataclass(frozen=True)
class QueuedMessage:
    message_id: str
    status: str
    account: Account
    decision: ContactDecision


class ContactGateUseCases(ServiceCore):
    def _judge(
        self,
        account: Account,
        *,
        channel: str,
        purpose: str,
        at: datetime,
        party: str = "debtor",
        to: str | None = None,
    ) -> ContactDecision:
        """The rules' decision on a contact with ``account``'s debtor at ``at``."""
        return decide(
            self.contact_rules,
            account,
            self.debtor_of(account),
            channel=channel,
            purpose=purpose,
            at=at,
            party=party,
            to=to,
        )

    def check_contact(
        self,
        account: UUID | str | Account,
        channel: str,
        at: datetime | None = None,
        purpose: str = "collection",
        *,
        party: str = "debtor",
        to: str | None = None,
    ) -> ContactDecision:
        """Would the rules allow this contact at ``at`` (default now)?  Records nothing.

        ``account`` is the account, its id, or anything ``resolve_account`` takes."""
        moment = ensure_utc(at) if at is not None else self._now()
        if not isinstance(account, Account):
            account_id = account if isinstance(account, UUID) else self.resolve_account(account)
            account = self.get_account(account_id)
        return self._judge(account, channel=channel, purpose=purpose, at=moment, party=party, to=to)

    def _gated(
        self,
        account_id: UUID,
        *,
        channel: str,
        purpose: str,
        party: str,
        to: str | None,
        action: Callable[[Account, datetime], None],
    ) -> tuple[Account, ContactDecision]:
        """Judge now and either run ``action`` or record the refusal: one save either way.

        The decision is made on the state the action is saved against, inside the
        retry loop, so a cease request that lands in between is never missed."""
        at = self._now()

        def run(account: Account) -> tuple[Account, ContactDecision]:
            decision = self._judge(
                account, channel=channel, purpose=purpose, at=at, party=party, to=to
            )
            if decision.allowed:
                action(account, at)
            else:
                account.block_contact(
                    at=at,
                    request_id=self.new_id(),
                    channel=channel,
                    purpose=purpose,
                    party=party,
                    to=to,
                    verdicts=[v.as_dict() for v in decision.verdicts],
                )
            return account, decision

        account, decision = self._change(account_id, self._account_for_command, run)
        if not decision.allowed:
            log.info(
                "contact_blocked",
                account_id=str(account_id),
                channel=channel,
                purpose=purpose,
                rules=[v.rule for v in decision.blocking],
            )
            raise errors.ContactBlocked(
                f"contact by {channel} for {purpose} blocked: {decision.summary()}",
                account_id=str(account_id),
                verdicts=[v.as_dict() for v in decision.verdicts],
            )
        return account, decision

    def request_message(
        self,
        account_id: UUID,
        *,
        channel: str,
        template: str,
        purpose: str = "collection",
        locale: str = "en-US",
        to: str | None = None,
        party: str = "debtor",
        message_id: str | None = None,
    ) -> QueuedMessage:
        """Ask Arrears to send a message: the gate decides, and either the message is
        queued for its channel or the refusal is recorded and ``ContactBlocked`` raised."""
        new_message_id = message_id or self.new_id()

        def queue(account: Account, at: datetime) -> None:
            account.queue_message(
                at=at,
                message_id=new_message_id,
                channel=channel,
                template=template,
                purpose=purpose,
                locale=locale,
                to=to,
            )

        account, decision = self._gated(
            account_id, channel=channel, purpose=purpose, party=party, to=to, action=queue
        )
        status = account.messages[new_message_id]["status"]
        return QueuedMessage(new_message_id, status, account, decision)

    def compliance_audit(
        self, *, since: datetime | None = None, pack: str | None = None
    ) -> AuditReport:
        """Past outbound contacts the rules in force now would block (``ledger.compliance``).

        A ``pack`` no loaded rule answers to is refused: filtering on a typo would
        report a clean audit."""
        sources = getattr(self.contact_rules, "rule_sources", None)
        if pack is not None and callable(sources):
            known = sorted(sources())
            if pack not in known:
                raise errors.InvalidChoice(
                    f"no loaded rule pack or rule plugin {pack!r}; "
                    f"known: {', '.join(known) or 'none'}",
                    field="pack",
                    value=pack,
                )
        return audit_contacts(
            self.ledger,
            self.contact_rules,
            lambda debtor_id: list(self.ledger.events.get(debtor_id)),
            since=None if since is None else ensure_utc(since),
            pack=pack,
        )

    def record_message_outcome(
        self, account_id: UUID, message_id: str, status: str, detail: str = ""
    ) -> bool:
        """A channel's report on a queued message (sent / delivered / failed).  Idempotent:
        the same or an older report again records nothing and returns False."""
        at = self._now()
        return bool(
            self._change(
                account_id,
                self._account_for_command,
                lambda a: a.mark_message(
                    at=at, message_id=message_id, status=status, detail=detail
                ),
            )
        )

    def acknowledge_delivery(
        self,
        account_id: UUID,
        *,
        partner_kind: str,
        partner: str,
        delivery_key: str,
        partner_reference: str = "",
    ) -> bool:
        """A partner confirmed a delivery; recorded once per ``delivery_key``."""
        at = self._now()
        return bool(
            self._change(
                account_id,
                self._account_for_command,
                lambda a: a.acknowledge(
                    at=at,
                    partner_kind=partner_kind,
                    partner=partner,
                    delivery_key=delivery_key,
                    partner_reference=partner_reference,
                ),
            )
        )

    def start_breathing_space(
        self, account_id: UUID, *, kind: str, started_on: date, reference: str
    ) -> Account:
        at = self._now()
        return self._account(
            account_id,
            lambda a: a.start_breathing_space(
                at=at, kind=kind, started_on=started_on, reference=reference
            ),
        )

    def end_crisis_treatment(self, account_id: UUID, treatment_ended_on: date) -> Account:
        at = self._now()
        return self._account(
            account_id,
            lambda a: a.end_crisis_treatment(at=at, treatment_ended_on=treatment_ended_on),
        )

    def cancel_breathing_space(self, account_id: UUID, ended_on: date, reason: str) -> Account:
        at = self._now()
        return self._account(
            account_id, lambda a: a.cancel_breathing_space(at=at, ended_on=ended_on, reason=reason)
        )

    def set_contact_preferences(
        self,
        account_id: UUID,
        *,
        channels: Sequence[str] | None = None,
        refused_channels: Sequence[str] = (),
        window_start: clock_time | None = None,
        window_end: clock_time | None = None,
    ) -> Account:
        at = self._now()
        return self._account(
            account_id,
            lambda a: a.set_contact_preferences(
                at=at,
                channels=channels,
                refused_channels=refused_channels,
                window_start=window_start,
                window_end=window_end,
            ),
        )

    def set_limitation_date(self, account_id: UUID, expires_on: date, basis: str) -> Account:
        at = self._now()
        return self._account(
            account_id, lambda a: a.set_limitation_date(at=at, expires_on=expires_on, basis=basis)
        )

    def give_call_consent(
        self, account_id: UUID, *, given_at: datetime, until: datetime, evidence: str
    ) -> Account:
        at = self._now()
        return self._account(
            account_id,
            lambda a: a.give_call_consent(
                at=at, given_at=ensure_utc(given_at), until=ensure_utc(until), evidence=evidence
            ),
        )

    def open_channels(self, account_id: UUID, at: datetime | None = None) -> tuple[str, ...]:
        """The channels the contact gate allows for a collection contact at ``at``."""
        moment = ensure_utc(at) if at is not None else self._now()
        account = self._load(account_id, Account, fresh=False)
        debtor = self.debtor_of(account)
        return tuple(
            channel
            for channel in WORK_CHANNELS
            if decide(
                self.contact_rules,
                account,
                debtor,
                channel=channel,
                purpose="collection",
                at=moment,
            ).allowed
        )
