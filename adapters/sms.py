"""SMS through an HTTP gateway: a ``generic`` JSON profile and the ``twilio`` Messages API.

``generic``
    ``POST url`` with JSON ``{"id", "to", "from", "body"}`` (``id`` is the message
    id) and an ``Idempotency-Key`` header holding the job's key, by which the
    gateway deduplicates; an ``Authorization: Bearer`` token when ``api_key_env``
    names one.  The gateway's reference is the ``id`` of its JSON answer.
``twilio``
    ``POST url`` (``.../Accounts/{account_sid}/Messages.json``) with the form
    fields ``To``, ``From`` (or ``MessagingServiceSid`` for an ``MG...`` sender),
    ``Body`` and ``StatusCallback``, HTTP basic auth with the account SID and
    auth token from the environment; the reference is the answer's ``sid``.
    Twilio does not deduplicate requests: a worker killed between Twilio's answer
    and the outbox's record sends that text twice (the outbox keeps that window
    to one HTTP round trip).

Numbers are validated and written as E.164 with ``phonenumbers``; an invalid
one fails the message at once.  A 2xx answer is success, 408, 429 and 5xx (and
timeouts and refused connections) are retried, any other 4xx fails the message.
Error texts name the status and the gateway's error code, never its message
text, which may quote the number.

Delivery reports come back through ``handle_status_callback`` (the HTTP API
mounts it), which accepts the generic shape and Twilio's status callbacks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

import httpx
import phonenumbers
import structlog

from adapters.config import SmsSettings, secret
from adapters.outbox.base import DeliveryError, Job, PermanentDeliveryError
from adapters.outbox.messages import MessageAdapter
from adapters.outbox.store import OutboxStore, outbox_store
from adapters.render import Renderer
from adapters.signed_http import check_https, json_object, retry_after
from ledger import errors
from ledger.domain.debtor import Debtor
from ledger.services import LedgerService

log = structlog.get_logger("arrears.sms")

#: Twilio's ``MessageStatus`` values that are outcomes; the others are steps on the way.
TWILIO_STATUSES: Mapping[str, str] = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "failed",
    "failed": "failed",
    "canceled": "failed",
}
GENERIC_STATUSES: Mapping[str, str] = {
    "sent": "sent",
    "delivered": "delivered",
    "undelivered": "failed",
    "failed": "failed",
}
RETRYABLE_4XX = frozenset({408, 425, 429})
#: A gateway's ``detail`` is kept only when it is a code: free text may quote the number.
_CODE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def to_e164(number: str, region: str | None = None) -> str:
    """``number`` in E.164 (``+14155550134``); ``PermanentDeliveryError`` if it is not a
    valid number (numbers without ``+`` are read in ``region``)."""
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException as e:
        raise PermanentDeliveryError(
            "the debtor's phone number cannot be read as an E.164 number"
        ) from e
    if not phonenumbers.is_valid_number(parsed):
        raise PermanentDeliveryError("the debtor's phone number is not a valid E.164 number")
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def _error_code(response: httpx.Response) -> str:
    """The gateway's error code, if its answer has a short one (never its message)."""
    data = json_object(response)
    if data is None:
        return ""
    code = data.get("code", data.get("error_code"))
    text = str(code) if isinstance(code, int | str) else ""
    return f" (code {text})" if text and len(text) <= 32 and text.replace("_", "").isalnum() else ""


class SmsAdapter(MessageAdapter):
    """Texts the debtor each ``MessageQueued`` on channel ``sms``."""

    channel = "sms"
    recipient_kind = "phone"

    def __init__(
        self,
        settings: SmsSettings,
        renderer: Renderer,
        *,
        name: str = "sms",
        environ: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            renderer, opt_out_text=settings.opt_out_text, recheck_gate=settings.recheck_gate
        )
        self.name = name
        self.settings = settings
        where = "[adapters.sms]"
        auth: tuple[str, str] | None = None
        check_https(settings.url, section="adapters.sms", why="texts carry numbers and debts")
        self.url = settings.url
        self._bearer: str | None = None
        if settings.profile == "twilio":
            assert settings.account_sid_env and settings.auth_token_env
            sid = secret(
                settings.account_sid_env, where=f"{where} account_sid_env", environ=environ
            )
            token = secret(
                settings.auth_token_env, where=f"{where} auth_token_env", environ=environ
            )
            auth = (sid, token)
            self.url = settings.url.replace("{account_sid}", sid)
        elif settings.api_key_env:
            self._bearer = secret(
                settings.api_key_env, where=f"{where} api_key_env", environ=environ
            )
        self.client = httpx.Client(
            timeout=httpx.Timeout(settings.timeout), auth=auth, transport=transport
        )

    def close(self) -> None:
        self.client.close()

    def recipients(self, debtor: Debtor) -> Sequence[str]:
        return debtor.phones

    # -------------------------------------------------------------- deliver

    def _request(self, job: Job, to: str, body: str, message_id: str) -> httpx.Response:
        headers = {"Idempotency-Key": job.key}
        if self.settings.profile == "twilio":
            form = {"To": to, "Body": body}
            sender = self.settings.sender
            form["MessagingServiceSid" if sender.startswith("MG") else "From"] = sender
            if self.settings.status_callback_url:
                form["StatusCallback"] = self.settings.status_callback_url
            return self.client.post(self.url, data=form, headers=headers)
        if self._bearer:
            headers["Authorization"] = f"Bearer {self._bearer}"
        payload = {"id": message_id, "to": to, "from": self.settings.sender, "body": body}
        return self.client.post(self.url, json=payload, headers=headers)

    def deliver(self, job: Job, service: LedgerService) -> str:
        outgoing = self.prepare(job, service)
        if outgoing is None:
            return "already-sent"
        # A national number is read in the debtor's country, else the configured default.
        to = to_e164(outgoing.recipient, outgoing.region or self.settings.default_region)
        try:
            response = self._request(job, to, outgoing.rendered.text, outgoing.message_id)
        except httpx.TimeoutException as e:
            raise DeliveryError(
                f"the SMS gateway did not answer within {self.settings.timeout:g}s"
            ) from e
        except httpx.HTTPError as e:
            raise DeliveryError(f"cannot reach the SMS gateway ({type(e).__name__})") from e
        status = response.status_code
        if 200 <= status < 300:
            return self._reference(response, job)
        what = f"the SMS gateway answered HTTP {status}{_error_code(response)}"
        if 400 <= status < 500 and status not in RETRYABLE_4XX:
            raise PermanentDeliveryError(f"{what}: it refused the message")
        raise DeliveryError(what, retry_after=retry_after(response))

    def _reference(self, response: httpx.Response, job: Job) -> str:
        try:
            data = response.json()
        except (ValueError, UnicodeDecodeError):
            data = None
        field = "sid" if self.settings.profile == "twilio" else "id"
        if isinstance(data, Mapping) and isinstance(data.get(field), str | int):
            return str(data[field])
        return job.key


# --------------------------------------------------------- delivery reports


def record_delivery_status(
    service: LedgerService,
    *,
    status: str,
    account_id: UUID | None = None,
    message_id: str | None = None,
    provider_id: str | None = None,
    detail: str = "",
    adapter: str = "sms",
    store: OutboxStore | None = None,
) -> bool:
    """Record a delivery report (``sent``, ``delivered`` or ``failed``) for a text, named by
    ``account_id`` and ``message_id`` or by the gateway's ``provider_id`` (looked up in the
    outbox).  True if it was news; the same or an older report records nothing."""
    if status not in ("sent", "delivered", "failed"):
        raise errors.InvalidChoice(
            f"status must be sent, delivered or failed; got {status!r}", field="status"
        )
    if account_id is None or message_id is None:
        if not provider_id:
            raise errors.ValidationError(
                "a delivery report names the message (account_id and id) or the provider's id",
                field="id",
            )
        entry = (store or outbox_store(service.ledger)).by_reference(adapter, provider_id)
        if entry is None:
            raise errors.UnknownMessage(
                f"no text was sent with provider id {provider_id}", provider_id=provider_id
            )
        account_id, message_id = entry.job.account_id, str(entry.job.payload["message_id"])
    recorded = service.record_message_outcome(account_id, message_id, status, detail)
    log.info(
        "sms_status_reported",
        account_id=str(account_id),
        message_id=message_id,
        status=status,
        recorded=recorded,
    )
    return recorded


def handle_status_callback(
    service: LedgerService,
    payload: Mapping[str, Any],
    *,
    adapter: str = "sms",
    store: OutboxStore | None = None,
) -> bool:
    """A gateway's delivery report, as the HTTP API receives it (JSON or form fields).

    Generic: ``{"id": message_id, "status": "delivered" | "failed", "account_id": ...}``
    (``detail`` optional).  Twilio: ``MessageSid`` and ``MessageStatus`` (``ErrorCode``
    optional); steps that are not outcomes (``queued``, ``sending``) record nothing.
    True if an event was recorded.  Check Twilio's signature first
    (``verify_twilio_signature``).
    """
    if "MessageSid" in payload:
        raw = str(payload.get("MessageStatus") or payload.get("SmsStatus") or "").lower()
        status = TWILIO_STATUSES.get(raw)
        if status is None:
            return False
        code = str(payload.get("ErrorCode") or "")
        detail = f"twilio {raw}" + (f" (error {code})" if code.isdigit() else "")
        return record_delivery_status(
            service,
            status=status,
            provider_id=str(payload["MessageSid"]),
            detail=detail,
            adapter=adapter,
            store=store,
        )
    raw = str(payload.get("status") or "").lower()
    status = GENERIC_STATUSES.get(raw)
    if status is None:
        raise errors.InvalidChoice(
            f"status must be one of {', '.join(GENERIC_STATUSES)}; got {raw!r}", field="status"
        )
    message_id = payload.get("id")
    if not isinstance(message_id, str) or not message_id:
        raise errors.ValidationError("a delivery report needs the message's id", field="id")
    account_text = payload.get("account_id")
    account_id: UUID | None = None
    if account_text is not None:
        try:
            account_id = UUID(str(account_text))
        except ValueError:
            raise errors.ValidationError(
                "account_id must be the account's UUID", field="account_id"
            ) from None
    given = payload.get("detail")
    return record_delivery_status(
        service,
        status=status,
        account_id=account_id,
        message_id=message_id if account_id is not None else None,
        provider_id=None if account_id is not None else message_id,
        detail=given if isinstance(given, str) and _CODE.fullmatch(given) else f"gateway {raw}",
        adapter=adapter,
        store=store,
    )


def twilio_signature(url: str, params: Mapping[str, str], auth_token: str) -> str:
    """``X-Twilio-Signature`` for a form POST to ``url``: base64 HMAC-SHA1 over the URL
    followed by each parameter's name and value, sorted by name."""
    data = url + "".join(f"{k}{params[k]}" for k in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def verify_twilio_signature(
    url: str, params: Mapping[str, str], signature: str, auth_token: str
) -> bool:
    return hmac.compare_digest(twilio_signature(url, params, auth_token), signature)


__all__ = [
    "SmsAdapter",
    "handle_status_callback",
    "record_delivery_status",
    "to_e164",
    "twilio_signature",
    "verify_twilio_signature",
]
