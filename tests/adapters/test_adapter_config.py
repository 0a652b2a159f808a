"""``[adapters.*]``: the documented example is complete and valid; secrets only from the
environment; mistakes are refused at start-up with the key to fix."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from adapters.config import AdapterConfigError, parse_adapters, secret
from adapters.email import EmailAdapter
from adapters.outbox.wiring import build_outbox
from adapters.sms import SmsAdapter
from ledger.services import LedgerService
from plugins.manager import ArrearsPluginManager

EXAMPLE = Path(__file__).resolve().parents[2] / "arrears.example.toml"
SECRETS = {
    "ARREARS_TWILIO_ACCOUNT_SID": "ACexample",
    "ARREARS_TWILIO_AUTH_TOKEN": "token",
    "ARREARS_SMTP_USERNAME": "arrears",
    "ARREARS_SMTP_PASSWORD": "password",
    "ARREARS_LAWFIRM_SMITH_SECRET": "whsec_firm",
    "ARREARS_AGENCY_NORTHWIND_SECRET": "whsec_agency",
    "ARREARS_BUYER_PORTFOLIO_PARTNERS_SECRET": "whsec_buyer",
}


def example() -> dict[str, Any]:
    with EXAMPLE.open("rb") as f:
        return tomllib.load(f)


def test_the_example_config_has_every_section_and_parses() -> None:
    """arrears.example.toml documents sms, email, outbox, law firms, agencies, buyers, packs."""
    config = example()
    settings = parse_adapters(config)
    assert settings.sms is not None and settings.sms.profile == "twilio"
    assert settings.email is not None and settings.email.security == "starttls"
    assert settings.outbox.policy().attempts == 8
    assert set(settings.lawfirms) == {"smith-legal"}
    assert settings.lawfirms["smith-legal"].secret_env == "ARREARS_LAWFIRM_SMITH_SECRET"
    assert settings.agencies["northwind"].webhook_url
    assert settings.buyers["portfolio-partners"].legal_name == "Portfolio Partners LLC"
    assert config["rule_packs"]["US"] == ["us_reg_f"]
    assert parse_adapters({}).sms is None  # nothing configured, nothing on


def test_the_example_builds_an_outbox_with_secrets_from_the_environment(
    svc: LedgerService, pm: ArrearsPluginManager
) -> None:
    """The engine gets the SMS, e-mail, law-firm, agency-webhook and buyer adapters and
    the [adapters.outbox] policy."""
    engine = build_outbox(svc, example(), pm, environ=SECRETS)
    try:
        assert sorted(engine.adapters) == [
            "agency_webhook",
            "buyer_sale",
            "email",
            "lawfirm",
            "sms",
        ]
        sms = engine.adapters["sms"]
        assert isinstance(sms, SmsAdapter) and isinstance(engine.adapters["email"], EmailAdapter)
        assert sms.url == "https://api.twilio.com/2010-04-01/Accounts/ACexample/Messages.json"
        assert engine.policy.max_delay == 300.0 and engine.lease.total_seconds() == 300.0
        sms.close()
    finally:
        engine.close()
    with pytest.raises(AdapterConfigError, match=r"ARREARS_SMTP_PASSWORD .* is not set"):
        build_outbox(svc, example(), pm, environ={**SECRETS, "ARREARS_SMTP_PASSWORD": ""})


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"sms": {"url": "http://x", "sender": "+1", "auth_token": "t"}}, "auth_token_env"),
        ({"agency": {"northwind": {"api_token": "abc"}}}, "api_token_env"),
        ({"buyer": {"acme": {"client_secret": "abc"}}}, "client_secret_env"),
        ({"lawfirm": {"smith": {"url": "https://x", "signing_key": "k"}}}, "signing_key_env"),
        ({"email": {"host": "h", "sender": "s", "password": "p"}}, "password_env"),
        ({"email": {"host": "h", "sender": "s", "hots": "x"}}, "unknown keys: hots"),
        ({"sms": {"url": "http://x", "sender": "+1", "profile": "nexmo"}}, "generic, twilio"),
        ({"sms": {"sender": "+1", "profile": "twilio"}}, "account_sid_env and auth_token_env"),
        ({"sms": {"url": "http://x", "sender": "+1", "timeout": 0}}, "timeout must be positive"),
        ({"sms": {"url": "http://x", "sender": "+1", "api_key_env": "abc def"}}, "environment"),
        ({"email": {"host": "h", "sender": "s", "security": "tls"}}, "plain, starttls, ssl"),
        ({"email": {"host": "h", "sender": "s", "username_env": "U"}}, "both username_env"),
        ({"email": {"host": "h", "sender": "s", "list_unsubscribe": "x"}}, "mailto:"),
        ({"email": {"host": "h", "sender": "s", "one_click": True}}, "one_click needs"),
        ({"outbox": {"max_attempts": 0}}, "max_attempts must be at least 1"),
        ({"outbox": {"jitter": 2}}, "jitter"),
        ({"lawfirm": {"smith": {"url": "https://x"}}}, "secret_env"),
        ({"lawfirm": {"smith": {"url": "https://x", "secret": "s"}}}, "secret_env"),
        ({"fax": {}}, "unknown adapter sections"),
    ],
)
def test_mistakes_are_refused_naming_what_to_fix(table: dict[str, Any], message: str) -> None:
    """Each mistake is one error naming the table and key (and never a secret's value)."""
    with pytest.raises(AdapterConfigError, match=message) as caught:
        parse_adapters({"adapters": table})
    assert caught.value.code == "invalid_config"


def test_secrets_come_from_the_named_variable() -> None:
    """secret() reads the variable; a missing one says which and who named it."""
    assert secret("X_TOKEN", where="[adapters.x]", environ={"X_TOKEN": "v"}) == "v"
    with pytest.raises(AdapterConfigError, match=r"X_TOKEN \(named by \[adapters.x\]\)"):
        secret("X_TOKEN", where="[adapters.x]", environ={})


def test_partner_tables_keep_their_own_keys_for_their_adapters() -> None:
    """Law-firm and agency tables pass unknown keys on in ``options``."""
    settings = parse_adapters(
        {"adapters": {"lawfirm": {"a": {"url": "https://a", "secret_env": "A", "tolerance": 300}}}}
    )
    assert dict(settings.lawfirms["a"].options) == {"tolerance": 300}
