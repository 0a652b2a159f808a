"""Messages as the debtor reads them: a template plus every disclosure the rules require.

Templates come from the ``arrears_message_templates`` hook, looked up by channel,
name and locale; when no plugin has the one asked for, the defaults below (en-US,
for sms, email and letter) serve.  A template body is Jinja2 (``{{ name }}``,
``{% if phone %}``) or, as ``MessageTemplate`` documents, ``str.format`` style
(``{name}``); either is rendered in a sandbox with every variable required.

Disclosures come from ``arrears_required_disclosures``, asked only of the rule
packs that apply to the debtor's jurisdiction (as the contact gate does), and
are all appended.  When none of them is an opt-out notice (its rule id says
``opt_out``), the channel's configured opt-out text is appended instead, so no
text or e-mail ever goes out without one.

E-mail gets an HTML part too: the same text, HTML-escaped by Jinja2's
autoescape, with the disclosures and the unsubscribe link in a footer.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, cast

import jinja2
import jinja2.sandbox
import pluggy

from ledger.contact_gate import account_view
from ledger.domain.account import Account
from ledger.money import format_minor
from plugins.errors import PluginError
from plugins.gate import PackMap, pack_of
from plugins.manager import call_hook
from plugins.types import Disclosure, MessageTemplate

DEFAULT_LOCALE = "en-US"

DEBT_COLLECTOR = "This is a communication from a debt collector."

#: Served when no plugin provides the template asked for.
DEFAULT_TEMPLATES: tuple[MessageTemplate, ...] = (
    MessageTemplate(
        "reminder",
        "sms",
        DEFAULT_LOCALE,
        "{{ company }}: please contact us about your {{ original_creditor }} account "
        "ref {{ reference }}.{% if phone %} Call {{ phone }}.{% endif %} " + DEBT_COLLECTOR,
    ),
    MessageTemplate(
        "reminder",
        "email",
        DEFAULT_LOCALE,
        "Dear {{ name }},\n\n"
        "Our records show a balance of {{ balance }} on your {{ original_creditor }} account "
        "(reference {{ reference }}), now owed to {{ creditor }}.\n\n"
        "Please contact us to pay or to talk about a plan that works for you."
        "{% if phone %} Call us on {{ phone }}.{% endif %}"
        "{% if website %} Or visit {{ website }}.{% endif %}\n\n"
        "{{ company }}\n\n" + DEBT_COLLECTOR,
        subject="Your {{ original_creditor }} account {{ reference }}",
    ),
    MessageTemplate(
        "reminder",
        "letter",
        DEFAULT_LOCALE,
        "{{ name }}\n\n"
        "Re: your {{ original_creditor }} account, reference {{ reference }}\n\n"
        "Our records show a balance of {{ balance }}, now owed to {{ creditor }}.\n\n"
        "Please contact us to pay or to agree a plan."
        "{% if phone %} Call us on {{ phone }}.{% endif %}"
        "{% if website %} Or visit {{ website }}.{% endif %}\n\n"
        "{{ company }}\n\n" + DEBT_COLLECTOR,
        subject="Your {{ original_creditor }} account {{ reference }}",
    ),
)

#: Template variables that are always there (configuration may fill them).
BASE_VARIABLES: Mapping[str, str] = MappingProxyType({"company": "", "phone": "", "website": ""})

_HTML_LAYOUT = """<!DOCTYPE html>
<html lang="{{ lang }}">
<head><meta charset="utf-8"><title>{{ subject }}</title></head>
<body>
{% for paragraph in paragraphs %}<p>{% for line in paragraph %}{{ line }}{% if not loop.last %}<br>
{% endif %}{% endfor %}</p>
{% endfor %}<hr>
<footer>
{% for text in disclosures %}<p><small>{{ text }}</small></p>
{% endfor %}{% if unsubscribe %}<p><small><a href="{{ unsubscribe }}">Unsubscribe</a></small></p>
{% endif %}</footer>
</body>
</html>
"""


class TemplateError(Exception):
    """A message cannot be rendered: no such template, or it needs an unknown variable."""


@dataclass(frozen=True)
class Rendered:
    """A message ready for its channel (``html`` for e-mail only)."""

    text: str
    subject: str | None
    html: str | None
    disclosures: tuple[Disclosure, ...]
    template: MessageTemplate


class _StrictFormatter(string.Formatter):
    """``str.format`` with plain names only: no attribute or index access."""

    def get_field(self, field_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        if not field_name.isidentifier():
            raise TemplateError(f"template field {{{field_name}}} is not a plain name")
        if field_name not in kwargs:
            raise TemplateError(f"template needs {{{field_name}}}, which is not available")
        return kwargs[field_name], field_name


def _language(locale: str) -> str:
    return locale.split("-")[0].lower()


@dataclass
class Renderer:
    """Templates and disclosures through the plugin manager ``pm`` (None: defaults only)."""

    pm: pluggy.PluginManager | None = None
    pack_map: PackMap = field(default_factory=PackMap)
    defaults: Sequence[MessageTemplate] = DEFAULT_TEMPLATES
    variables: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._text = jinja2.sandbox.SandboxedEnvironment(
            undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False
        )
        self._html = jinja2.sandbox.SandboxedEnvironment(
            undefined=jinja2.StrictUndefined, autoescape=True
        )
        self._layout = self._html.from_string(_HTML_LAYOUT)

    # ------------------------------------------------------------ templates

    def _plugin_templates(self, channel: str, locale: str) -> list[MessageTemplate]:
        if self.pm is None:
            return []
        found: list[MessageTemplate] = []
        for batch in call_hook(
            self.pm, "arrears_message_templates", channel=channel, locale=locale
        ):
            found.extend(t for t in batch or () if isinstance(t, MessageTemplate))
        return found

    def template(self, channel: str, name: str, locale: str) -> MessageTemplate:
        """The template ``name`` for ``channel`` in ``locale``: a plugin's, else a default.

        Another language is never substituted; English locales fall back to en-US.
        """
        locales = [locale]
        if _language(locale) == "en" and locale.lower() != DEFAULT_LOCALE.lower():
            locales.append(DEFAULT_LOCALE)
        for wanted in locales:
            candidates = [*self._plugin_templates(channel, wanted), *self.defaults]
            for t in candidates:
                if t.name == name and t.channel == channel and t.locale.lower() == wanted.lower():
                    return t
        raise TemplateError(
            f"no {channel} template {name!r} for locale {locale}: provide one through "
            "arrears_message_templates"
        )

    def _fill(self, source: str, context: Mapping[str, Any]) -> str:
        try:
            if "{{" in source or "{%" in source:
                return self._text.from_string(source).render(context)
            return _StrictFormatter().vformat(source, (), dict(context))
        except TemplateError:
            raise
        except (jinja2.TemplateError, ValueError, IndexError, KeyError) as e:
            raise TemplateError(f"template cannot be rendered: {type(e).__name__}: {e}") from e

    # ---------------------------------------------------------- disclosures

    def disclosures(
        self, account: Mapping[str, Any], channel: str, locale: str, purpose: str
    ) -> list[Disclosure]:
        """What the rule packs for ``account["jurisdiction"]`` (and every plugin that is not a
        rule pack) require in this message, in registration order, without repeats."""
        if self.pm is None:
            return []
        applicable = set(self.pack_map.for_jurisdiction(account.get("jurisdiction")))
        args = {"account": account, "channel": channel, "locale": locale, "purpose": purpose}
        found: list[Disclosure] = []
        for impl in reversed(self.pm.hook.arrears_required_disclosures.get_hookimpls()):
            pack = pack_of(impl.plugin)
            if pack is not None and pack not in applicable:
                continue
            try:
                result = impl.function(*(args[name] for name in impl.argnames))
            except Exception as e:  # fail closed: no message without its disclosures
                raise PluginError(impl.plugin_name, "arrears_required_disclosures", e) from e
            for item in cast(Sequence[object], result or ()):
                if not isinstance(item, Disclosure) or not item.text.strip():
                    raise PluginError(
                        impl.plugin_name,
                        "arrears_required_disclosures",
                        f"returned {type(item).__name__}, not a Disclosure with text",
                    )
                if all(item.text != d.text for d in found):
                    found.append(item)
        return found

    # -------------------------------------------------------------- render

    def context(
        self, account: Account, *, name: str = "", extra: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The variables a template may use (``name`` is the debtor's: personal data)."""
        balance = f"{format_minor(account.total_balance, account.currency)} {account.currency}"
        return {
            **BASE_VARIABLES,
            "company": account.creditor,
            **self.variables,
            "name": name,
            "creditor": account.creditor,
            "original_creditor": account.original_creditor or account.creditor,
            "reference": account.reference,
            "balance": balance,
            "currency": account.currency,
            **(extra or {}),
        }

    def render(
        self,
        *,
        account: Account,
        jurisdiction: str | None,
        at: datetime,
        channel: str,
        template: str,
        locale: str,
        purpose: str,
        context: Mapping[str, Any],
        opt_out_text: str = "",
        unsubscribe: str | None = None,
    ) -> Rendered:
        chosen = self.template(channel, template, locale)
        body = self._fill(chosen.body, context).strip()
        subject = None if chosen.subject is None else self._fill(chosen.subject, context).strip()
        view = MappingProxyType(account_view(account, at, jurisdiction))
        disclosures = self.disclosures(view, channel, locale, purpose)
        if opt_out_text and not any("opt_out" in d.rule_id for d in disclosures):
            disclosures.append(Disclosure("adapters.opt_out", opt_out_text, ""))
        texts = [d.text for d in disclosures]
        separator = "\n" if channel == "sms" else "\n\n"
        text = separator.join([body, *texts])
        html = None
        if channel == "email":
            paragraphs = [p.splitlines() for p in body.split("\n\n") if p.strip()]
            html = self._layout.render(
                lang=locale,
                subject=subject or "",
                paragraphs=paragraphs,
                disclosures=texts,
                unsubscribe=unsubscribe,
            )
        return Rendered(text, subject, html, tuple(disclosures), chosen)
