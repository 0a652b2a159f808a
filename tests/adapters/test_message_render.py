"""Rendering: plugin templates before the defaults, required disclosures always appended."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

import pytest
from outbox_helpers import OPT_OUT_SMS, open_account

from adapters.render import DEFAULT_TEMPLATES, Renderer, TemplateError
from ledger.services import DebtorDetails, LedgerService
from plugins import hookimpl
from plugins.manager import ArrearsPluginManager, build_plugin_manager
from plugins.types import MessageTemplate

NOW = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)


class SpanishTemplates:
    @hookimpl
    def arrears_message_templates(self, channel: str, locale: str) -> Sequence[MessageTemplate]:
        return [
            MessageTemplate("reminder", "sms", "es-US", "Hola {name}: saldo {balance}."),
            MessageTemplate("nudge", "email", "en-US", "Hi {{ name }}", subject="Hi"),
            MessageTemplate("broken", "sms", "en-US", "{name.__class__}"),
        ]


def render(
    renderer: Renderer,
    svc: LedgerService,
    account_id: UUID,
    *,
    channel: str = "sms",
    template: str = "reminder",
    locale: str = "en-US",
    jurisdiction: str | None = "US-IL",
    name: str = "Jane Q. Debtor",
    opt_out: str = "",
) -> tuple[str, str | None]:
    account = svc.get_account(account_id)
    rendered = renderer.render(
        account=account,
        jurisdiction=jurisdiction,
        at=NOW,
        channel=channel,
        template=template,
        locale=locale,
        purpose="collection",
        context=renderer.context(account, name=name),
        opt_out_text=opt_out,
        unsubscribe="https://x.example/u?a=1&b=2",
    )
    return rendered.text, rendered.html


def test_defaults_exist_for_sms_email_and_letter_in_en_us() -> None:
    """A reminder for each channel ships with Arrears."""
    assert {(t.channel, t.name, t.locale) for t in DEFAULT_TEMPLATES} == {
        ("sms", "reminder", "en-US"),
        ("email", "reminder", "en-US"),
        ("letter", "reminder", "en-US"),
    }


def test_plugin_templates_in_either_syntax_and_the_pack_disclosure_in_the_language(
    svc: LedgerService, account_id: UUID, pm: ArrearsPluginManager
) -> None:
    """str.format and Jinja2 bodies both render; the Reg F opt-out comes in Spanish."""
    pm.register(SpanishTemplates(), name="spanish")
    renderer = Renderer(pm)
    text, _ = render(renderer, svc, account_id, locale="es-US")
    assert text.startswith("Hola Jane Q. Debtor: saldo 1200.00 USD.")
    assert text.endswith("Responda STOP para dejar de recibir mensajes de texto.")
    text, html = render(renderer, svc, account_id, channel="email", template="nudge")
    assert text.startswith("Hi Jane Q. Debtor") and html is not None
    with pytest.raises(TemplateError, match="plain name"):
        render(renderer, svc, account_id, template="broken")
    with pytest.raises(TemplateError, match="no sms template 'reminder' for locale fr-FR"):
        render(renderer, svc, account_id, locale="fr-FR")  # never another language


def test_html_is_escaped_and_carries_the_disclosures_and_unsubscribe_link(
    svc: LedgerService, account_id: UUID, pm: ArrearsPluginManager
) -> None:
    """Values and text are HTML-escaped; the footer holds the opt-out and the link."""
    text, html = render(
        Renderer(pm), svc, account_id, channel="email", name="<script>alert(1)</script>"
    )
    assert html is not None
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Dear <script>alert(1)</script>," in text  # plain text stays as written
    assert "To stop emails from us, use the unsubscribe link or reply STOP." in html
    assert 'href="https://x.example/u?a=1&amp;b=2"' in html


def test_every_text_has_an_opt_out_even_where_no_pack_requires_one(
    svc: LedgerService, pm: ArrearsPluginManager
) -> None:
    """The US pack's notice for a US debtor; the configured text for a debtor whose pack
    requires none; never both."""
    uk = DebtorDetails(name="Ann Other", phones=["+44 20 7946 0958"], jurisdiction="GB")
    uk_account = open_account(svc, "ACC-UK", uk)
    us_account = open_account(svc, "ACC-US")
    renderer = Renderer(pm)
    us_text, _ = render(renderer, svc, us_account, opt_out="Reply STOP to opt out.")
    assert OPT_OUT_SMS in us_text and "Reply STOP to opt out." not in us_text
    uk_text, _ = render(renderer, svc, uk_account, jurisdiction="GB", opt_out="Text STOP.")
    assert OPT_OUT_SMS not in uk_text and uk_text.endswith("\nText STOP.")
    bare, _ = render(Renderer(None), svc, us_account, opt_out="Text STOP.")
    assert bare.endswith("Text STOP.")


def test_a_disclosure_hook_that_raises_stops_the_message(
    svc: LedgerService, account_id: UUID
) -> None:
    """Fail closed: no message goes out without the disclosures the rules require."""
    from plugins.errors import PluginError

    class Broken:
        @hookimpl
        def arrears_required_disclosures(self) -> Sequence[object]:
            raise RuntimeError("rule file missing")

    pm = build_plugin_manager(entry_points=False)
    pm.register(Broken(), name="broken")
    with pytest.raises(PluginError, match="broken"):
        render(Renderer(pm), svc, account_id)
