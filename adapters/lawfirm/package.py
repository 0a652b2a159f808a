"""The referral package: everything a law firm needs to sue on one account, as one JSON.

Built when the referral is delivered (never stored in the outbox, since it holds the
debtor's personal data), from one moment of the ledger:

``account``
    ids, creditor, original creditor, reference, currency, status, charge-off
    and last-payment facts.
``itemization`` / ``balance``
    the Regulation F itemization (``ledger.itemization``) and the balance by
    component, money as decimal strings in the account's currency.
``history``
    the account's history bundle exactly as a debt buyer gets it
    (``adapters.debt_sale.bundle``): every stored event's bytes, ``prev_hash``
    and ``hash``, and the head the latest seal recorded.  The ledger is sealed
    first whenever the latest seal does not cover the account's newest event, so
    the referral itself is always covered; ``python -m adapters.debt_sale.verify``
    checks the chain with the standard library alone.
``debtor``
    what the firm is entitled to: name, addresses, phones, e-mails, time zone,
    jurisdiction.  The values are registered as personal (``ledger.logs``), so
    they are redacted from any log line; nothing here is ever logged.
``referral``
    the firm, ``referred_on``, the referral event's version and the delivery key.
``package_digest``
    SHA-256 (hex) of the canonical JSON (sorted keys, no whitespace, UTF-8) of
    every other field: the firm recomputes it to see the package whole.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from adapters.debt_sale.bundle import AccountExport, export_account, sealed_heads
from adapters.debt_sale.verify import canonical_json
from ledger import errors
from ledger.clock import rfc3339
from ledger.domain.account import Account
from ledger.logs import register_personal_values
from ledger.money import format_minor
from ledger.services import LedgerService

PACKAGE_FORMAT = "arrears.lawfirm.referral.v1"
DIGEST_FIELD = "package_digest"
_SEAL_ATTEMPTS = 3


class ReferralNotDeliverable(errors.RuleViolation):
    """The referral cannot be sent as it stands (withdrawn, superseded, no debtor)."""

    code = "referral_not_deliverable"


@dataclass(frozen=True)
class ReferralPackage:
    body: dict[str, Any]

    @property
    def digest(self) -> str:
        return str(self.body[DIGEST_FIELD])

    def encode(self) -> bytes:
        """The bytes sent (and signed): canonical JSON."""
        return canonical_json(self.body)


def package_digest(body: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``body`` without ``package_digest``."""
    return hashlib.sha256(
        canonical_json({k: v for k, v in body.items() if k != DIGEST_FIELD})
    ).hexdigest()


def covered_export(service: LedgerService, account_id: UUID) -> AccountExport:
    """The account as the latest seal covers it, sealing first when that seal is older
    than the account's newest event (and again if the account moves on meanwhile)."""
    head = sealed_heads(service.ledger).get(account_id)
    if head is not None:
        try:
            return export_account(service.ledger, account_id, head)
        except errors.ConcurrencyConflict:
            pass  # the seal predates the account's newest event: seal now
    for attempt in range(1, _SEAL_ATTEMPTS + 1):
        service.seal()
        head = sealed_heads(service.ledger).get(account_id)
        if head is None:
            raise errors.AccountNotFound(f"no account {account_id}", account_id=str(account_id))
        try:
            return export_account(service.ledger, account_id, head)
        except errors.ConcurrencyConflict:
            if attempt == _SEAL_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _referral(
    service: LedgerService, export: AccountExport, version: int | None
) -> Account.ReferredToLawFirm:
    """The referral to deliver: the one at ``version`` (the latest if None), which must
    still be the account's current referral at the exported moment."""
    account = export.account
    events = list(service.ledger.events.get(account.id, lte=export.head_version))
    referrals = [e for e in events if isinstance(e, Account.ReferredToLawFirm)]
    wanted = [r for r in referrals if version is None or r.originator_version == version]
    if not wanted:
        raise ReferralNotDeliverable(
            f"account {account.id} has no referral at version {version}",
            account_id=str(account.id),
        )
    referral = wanted[-1]
    withdrawn = any(
        isinstance(e, Account.ReferralWithdrawn)
        and e.originator_version > referral.originator_version
        for e in events
    )
    current = account.law_firm
    if (
        referral is not referrals[-1]
        or withdrawn
        or current is None
        or current["name"] != referral.law_firm
    ):
        raise ReferralNotDeliverable(
            f"the referral of account {account.id} to {referral.law_firm} was withdrawn, "
            "closed or superseded before it was delivered",
            account_id=str(account.id),
            law_firm=referral.law_firm,
        )
    return referral


def _debtor(service: LedgerService, account: Account) -> dict[str, Any]:
    if account.debtor_id is None:
        raise ReferralNotDeliverable(
            f"account {account.id} has no debtor: a firm cannot act on it",
            account_id=str(account.id),
        )
    try:
        debtor = service.get_debtor(account.debtor_id)
    except errors.DebtorNotFound as e:
        raise ReferralNotDeliverable(
            f"the debtor of account {account.id} is not in the ledger",
            account_id=str(account.id),
        ) from e
    if debtor.erased:
        raise ReferralNotDeliverable(
            f"the personal data of account {account.id}'s debtor was erased",
            account_id=str(account.id),
        )
    register_personal_values(
        debtor.name,
        *debtor.phones,
        *debtor.emails,
        *(v for address in debtor.addresses for v in address.values()),
    )
    return {
        "debtor_id": str(debtor.id),
        "name": debtor.name,
        "addresses": [dict(a) for a in debtor.addresses],
        "phones": list(debtor.phones),
        "emails": list(debtor.emails),
        "time_zone": debtor.time_zone,
        "jurisdiction": debtor.jurisdiction,
    }


def _account(account: Account) -> dict[str, Any]:
    def money(minor: int | None) -> str | None:
        return None if minor is None else format_minor(minor, account.currency)

    return {
        "account_id": str(account.id),
        "creditor": account.creditor,
        "original_creditor": account.original_creditor,
        "reference": account.reference,
        "currency": account.currency,
        "status": account.status,
        "legal_status": account.legal_status,
        "flags": list(account.flags),
        "placed_at": rfc3339(account.placed_at) if account.placed_at else None,
        "charge_off_date": account.charge_off_date.isoformat() if account.charge_off_date else None,
        "last_payment_date": (
            account.last_payment_date.isoformat() if account.last_payment_date else None
        ),
        "last_payment_amount": money(account.last_payment_amount),
        "limitation_expires_on": (
            account.limitation_expires_on.isoformat() if account.limitation_expires_on else None
        ),
    }


def build_package(
    service: LedgerService,
    account_id: UUID,
    *,
    referral_version: int | None = None,
    delivery_key: str | None = None,
) -> ReferralPackage:
    """The package for the referral recorded at ``referral_version`` (default: the
    current referral); ``ReferralNotDeliverable`` if it is no longer current."""
    export = covered_export(service, account_id)
    account = export.account
    referral = _referral(service, export, referral_version)
    balance = {c: format_minor(v, account.currency) for c, v in sorted(account.balance.items())}
    balance["total"] = format_minor(account.total_balance, account.currency)
    body: dict[str, Any] = {
        "format": PACKAGE_FORMAT,
        "account": _account(account),
        "itemization": export.itemization.as_dict(),
        "balance": balance,
        "history": export.bundle,
        "debtor": _debtor(service, account),
        "referral": {
            "firm": referral.law_firm,
            "referred_on": referral.referred_on.isoformat(),
            "referral_version": referral.originator_version,
            "recorded_at": rfc3339(referral.timestamp),
            "delivery_key": delivery_key,
        },
    }
    body[DIGEST_FIELD] = package_digest(body)
    return ReferralPackage(body)
