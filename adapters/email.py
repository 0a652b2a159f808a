"""E-mail through an SMTP relay: plain, STARTTLS or SSL, with an optional login.

Each message is standard MIME: ``multipart/alternative`` with a plain-text part
and an HTML part (Jinja2, autoescaped), both ending with the disclosures the
rule packs require and the opt-out notice.  Headers:

* ``Message-ID`` derived from the job's idempotency key
  (``<{event}.{version}.{adapter}@{domain}>``), so a message the relay already
  took is recognisable when the worker, killed before it could record the
  delivery, sends it again; ``X-Arrears-Key`` carries the key as it is.
* ``List-Unsubscribe`` with the configured ``mailto:`` and ``https:`` targets
  (``{message_id}`` in them is filled in); by default a ``mailto:`` to the
  sender.  ``List-Unsubscribe-Post`` (RFC 8058 one-click) when ``one_click``.

The relay's answer decides: a 5xx refusal of the recipient or of the message
fails it at once; 4xx answers, refused or dropped connections and timeouts are
retried.  A refused login or sender, or a relay without STARTTLS, is a
configuration problem: retried (and in the end dead-lettered) rather than
blamed on the message.  Error texts carry the SMTP code, never the relay's
text, which quotes the address.  The reference recorded as ``MessageSent`` is
the ``Message-ID``.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, parseaddr

import structlog

from adapters.config import EmailSettings, secret
from adapters.outbox.base import DeliveryError, Job, PermanentDeliveryError
from adapters.outbox.messages import MessageAdapter, Outgoing
from adapters.render import Renderer
from ledger.domain.debtor import Debtor
from ledger.services import LedgerService

log = structlog.get_logger("arrears.email")

DEFAULT_SUBJECT = "A message about your account"
#: SMTP line endings; headers folded only past RFC 5322's hard limit, so that a long
#: ``Message-ID`` stays on its line (some receivers mishandle folded identifiers).
POLICY = SMTP_POLICY.clone(max_line_length=998)

_ADDRESS = re.compile(r"[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+")
_NOT_ATEXT = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]")

SmtpFactory = Callable[[EmailSettings], smtplib.SMTP]


def message_id_for(key: str, domain: str) -> str:
    """An RFC 5322 ``Message-ID`` made from an idempotency key (``:`` is not allowed)."""
    left = _NOT_ATEXT.sub(".", key).strip(".")
    return f"<{left}@{domain}>"


def check_address(address: str) -> str:
    if not _ADDRESS.fullmatch(address.strip()):
        raise PermanentDeliveryError("the debtor's e-mail address is not a valid address")
    return address.strip()


def _cte(text: str) -> str:
    """7bit for short-lined ASCII; quoted-printable otherwise, so no relay needs 8BITMIME."""
    plain = text.isascii() and all(len(line) <= 900 for line in text.splitlines())
    return "7bit" if plain else "quoted-printable"


def _connect(settings: EmailSettings) -> smtplib.SMTP:
    # Certificates are always verified; a private relay CA comes from ``ca_file``.
    context = ssl.create_default_context(cafile=settings.ca_file)
    if settings.security == "ssl":
        return smtplib.SMTP_SSL(
            settings.host, settings.port, timeout=settings.timeout, context=context
        )
    smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    if settings.security == "starttls":
        try:
            smtp.ehlo()
            smtp.starttls(context=context)
            smtp.ehlo()
        except BaseException:
            smtp.close()
            raise
    return smtp


def classify(error: Exception) -> DeliveryError:
    """What an SMTP failure means for the message (see the module docstring)."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [int(code) for code, _ in error.recipients.values()] or [0]
        code = max(codes)
        if code >= 500:
            return PermanentDeliveryError(f"the mail server refused the recipient (SMTP {code})")
        return DeliveryError(f"the mail server deferred the recipient (SMTP {code})")
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return DeliveryError(
            f"the mail server refused the login (SMTP {error.smtp_code}); "
            "check [adapters.email] username_env and password_env"
        )
    if isinstance(error, smtplib.SMTPSenderRefused):
        return DeliveryError(
            f"the mail server refused the sender (SMTP {error.smtp_code}); "
            "check [adapters.email] sender"
        )
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return DeliveryError("the mail server does not offer STARTTLS; check [adapters.email]")
    if isinstance(error, smtplib.SMTPResponseException):
        code = int(error.smtp_code)
        if code >= 500:
            return PermanentDeliveryError(f"the mail server refused the message (SMTP {code})")
        return DeliveryError(f"the mail server deferred the message (SMTP {code})")
    if isinstance(error, TimeoutError) or isinstance(error.__context__, TimeoutError):
        return DeliveryError("the mail server did not answer in time")  # smtplib wraps it
    return DeliveryError(f"cannot reach the mail server ({type(error).__name__})")


class EmailAdapter(MessageAdapter):
    """E-mails the debtor each ``MessageQueued`` on channel ``email``."""

    channel = "email"
    recipient_kind = "email"

    def __init__(
        self,
        settings: EmailSettings,
        renderer: Renderer,
        *,
        name: str = "email",
        environ: Mapping[str, str] | None = None,
        connect: SmtpFactory = _connect,
    ) -> None:
        super().__init__(
            renderer, opt_out_text=settings.opt_out_text, recheck_gate=settings.recheck_gate
        )
        self.name = name
        self.settings = settings
        self._connect = connect
        self._login: tuple[str, str] | None = None
        if settings.username_env and settings.password_env:
            where = "[adapters.email]"
            self._login = (
                secret(settings.username_env, where=f"{where} username_env", environ=environ),
                secret(settings.password_env, where=f"{where} password_env", environ=environ),
            )
        self.envelope_from = parseaddr(settings.sender)[1] or settings.sender
        self.domain = (
            settings.message_id_domain or self.envelope_from.rpartition("@")[2] or "arrears"
        )
        self.unsubscribe_targets: Sequence[str] = settings.list_unsubscribe or (
            f"mailto:{self.envelope_from}?subject=unsubscribe",
        )

    def recipients(self, debtor: Debtor) -> Sequence[str]:
        return debtor.emails

    def _targets(self, job: Job) -> list[str]:
        message_id = str(job.payload.get("message_id", ""))
        return [t.replace("{message_id}", message_id) for t in self.unsubscribe_targets]

    def unsubscribe(self, job: Job) -> str | None:
        targets = self._targets(job)
        web = [t for t in targets if t.startswith(("https://", "http://"))]
        chosen = web or targets
        return chosen[0] if chosen else None

    # -------------------------------------------------------------- deliver

    def build(self, job: Job, outgoing: Outgoing, to: str, at: datetime) -> EmailMessage:
        """The MIME message for ``job`` (no network)."""
        rendered = outgoing.rendered
        message = EmailMessage(policy=POLICY)
        message["From"] = self.settings.sender
        message["To"] = to
        message["Subject"] = rendered.subject or DEFAULT_SUBJECT
        message["Date"] = format_datetime(at)
        message["Message-ID"] = message_id_for(job.key, self.domain)
        message["X-Arrears-Key"] = job.key
        if self.settings.reply_to:
            message["Reply-To"] = self.settings.reply_to
        message["List-Unsubscribe"] = ", ".join(f"<{t}>" for t in self._targets(job))
        if self.settings.one_click:
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message.set_content(rendered.text, cte=_cte(rendered.text))
        if rendered.html is not None:
            message.add_alternative(rendered.html, subtype="html", cte=_cte(rendered.html))
        return message

    def deliver(self, job: Job, service: LedgerService) -> str:
        outgoing = self.prepare(job, service)
        if outgoing is None:
            return "already-sent"
        to = check_address(outgoing.recipient)
        message = self.build(job, outgoing, to, service.clock.now())
        try:
            with self._connect(self.settings) as smtp:
                if self._login is not None:
                    smtp.login(*self._login)
                smtp.send_message(message, from_addr=self.envelope_from, to_addrs=[to])
        except (smtplib.SMTPException, OSError) as e:
            raise classify(e) from e
        return str(message["Message-ID"])
