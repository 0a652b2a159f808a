"""The contact rules as the ledger's gate calls them: packs chosen per account, fail closed.

Two decisions live here rather than in the core or in the packs:

* **Which packs judge an account.**  A plugin that declares ``RULE_PACK = "<name>"``
  is a jurisdiction's rule pack; it is called only for accounts whose debtor's
  jurisdiction maps to it (``PackMap``; longest prefix wins, so ``"US-IL"`` falls
  back to ``"US"``).  Plugins without ``RULE_PACK`` (a creditor's own policy, a
  holiday calendar) judge every account.  The map is configuration: the
  ``[rule_packs]`` table of the config file or ``ARREARS_RULE_PACKS``.
* **What a broken rule means.**  A rule that raises, or returns something that is
  not a verdict, blocks the contact with a verdict naming the plugin: a compliance
  check that cannot answer must never be read as "allowed".
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

import pluggy
import structlog

from plugins.types import OUTCOMES, Verdict

log = structlog.get_logger("arrears.rules")

UNKNOWN = "unknown"
PACKS_ENV = "ARREARS_RULE_PACKS"

#: Jurisdiction prefix -> packs.  ``unknown`` is used when the debtor's jurisdiction is
#: not known: the US pack is the protective default (its hours are the narrowest
#: common window and it assumes every US time zone).
DEFAULT_PACKS: dict[str, tuple[str, ...]] = {
    "US": ("us_reg_f",),
    "CN": ("cn_collection",),
    "GB": ("uk_conc",),
    UNKNOWN: ("us_reg_f",),
}


@dataclass(frozen=True)
class PackMap:
    """Which rule packs apply to a jurisdiction (``"US-IL"``, ``"CN"``, ``"GB-SCT"``)."""

    packs: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_PACKS))
    #: The pack names an operator wrote (config or environment), checked at start-up.
    named: frozenset[str] = frozenset()

    def check_loaded(self, pm: pluggy.PluginManager) -> None:
        """Refuse a pack the operator named that no loaded plugin provides.

        A mistyped pack (``cn_colection``) would otherwise judge its accounts by no
        rules at all: the gate fails closed, so configuration must too.
        """
        loaded = {pack_of(plugin) for _, plugin in pm.list_name_plugin() if plugin} - {None}
        unknown = sorted(self.named - loaded)
        if unknown:
            raise ValueError(
                f"rule pack(s) {', '.join(map(repr, unknown))} named in [rule_packs] or "
                f"{PACKS_ENV} are not loaded; loaded packs: "
                f"{', '.join(sorted(str(p) for p in loaded)) or 'none'}"
            )

    def for_jurisdiction(self, jurisdiction: str | None) -> tuple[str, ...]:
        if not jurisdiction:
            return tuple(self.packs.get(UNKNOWN, ()))
        code = jurisdiction.upper()
        while code:
            if code in self.packs:
                return tuple(self.packs[code])
            code = code.rpartition("-")[0]
        return ()

    @classmethod
    def parse(cls, text: str) -> PackMap:
        """``"US=us_reg_f;CN=cn_collection;GB=uk_conc,extra;unknown=us_reg_f"``."""
        packs: dict[str, tuple[str, ...]] = {}
        for item in filter(None, (part.strip() for part in text.split(";"))):
            key, sep, names = item.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"{PACKS_ENV}: {item!r} is not JURISDICTION=pack[,pack...]")
            name = key.strip()
            packs[name if name == UNKNOWN else name.upper()] = tuple(
                n.strip() for n in names.split(",") if n.strip()
            )
        return cls(packs, named=frozenset(n for names in packs.values() for n in names))

    @classmethod
    def from_config(cls, table: Mapping[str, Any] | None) -> PackMap:
        """The ``[rule_packs]`` table: ``US = ["us_reg_f"]``; missing keys keep defaults."""
        packs = dict(DEFAULT_PACKS)
        named: set[str] = set()
        for key, names in (table or {}).items():
            if isinstance(names, str):
                names = [names]
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ValueError(f"[rule_packs] {key} must be a list of pack names")
            packs[key if key == UNKNOWN else key.upper()] = tuple(names)
            named.update(names)
        return cls(packs, named=frozenset(named))

    @classmethod
    def from_env(cls, config: Mapping[str, Any] | None = None) -> PackMap:
        text = os.environ.get(PACKS_ENV)
        if text:
            return cls.parse(text)
        return cls.from_config(config)


def pack_of(plugin: object) -> str | None:
    pack = getattr(plugin, "RULE_PACK", None)
    return pack if isinstance(pack, str) else None


def _crashed(plugin_name: str, why: str) -> Verdict:
    return Verdict(
        outcome="block",
        rule_id=f"{plugin_name}.crashed",
        rule_version="-",
        reason=f"rule plugin {plugin_name!r} failed ({why}); blocked because a rule that "
        "cannot answer must not be read as allowed",
        citation="Arrears: contact rules fail closed",
    )


def _checked(plugin_name: str, result: object) -> list[Verdict]:
    if result is None:
        return []
    if not isinstance(result, list | tuple):
        return [_crashed(plugin_name, f"returned {type(result).__name__}, not a list of verdicts")]
    out: list[Verdict] = []
    for item in result:
        if not isinstance(item, Verdict):
            try:
                item = Verdict(
                    outcome=item.outcome,
                    rule_id=item.rule_id,
                    rule_version=str(item.rule_version),
                    reason=item.reason,
                    citation=item.citation,
                )
            except Exception:
                return [_crashed(plugin_name, f"returned {type(item).__name__}, not a Verdict")]
        if item.outcome not in OUTCOMES:
            return [_crashed(plugin_name, f"returned outcome {item.outcome!r}")]
        out.append(item)
    return out


@dataclass
class ContactRulesCaller:
    """The ``ContactRules`` callable the ledger's gate is handed by the composition root."""

    pm: pluggy.PluginManager
    pack_map: PackMap = field(default_factory=PackMap)
    only_pack: str | None = None  # ``compliance audit --pack``: ask that pack alone

    def rule_sources(self) -> frozenset[str]:
        """What ``compliance audit --pack`` may name: the loaded rule packs and the other
        plugins that give contact rules (their rule ids start with that name)."""
        impls = self.pm.hook.arrears_contact_rules.get_hookimpls()
        return frozenset(pack_of(i.plugin) or i.plugin_name for i in impls)

    def __call__(
        self,
        account: Mapping[str, Any],
        debtor: Mapping[str, Any],
        channel: str,
        purpose: str,
        at: datetime,
        party: str,
        to: str | None,
    ) -> Sequence[Verdict]:
        applicable = set(self.pack_map.for_jurisdiction(debtor.get("jurisdiction")))
        args = {
            "account": account,
            "debtor": debtor,
            "channel": channel,
            "purpose": purpose,
            "at": at,
            "party": party,
            "to": to,
        }
        verdicts: list[Verdict] = []
        # pluggy calls implementations last-registered first; judge in registration order.
        for impl in reversed(self.pm.hook.arrears_contact_rules.get_hookimpls()):
            pack = pack_of(impl.plugin)
            if self.only_pack is not None and pack != self.only_pack:
                continue
            if pack is not None and pack not in applicable:
                continue
            try:
                result = impl.function(*(args[name] for name in impl.argnames))
            except Exception as e:  # fail closed, naming the rule
                # The exception's type only: its message may quote the debtor, and a
                # verdict's reason is stored for good in ContactBlocked/ViolationFlagged.
                log.error("contact_rule_crashed", plugin=impl.plugin_name, error=type(e).__name__)
                verdicts.append(_crashed(impl.plugin_name, f"raised {type(e).__name__}"))
                continue
            verdicts.extend(_checked(impl.plugin_name, result))
        return verdicts


def configure_packs(pm: pluggy.PluginManager, table: Mapping[str, Any] | None) -> list[str]:
    """Apply ``[rule_pack_parameters.<pack>]`` to the packs that take parameters.

    A pack module offers ``configure(**overrides)`` (see ``cn_collection``,
    ``uk_conc``); times are given as ``"HH:MM"``.  An unknown pack, an unknown
    parameter or a bad value is a ``ValueError`` naming it: a mistyped compliance
    setting must stop start-up, not be ignored.  Returns the packs configured.
    """
    if not table:
        return []
    packs = {pack_of(plugin): plugin for _, plugin in pm.list_name_plugin() if plugin}
    done = []
    for name, params in table.items():
        plugin = packs.get(name)
        configure = getattr(plugin, "configure", None)
        if plugin is None or not callable(configure):
            raise ValueError(
                f"[rule_pack_parameters.{name}]: no loaded rule pack {name!r} takes parameters"
            )
        if not isinstance(params, Mapping):
            raise ValueError(f"[rule_pack_parameters.{name}] must be a table")
        values = {key: _parameter(value) for key, value in params.items()}
        try:
            configure(**values)
        except (TypeError, ValueError) as e:
            raise ValueError(f"[rule_pack_parameters.{name}]: {e}") from e
        done.append(name)
    return done


def _parameter(value: Any) -> Any:
    """TOML has no time-of-day type in tables we read back as text: ``"22:00"`` is a time."""
    if isinstance(value, str) and len(value) == 5 and value[2] == ":":
        try:
            return time.fromisoformat(value)
        except ValueError:
            return value
    return value
