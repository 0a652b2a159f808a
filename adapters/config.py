"""The ``[adapters.*]`` tables of the config file, checked once at start-up.

Secrets never live in the file: a table names the environment variable that
holds each one (``auth_token_env = "ARREARS_TWILIO_AUTH_TOKEN"``) and ``secret``
reads it.  A key that looks like a secret itself (``password``, ``auth_token``,
``secret``, ...) is refused, so one cannot be committed by mistake.  Unknown keys
in the tables this module owns are refused too (a typo would otherwise be
ignored); partner tables keep theirs in ``options`` for their adapter to read.

See ``arrears.example.toml`` for every key, documented.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, TypeVar, cast

from ledger import errors
from ledger.observers import RetryPolicy

SmsProfile = Literal["generic", "twilio"]
SmtpSecurity = Literal["plain", "starttls", "ssl"]
SMS_PROFILES: tuple[SmsProfile, ...] = ("generic", "twilio")
SMTP_SECURITY: tuple[SmtpSecurity, ...] = ("plain", "starttls", "ssl")

TWILIO_URL = "https://api.twilio.com/2010-04-01/Accounts/{account_sid}/Messages.json"

#: Keys that would hold a secret in the file; their ``*_env`` twin is the way.
SECRET_KEYS = frozenset(
    {"password", "secret", "token", "auth_token", "api_key", "account_sid", "key", "username"}
)
#: Parts of a key's name that mark it as a secret wherever they appear
#: (``api_token``, ``client_secret``, ``signing_key``, ``smtp_passwd``).
_SECRET_WORDS = ("password", "passwd", "secret", "token", "key", "credential", "private")


def looks_secret(key: str) -> bool:
    """A key that would hold a secret itself; ``..._env`` names a variable and is fine."""
    name = key.lower()
    if name.endswith("_env"):
        return False
    return name in SECRET_KEYS or any(
        word in name.replace("-", "_").split("_") for word in _SECRET_WORDS
    )


T = TypeVar("T")


class AdapterConfigError(errors.ValidationError):
    """The adapters' configuration cannot work as written: fix the file or the environment."""

    code = "invalid_config"


# ------------------------------------------------------------------ settings


@dataclass(frozen=True)
class OutboxSettings:
    """``[adapters.outbox]``: how patiently jobs are retried before they are dead."""

    max_attempts: int = 8
    backoff_base: float = 5.0
    backoff_cap: float = 300.0
    jitter: float = 0.5
    lease_seconds: float = 300.0
    batch_size: int = 200

    def policy(self) -> RetryPolicy:
        return RetryPolicy(
            attempts=self.max_attempts,
            base_delay=self.backoff_base,
            max_delay=self.backoff_cap,
            jitter=self.jitter,
        )


@dataclass(frozen=True)
class SmsSettings:
    """``[adapters.sms]``: an HTTP SMS gateway."""

    url: str
    sender: str
    profile: SmsProfile = "generic"
    timeout: float = 10.0
    api_key_env: str | None = None  # generic: sent as ``Authorization: Bearer``
    account_sid_env: str | None = None  # twilio
    auth_token_env: str | None = None  # twilio
    default_region: str | None = None  # numbers written without +country
    status_callback_url: str | None = None  # twilio ``StatusCallback``
    opt_out_text: str = "Reply STOP to opt out."
    recheck_gate: bool = True


@dataclass(frozen=True)
class EmailSettings:
    """``[adapters.email]``: an SMTP relay."""

    host: str
    sender: str
    port: int = 587
    security: SmtpSecurity = "starttls"
    username_env: str | None = None
    password_env: str | None = None
    timeout: float = 10.0
    list_unsubscribe: tuple[str, ...] = ()
    one_click: bool = False
    reply_to: str | None = None
    message_id_domain: str | None = None
    opt_out_text: str = "To stop emails from us, use the unsubscribe link."
    recheck_gate: bool = True
    #: A CA bundle for a relay with a private certificate (default: the system's CAs).
    ca_file: str | None = None


@dataclass(frozen=True)
class LawFirmSettings:
    """``[adapters.lawfirm.NAME]``: a firm that receives referrals over HTTPS."""

    name: str
    url: str
    secret_env: str
    timeout: float = 10.0
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AgencySettings:
    """``[adapters.agency.NAME]``: an agency accounts are placed with."""

    name: str
    webhook_url: str | None = None
    secret_env: str | None = None
    timeout: float = 10.0
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BuyerSettings:
    """``[adapters.buyer.NAME]``: a debt buyer sale files are made for.

    With a ``url`` (and ``secret_env`` to sign with), each account recorded as sold
    to this buyer (by ``NAME`` or ``legal_name``) is also delivered to that endpoint
    through the outbox, with its self-verifying history bundle.
    """

    name: str
    legal_name: str = ""
    url: str | None = None
    secret_env: str | None = None
    timeout: float = 30.0
    options: Mapping[str, Any] = field(default_factory=dict)

    def is_buyer(self, buyer: str) -> bool:
        """Whether a sale recorded to ``buyer`` is a sale to this buyer."""
        names = {self.name.strip().casefold(), self.legal_name.strip().casefold()} - {""}
        return buyer.strip().casefold() in names


@dataclass(frozen=True)
class AdaptersConfig:
    outbox: OutboxSettings = field(default_factory=OutboxSettings)
    sms: SmsSettings | None = None
    email: EmailSettings | None = None
    messages: Mapping[str, str] = field(default_factory=dict)  # template variables
    lawfirms: Mapping[str, LawFirmSettings] = field(default_factory=dict)
    agencies: Mapping[str, AgencySettings] = field(default_factory=dict)
    buyers: Mapping[str, BuyerSettings] = field(default_factory=dict)


# ------------------------------------------------------------------- reading


class _Table:
    """One TOML table being read: typed getters naming ``[where]`` in every error."""

    def __init__(self, where: str, raw: object) -> None:
        if not isinstance(raw, Mapping):
            raise AdapterConfigError(f"[{where}] must be a table", section=where)
        self.where = where
        self.raw: Mapping[str, Any] = raw
        self.used: set[str] = set()
        for key in raw:
            if looks_secret(key):
                raise AdapterConfigError(
                    f"[{where}] {key}: secrets never go in the config file; put it in an "
                    f"environment variable and name it with {key}_env",
                    section=where,
                    key=key,
                )

    def _get(self, key: str, kind: type[T] | tuple[type, ...], what: str) -> T | None:
        self.used.add(key)
        value = self.raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool) and kind in (int, float):
            value = None  # True is an int to Python, never to a person
        elif kind is float and isinstance(value, int):
            value = float(value)
        if value is None or not isinstance(value, kind):
            raise AdapterConfigError(
                f"[{self.where}] {key} must be {what}", section=self.where, key=key
            )
        return cast(T, value)

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self._get(key, str, "a string")
        if value is not None and not value.strip():
            raise AdapterConfigError(
                f"[{self.where}] {key} must not be empty", section=self.where, key=key
            )
        return default if value is None else value

    def required(self, key: str) -> str:
        value = self.text(key)
        if value is None:
            raise AdapterConfigError(f"[{self.where}] needs {key}", section=self.where, key=key)
        return value

    def number(self, key: str, default: float, *, minimum: float = 0.0) -> float:
        value = self._get(key, float, "a number")
        if value is None:
            return default
        if value < minimum or (key == "timeout" and value <= 0):
            bound = "positive" if key == "timeout" else f"at least {minimum:g}"
            raise AdapterConfigError(
                f"[{self.where}] {key} must be {bound}",
                section=self.where,
                key=key,
            )
        return value

    def integer(self, key: str, default: int, *, minimum: int = 1) -> int:
        value = self._get(key, int, "a whole number")
        if value is None:
            return default
        if value < minimum:
            raise AdapterConfigError(
                f"[{self.where}] {key} must be at least {minimum}", section=self.where, key=key
            )
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self._get(key, bool, "true or false")
        return default if value is None else value

    def choice(self, key: str, allowed: tuple[str, ...], default: str) -> str:
        value = self.text(key, default)
        assert value is not None
        if value not in allowed:
            raise AdapterConfigError(
                f"[{self.where}] {key} must be one of {', '.join(allowed)}; got {value!r}",
                section=self.where,
                key=key,
            )
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        self.used.add(key)
        value = self.raw.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise AdapterConfigError(
                f"[{self.where}] {key} must be a string or a list of strings",
                section=self.where,
                key=key,
            )
        return tuple(value)

    def env_name(self, key: str) -> str | None:
        value = self.text(key)
        if value is not None and not value.replace("_", "").isalnum():
            raise AdapterConfigError(
                f"[{self.where}] {key} names an environment variable (letters, digits, _), "
                f"not a value",
                section=self.where,
                key=key,
            )
        return value

    def strict(self) -> None:
        unknown = sorted(set(self.raw) - self.used)
        if unknown:
            raise AdapterConfigError(
                f"[{self.where}] has unknown keys: {', '.join(unknown)} (see arrears.example.toml)",
                section=self.where,
                keys=unknown,
            )

    def rest(self) -> Mapping[str, Any]:
        return MappingProxyType({k: v for k, v in self.raw.items() if k not in self.used})


def _enabled(table: _Table) -> bool:
    return table.flag("enabled", True)


def _outbox(table: _Table) -> OutboxSettings:
    settings = OutboxSettings(
        max_attempts=table.integer("max_attempts", 8),
        backoff_base=table.number("backoff_base", 5.0),
        backoff_cap=table.number("backoff_cap", 300.0),
        jitter=table.number("jitter", 0.5),
        lease_seconds=table.number("lease_seconds", 300.0, minimum=1.0),
        batch_size=table.integer("batch_size", 200),
    )
    table.strict()
    if settings.jitter > 1:
        raise AdapterConfigError("[adapters.outbox] jitter must be between 0 and 1")
    return settings


def _sms(table: _Table) -> SmsSettings | None:
    if not _enabled(table):
        return None
    profile = cast(SmsProfile, table.choice("profile", SMS_PROFILES, "generic"))
    url = table.text("url", TWILIO_URL if profile == "twilio" else None)
    if url is None:
        raise AdapterConfigError("[adapters.sms] needs url (the gateway's endpoint)")
    settings = SmsSettings(
        url=url,
        sender=table.required("sender"),
        profile=profile,
        timeout=table.number("timeout", 10.0),
        api_key_env=table.env_name("api_key_env"),
        account_sid_env=table.env_name("account_sid_env"),
        auth_token_env=table.env_name("auth_token_env"),
        default_region=table.text("default_region"),
        status_callback_url=table.text("status_callback_url"),
        opt_out_text=table.text("opt_out_text", SmsSettings.opt_out_text) or "",
        recheck_gate=table.flag("recheck_gate", True),
    )
    table.strict()
    if profile == "twilio" and not (settings.account_sid_env and settings.auth_token_env):
        raise AdapterConfigError(
            "[adapters.sms] profile twilio needs account_sid_env and auth_token_env"
        )
    return settings


def _email(table: _Table) -> EmailSettings | None:
    if not _enabled(table):
        return None
    security = cast(SmtpSecurity, table.choice("security", SMTP_SECURITY, "starttls"))
    default_port = {"plain": 25, "starttls": 587, "ssl": 465}[security]
    settings = EmailSettings(
        host=table.required("host"),
        sender=table.required("sender"),
        port=table.integer("port", default_port),
        security=security,
        username_env=table.env_name("username_env"),
        password_env=table.env_name("password_env"),
        timeout=table.number("timeout", 10.0),
        list_unsubscribe=table.texts("list_unsubscribe"),
        one_click=table.flag("one_click", False),
        reply_to=table.text("reply_to"),
        message_id_domain=table.text("message_id_domain"),
        opt_out_text=table.text("opt_out_text", EmailSettings.opt_out_text) or "",
        recheck_gate=table.flag("recheck_gate", True),
        ca_file=table.text("ca_file"),
    )
    table.strict()
    if bool(settings.username_env) != bool(settings.password_env):
        raise AdapterConfigError("[adapters.email] needs both username_env and password_env")
    for target in settings.list_unsubscribe:
        if not target.startswith(("mailto:", "https://", "http://")):
            raise AdapterConfigError(
                "[adapters.email] list_unsubscribe entries are mailto: or https:// URLs"
            )
    if settings.one_click and not any(
        t.startswith(("https://", "http://")) for t in settings.list_unsubscribe
    ):
        raise AdapterConfigError("[adapters.email] one_click needs an https:// list_unsubscribe")
    return settings


def _named(raw: object, where: str, build: Callable[[str, _Table], T]) -> Mapping[str, T]:
    if raw is None:
        return MappingProxyType({})
    if not isinstance(raw, Mapping):
        raise AdapterConfigError(f"[{where}] must hold one table per partner: [{where}.NAME]")
    return MappingProxyType(
        {name: build(name, _Table(f"{where}.{name}", t)) for name, t in raw.items()}
    )


def _lawfirm(name: str, table: _Table) -> LawFirmSettings:
    url = table.required("url")
    secret_env = table.env_name("secret_env")
    if secret_env is None:
        raise AdapterConfigError(f"[{table.where}] needs secret_env (signs referrals)")
    return LawFirmSettings(
        name=name,
        url=url,
        secret_env=secret_env,
        timeout=table.number("timeout", 10.0),
        options=table.rest(),
    )


def _agency(name: str, table: _Table) -> AgencySettings:
    return AgencySettings(
        name=name,
        webhook_url=table.text("webhook_url"),
        secret_env=table.env_name("secret_env"),
        timeout=table.number("timeout", 10.0),
        options=table.rest(),
    )


def _buyer(name: str, table: _Table) -> BuyerSettings:
    url = table.text("url")
    secret_env = table.env_name("secret_env")
    if url is not None and secret_env is None:
        raise AdapterConfigError(
            f"[{table.where}] has a url but no secret_env to sign sale deliveries with",
            section=table.where,
            key="secret_env",
        )
    return BuyerSettings(
        name=name,
        legal_name=table.text("legal_name", "") or "",
        url=url,
        secret_env=secret_env,
        timeout=table.number("timeout", 30.0),
        options=table.rest(),
    )


def _messages(raw: object) -> Mapping[str, str]:
    if raw is None:
        return MappingProxyType({})
    if not isinstance(raw, Mapping) or not all(isinstance(v, str) for v in raw.values()):
        raise AdapterConfigError("[adapters.messages] holds template variables: strings only")
    return MappingProxyType(dict(raw))


KNOWN_SECTIONS = ("outbox", "sms", "email", "messages", "lawfirm", "agency", "buyer")


def parse_adapters(config: Mapping[str, Any]) -> AdaptersConfig:
    """The ``[adapters]`` part of a loaded config file (``bootstrap.load_config``)."""
    raw = config.get("adapters") or {}
    if not isinstance(raw, Mapping):
        raise AdapterConfigError("[adapters] must be a table")
    unknown = sorted(set(raw) - set(KNOWN_SECTIONS))
    if unknown:
        raise AdapterConfigError(
            f"unknown adapter sections: {', '.join('[adapters.' + u + ']' for u in unknown)}; "
            f"known: {', '.join(KNOWN_SECTIONS)}"
        )
    return AdaptersConfig(
        outbox=_outbox(_Table("adapters.outbox", raw.get("outbox", {}))),
        sms=_sms(_Table("adapters.sms", raw["sms"])) if "sms" in raw else None,
        email=_email(_Table("adapters.email", raw["email"])) if "email" in raw else None,
        messages=_messages(raw.get("messages")),
        lawfirms=_named(raw.get("lawfirm"), "adapters.lawfirm", _lawfirm),
        agencies=_named(raw.get("agency"), "adapters.agency", _agency),
        buyers=_named(raw.get("buyer"), "adapters.buyer", _buyer),
    )


def secret(env_name: str, *, where: str, environ: Mapping[str, str] | None = None) -> str:
    """The secret in environment variable ``env_name`` (named by ``where`` in the config)."""
    value = (os.environ if environ is None else environ).get(env_name, "")
    if not value:
        raise AdapterConfigError(
            f"environment variable {env_name} (named by {where}) is not set",
            env=env_name,
        )
    return value
