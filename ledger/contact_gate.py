"""The contact gate: may Arrears contact this debtor, on this channel, for this purpose, now?

The gate is the one place every outbound contact is judged, before it happens
(a message Arrears is asked to send, a referral) or after (a call made from a desk
phone and recorded later).  It builds two read-only *views* — the account and the
debtor, without personal data — and hands them to the contact rules.  The rules
themselves live in plugins; the core only knows the callable the composition root
gives it (``ContactRules``), so a jurisdiction's rules change without touching the
ledger.  The view keys are the contract documented in ``docs/contact-views.md``.

A contact is allowed when no verdict blocks it.  Every verdict is kept, allow and
warn included, because an audit must show which rules were checked, not only which
ones said no.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from types import MappingProxyType
from typing import Any, Protocol

from ledger import errors
from ledger.domain.account import CHANNELS, CONTACT_MEMORY, PARTIES, Account
from ledger.domain.debtor import Debtor

#: Not a communication: a legal action (a referral to a law firm).  Only rules about
#: legal action judge it.
LEGAL = "legal"
GATE_CHANNELS = CHANNELS | {LEGAL}


class RuleVerdict(Protocol):
    """What a contact rule returns (``plugins.types.Verdict`` has this shape)."""

    @property
    def outcome(self) -> str: ...
    @property
    def rule_id(self) -> str: ...
    @property
    def rule_version(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def citation(self) -> str: ...


#: ``(account_view, debtor_view, channel, purpose, at, party, to) -> verdicts``.
#: Must not raise: the composition root turns a crashing rule into a ``block``.
ContactRules = Callable[
    [Mapping[str, Any], Mapping[str, Any], str, str, datetime, str, "str | None"],
    Sequence[RuleVerdict],
]


def no_rules(
    account: Mapping[str, Any],
    debtor: Mapping[str, Any],
    channel: str,
    purpose: str,
    at: datetime,
    party: str,
    to: str | None,
) -> Sequence[RuleVerdict]:
    """For a ledger built without plugins (tests of the core): nothing is ever blocked."""
    return ()


@dataclass(frozen=True)
class VerdictRecord:
    """A verdict as the ledger stores and reports it (the names of API contract v1)."""

    rule: str
    version: str
    outcome: str
    reason: str
    citation: str

    @classmethod
    def of(cls, verdict: RuleVerdict) -> VerdictRecord:
        return cls(
            rule=verdict.rule_id,
            version=verdict.rule_version,
            outcome=verdict.outcome,
            reason=verdict.reason,
            citation=verdict.citation,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, str]) -> VerdictRecord:
        return cls(**{k: data[k] for k in ("rule", "version", "outcome", "reason", "citation")})

    def as_dict(self) -> dict[str, str]:
        return {
            "rule": self.rule,
            "version": self.version,
            "outcome": self.outcome,
            "reason": self.reason,
            "citation": self.citation,
        }


@dataclass(frozen=True)
class ContactDecision:
    allowed: bool
    verdicts: tuple[VerdictRecord, ...]
    at: datetime
    channel: str
    purpose: str

    @property
    def blocking(self) -> tuple[VerdictRecord, ...]:
        return tuple(v for v in self.verdicts if v.outcome == "block")

    def as_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "at": self.at.isoformat(),
            "channel": self.channel,
            "purpose": self.purpose,
            "verdicts": [v.as_dict() for v in self.verdicts],
        }

    def summary(self) -> str:
        """One line naming the blocking rules, for error messages."""
        if self.allowed:
            return "allowed"
        return "; ".join(f"{v.rule} v{v.version}: {v.reason}" for v in self.blocking)


def check_request(channel: str, party: str) -> None:
    if channel not in GATE_CHANNELS:
        raise errors.InvalidChoice(
            f"channel must be one of {', '.join(sorted(GATE_CHANNELS))}; got {channel!r}",
            field="channel",
            value=channel,
        )
    if party not in PARTIES:
        raise errors.InvalidChoice(
            f"party must be one of {', '.join(sorted(PARTIES))}; got {party!r}",
            field="party",
            value=party,
        )


def _local_time(text: str | None) -> time | None:
    return None if text is None else time.fromisoformat(text)


def account_view(account: Account, at: datetime, jurisdiction: str | None) -> dict[str, Any]:
    """What the rules may know about the account at ``at``: facts, never personal data."""
    since = at - CONTACT_MEMORY
    contacts = tuple(
        MappingProxyType(dict(c)) for c in account.recent_contacts if since <= c["occurred_at"] < at
    )
    prefs = account.contact_preferences
    return {
        "id": str(account.id),
        "creditor": account.creditor,
        "reference": account.reference,
        "status": account.status,
        "currency": account.currency,
        "balance": MappingProxyType(dict(account.balance)),
        "total_balance": account.total_balance,
        "jurisdiction": jurisdiction,
        "ceased": account.ceased,
        "disputes": MappingProxyType(
            {k: MappingProxyType(dict(v)) for k, v in account.disputes.items()}
        ),
        "attorney": None if account.attorney is None else MappingProxyType(dict(account.attorney)),
        "bankrupt": account.bankrupt,
        "deceased": account.deceased,
        "consents": MappingProxyType(dict(account.consents)),
        "time_barred": account.time_barred(at.date()),
        "limitation_expires_on": account.limitation_expires_on,
        "contacts": contacts,
        "breathing_space": (
            None
            if account.breathing_space is None
            else MappingProxyType(dict(account.breathing_space))
        ),
        "in_breathing_space": account.in_breathing_space(at.date()),
        "contact_preferences": MappingProxyType(
            {
                "channels": None if prefs["channels"] is None else tuple(prefs["channels"]),
                "refused_channels": tuple(prefs["refused_channels"]),
                "window_start": _local_time(prefs["window_start"]),
                "window_end": _local_time(prefs["window_end"]),
            }
        ),
        "call_consents": tuple(MappingProxyType(dict(c)) for c in account.call_consents),
    }


def debtor_view(debtor: Debtor | None) -> dict[str, Any]:
    """Where the debtor is and which law applies: no name, number or address."""
    if debtor is None:
        return {"time_zone": None, "time_zones": (), "jurisdiction": None}
    return {
        "time_zone": debtor.time_zone,
        "time_zones": (),
        "jurisdiction": debtor.jurisdiction,
    }


def decide(
    rules: ContactRules,
    account: Account,
    debtor: Debtor | None,
    *,
    channel: str,
    purpose: str,
    at: datetime,
    party: str = "debtor",
    to: str | None = None,
) -> ContactDecision:
    check_request(channel, party)
    debtor_facts = debtor_view(debtor)
    facts = account_view(account, at, debtor_facts["jurisdiction"])
    verdicts = tuple(
        VerdictRecord.of(v)
        for v in rules(
            MappingProxyType(facts),
            MappingProxyType(debtor_facts),
            channel,
            purpose,
            at,
            party,
            to,
        )
    )
    allowed = not any(v.outcome == "block" for v in verdicts)
    return ContactDecision(allowed, verdicts, at, channel, purpose)
