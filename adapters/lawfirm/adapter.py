"""The outbox adapter that delivers referrals to law firms over HTTPS, signed.

Each ``ReferredToLawFirm`` event is one job, keyed ``{account}:{version}:lawfirm``;
its payload names the firm and the referral's version, never the debtor.  On
delivery the referral package (``adapters.lawfirm.package``) is built and POSTed
to the firm's ``url`` from ``[adapters.lawfirm.NAME]`` with::

    Content-Type: application/json
    Idempotency-Key: <job key>          the firm acts once per key
    Arrears-Signature: t=<unix>,v1=<hex>  HMAC-SHA256 of "{t}.{body}" (signing.py)

The secret is read only from the environment variable ``secret_env`` names
(and, while rotating keys, the one ``previous_secret_env`` names: the request
then carries one ``v1`` per secret).  A 2xx answer is success; the firm's
reference is taken from the answer's JSON (``reference``, ``firm_reference`` or
``id``) and recorded with ``PartnerAcknowledged``.  408, 425, 429, 5xx, timeouts
and refused connections are retried; a redirect or any other 4xx dead-letters
the job, and so does a referral to a firm with no table (the error names it),
or one withdrawn before it could be delivered.  A dead referral is recorded on
the account as a note, once.  Plain ``http://`` is refused except on loopback.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import structlog

from adapters.config import (
    AdapterConfigError,
    AdaptersConfig,
    LawFirmSettings,
    parse_adapters,
    secret,
)
from adapters.lawfirm.package import ReferralNotDeliverable, build_package
from adapters.outbox.base import Adapter, Job, PermanentDeliveryError, event_key
from adapters.signed_http import check_https, partner_reference, post_signed
from ledger.clock import ensure_utc
from ledger.domain.account import Account
from ledger.domain.ids import child_id
from ledger.services import LedgerService

log = structlog.get_logger("arrears.lawfirm")

ADAPTER_NAME = "lawfirm"
PARTNER_KIND = "law_firm"


def firm_secrets(
    settings: LawFirmSettings, environ: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """The firm's secrets from the environment: the current one first, then the one
    being retired (``previous_secret_env``), if set."""
    where = f"[adapters.lawfirm.{settings.name}]"
    found = [secret(settings.secret_env, where=f"{where} secret_env", environ=environ)]
    previous = settings.options.get("previous_secret_env")
    if previous is not None:
        if not isinstance(previous, str) or not previous.replace("_", "").isalnum():
            raise AdapterConfigError(
                f"{where} previous_secret_env names an environment variable (letters, digits, _)"
            )
        found.append(secret(previous, where=f"{where} previous_secret_env", environ=environ))
    return tuple(found)


def check_url(settings: LawFirmSettings) -> None:
    check_https(
        settings.url,
        section=f"adapters.lawfirm.{settings.name}",
        why="referrals carry the debtor's personal data",
    )


class LawFirmAdapter:
    """Delivers every referral to the firm it names (one adapter for all firms)."""

    def __init__(
        self,
        firms: Mapping[str, LawFirmSettings],
        *,
        name: str = ADAPTER_NAME,
        environ: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.name = name
        self.firms = dict(firms)
        for settings in self.firms.values():
            check_url(settings)
        # Read once, at start-up: a missing variable stops the worker with its name.
        self._secrets = {n: firm_secrets(s, environ) for n, s in self.firms.items()}
        self.client = httpx.Client(transport=transport, follow_redirects=False)

    def close(self) -> None:
        self.client.close()

    # ------------------------------------------------------------- the jobs

    def jobs(self, event: Any, position: int) -> Sequence[Job]:
        if not isinstance(event, Account.ReferredToLawFirm):
            return ()
        payload = {
            "law_firm": event.law_firm,
            "referred_on": event.referred_on.isoformat(),
            "referral_version": event.originator_version,
        }
        return (
            Job(event_key(event, self.name), self.name, event.originator_id, position, payload),
        )

    # -------------------------------------------------------------- deliver

    def _firm(self, job: Job) -> tuple[str, LawFirmSettings]:
        firm = str(job.payload["law_firm"])
        settings = self.firms.get(firm)
        if settings is None:
            raise PermanentDeliveryError(
                f"law firm {firm} has no [adapters.lawfirm.{firm}] table (url, secret_env) in "
                f"the config; add it, restart the worker, then 'arrears outbox retry {job.key}'"
            )
        return firm, settings

    def deliver(self, job: Job, service: LedgerService) -> str:
        firm, settings = self._firm(job)
        try:
            package = build_package(
                service,
                job.account_id,
                referral_version=int(job.payload["referral_version"]),
                delivery_key=job.key,
            )
        except ReferralNotDeliverable as e:
            raise PermanentDeliveryError(e.message) from e
        body = package.encode()
        response = post_signed(
            self.client,
            partner=f"law firm {firm}",
            url=settings.url,
            body=body,
            secrets=self._secrets[firm],
            timestamp=int(ensure_utc(service.clock.now()).timestamp()),
            key=job.key,
            timeout=settings.timeout,
        )
        log.info(
            "lawfirm_referral_accepted",
            firm=firm,
            key=job.key,
            account_id=str(job.account_id),
            package_digest=package.digest,
            status=response.status_code,
        )
        return partner_reference(response)

    # ------------------------------------------------------------- outcomes

    def succeeded(self, job: Job, reference: str, service: LedgerService) -> None:
        firm = str(job.payload["law_firm"])
        service.acknowledge_delivery(
            job.account_id,
            partner_kind=PARTNER_KIND,
            partner=firm,
            delivery_key=job.key,
            partner_reference=reference,
        )

    def dead(self, job: Job, error: str, service: LedgerService) -> None:
        """A note on the account, once per job: the referral never reached the firm."""
        firm = str(job.payload["law_firm"])
        note_id = child_id(job.account_id, "lawfirm-undelivered", job.key)
        if any(
            isinstance(e, Account.NoteAdded) and e.note_id == note_id
            for e in service.ledger.events.get(job.account_id)
        ):
            return
        service.add_note(
            job.account_id,
            f"The referral to law firm {firm} could not be delivered: {error}. "
            f"Fix the cause, then run 'arrears outbox retry {job.key}'.",
            agent="outbox",
            note_id=note_id,
        )


def lawfirm_adapters(
    config: AdaptersConfig | Mapping[str, Any],
    service: LedgerService | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[Adapter]:
    """The law-firm adapter when the config has ``[adapters.lawfirm.*]`` tables, else none.

    Takes the parsed ``AdaptersConfig`` (or the whole loaded config file), so it
    fits ``adapters.outbox.wiring.EXTRA_FACTORIES`` as it is."""
    settings = config if isinstance(config, AdaptersConfig) else parse_adapters(config)
    if not settings.lawfirms:
        return []
    return [LawFirmAdapter(settings.lawfirms, environ=environ)]
