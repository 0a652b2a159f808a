"""Retroactive compliance audit: which past contacts break the rules in force *now*?

When a regulator changes a rule (or a pack gets a new version), a collector must
be able to say which contacts already made would break it.  The audit replays
every account's stream through the domain's own ``apply`` and, just before each
outbound contact, asks today's rules about that contact as of the moment it
happened — with the account exactly as the ledger knew it then.

The debtor is taken as of the contact too: a debtor who moved from Chicago to
New York is judged in Chicago's hours for the calls made before the move (the
debtor's record as the ledger held it at the contact's moment, or as first
registered when the contact predates it).  Contacts whose violation was already
flagged when recorded are marked ``flagged_then`` so a reviewer can tell old
findings from new ones.
"""

from __future__ import annotations

import bisect
import copy
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from ledger.application import Ledger
from ledger.contact_gate import ContactRules, VerdictRecord, decide
from ledger.domain.account import Account
from ledger.domain.debtor import Debtor
from ledger.replay import iter_streams


@dataclass(frozen=True)
class AuditFinding:
    account_id: UUID
    reference: str
    creditor: str
    contact_id: str
    occurred_at: datetime
    channel: str
    purpose: str
    verdict: VerdictRecord
    flagged_then: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "account_id": str(self.account_id),
            "reference": self.reference,
            "creditor": self.creditor,
            "contact_id": self.contact_id,
            "occurred_at": self.occurred_at.isoformat(),
            "channel": self.channel,
            "purpose": self.purpose,
            **self.verdict.as_dict(),
            "flagged_then": self.flagged_then,
        }


@dataclass
class AuditReport:
    since: datetime | None
    pack: str | None
    accounts: int = 0
    contacts_checked: int = 0
    findings: list[AuditFinding] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": None if self.since is None else self.since.isoformat(),
            "pack": self.pack,
            "accounts": self.accounts,
            "contacts_checked": self.contacts_checked,
            "violations": len(self.findings),
            "findings": [f.as_dict() for f in self.findings],
        }


def _account_streams(ledger: Ledger) -> Iterator[list[Any]]:
    for stream in iter_streams(ledger):
        if stream and isinstance(stream[0], Account.Placed):
            yield stream


class DebtorTimeline:
    """One debtor's record after each of its events, to answer "as of when?"."""

    def __init__(self, events: Sequence[Any]) -> None:
        self._moments: list[datetime] = []
        self._states: list[Debtor] = []
        debtor: Any = None
        for event in events:
            debtor = event.mutate(debtor)
            self._moments.append(event.timestamp)
            self._states.append(copy.deepcopy(debtor))

    def as_of(self, moment: datetime) -> Debtor | None:
        if not self._states:
            return None
        index = bisect.bisect_right(self._moments, moment)
        return self._states[max(index - 1, 0)]


def audit_contacts(
    ledger: Ledger,
    rules: ContactRules,
    debtor_events: Callable[[UUID], Sequence[Any]],
    *,
    since: datetime | None = None,
    pack: str | None = None,
) -> AuditReport:
    """Every outbound contact (occurred at or after ``since``) that today's rules block.

    ``pack`` keeps only the verdicts of that rule pack (rule ids ``<pack>.*``)."""
    report = AuditReport(since=since, pack=pack)
    prefix = None if pack is None else f"{pack}."
    timelines: dict[UUID, DebtorTimeline] = {}
    for stream in _account_streams(ledger):
        report.accounts += 1
        # (contact, rule) pairs flagged when recorded: a rule added since is a new finding
        # even on a contact that another rule flagged then.
        flagged = {
            (e.contact_id, v.get("rule"))
            for e in stream
            if isinstance(e, Account.ContactViolationFlagged)
            for v in e.verdicts
        }
        account: Any = None
        for event in stream:
            if (
                isinstance(event, Account.ContactRecorded)
                and event.direction == "outbound"
                and (since is None or event.occurred_at >= since)
            ):
                debtor = None
                if account.debtor_id is not None:
                    timeline = timelines.get(account.debtor_id)
                    if timeline is None:
                        timeline = DebtorTimeline(debtor_events(account.debtor_id))
                        timelines[account.debtor_id] = timeline
                    debtor = timeline.as_of(event.occurred_at)
                report.contacts_checked += 1
                decision = decide(
                    rules,
                    account,
                    debtor,
                    channel=event.channel,
                    purpose=event.purpose,
                    at=event.occurred_at,
                    party=event.party,
                    to=event.to,
                )
                for verdict in decision.blocking:
                    if prefix is not None and not verdict.rule.startswith(prefix):
                        continue
                    report.findings.append(
                        AuditFinding(
                            account_id=account.id,
                            reference=account.reference,
                            creditor=account.creditor,
                            contact_id=event.contact_id,
                            occurred_at=event.occurred_at,
                            channel=event.channel,
                            purpose=event.purpose,
                            verdict=verdict,
                            flagged_then=(event.contact_id, verdict.rule) in flagged,
                        )
                    )
            account = event.mutate(account)
    report.findings.sort(key=lambda f: (f.occurred_at, f.reference, f.verdict.rule))
    return report
