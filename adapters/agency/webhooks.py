"""Signed webhooks to agencies: a placement or a recall, delivered once per event.

An agency with a ``webhook_url`` in ``[adapters.agency.NAME]`` is told of every
account placed with it and every recall, through the outbox (at least once, keyed
by the event; the agency deduplicates by ``Idempotency-Key``).  The body names the
account and the balance placed, never the debtor: the agency takes personal data
from the placement file (``arrears placements export``) or the API, where access
is controlled per token.  Signed like law-firm referrals (``Arrears-Signature``).
A 2xx answer is recorded on the account as ``PartnerAcknowledged``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from adapters.config import (
    AdaptersConfig,
    AgencySettings,
    parse_adapters,
)
from adapters.outbox.base import Adapter, Job, PermanentDeliveryError, event_key
from adapters.signed_http import partner_reference, partner_secrets, post_signed
from ledger.clock import ensure_utc
from ledger.domain.account import Account
from ledger.money import format_minor
from ledger.services import LedgerService

ADAPTER_NAME = "agency_webhook"
PARTNER_KIND = "agency"


class AgencyWebhookAdapter:
    """Placement and recall webhooks for every agency that configured a ``webhook_url``."""

    def __init__(
        self,
        agencies: Mapping[str, AgencySettings],
        *,
        environ: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.name = ADAPTER_NAME
        self.agencies = {n: a for n, a in agencies.items() if a.webhook_url}
        self._secrets = partner_secrets(
            {n: (str(a.webhook_url), a.secret_env) for n, a in self.agencies.items()},
            section="adapters.agency",
            url_key="webhook_url",
            why="webhooks name accounts",
            environ=environ,
        )
        self.client = httpx.Client(transport=transport, follow_redirects=False)

    def close(self) -> None:
        self.client.close()

    def jobs(self, event: Any, position: int) -> Sequence[Job]:
        if isinstance(event, Account.PlacedWithAgency):
            kind = "placement"
            payload: dict[str, Any] = {
                "placed_on": event.placed_on.isoformat(),
                "recall_due": None if event.recall_due is None else event.recall_due.isoformat(),
                "commission_basis_points": event.commission_basis_points,
            }
        elif isinstance(event, Account.RecalledFromAgency):
            kind = "recall"
            payload = {"recalled_on": event.recalled_on.isoformat(), "reason": event.reason}
        else:
            return ()
        if event.agency not in self.agencies:
            return ()
        payload |= {"event": kind, "agency": event.agency, "version": event.originator_version}
        return (
            Job(event_key(event, self.name), self.name, event.originator_id, position, payload),
        )

    def body(self, job: Job, service: LedgerService) -> bytes:
        # The account as the event left it: a webhook retried later still tells the
        # balance placed (or recalled), not whatever it is by then.
        account: Account = service.ledger.repository.get(
            job.account_id, version=int(job.payload["version"])
        )
        balance = {c: format_minor(v, account.currency) for c, v in account.balance.items()}
        document = {
            **job.payload,
            "delivery_id": job.key,
            "account": {
                "id": str(account.id),
                "creditor": account.creditor,
                "reference": account.reference,
                "currency": account.currency,
                "balance": {
                    **balance,
                    "total": format_minor(account.total_balance, account.currency),
                },
            },
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()

    def deliver(self, job: Job, service: LedgerService) -> str:
        agency = str(job.payload["agency"])
        settings = self.agencies.get(agency)
        if settings is None or settings.webhook_url is None:
            raise PermanentDeliveryError(
                f"agency {agency} has no webhook_url in [adapters.agency.{agency}]"
            )
        response = post_signed(
            self.client,
            partner=f"agency {agency}",
            url=settings.webhook_url,
            body=self.body(job, service),
            secrets=(self._secrets[agency],),
            timestamp=int(ensure_utc(service.clock.now()).timestamp()),
            key=job.key,
            timeout=settings.timeout,
        )
        return partner_reference(response)

    def succeeded(self, job: Job, reference: str, service: LedgerService) -> None:
        service.acknowledge_delivery(
            job.account_id,
            partner_kind=PARTNER_KIND,
            partner=str(job.payload["agency"]),
            delivery_key=job.key,
            partner_reference=reference,
        )

    def dead(self, job: Job, error: str, service: LedgerService) -> None:
        """Nothing to record on the account: the agency still has the placement file and
        the feed; ``arrears outbox list --state dead`` shows the webhook to retry."""


def agency_adapters(
    config: AdaptersConfig | Mapping[str, Any],
    service: LedgerService | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[Adapter]:
    settings = config if isinstance(config, AdaptersConfig) else parse_adapters(config)
    if not any(a.webhook_url for a in settings.agencies.values()):
        return []
    return [AgencyWebhookAdapter(settings.agencies, environ=environ)]
