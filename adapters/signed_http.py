"""One signed POST to a partner, and what its answer means for the outbox.

Law firms and agencies receive JSON over HTTPS, signed with the
``Arrears-Signature`` HMAC (``adapters.signing``) and carrying the job's
``Idempotency-Key``.  The answer is classified the same way for every partner:
2xx is success; 408, 425, 429, 5xx, timeouts and refused connections are worth
retrying (``DeliveryError``, honouring ``Retry-After``); a redirect or any other
4xx will never succeed as sent (``PermanentDeliveryError``).  Error messages name
the partner and the status, never the body (it may hold personal data).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from adapters.config import AdapterConfigError, secret
from adapters.outbox.base import DeliveryError, PermanentDeliveryError
from adapters.signing import HEADER, sign

RETRYABLE_4XX = frozenset({408, 425, 429})
#: A partner's reference is kept only when it looks like one (a case number), never free text.
_REFERENCE = re.compile(r"[A-Za-z0-9_.:/#-]{1,128}")
_REFERENCE_FIELDS = ("reference", "firm_reference", "id")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def check_https(url: str, *, section: str, why: str) -> None:
    """Partners get personal data: HTTPS only, except to a partner played on loopback."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return
    raise AdapterConfigError(
        f"[{section}] url must be an https:// URL ({why})", section=section, key="url"
    )


def partner_secrets(
    partners: Mapping[str, tuple[str, str | None]],
    *,
    section: str,
    url_key: str,
    why: str,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Each partner's signing secret, for partners given as ``name -> (url, secret_env)``:
    the URL must be https (``check_https``) and the variable set, or start-up stops
    naming the table."""
    secrets: dict[str, str] = {}
    for name, (url, secret_env) in partners.items():
        where = f"{section}.{name}"
        check_https(url, section=where, why=why)
        if not secret_env:
            raise AdapterConfigError(
                f"[{where}] has a {url_key} but no secret_env to sign it with",
                section=where,
                key="secret_env",
            )
        secrets[name] = secret(secret_env, where=f"[{where}] secret_env", environ=environ)
    return secrets


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None


def post_signed(
    client: httpx.Client,
    *,
    partner: str,
    url: str,
    body: bytes,
    secrets: Sequence[str],
    timestamp: int,
    key: str,
    timeout: float,
) -> httpx.Response:
    """POST ``body`` signed with ``secrets`` (one ``v1`` each); the 2xx response, or raise."""
    headers = {
        HEADER: sign(body, list(secrets), timestamp),
        "Idempotency-Key": key,
        "Content-Type": "application/json",
    }
    limit = httpx.Timeout(timeout, connect=min(timeout, 5.0))
    try:
        response = client.post(url, content=body, headers=headers, timeout=limit)
    except httpx.TimeoutException as e:
        raise DeliveryError(f"{partner} did not answer within {timeout:g}s") from e
    except httpx.HTTPError as e:
        raise DeliveryError(f"cannot reach {partner} ({type(e).__name__})") from e
    status = response.status_code
    if 200 <= status < 300:
        return response
    what = f"{partner} answered HTTP {status}"
    if 300 <= status < 400:
        raise PermanentDeliveryError(f"{what} (a redirect): configure the final URL")
    if 400 <= status < 500 and status not in RETRYABLE_4XX:
        raise PermanentDeliveryError(f"{what}: it refused the delivery")
    raise DeliveryError(what, retry_after=retry_after(response))


def json_object(response: httpx.Response) -> Mapping[str, Any] | None:
    """The answer's body if it is a JSON object; None for anything else."""
    try:
        data = response.json()
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, Mapping) else None


def partner_reference(response: httpx.Response) -> str:
    """The partner's own reference for a delivery (a case number), if its answer names one."""
    data = json_object(response)
    if data is None:
        return ""
    for name in _REFERENCE_FIELDS:
        value = data.get(name)
        if isinstance(value, str | int) and not isinstance(value, bool):
            text = str(value)
            if _REFERENCE.fullmatch(text):
                return text
    return ""
