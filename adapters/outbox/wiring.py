"""Build the outbox from the config file: the one place adapters are chosen and wired.

Called by the composition root's callers (the worker, ``arrears outbox run``)
with the loaded config mapping and the plugin manager the service was built
with, so the templates and the disclosures come from the same plugins as the
contact rules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pluggy

from adapters.config import AdaptersConfig, parse_adapters
from adapters.outbox.base import Adapter
from adapters.outbox.engine import OutboxEngine
from adapters.render import Renderer
from ledger.services import LedgerService
from plugins.gate import PackMap
from plugins.manager import call_hook

#: Builders other adapters register (law firms, agencies, buyers): config -> their adapters.
AdapterFactory = Callable[
    [AdaptersConfig, LedgerService, Mapping[str, str] | None], Sequence[Adapter]
]
EXTRA_FACTORIES: list[AdapterFactory] = []


def build_renderer(config: Mapping[str, Any], plugins: pluggy.PluginManager | None) -> Renderer:
    settings = parse_adapters(config)
    return Renderer(
        plugins, pack_map=PackMap.from_env(config.get("rule_packs")), variables=settings.messages
    )


def build_adapters(
    config: Mapping[str, Any],
    plugins: pluggy.PluginManager | None,
    service: LedgerService,
    *,
    environ: Mapping[str, str] | None = None,
) -> list[Adapter]:
    """The adapters the config enables (secrets read from ``environ``, default the process's)."""
    from adapters.email import EmailAdapter
    from adapters.sms import SmsAdapter

    settings = parse_adapters(config)
    renderer = build_renderer(config, plugins)
    adapters: list[Adapter] = []
    if settings.sms is not None:
        adapters.append(SmsAdapter(settings.sms, renderer, environ=environ))
    if settings.email is not None:
        adapters.append(EmailAdapter(settings.email, renderer, environ=environ))
    from adapters.agency.webhooks import agency_adapters
    from adapters.debt_sale.delivery import buyer_adapters
    from adapters.lawfirm import lawfirm_adapters
    from adapters.plugin_channel import plugin_channel_adapters

    if plugins is not None:
        served = {str(getattr(a, "channel", "")) for a in adapters} - {""}
        channels = [c for batch in call_hook(plugins, "arrears_channels") for c in batch or ()]
        adapters.extend(plugin_channel_adapters(channels, renderer, served=served))

    for factory in (lawfirm_adapters, agency_adapters, buyer_adapters, *EXTRA_FACTORIES):
        adapters.extend(factory(settings, service, environ))
    return adapters


def build_outbox(
    service: LedgerService,
    config: Mapping[str, Any],
    plugins: pluggy.PluginManager | None,
    *,
    environ: Mapping[str, str] | None = None,
    **engine_options: Any,
) -> OutboxEngine:
    """An engine over the configured adapters, with ``[adapters.outbox]``'s retry policy."""
    settings = parse_adapters(config).outbox
    options: dict[str, Any] = {
        "policy": settings.policy(),
        "lease_seconds": settings.lease_seconds,
        "batch_size": settings.batch_size,
    }
    options.update(engine_options)
    adapters = build_adapters(config, plugins, service, environ=environ)
    return OutboxEngine(service, adapters, **options)
