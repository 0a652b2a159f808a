"""A sold account delivered to its buyer, once, through the outbox.

The sale file (``arrears sale export``) is what a buyer checks before it pays;
this is the transfer afterwards.  A buyer whose ``[adapters.buyer.NAME]`` has a
``url`` receives, for every account recorded as sold to it (``SoldToDebtBuyer``,
by ``NAME`` or ``legal_name``, whichever way the sale was recorded: the CLI's
``--complete``, ``POST /v1/accounts/{id}/sale``), one signed POST: the same row
the sale file's ``accounts.csv`` holds and the account's self-verifying history
bundle, which ``python -m adapters.debt_sale.verify`` checks.  The bundle is cut
when the delivery runs and covered by the latest seal (the ledger is sealed again
only when the account moved on since), so a retry sends what is true then.

Delivered at least once with the job's ``Idempotency-Key``, signed like law-firm
referrals (``Arrears-Signature``); a 2xx is recorded on the account as
``PartnerAcknowledged`` (``partner_kind`` ``buyer``).  The outbox payload names
the sale, never the debtor: personal data is read when the delivery runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from adapters.config import AdaptersConfig, BuyerSettings, parse_adapters
from adapters.debt_sale.bundle import AccountExport, export_account, sealed_heads
from adapters.debt_sale.export import account_row
from adapters.outbox.base import (
    Adapter,
    DeliveryError,
    Job,
    PermanentDeliveryError,
    event_key,
)
from adapters.signed_http import partner_reference, partner_secrets, post_signed
from ledger import errors
from ledger.clock import ensure_utc
from ledger.domain.account import Account
from ledger.logs import register_personal_values
from ledger.money import format_minor
from ledger.services import LedgerService

ADAPTER_NAME = "buyer_sale"
PARTNER_KIND = "buyer"
DELIVERY_FORMAT = "arrears.sale-delivery.v1"


class SaleDeliveryAdapter:
    """Sold accounts to every buyer that configured a ``url``."""

    def __init__(
        self,
        buyers: Mapping[str, BuyerSettings],
        *,
        environ: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.name = ADAPTER_NAME
        self.buyers = {n: b for n, b in buyers.items() if b.url}
        self._secrets = partner_secrets(
            {n: (str(b.url), b.secret_env) for n, b in self.buyers.items()},
            section="adapters.buyer",
            url_key="url",
            why="a sold account names its debtor",
            environ=environ,
        )
        self.client = httpx.Client(transport=transport, follow_redirects=False)

    def close(self) -> None:
        self.client.close()

    def _buyer_named(self, buyer: str) -> BuyerSettings | None:
        return next((b for b in self.buyers.values() if b.is_buyer(buyer)), None)

    def jobs(self, event: Any, position: int) -> Sequence[Job]:
        if not isinstance(event, Account.SoldToDebtBuyer):
            return ()
        settings = self._buyer_named(event.buyer)
        if settings is None:
            return ()
        payload = {
            "event": "sale",
            "buyer": settings.name,
            "sold_to": event.buyer,
            "sale_id": event.portfolio_reference,
            "sale_date": event.sale_date.isoformat(),
            "price_minor": event.price,
            "version": event.originator_version,
        }
        return (
            Job(event_key(event, self.name), self.name, event.originator_id, position, payload),
        )

    def _export(self, job: Job, service: LedgerService) -> AccountExport:
        """The account as a seal covers it; sealing first when none covers its head."""
        for attempt in range(3):
            head = sealed_heads(service.ledger).get(job.account_id)
            if head is not None:
                try:
                    return export_account(service.ledger, job.account_id, head)
                except errors.ConcurrencyConflict:
                    if attempt == 2:
                        raise
            service.seal()
        raise errors.ConcurrencyConflict(
            f"account {job.account_id} kept changing while it was being sealed"
        )

    def body(self, job: Job, service: LedgerService) -> bytes:
        export = self._export(job, service)
        account = export.account
        debtor = service.debtor_of(account, fresh=True)
        if debtor is not None:
            register_personal_values(debtor.name, *debtor.phones, *debtor.emails)
        sale_id = str(job.payload["sale_id"])
        price = int(job.payload["price_minor"])
        document = {
            "format": DELIVERY_FORMAT,
            "event": "sale",
            "delivery_id": job.key,
            "buyer": job.payload["sold_to"],
            "sale_id": sale_id,
            "sale_date": job.payload["sale_date"],
            "price": format_minor(price, account.currency),
            "currency": account.currency,
            "account": account_row(sale_id, export, debtor, price),
            "bundle": export.bundle,
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()

    def deliver(self, job: Job, service: LedgerService) -> str:
        buyer = str(job.payload["buyer"])
        settings = self.buyers.get(buyer)
        if settings is None or settings.url is None:
            raise PermanentDeliveryError(f"buyer {buyer} has no url in [adapters.buyer.{buyer}]")
        try:
            body = self.body(job, service)
        except errors.ConcurrencyConflict as e:
            raise DeliveryError(f"the account kept changing while being sealed: {e.message}") from e
        response = post_signed(
            self.client,
            partner=f"buyer {buyer}",
            url=settings.url,
            body=body,
            secrets=(self._secrets[buyer],),
            timestamp=int(ensure_utc(service.clock.now()).timestamp()),
            key=job.key,
            timeout=settings.timeout,
        )
        return partner_reference(response)

    def succeeded(self, job: Job, reference: str, service: LedgerService) -> None:
        service.acknowledge_delivery(
            job.account_id,
            partner_kind=PARTNER_KIND,
            partner=str(job.payload["buyer"]),
            delivery_key=job.key,
            partner_reference=reference,
        )

    def dead(self, job: Job, error: str, service: LedgerService) -> None:
        """Nothing to record on the account: the sale stands and the buyer has the sale
        file; ``arrears outbox list --state dead`` shows the delivery to retry."""


def buyer_adapters(
    config: AdaptersConfig | Mapping[str, Any],
    service: LedgerService | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[Adapter]:
    settings = config if isinstance(config, AdaptersConfig) else parse_adapters(config)
    if not any(b.url for b in settings.buyers.values()):
        return []
    return [SaleDeliveryAdapter(settings.buyers, environ=environ)]
